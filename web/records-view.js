// records-view.js: the admin panel's decisions about the records, no DOM.
//
// Owns what the Analytics, Audit and Alerts tabs and the drawer's timeline
// and location work out before they touch the page: the query strings of
// the analytics, audit and alerts routes, the heatmap's levels and texts,
// the durations and daily rows, the audit rows' texts and export links, the
// timeline entries' texts and when a timeline is read again, the set of
// active alerts (from the list route and the stream's alert frames) and
// which of them concern a user or session, and the location texts. The
// DOM modules (analytics.js, audit.js, alerts.js, timeline.js, table.js,
// history.js, drawer.js) draw what these return. Tested by
// web/test/records-view.test.mjs.

import { formatDuration, localInputToIso } from './panel-core.js';

// --- location --------------------------------------------------------------

/** A Session's `location` as `{country, city, title}`; '-' for what is unknown. */
export function locationParts(location) {
  const country = location?.country || '-';
  const city = location?.city || '-';
  const where = [location?.city, location?.country].filter(Boolean).join(', ');
  const zone = location?.timezone ? ` (${location.timezone})` : '';
  return { country, city, title: where ? `${where}${zone}` : '' };
}

/** Whether any row shows a location: the tables show their location columns only then. */
export function anyLocated(values) {
  return values.some((v) => (v?.country && v.country !== '-') || (v?.city && v.city !== '-'));
}

// --- shared ---------------------------------------------------------------

/** A pager over a server-paged list: "51–100 of 120 events", "2 / 3". */
export function listPager(page, pageSize, total, shown, noun) {
  const pages = Math.max(1, Math.ceil(total / pageSize));
  const first = total === 0 || shown === 0 ? 0 : (page - 1) * pageSize + 1;
  const last = first === 0 ? 0 : first + shown - 1;
  return { pages, count: `${first}–${last} of ${total} ${noun}`, info: `${page} / ${pages}` };
}

function putParam(params, key, value) {
  if (value != null && String(value).trim() !== '') params.set(key, String(value).trim());
}

// --- analytics ------------------------------------------------------------

/** The range presets of the Analytics tab, in milliseconds. */
export const RANGE_PRESETS = Object.freeze({
  '1d': 24 * 3_600_000,
  '7d': 7 * 24 * 3_600_000,
  '30d': 30 * 24 * 3_600_000,
});

/** Monday first, as the heatmap's rows. */
export const WEEKDAYS = Object.freeze(['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun']);

/**
 * The range the analytics routes are asked for: a preset ends now; a
 * custom range takes the two `datetime-local` inputs (an empty one is left
 * to the route's default). `{from, to}` as RFC 3339 or null.
 */
export function analyticsRange({ preset, from, to }, now = Date.now()) {
  const span = RANGE_PRESETS[preset];
  if (span) return { from: new Date(now - span).toISOString(), to: new Date(now).toISOString() };
  return { from: localInputToIso(from), to: localInputToIso(to) };
}

/** A `datetime-local` value (the browser's local time, to the minute) for `ms`. */
export function localInputValue(ms) {
  const offset = new Date(ms).getTimezoneOffset() * 60_000;
  return new Date(ms - offset).toISOString().slice(0, 16);
}

/** The three query strings: heatmap (`metric`), durations (`group_by`), daily. */
export function analyticsQueries(range, { tz, metric, groupBy }) {
  const base = () => {
    const p = new URLSearchParams();
    putParam(p, 'from', range.from);
    putParam(p, 'to', range.to);
    return p;
  };
  const heatmap = base();
  putParam(heatmap, 'tz', tz);
  putParam(heatmap, 'metric', metric);
  const durations = base();
  putParam(durations, 'group_by', groupBy);
  const daily = base();
  putParam(daily, 'tz', tz);
  return { heatmap: heatmap.toString(), durations: durations.toString(), daily: daily.toString() };
}

/** The time zones offered: UTC and the browser's own. */
export function zoneOptions(localZone) {
  return localZone && localZone !== 'UTC' ? ['UTC', localZone] : ['UTC'];
}

/** The heatmap's biggest cell, its sum and where the peak is (first one found). */
export function heatmapSummary(cells) {
  let max = 0;
  let total = 0;
  let peak = null;
  (cells ?? []).forEach((row, day) => {
    (row ?? []).forEach((raw, hour) => {
      const v = Number(raw) || 0;
      total += v;
      if (v > max) {
        max = v;
        peak = { day, hour, value: v };
      }
    });
  });
  return { max, total, peak };
}

/** A cell's shade, 0 (none) to 4 (the maximum). */
export function heatLevel(value, max) {
  if (!(value > 0) || !(max > 0)) return 0;
  return Math.max(1, Math.ceil((value / max) * 4));
}

const pad2 = (n) => String(n).padStart(2, '0');

/** "Tue 14:00–15:00: 3 sessions started". */
export function heatCellTitle(day, hour, value, metric) {
  const what =
    metric === 'online_users'
      ? `at most ${value} user${value === 1 ? '' : 's'} online`
      : `${value} session${value === 1 ? '' : 's'} started`;
  return `${WEEKDAYS[day] ?? '?'} ${pad2(hour)}:00–${pad2((hour + 1) % 24)}:00: ${what}`;
}

/** The line under the heatmap. */
export function heatmapText(summary, metric) {
  if (!summary.peak) {
    return metric === 'online_users' ? 'Nobody was online in this range.' : 'No session started in this range.';
  }
  const { day, hour, value } = summary.peak;
  const at = `${WEEKDAYS[day]} ${pad2(hour)}:00`;
  return metric === 'online_users'
    ? `Busiest hour: ${at}, ${value} user${value === 1 ? '' : 's'} online at once.`
    : `${summary.total} session${summary.total === 1 ? '' : 's'} started; busiest hour: ${at} (${value}).`;
}

/**
 * One row of the durations report as texts; `key` null is "All sessions"
 * ungrouped, else "(none)" (sessions without that value).
 */
export function durationCells(group, groupBy = 'none') {
  const missing = groupBy === 'none' ? 'All sessions' : '(none)';
  return {
    key: group?.key ?? missing,
    sessions: String(group?.sessions ?? 0),
    avg: formatDuration(group?.avg_s),
    p50: formatDuration(group?.p50_s),
    p90: formatDuration(group?.p90_s),
    p99: formatDuration(group?.p99_s),
    total: formatDuration(group?.total_s),
  };
}

/** One row of the daily report as texts. */
export function dailyCells(day, formatTime) {
  const peak = day?.peak_online;
  const at = peak?.at ? ` at ${formatTime(peak.at)}` : '';
  return {
    date: day?.date ?? '-',
    sessionsStarted: String(day?.sessions_started ?? 0),
    distinctUsers: String(day?.distinct_users ?? 0),
    peakOnline: peak?.users ? `${peak.users}${at}` : '0',
    onlineTime: formatDuration(day?.online_time_s ?? 0),
  };
}

// --- audit ---------------------------------------------------------------

/** The actions the audit route filters on, with what the panel calls them. */
export const AUDIT_ACTIONS = Object.freeze({
  'session.terminate': 'Session terminated',
  'user.revoke': 'User signed out everywhere',
  'session.end_by_user': 'Session ended by its user',
  'sessions.export': 'Sessions exported',
  'auth.failed': 'Authentication failed',
  'auth.denied': 'Access denied',
  'webhook.dropped': 'Webhook events dropped',
});

/** Query string for `GET /api/v1/audit` from the tab's filters. */
export function auditQuery(filters = {}) {
  const p = new URLSearchParams();
  putParam(p, 'action', filters.action);
  putParam(p, 'actor', filters.actor);
  putParam(p, 'user_id', filters.userId);
  putParam(p, 'from', localInputToIso(filters.from));
  putParam(p, 'to', localInputToIso(filters.to));
  putParam(p, 'page', filters.page ?? 1);
  putParam(p, 'page_size', filters.pageSize ?? 50);
  return p.toString();
}

/** The export link for `format` ('csv' or 'ndjson'); the route takes the time range only. */
export function auditExportHref(format, filters = {}) {
  const p = new URLSearchParams({ format });
  putParam(p, 'from', localInputToIso(filters.from));
  putParam(p, 'to', localInputToIso(filters.to));
  return `/api/v1/audit/export?${p}`;
}

/** "audit-20250101-1230.csv" in UTC. */
export function auditFilename(format, date = new Date()) {
  const iso = date.toISOString();
  return `audit-${iso.slice(0, 10).replaceAll('-', '')}-${iso.slice(11, 16).replace(':', '')}.${format}`;
}

/** What one audit row shows. */
export function auditCells(event) {
  const actor = event?.actor;
  const who = actor?.user_id ?? (actor?.ip ? 'unknown caller' : '-');
  const role = actor?.role ? ` (${actor.role})` : '';
  const from = actor?.ip ? ` from ${actor.ip}` : '';
  const target = event?.target ?? {};
  const parts = [];
  if (target.user_id) parts.push(`user ${target.user_id}`);
  if (target.session_id) parts.push(`session ${target.session_id}`);
  return {
    action: AUDIT_ACTIONS[event?.action] ?? event?.action ?? '-',
    actor: `${who}${role}${from}`,
    target: parts.length ? parts.join(', ') : '-',
    result: event?.result ?? '-',
    reason: event?.reason ?? '-',
    node: event?.node_id ?? '-',
  };
}

// --- timeline ------------------------------------------------------------

/** One timeline entry as text (contract v1.1 section 10's kinds). */
export function timelineText(entry) {
  const from = entry?.from ?? 'none';
  const to = entry?.to ?? 'none';
  switch (entry?.kind) {
    case 'status':
      return `Status ${from} → ${to}`;
    case 'manual':
      return `Manual status ${from} → ${to}`;
    case 'page':
      return `Page ${from} → ${to}`;
    case 'room_join':
      return `Joined room ${entry.to ?? '?'}`;
    case 'room_leave':
      return `Left room ${entry.from ?? '?'}`;
    case 'reconnecting':
      return 'Connection dropped, waiting for the tab to resume';
    case 'resumed':
      return 'Resumed';
    default:
      return `${entry?.kind ?? '?'} ${from} → ${to}`;
  }
}

/**
 * A key that changes when a session changed in a way its timeline records
 * (status, manual, page, rooms, reconnecting, the end): the drawer then
 * reads the timeline again.
 */
export function timelineKey(session) {
  if (!session) return '';
  const rooms = Array.isArray(session.rooms) ? session.rooms.join(',') : '';
  const ended = session.status === 'ended' || session.ended_at != null;
  return [session.session_id, session.status, session.manual, session.page, rooms, session.reconnecting, ended].join('|');
}

// --- alerts ----------------------------------------------------------------

/** What the panel calls each alert rule (contract v1.1 section 12). */
export const ALERT_RULES = Object.freeze({
  multi_ip: 'Several IPs',
  session_flood: 'Session flood',
  reconnect_loop: 'Reconnect loop',
  long_session: 'Long session',
  auth_failures: 'Authentication failures',
  impossible_travel: 'Impossible travel',
});

/** `GET /api/v1/alerts` for the active alerts, as many as a page holds. */
export const ACTIVE_ALERTS_PATH = '/api/v1/alerts?active=true&page_size=500';

/**
 * Applies one alert (from the list route or an alert frame) to the map of
 * active alerts by id: a cleared one leaves it. Returns whether it changed.
 */
export function applyAlert(active, alert) {
  if (!alert?.id) return false;
  if (alert.cleared_at != null) return active.delete(alert.id);
  active.set(alert.id, alert);
  return true;
}

/**
 * The active alerts after a reload: the list route's answer, then the frames
 * that arrived while it was being read, applied again in order.
 */
export function mergeAlerts(listed, pendingFrames) {
  const active = new Map();
  for (const alert of listed ?? []) applyAlert(active, alert);
  for (const alert of pendingFrames ?? []) applyAlert(active, alert);
  return active;
}

/** The active alerts, newest first. */
export function sortedAlerts(active) {
  return [...active.values()].sort((a, b) => String(b.at).localeCompare(String(a.at)));
}

/** Whether an alert is about this session (or, with `userId`, this user). */
export function alertConcerns(alert, userId, sessionId) {
  const d = alert?.details ?? {};
  if (sessionId && (d.session_id === sessionId || (d.session_ids ?? []).includes(sessionId))) {
    return true;
  }
  return userId != null && alert?.user_id === userId;
}

/** The active alerts about a user or one of its sessions, newest first. */
export function alertsFor(active, userId, sessionId) {
  return sortedAlerts(active).filter((a) => alertConcerns(a, userId, sessionId));
}

/** Who an alert is about: the user, else the IP. */
export function alertSubject(alert) {
  return alert?.user_id ?? alert?.ip ?? '-';
}

/** A sentence from an alert's `details`. */
export function alertSummary(alert) {
  const d = alert?.details ?? {};
  const n = d.count ?? '?';
  switch (alert?.rule) {
    case 'multi_ip':
      return `${n} distinct IPs: ${(d.ips ?? []).join(', ')}`;
    case 'session_flood':
      return `${n} sessions started within ${d.window_s ?? 60} s`;
    case 'reconnect_loop':
      return `${n} reconnects within ${d.window_s ?? 60} s`;
    case 'long_session':
      return `Session live longer than ${formatDuration(d.threshold_s)}`;
    case 'auth_failures':
      return `${n} failed authentications within ${d.window_s ?? 60} s`;
    case 'impossible_travel': {
      const place = (p) => [p?.city, p?.country].filter(Boolean).join(', ') || p?.ip || '?';
      const km = d.distance_km != null ? ` (${Math.round(d.distance_km)} km)` : '';
      return `${place(d.from)} → ${place(d.to)}${km}`;
    }
    default:
      return JSON.stringify(d);
  }
}

/** The badge: the count, and a label for screen readers. */
export function alertsBadge(count) {
  return {
    text: String(count),
    label: count === 0 ? 'no active alerts' : `${count} active alert${count === 1 ? '' : 's'}`,
  };
}
