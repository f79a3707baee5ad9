// drawer.js: the session drawer (#drawer).
//
// Owns opening it for a user (from the table, an alert or an audit event)
// or for a session (from the history or an audit event), closing it (the
// close button, Escape) and giving focus back, and drawing the user's facts
// and active alerts (each a link to the Alerts tab), their session list
// (pick one) and the chosen session, with its location and its ticking
// duration and last activity. The two buttons in it belong to actions.js,
// the session's timeline to timeline.js.

import { $, setText } from './dom.js';
import {
  describeApp,
  formatAgo,
  formatDuration,
  parseTime,
  sessionTabs,
  userTabs,
} from './panel-core.js';
import {
  drawerSession,
  formatClock,
  isEnded,
  isoTitle,
  listedSessions,
  manualMark,
  sessionListKey,
  sessionPick,
  sessionTimes,
  statusText,
  tabsTitle,
} from './panel-view.js';
import { ALERT_RULES, alertSummary, alertsFor, locationParts } from './records-view.js';
import { markDirty, state } from './state.js';
import { resetTimeline, showTimeline } from './timeline.js';

/** Opens the drawer on a user and their newest live session. */
export function openDrawerForUser(userId, opener) {
  const { drawer } = state;
  drawer.userId = userId;
  drawer.sessionId = null;
  drawer.pinned = null;
  showDrawer(opener);
}

/** Opens the drawer on a session (a history row, which may have ended long ago). */
export function openDrawerForSession(session, opener) {
  const { drawer } = state;
  drawer.userId = session.user_id;
  drawer.sessionId = session.session_id;
  drawer.pinned = session;
  showDrawer(opener);
}

function showDrawer(opener) {
  const { drawer } = state;
  drawer.opener = opener ?? document.activeElement;
  drawer.listKey = '';
  drawer.alertsKey = null;
  const el = $('drawer');
  el.hidden = false;
  document.body.classList.add('drawer-open');
  renderDrawer();
  $('drawer-title').focus();
}

function closeDrawer() {
  const { drawer } = state;
  const el = $('drawer');
  if (el.hidden) return;
  el.hidden = true;
  document.body.classList.remove('drawer-open');
  const row = state.rows.get(drawer.userId);
  const target =
    drawer.opener?.isConnected && drawer.opener !== document.body
      ? drawer.opener
      : row?.refs.name;
  drawer.userId = null;
  drawer.sessionId = null;
  drawer.pinned = null;
  drawer.alertsKey = '';
  resetTimeline();
  target?.focus();
}

/** Redraws the open drawer from the model; nothing when it is closed. */
export function renderDrawer() {
  const { drawer, model } = state;
  const el = $('drawer');
  if (el.hidden || drawer.userId == null) return;
  const user = model.users.get(drawer.userId) ?? null;
  const live = model.sessionsOf(drawer.userId);
  const selected = drawerSession(model, drawer, live);
  const name = user?.name || selected?.name || drawer.userId;
  el.dataset.userId = drawer.userId;
  el.dataset.sessionId = selected?.session_id ?? '';
  setText($('drawer-title'), name);
  const org = user?.org ?? selected?.org;
  setText($('drawer-subtitle'), org ? `${drawer.userId} · ${org}` : drawer.userId);

  const facts = $('drawer-user');
  const f = (field) => facts.querySelector(`[data-field="${field}"]`);
  const status = user?.status ?? 'offline';
  setStatusCell(f('status'), status, user?.manual ?? null);
  setText(f('user-id'), drawer.userId);
  setText(f('org'), org || '-');
  const tabs = user ? userTabs(model, user) : sessionTabs(live);
  setText(f('session-count'), String(tabs.tabs));
  f('session-count').title = tabsTitle(tabs);
  if (tabs.http) f('session-count').dataset.http = String(tabs.http);
  else delete f('session-count').dataset.http;
  const since = parseTime(user?.online_since);
  setText(f('online-since'), formatClock(since));
  f('online-since').title = isoTitle(since);
  $('revoke-user').disabled = live.length === 0;
  $('revoke-user').title = live.length === 0 ? 'This user has no live sessions' : '';

  renderDrawerAlerts(drawer.userId, selected?.session_id);
  renderDrawerSessions(live, selected);
  renderDrawerSession(selected);
  showTimeline(selected);
  tickDrawer();
}

function setStatusCell(cell, status, manual) {
  cell.dataset.status = status;
  cell.dataset.manual = manualMark(status, manual);
  let dot = cell.querySelector('.dot');
  let text = cell.querySelector('.status-text');
  if (!dot) {
    cell.textContent = '';
    const line = document.createElement('span');
    line.className = 'status-line';
    dot = document.createElement('span');
    dot.className = 'dot';
    dot.setAttribute('aria-hidden', 'true');
    text = document.createElement('span');
    text.className = 'status-text';
    line.append(dot, text);
    cell.append(line);
  }
  dot.dataset.status = status;
  dot.dataset.manual = manualMark(status, manual);
  dot.classList.toggle('busy', manual === 'busy');
  setText(text, manual === 'busy' ? `${status}, busy` : statusText(status, manual));
}

/** The active alerts about the drawer's user or its shown session, as links to the Alerts tab. */
function renderDrawerAlerts(userId, sessionId) {
  const { drawer } = state;
  const found = alertsFor(state.alerts.active, userId, sessionId);
  const key = found.map((a) => a.id).join(',');
  if (key === drawer.alertsKey) return;
  drawer.alertsKey = key;
  $('drawer-alerts').hidden = found.length === 0;
  const items = found.map((alert) => {
    const li = document.createElement('li');
    li.dataset.alertId = alert.id;
    li.dataset.rule = alert.rule ?? '';
    const a = document.createElement('a');
    a.href = '#alerts';
    a.dataset.alertId = alert.id;
    a.textContent = ALERT_RULES[alert.rule] ?? alert.rule ?? 'alert';
    const sub = document.createElement('span');
    sub.className = 'muted small';
    sub.textContent = alertSummary(alert);
    li.append(a, ' ', sub);
    return li;
  });
  $('drawer-alerts-list').replaceChildren(...items);
}

function renderDrawerSessions(live, selected) {
  const { drawer } = state;
  const list = $('drawer-sessions');
  const shown = listedSessions(live, selected);
  const key = sessionListKey(shown, selected);
  if (key === drawer.listKey) return;
  drawer.listKey = key;
  const focused = document.activeElement?.closest?.('#drawer-sessions [data-session-id]');
  const focusedId = focused?.dataset.sessionId;
  const items = shown.map((s) => {
    const pick = sessionPick(s);
    const li = document.createElement('li');
    const btn = document.createElement('button');
    btn.type = 'button';
    btn.className = 'session-pick';
    btn.dataset.sessionId = s.session_id;
    btn.dataset.status = pick.status;
    btn.setAttribute('aria-pressed', String(s.session_id === selected?.session_id));
    const dot = document.createElement('span');
    dot.className = 'dot';
    dot.dataset.status = pick.status;
    dot.dataset.manual = pick.mark;
    dot.classList.toggle('busy', pick.manual === 'busy');
    dot.setAttribute('aria-hidden', 'true');
    const label = document.createElement('span');
    label.className = 'session-pick-label';
    label.textContent = pick.label;
    const sub = document.createElement('span');
    sub.className = 'muted small';
    sub.textContent = pick.sub;
    btn.append(dot, label, sub);
    li.append(btn);
    return li;
  });
  if (items.length === 0) {
    const li = document.createElement('li');
    li.className = 'muted small';
    li.textContent = 'No live sessions.';
    items.push(li);
  }
  list.replaceChildren(...items);
  if (focusedId) list.querySelector(`[data-session-id="${CSS.escape(focusedId)}"]`)?.focus();
}

function renderDrawerSession(s) {
  const section = $('drawer-session');
  section.hidden = !s;
  if (!s) return;
  const ended = isEnded(s);
  section.dataset.sessionId = s.session_id;
  section.dataset.status = ended ? 'ended' : s.status;
  const f = (field) => section.querySelector(`[data-field="${field}"]`);
  setText(f('session-id'), s.session_id);
  setStatusCell(f('status'), ended ? 'ended' : s.status, ended ? null : s.manual);
  const d = s.device ?? {};
  setText(f('device'), d.device_type ?? '-');
  setText(f('browser'), d.browser ?? '-');
  setText(f('platform'), d.platform ?? '-');
  setText(f('ip'), s.ip ?? '-');
  const where = locationParts(s.location);
  setText(f('country'), where.country);
  setText(f('city'), where.city);
  f('city').title = where.title;
  setText(f('app'), describeApp(s));
  setText(f('page'), s.page ?? '-');
  const connected = parseTime(s.connected_at);
  setText(f('connected-at'), connected == null ? '-' : new Date(connected).toLocaleString());
  f('connected-at').title = isoTitle(connected);
  setText(f('node'), s.node_id ?? '-');
  setText(f('transport'), s.transport ?? '-');
  for (const node of section.querySelectorAll('[data-ended]')) node.hidden = !ended;
  const endedAt = parseTime(s.ended_at);
  setText(f('ended-at'), endedAt == null ? '-' : new Date(endedAt).toLocaleString());
  setText(f('end-cause'), s.end_cause ?? '-');
  setText(f('user-agent'), s.user_agent ?? '-');
  setText(f('meta'), s.meta && Object.keys(s.meta).length ? JSON.stringify(s.meta) : '-');
  const btn = $('terminate-session');
  btn.disabled = ended;
  btn.dataset.sessionId = s.session_id;
}

/** The drawer's ticking values: duration and last activity (once a second). */
export function tickDrawer() {
  const { drawer, model } = state;
  const el = $('drawer');
  if (el.hidden || drawer.userId == null) return;
  const now = model.serverNow();
  const userLast = model.lastActivityOf(drawer.userId);
  setText(
    $('drawer-user').querySelector('[data-field="last-activity"]'),
    userLast == null ? '-' : formatAgo(now - userLast),
  );
  const section = $('drawer-session');
  if (section.hidden) return;
  const s =
    model.session(section.dataset.sessionId) ??
    (drawer.pinned?.session_id === section.dataset.sessionId ? drawer.pinned : null);
  if (!s) return;
  const times = sessionTimes(s, now);
  setText(section.querySelector('[data-field="duration"]'), formatDuration(times.duration));
  setText(section.querySelector('[data-field="last-activity"]'), times.lastActivity);
}

/** Binds closing, Escape and picking a session from the list. */
export function bindDrawer() {
  $('drawer-close').addEventListener('click', closeDrawer);
  $('drawer-sessions').addEventListener('click', (e) => {
    const btn = e.target.closest('[data-session-id]');
    if (!btn) return;
    state.drawer.sessionId = btn.dataset.sessionId;
    renderDrawer();
  });
  $('drawer-alerts-list').addEventListener('click', (e) => {
    const link = e.target.closest('a[data-alert-id]');
    if (!link) return;
    // The link's own #alerts shows the tab (tabs.js follows the hash).
    state.alerts.highlight = link.dataset.alertId;
    state.alerts.listKey = '';
    markDirty();
  });
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && !$('drawer').hidden && !document.querySelector('dialog[open]')) {
      closeDrawer();
    }
  });
}
