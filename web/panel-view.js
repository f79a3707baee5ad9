// panel-view.js: the admin panel's page decisions that need no DOM.
//
// Owns what the DOM modules work out before they touch the page: local time
// texts, reading an API error body, the token form's input and why a token
// was refused, the admin stream's URL and when it resubscribes at once, the
// connection countdown, the counters' node list and items and peak text,
// the status texts (a manual away apart from a derived one), the tab counts'
// titles, the org options, sorting clicks, the pager texts, the drawer's
// choice of session,
// its session list and ticking values, the confirmation texts, the chart's
// points from the hub's series, their gaps and label, the tabs' keyboard
// moves and hash, and the render scheduler's rest. The model and the table's filtering and sorting live in
// panel-core.js. Tested by web/test/panel-view.test.mjs.

import { CHART_WINDOW_MS, NO_ORG, describeDevice, formatAgo, parseTime } from './panel-core.js';

// --- time and errors -----------------------------------------------------

/** A local time: "10:04:05" today, "Jan 3, 10:04" on another day; "-" for none. */
export function formatClock(ms, now = Date.now()) {
  if (ms == null) return '-';
  const d = new Date(ms);
  const sameDay = d.toDateString() === new Date(now).toDateString();
  return sameDay
    ? d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' })
    : d.toLocaleString([], { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
}

/** The ISO time for a `title` attribute, or '' for none. */
export function isoTitle(ms) {
  return ms == null ? '' : new Date(ms).toISOString();
}

/** The message of an API error body (`{error: {message}}`), else "HTTP <status>". */
export async function errorMessage(res) {
  try {
    const body = await res.json();
    return body?.error?.message ?? `HTTP ${res.status}`;
  } catch {
    return `HTTP ${res.status}`;
  }
}

// --- authentication and the admin stream ---------------------------------

/** The token typed or pasted into the form, without spaces or a "Bearer " prefix. */
export function normalizeToken(value) {
  return value.trim().replace(/^Bearer\s+/i, '');
}

/** What the token form says after a 401/403; null when no token was sent. */
export function authFailureReason(status, hadToken) {
  if (status === 403) return 'That token is valid but has no admin role.';
  if (hadToken) return 'That token was rejected or has expired.';
  return null;
}

/**
 * The `/admin/ws` URL for the page at `href`: ws or wss as the page, the
 * token as `?token=`, and the page's own `?org=` filter passed on.
 */
export function adminStreamUrl(href, token) {
  const url = new URL('/admin/ws', href);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  if (token) url.searchParams.set('token', token);
  const org = new URL(href).searchParams.get('org');
  if (org) url.searchParams.set('org', org);
  return url;
}

/**
 * Whether a closed stream resubscribes at once: a healthy stream closed for
 * being slow (4009) or after a seq gap does; anything else backs off.
 */
export function resubscribeAtOnce({ healthy, resync }, code) {
  return healthy && (code === 4009 || resync);
}

/** Whether a stream event moves the counters only `/api/v1/stats` has. */
export function movesStats(msg) {
  return (msg?.type === 'session' && msg.event === 'started') || msg?.type === 'user';
}

/** "retrying in 3 s" until `retryAt`, then "retrying…". */
export function retryText(retryAt, now) {
  const s = Math.max(0, Math.ceil((retryAt - now) / 1000));
  return s > 0 ? `retrying in ${s} s` : 'retrying…';
}

// --- counters and the users table ----------------------------------------

/**
 * The nodes to list with their live sessions, by name; the serving node is
 * listed (with 0) even when it holds none.
 */
export function nodeCounts(byNode, selfId) {
  const counts = new Map(byNode);
  if (selfId && !counts.has(selfId)) counts.set(selfId, 0);
  return [...counts.keys()]
    .sort((a, b) => a.localeCompare(b))
    .map((node) => ({ node, count: counts.get(node), self: node === selfId }));
}

/**
 * What one node of the NODES card shows: the name (which may be cut short
 * with an ellipsis, so `title` has it whole), the "(this)" mark of the
 * serving node as its own part that is never cut, and the count.
 */
export function nodeItem({ node, count, self }) {
  return {
    name: node,
    title: self ? `${node}: the node serving this panel` : node,
    selfMark: self ? '(this)' : null,
    count: String(count),
  };
}

/**
 * The status text of a user or session: a manual `away` (set by the person,
 * it stays until cleared) reads apart from a derived one (no activity);
 * `busy` is shown beside the status, by the caller.
 */
export function statusText(status, manual) {
  if (status === 'away' && manual === 'away') return 'away (manual)';
  return status ?? '-';
}

/** The `data-manual` of a status cell or dot: 'busy', 'away' or ''. */
export function manualMark(status, manual) {
  if (manual === 'busy') return 'busy';
  if (manual === 'away' && status === 'away') return 'away';
  return '';
}

/**
 * The `title` of a Tabs cell: '' when every live session is a tab,
 * otherwise how many more sessions are kept by HTTP heartbeats (which are
 * not tabs, so the number leaves them out).
 */
export function tabsTitle({ tabs, http }) {
  if (!http) return '';
  const t = `${tabs} tab${tabs === 1 ? '' : 's'}`;
  return `${t}, plus ${http} session${http === 1 ? '' : 's'} kept by HTTP heartbeats (not counted as tabs)`;
}

/** "3 users at 10:04:05" from the stats' `peak_online`, or "-". */
export function peakText(peak, now = Date.now()) {
  if (peak?.users == null) return '-';
  const at = peak.at ? ` at ${formatClock(parseTime(peak.at), now)}` : '';
  return `${peak.users} user${peak.users === 1 ? '' : 's'}${at}`;
}

/**
 * The org filter's options, `{label, value}`, and a key that changes only
 * when they do. The selected org stays offered while nobody of it is online.
 */
export function orgOptions({ orgs, hasNone }, selected) {
  const list = [...orgs];
  if (selected && selected !== NO_ORG && !list.includes(selected)) list.push(selected);
  const key = `${hasNone}|${list.join('\u0000')}`;
  const options = [{ label: 'All orgs', value: '' }];
  if (hasNone || selected === NO_ORG) options.push({ label: '(no org)', value: NO_ORG });
  for (const org of list) options.push({ label: org, value: org });
  return { key, options };
}

/** Columns whose first click sorts descending (most, newest first). */
const DESC_FIRST = new Set(['tabs', 'online_since', 'last_activity']);

/** The sort after a click on `key`'s header: the same key reverses. */
export function nextSort({ sortKey, sortDir }, key) {
  if (sortKey === key) return { sortKey, sortDir: sortDir === 'asc' ? 'desc' : 'asc' };
  return { sortKey: key, sortDir: DESC_FIRST.has(key) ? 'desc' : 'asc' };
}

/** The `aria-sort` of `key`'s header. */
export function ariaSort({ sortKey, sortDir }, key) {
  if (sortKey !== key) return 'none';
  return sortDir === 'asc' ? 'ascending' : 'descending';
}

/** "1–100 of 240 (filtered from 300) users" from a `paginate()` page. */
export function usersCountText(page, online, filtered) {
  if (page.total === 0) return `0 of ${online} users`;
  const from = filtered ? ` (filtered from ${online})` : '';
  return `${page.first}–${page.last} of ${page.total}${from} users`;
}

/** The history's pager: "51–100 of 120 ended sessions", "2 / 3". */
export function historyPager(page, pageSize, total, shown) {
  const pages = Math.max(1, Math.ceil(total / pageSize));
  const first = total === 0 ? 0 : (page - 1) * pageSize + 1;
  return {
    pages,
    count: `${first}–${first === 0 ? 0 : first + shown - 1} of ${total} ended sessions`,
    info: `${page} / ${pages}`,
  };
}

// --- drawer and actions --------------------------------------------------

/** Whether a session is over (an ended event, or a history row). */
export function isEnded(session) {
  return session.status === 'ended' || session.ended_at != null;
}

/**
 * The session the drawer shows: the chosen one, else the user's newest live
 * one (`live` is newest first); looked up live, recently ended, or the
 * history row the drawer was opened with (`pinned`).
 */
export function drawerSession(model, { sessionId, pinned }, live) {
  const id = sessionId ?? live[0]?.session_id ?? null;
  if (id == null) return null;
  return (
    model.sessions.get(id) ??
    model.recentlyEnded.get(id) ??
    (pinned?.session_id === id ? pinned : null)
  );
}

/** The drawer's session list: the live ones, plus the shown one if it is over. */
export function listedSessions(live, selected) {
  const shown = [...live];
  if (selected && !live.some((s) => s.session_id === selected.session_id)) shown.push(selected);
  return shown;
}

/** A key that changes only when the drawer's session list must be redrawn. */
export function sessionListKey(shown, selected) {
  return shown
    .map((s) => {
      const chosen = s.session_id === selected?.session_id;
      return `${s.session_id}|${s.status}|${s.manual}|${s.page}|${chosen}`;
    })
    .join('\n');
}

/** What one button of the drawer's session list shows. */
export function sessionPick(session) {
  const ended = isEnded(session);
  const status = ended ? 'ended' : session.status;
  const manual = ended ? null : session.manual;
  const via = session.transport === 'http' ? ' · via HTTP heartbeats' : '';
  const busy = manual === 'busy' ? ' (busy)' : '';
  return {
    status,
    manual,
    mark: manualMark(status, manual),
    label: describeDevice(session),
    sub: `${statusText(status, manual)}${busy} · ${session.page ?? 'no page'}${via}`,
  };
}

/**
 * The drawer's ticking session values at hub time `now`: the duration (the
 * final one once ended) and the last activity ("12 s ago", or the local
 * time once ended).
 */
export function sessionTimes(session, now) {
  const ended = isEnded(session);
  const connected = parseTime(session.connected_at);
  const duration = ended
    ? session.duration_s
    : connected == null
      ? null
      : (now - connected) / 1000;
  const last = parseTime(session.last_activity);
  const lastActivity =
    last == null ? '-' : ended ? new Date(last).toLocaleString() : formatAgo(now - last);
  return { duration, lastActivity };
}

/** The confirmation before terminating a session. */
export function terminatePrompt(session) {
  const who = session?.name || session?.user_id || 'this user';
  const page = session?.page ? ` (${session.page})` : '';
  return {
    title: 'Terminate session?',
    message: `This ends ${who}'s session on ${describeDevice(session)}${page}. The tab is told it was terminated and does not reconnect by itself, but the user's token still works: reloading the page starts a new session. To keep the user out, use Sign out everywhere.`,
    confirmLabel: 'Terminate session',
  };
}

/** The confirmation before signing a user out everywhere. */
export function revokePrompt(user, userId, count) {
  return {
    title: 'Sign out everywhere?',
    message: `This ends all ${count} live session${count === 1 ? '' : 's'} of ${user?.name || userId} (${userId}). Their tabs are told they were signed out, and the tokens they hold are refused from now on (until those tokens expire), on every node. Signing in again for a new token works.`,
    confirmLabel: 'Sign out everywhere',
  };
}

/** The toast after signing a user out: "Signed out: 2 sessions ended." */
export function revokedText(terminated) {
  const n = terminated ?? 0;
  return `Signed out: ${n} session${n === 1 ? '' : 's'} ended.`;
}

// --- chart, tabs, rendering ----------------------------------------------

/** The points of a GET /api/v1/stats/series answer as `{t, users, sessions}`, oldest first. */
export function seriesPoints(body) {
  const points = Array.isArray(body?.points) ? body.points : [];
  const out = [];
  for (const p of points) {
    const t = parseTime(p?.at);
    if (t != null && Number.isFinite(p.users) && Number.isFinite(p.sessions)) {
      out.push({ t, users: p.users, sessions: p.sessions });
    }
  }
  return out.sort((a, b) => a.t - b.t);
}

/** `kept` and `fresh` points by time (a fresh one replaces a kept one of its time), none older than the window before `now`. */
export function mergePoints(kept, fresh, now) {
  const byTime = new Map(kept.map((p) => [p.t, p]));
  for (const p of fresh) byTime.set(p.t, p);
  const oldest = now - CHART_WINDOW_MS;
  return [...byTime.values()].filter((p) => p.t >= oldest).sort((a, b) => a.t - b.t);
}

/**
 * Chart samples from the hub's points: a gap (null values) where more than
 * two intervals pass without a point, and at `now` when the last point is
 * older than that (the hub stopped sampling, or cannot be reached).
 */
export function chartSamples(points, intervalMs, now) {
  const gap = (t) => ({ t, users: null, sessions: null });
  const out = [];
  for (const p of points) {
    const last = out.at(-1);
    if (last && p.t - last.t > 2 * intervalMs) out.push(gap(last.t + intervalMs));
    out.push(p);
  }
  const last = out.at(-1);
  if (last && now - last.t > 3 * intervalMs) out.push(gap(now));
  return out;
}

/** The chart's `aria-label` from its last sample and the hour's peak. */
export function chartLabel(last, peakUsers) {
  return last?.users == null
    ? 'No live samples yet'
    : `Now ${last.users} users online in ${last.sessions} sessions; at most ${peakUsers} users in the last hour`;
}

/** The tab a key moves to from tab `i` of `n` (ARIA tab pattern), or null. */
export function tabKeyTarget(key, i, n) {
  if (key === 'ArrowRight') return (i + 1) % n;
  if (key === 'ArrowLeft') return (i - 1 + n) % n;
  if (key === 'Home') return 0;
  if (key === 'End') return n - 1;
  return null;
}

/** The tab a URL hash names: `#audit` is 'audit'; none, or one not in `names`, is 'live'. */
export function tabFromHash(hash, names) {
  const name = String(hash ?? '').replace(/^#/, '');
  return name && name !== 'live' && names.includes(name) ? name : 'live';
}

/**
 * How long the next render waits: a render that took `cost` ms and ended at
 * `end` is followed by at least 4 x `cost` ms of rest.
 */
export function renderRest(end, cost, now) {
  return Math.max(0, end + cost * 4 - now);
}
