// app.js: the admin panel's DOM and wiring.
//
// Owns the page: admin authentication (token prompt kept in sessionStorage),
// the `/admin/ws` subscription (snapshot, events, seq-gap and 4009 resync,
// reconnect with backoff), rendering (keyed rows updated in place, batched
// per animation frame), the session drawer, admin actions, the history tab
// and the client-side chart. State and pure decisions live in panel-core.js.

import { backoffDelay } from './presence-client.js';
import {
  CHART_SAMPLE_MS,
  CHART_WINDOW_MS,
  NO_ORG,
  PresenceModel,
  addSample,
  chartPaths,
  countPresence,
  csvFilename,
  describeApp,
  describeDevice,
  exportQuery,
  formatAgo,
  formatDuration,
  historyQuery,
  paginate,
  parseTime,
  selectUsers,
} from './panel-core.js';

const TOKEN_KEY = 'presence.adminToken';
const CHART_KEY = 'presence.chart';
const STREAM_BACKOFF = { baseMs: 500, capMs: 15_000 };
const STATS_REFRESH_MS = 30_000;
const DESC_FIRST = new Set(['tabs', 'online_since', 'last_activity']);

const $ = (id) => document.getElementById(id);
const model = new PresenceModel();
let token = sessionStorage.getItem(TOKEN_KEY);

const view = {
  q: '',
  status: '',
  org: '',
  sortKey: 'status',
  sortDir: 'asc',
  page: 1,
  pageSize: 100,
};

// --- small helpers -------------------------------------------------------

function setText(el, text) {
  if (el && el.textContent !== text) el.textContent = text;
}

function formatClock(ms) {
  if (ms == null) return '-';
  const d = new Date(ms);
  const sameDay = d.toDateString() === new Date().toDateString();
  return sameDay
    ? d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' })
    : d.toLocaleString([], { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
}

function isoTitle(ms) {
  return ms == null ? '' : new Date(ms).toISOString();
}

let toastTimer = null;
function toast(message, kind = 'info') {
  const el = $('toast');
  el.textContent = message;
  el.dataset.kind = kind;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => {
    el.hidden = true;
  }, 6_000);
}

async function errorMessage(res) {
  try {
    const body = await res.json();
    return body?.error?.message ?? `HTTP ${res.status}`;
  } catch {
    return `HTTP ${res.status}`;
  }
}

// --- authentication ------------------------------------------------------

let loginPromise = null;

/** Shows the token form once; concurrent callers share it. */
function askToken(reason) {
  if (loginPromise) return loginPromise;
  loginPromise = new Promise((resolve) => {
    const dlg = $('login');
    const form = $('login-form');
    const input = $('login-token');
    const error = $('login-error');
    error.hidden = !reason;
    error.textContent = reason ?? '';
    input.value = '';
    const onSubmit = (event) => {
      event.preventDefault();
      const value = input.value.trim().replace(/^Bearer\s+/i, '');
      if (!value) return;
      form.removeEventListener('submit', onSubmit);
      dlg.removeEventListener('cancel', onCancel);
      token = value;
      sessionStorage.setItem(TOKEN_KEY, token);
      $('panel-signout').hidden = false;
      dlg.close();
      loginPromise = null;
      resolve(token);
      onTokenChanged();
    };
    // The panel is useless without a token: keep the form up.
    const onCancel = (event) => event.preventDefault();
    form.addEventListener('submit', onSubmit);
    dlg.addEventListener('cancel', onCancel);
    dlg.showModal();
    input.focus();
  });
  return loginPromise;
}

/**
 * fetch() with the admin token. On 401/403 asks for a token and retries.
 * Network failures reject as usual.
 */
async function api(path, { method = 'GET', accept = 'application/json' } = {}) {
  for (let attempt = 0; ; attempt += 1) {
    const headers = { Accept: accept };
    if (token) headers.Authorization = `Bearer ${token}`;
    const res = await fetch(path, { method, headers, cache: 'no-store' });
    if ((res.status === 401 || res.status === 403) && attempt < 5) {
      let reason = null;
      if (res.status === 403) reason = 'That token is valid but has no admin role.';
      else if (token) reason = 'That token was rejected or has expired.';
      if (token) {
        token = null;
        sessionStorage.removeItem(TOKEN_KEY);
      }
      await askToken(reason);
      continue;
    }
    return res;
  }
}

let booted = false;

function onTokenChanged() {
  if (!booted) return;
  if (!stream.healthy) openStream();
  refreshStats();
}

// --- admin stream --------------------------------------------------------

const stream = { ws: null, attempt: 0, timer: null, retryAt: null, healthy: false, resync: false };

function streamUrl() {
  const url = new URL('/admin/ws', location.href);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  if (token) url.searchParams.set('token', token);
  const org = new URLSearchParams(location.search).get('org');
  if (org) url.searchParams.set('org', org);
  return url;
}

function openStream() {
  clearTimeout(stream.timer);
  stream.timer = null;
  stream.retryAt = null;
  stream.healthy = false;
  const old = stream.ws;
  stream.ws = null;
  if (old && old.readyState <= 1) old.close(1000, 'resubscribing');
  let ws;
  try {
    ws = new WebSocket(streamUrl());
  } catch (err) {
    console.error('admin stream: cannot open', err);
    scheduleStream(false);
    return;
  }
  stream.ws = ws;
  ws.onmessage = (event) => {
    if (stream.ws === ws) onStreamMessage(ws, event.data);
  };
  ws.onclose = (event) => {
    if (stream.ws === ws) onStreamClose(event);
  };
}

function onStreamMessage(ws, data) {
  let msg;
  try {
    msg = JSON.parse(data);
  } catch {
    return;
  }
  if (msg?.type === 'snapshot') {
    model.applySnapshot(msg);
    stream.attempt = 0;
    stream.healthy = true;
    setConn('live');
    setText($('hub-node'), model.nodeId ? `node ${model.nodeId}` : '');
    sampleChart();
    markDirty();
    refreshStats();
    return;
  }
  const result = model.apply(msg);
  if ((msg?.type === 'session' && msg.event === 'started') || msg?.type === 'user') {
    scheduleStatsRefresh();
  }
  if (result.kind === 'gap') {
    console.warn('admin stream: seq gap, resubscribing', result);
    stream.resync = true;
    ws.close(4000, 'seq gap');
    return;
  }
  if (result.kind !== 'ignored') markDirty();
}

function onStreamClose(event) {
  stream.ws = null;
  // A healthy stream that was closed for being slow (4009) or that skipped a
  // seq resubscribes at once for a fresh snapshot; anything else backs off.
  const quick = stream.healthy && (event.code === 4009 || stream.resync);
  stream.resync = false;
  setConn('reconnecting');
  scheduleStream(quick);
}

function scheduleStream(quick) {
  const wasHealthy = stream.healthy;
  stream.healthy = false;
  const delay = quick ? 0 : backoffDelay(stream.attempt, STREAM_BACKOFF);
  if (!quick) stream.attempt += 1;
  stream.retryAt = Date.now() + delay;
  clearTimeout(stream.timer);
  stream.timer = setTimeout(openStream, delay);
  updateConnDetail();
  // A socket that never delivers a snapshot may be refused for its token
  // (browsers hide the 401): ask the REST API, which can say so.
  if (!wasHealthy && stream.attempt === 2) refreshStats();
}

function setConn(state) {
  const el = $('conn-state');
  setText(el, state);
  el.dataset.state = state;
  document.body.dataset.conn = state;
  updateConnDetail();
}

function updateConnDetail() {
  let text = '';
  if (!stream.healthy && stream.retryAt != null) {
    const s = Math.max(0, Math.ceil((stream.retryAt - Date.now()) / 1000));
    text = s > 0 ? `retrying in ${s} s` : 'retrying…';
  }
  setText($('conn-detail'), text);
}

addEventListener('online', () => {
  if (stream.timer != null) openStream();
});

// --- stats (counters that the stream does not carry) ----------------------

async function refreshStats() {
  try {
    const res = await api('/api/v1/stats');
    if (res.ok) applyStats(await res.json());
  } catch {
    // The stream shows the connection state; stats follow when it is back.
  }
}

// Sessions started today and the peak move with the stream; re-read them
// shortly after a change, at most once per STATS_DEBOUNCE_MS.
const STATS_DEBOUNCE_MS = 2_000;
let statsTimer = null;

function scheduleStatsRefresh() {
  if (statsTimer != null) return;
  statsTimer = setTimeout(() => {
    statsTimer = null;
    refreshStats();
  }, STATS_DEBOUNCE_MS);
}

function applyStats(stats) {
  setText($('counter-started-today'), String(stats?.started?.today ?? '-'));
  const peak = stats?.peak_online;
  const peakText =
    peak?.users != null
      ? `${peak.users} user${peak.users === 1 ? '' : 's'}${peak.at ? ` at ${formatClock(parseTime(peak.at))}` : ''}`
      : '-';
  setText($('counter-peak'), peakText);
}

// --- rendering -----------------------------------------------------------

let dirty = false;
let renderCost = 0;
let renderEnd = 0;

/**
 * Schedules one render for everything that changed since the last one.
 * rAF batches bursts of events; a render that took t ms is followed by at
 * least 4t ms of rest, so a busy cluster never saturates the page; the
 * timeout covers background tabs, where animation frames do not run.
 */
function markDirty() {
  if (dirty) return;
  dirty = true;
  const rest = Math.max(0, renderEnd + renderCost * 4 - performance.now());
  setTimeout(() => {
    const fallback = setTimeout(render, 250);
    requestAnimationFrame(() => {
      clearTimeout(fallback);
      render();
    });
  }, rest);
}

function render() {
  if (!dirty) return;
  dirty = false;
  const start = performance.now();
  renderCounters();
  renderOrgOptions();
  renderUsers();
  renderDrawer();
  renderEnd = performance.now();
  renderCost = renderEnd - start;
}

function renderCounters() {
  const c = countPresence(model);
  setText($('counter-online-users'), String(c.onlineUsers));
  setText($('counter-busy'), String(c.busy));
  setText($('counter-sessions-live'), String(c.live));
  setText($('counter-sessions-active'), String(c.active));
  setText($('counter-sessions-idle'), String(c.idle));
  setText($('counter-sessions-away'), String(c.away));
  const byNode = new Map(c.byNode);
  if (model.nodeId && !byNode.has(model.nodeId)) byNode.set(model.nodeId, 0);
  setText($('counter-nodes'), String(byNode.size));
  const list = $('counter-by-node');
  const existing = new Map([...list.children].map((li) => [li.dataset.nodeId, li]));
  const order = [...byNode.keys()].sort((a, b) => a.localeCompare(b));
  order.forEach((node, i) => {
    let li = existing.get(node);
    if (!li) {
      li = document.createElement('li');
      li.dataset.nodeId = node;
      li.innerHTML = '<span class="node-name"></span> <span class="node-count"></span>';
      li.querySelector('.node-name').textContent = node;
    }
    existing.delete(node);
    li.classList.toggle('self', node === model.nodeId);
    setText(li.querySelector('.node-count'), String(byNode.get(node)));
    if (list.children[i] !== li) list.insertBefore(li, list.children[i] ?? null);
  });
  for (const li of existing.values()) li.remove();
}

let orgKey = '';
function renderOrgOptions() {
  const { orgs, hasNone } = model.orgs();
  if (view.org && view.org !== NO_ORG && !orgs.includes(view.org)) orgs.push(view.org);
  const key = `${hasNone}|${orgs.join('\u0000')}`;
  if (key === orgKey) return;
  orgKey = key;
  const select = $('filter-org');
  const options = [new Option('All orgs', '')];
  if (hasNone || view.org === NO_ORG) options.push(new Option('(no org)', NO_ORG));
  for (const org of orgs) options.push(new Option(org, org));
  select.replaceChildren(...options);
  select.value = view.org;
}

/** user_id -> {tr, refs, last}: the rows currently in the table. */
const rowCache = new Map();

const ROW_TEMPLATE = document.createElement('template');
ROW_TEMPLATE.innerHTML = `<tr>
  <td data-field="status"><span class="status-line"><span class="dot" aria-hidden="true"></span><span class="status-text"></span></span></td>
  <td class="cell-user"><button type="button" class="link" data-field="name"></button><span class="tag tag-busy" hidden>busy</span><span class="sub muted small" data-field="user-id"></span></td>
  <td class="col-org" data-field="org"></td>
  <td class="num" data-field="session-count"></td>
  <td class="col-since" data-field="online-since"></td>
  <td data-field="last-activity"></td>
</tr>`;

function createRow(id) {
  const tr = ROW_TEMPLATE.content.firstElementChild.cloneNode(true);
  tr.dataset.userId = id;
  const q = (sel) => tr.querySelector(sel);
  const refs = {
    status: q('[data-field=status]'),
    dot: q('.dot'),
    statusText: q('.status-text'),
    name: q('[data-field=name]'),
    busy: q('.tag-busy'),
    userId: q('[data-field=user-id]'),
    org: q('[data-field=org]'),
    tabs: q('[data-field=session-count]'),
    since: q('[data-field=online-since]'),
    activity: q('[data-field=last-activity]'),
  };
  const entry = { tr, refs, last: {} };
  rowCache.set(id, entry);
  return entry;
}

function updateField(entry, key, value, apply) {
  if (entry.last[key] === value) return;
  entry.last[key] = value;
  apply(value);
}

function updateRow(entry, row, now) {
  const { refs, tr } = entry;
  updateField(entry, 'status', row.status, (v) => {
    tr.dataset.status = v;
    refs.status.dataset.status = v;
    refs.dot.dataset.status = v;
    refs.statusText.textContent = v;
  });
  updateField(entry, 'busy', row.busy, (v) => {
    refs.dot.classList.toggle('busy', v);
    refs.busy.hidden = !v;
    refs.status.dataset.manual = v ? 'busy' : '';
  });
  updateField(entry, 'name', row.name, (v) => {
    refs.name.textContent = v;
    refs.name.setAttribute('aria-label', `${v}: show sessions`);
  });
  updateField(entry, 'id', row.id === row.name ? '' : row.id, (v) => {
    refs.userId.textContent = v;
  });
  updateField(entry, 'org', row.org, (v) => {
    refs.org.textContent = v || '-';
  });
  updateField(entry, 'tabs', row.tabs, (v) => {
    refs.tabs.textContent = String(v);
  });
  updateField(entry, 'since', row.onlineSince, (v) => {
    refs.since.textContent = formatClock(v);
    refs.since.title = isoTitle(v);
  });
  updateField(entry, 'activity', row.lastActivity, (v) => {
    refs.activity.title = isoTitle(v);
  });
  updateAgo(entry, now);
}

function updateAgo(entry, now) {
  const at = entry.last.activity;
  updateField(entry, 'ago', at == null ? '-' : formatAgo(now - at), (v) => {
    entry.refs.activity.textContent = v;
  });
}

function renderUsers() {
  const rows = selectUsers(model, view);
  const page = paginate(rows, view.page, view.pageSize);
  view.page = page.page;
  const tbody = $('users-tbody');
  const now = model.serverNow();
  const keep = new Set();
  let cursor = tbody.firstElementChild;
  for (const row of page.items) {
    const entry = rowCache.get(row.id) ?? createRow(row.id);
    updateRow(entry, row, now);
    keep.add(row.id);
    if (entry.tr === cursor) {
      cursor = cursor.nextElementSibling;
    } else {
      tbody.insertBefore(entry.tr, cursor);
    }
  }
  for (const [id, entry] of rowCache) {
    if (!keep.has(id)) {
      entry.tr.remove();
      rowCache.delete(id);
    }
  }
  const filtered = view.q || view.status || view.org;
  const empty = $('users-empty');
  empty.hidden = rows.length > 0;
  setText(empty, filtered ? 'No users match these filters.' : 'No users online.');
  const online = model.users.size;
  setText(
    $('users-count'),
    rows.length === 0
      ? `0 of ${online} users`
      : `${page.first}–${page.last} of ${rows.length}${filtered ? ` (filtered from ${online})` : ''} users`,
  );
  setText($('users-page-info'), `${page.page} / ${page.pages}`);
  $('users-prev').disabled = page.page <= 1;
  $('users-next').disabled = page.page >= page.pages;
  $('users-pager').querySelector('.pager-buttons').hidden = page.pages <= 1;
}

function renderSortHeaders() {
  for (const th of document.querySelectorAll('#users-table th[data-sort]')) {
    const active = th.dataset.sort === view.sortKey;
    th.setAttribute(
      'aria-sort',
      active ? (view.sortDir === 'asc' ? 'ascending' : 'descending') : 'none',
    );
  }
}

// --- drawer --------------------------------------------------------------

const drawer = { userId: null, sessionId: null, pinned: null, opener: null, listKey: '' };

function openDrawerForUser(userId, opener) {
  drawer.userId = userId;
  drawer.sessionId = null;
  drawer.pinned = null;
  showDrawer(opener);
}

function openDrawerForSession(session, opener) {
  drawer.userId = session.user_id;
  drawer.sessionId = session.session_id;
  drawer.pinned = session;
  showDrawer(opener);
}

function showDrawer(opener) {
  drawer.opener = opener ?? document.activeElement;
  drawer.listKey = '';
  const el = $('drawer');
  el.hidden = false;
  document.body.classList.add('drawer-open');
  renderDrawer();
  $('drawer-title').focus();
}

function closeDrawer() {
  const el = $('drawer');
  if (el.hidden) return;
  el.hidden = true;
  document.body.classList.remove('drawer-open');
  const row = rowCache.get(drawer.userId);
  const target =
    drawer.opener?.isConnected && drawer.opener !== document.body
      ? drawer.opener
      : row?.refs.name;
  drawer.userId = null;
  drawer.sessionId = null;
  drawer.pinned = null;
  target?.focus();
}

/** The session the drawer shows: chosen, else the newest live one. */
function drawerSession(live) {
  const id = drawer.sessionId ?? live[0]?.session_id ?? null;
  if (id == null) return null;
  return (
    model.sessions.get(id) ??
    model.recentlyEnded.get(id) ??
    (drawer.pinned?.session_id === id ? drawer.pinned : null)
  );
}

function renderDrawer() {
  const el = $('drawer');
  if (el.hidden || drawer.userId == null) return;
  const user = model.users.get(drawer.userId) ?? null;
  const live = model.sessionsOf(drawer.userId);
  const selected = drawerSession(live);
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
  setText(f('session-count'), String(user?.session_count ?? live.length));
  const since = parseTime(user?.online_since);
  setText(f('online-since'), formatClock(since));
  f('online-since').title = isoTitle(since);
  $('revoke-user').disabled = live.length === 0;
  $('revoke-user').title = live.length === 0 ? 'This user has no live sessions' : '';

  renderDrawerSessions(live, selected);
  renderDrawerSession(selected);
  tickDrawer();
}

function setStatusCell(cell, status, manual) {
  cell.dataset.status = status;
  cell.dataset.manual = manual ?? '';
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
  dot.classList.toggle('busy', manual === 'busy');
  setText(text, manual === 'busy' ? `${status}, busy` : status);
}

function renderDrawerSessions(live, selected) {
  const list = $('drawer-sessions');
  const shown = [...live];
  if (selected && !live.some((s) => s.session_id === selected.session_id)) shown.push(selected);
  const key = shown
    .map((s) => `${s.session_id}|${s.status}|${s.manual}|${s.page}|${s.session_id === selected?.session_id}`)
    .join('\n');
  if (key === drawer.listKey) return;
  drawer.listKey = key;
  const focused = document.activeElement?.closest?.('#drawer-sessions [data-session-id]');
  const focusedId = focused?.dataset.sessionId;
  const items = shown.map((s) => {
    const li = document.createElement('li');
    const btn = document.createElement('button');
    btn.type = 'button';
    btn.className = 'session-pick';
    btn.dataset.sessionId = s.session_id;
    const ended = s.status === 'ended' || s.ended_at != null;
    const status = ended ? 'ended' : s.status;
    const manual = ended ? null : s.manual;
    btn.dataset.status = status;
    btn.setAttribute('aria-pressed', String(s.session_id === selected?.session_id));
    const dot = document.createElement('span');
    dot.className = 'dot';
    dot.dataset.status = status;
    dot.classList.toggle('busy', manual === 'busy');
    dot.setAttribute('aria-hidden', 'true');
    const label = document.createElement('span');
    label.className = 'session-pick-label';
    label.textContent = describeDevice(s);
    const sub = document.createElement('span');
    sub.className = 'muted small';
    const via = s.transport === 'http' ? ' · via HTTP heartbeats' : '';
    sub.textContent = `${status}${manual ? ` (${manual})` : ''} · ${s.page ?? 'no page'}${via}`;
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
  const ended = s.status === 'ended' || s.ended_at != null;
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

/** The drawer's ticking values: duration and last activity. */
function tickDrawer() {
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
  const s = model.session(section.dataset.sessionId) ??
    (drawer.pinned?.session_id === section.dataset.sessionId ? drawer.pinned : null);
  if (!s) return;
  const ended = s.status === 'ended' || s.ended_at != null;
  const connected = parseTime(s.connected_at);
  const duration = ended ? s.duration_s : connected == null ? null : (now - connected) / 1000;
  setText(section.querySelector('[data-field="duration"]'), formatDuration(duration));
  const last = parseTime(s.last_activity);
  setText(
    section.querySelector('[data-field="last-activity"]'),
    last == null ? '-' : ended ? new Date(last).toLocaleString() : formatAgo(now - last),
  );
}

// --- admin actions -------------------------------------------------------

function confirmAction({ title, message, confirmLabel }) {
  const dlg = $('confirm');
  if (dlg.open) return Promise.resolve(false);
  setText($('confirm-title'), title);
  setText($('confirm-message'), message);
  setText($('confirm-yes'), confirmLabel);
  dlg.returnValue = '';
  return new Promise((resolve) => {
    dlg.addEventListener('close', () => resolve(dlg.returnValue === 'yes'), { once: true });
    dlg.showModal();
    $('confirm-no').focus();
  });
}

async function terminateSession() {
  const btn = $('terminate-session');
  const id = btn.dataset.sessionId;
  if (!id) return;
  const s = model.session(id) ?? drawer.pinned;
  const who = s?.name || s?.user_id || 'this user';
  const ok = await confirmAction({
    title: 'Terminate session?',
    message: `This ends ${who}'s session on ${describeDevice(s)}${s?.page ? ` (${s.page})` : ''}. The tab is told it was terminated and does not reconnect.`,
    confirmLabel: 'Terminate session',
  });
  if (!ok) return;
  btn.disabled = true;
  try {
    const res = await api(`/api/v1/sessions/${encodeURIComponent(id)}`, { method: 'DELETE' });
    if (res.ok) toast('Session terminated.');
    else if (res.status === 404) toast('That session had already ended.');
    else toast(`Could not terminate: ${await errorMessage(res)}`, 'error');
  } catch {
    toast('Could not reach the hub.', 'error');
  } finally {
    renderDrawer();
  }
}

async function revokeUser() {
  const userId = drawer.userId;
  if (!userId) return;
  const user = model.users.get(userId);
  const count = model.sessionsOf(userId).length;
  const ok = await confirmAction({
    title: 'Sign out everywhere?',
    message: `This ends all ${count} live session${count === 1 ? '' : 's'} of ${user?.name || userId} (${userId}). Their tabs are told they were signed out and do not reconnect.`,
    confirmLabel: 'Sign out everywhere',
  });
  if (!ok) return;
  const btn = $('revoke-user');
  btn.disabled = true;
  try {
    const res = await api(`/api/v1/users/${encodeURIComponent(userId)}/sessions`, {
      method: 'DELETE',
    });
    if (res.ok) {
      const body = await res.json().catch(() => ({}));
      const n = body?.terminated ?? 0;
      toast(`Signed out: ${n} session${n === 1 ? '' : 's'} ended.`);
    } else if (res.status === 404) {
      toast('That user has no live sessions.');
    } else {
      toast(`Could not sign out: ${await errorMessage(res)}`, 'error');
    }
  } catch {
    toast('Could not reach the hub.', 'error');
  } finally {
    renderDrawer();
  }
}

// --- history -------------------------------------------------------------

const hist = { page: 1, pageSize: 50, total: 0, items: new Map(), loading: false };

function historyFilters() {
  return {
    q: $('history-q').value,
    userId: $('history-user').value,
    org: $('history-org').value,
    nodeId: $('history-node').value,
    from: $('history-from').value,
    to: $('history-to').value,
  };
}

async function loadHistory() {
  if (hist.loading) return;
  hist.loading = true;
  const table = $('history-table');
  table.setAttribute('aria-busy', 'true');
  const empty = $('history-empty');
  try {
    const query = historyQuery({
      ...historyFilters(),
      page: hist.page,
      pageSize: hist.pageSize,
    });
    const res = await api(`/api/v1/sessions?${query}`);
    if (!res.ok) {
      empty.hidden = false;
      empty.textContent = `Could not load history: ${await errorMessage(res)}`;
      return;
    }
    const body = await res.json();
    renderHistory(body);
  } catch {
    empty.hidden = false;
    empty.textContent = 'Could not reach the hub.';
  } finally {
    hist.loading = false;
    table.removeAttribute('aria-busy');
  }
}

function renderHistory(body) {
  const sessions = body?.sessions ?? [];
  hist.total = body?.total ?? sessions.length;
  hist.items = new Map(sessions.map((s) => [s.session_id, s]));
  const rows = sessions.map((s) => {
    const tr = document.createElement('tr');
    tr.dataset.sessionId = s.session_id;
    tr.dataset.userId = s.user_id;
    const td = (text, cls, field) => {
      const cell = document.createElement('td');
      if (cls) cell.className = cls;
      if (field) cell.dataset.field = field;
      cell.textContent = text;
      tr.append(cell);
      return cell;
    };
    const userCell = td('', 'cell-user');
    const btn = document.createElement('button');
    btn.type = 'button';
    btn.className = 'link';
    btn.dataset.field = 'name';
    btn.textContent = s.name || s.user_id;
    const sub = document.createElement('span');
    sub.className = 'sub muted small';
    sub.textContent = s.name ? s.user_id : '';
    userCell.append(btn, sub);
    td(s.org || '-', 'col-org', 'org');
    td(describeDevice(s), 'col-device', 'device');
    td(s.ip ?? '-', 'col-ip', 'ip');
    const connected = parseTime(s.connected_at);
    const c = td(formatClock(connected), '', 'connected-at');
    c.title = isoTitle(connected);
    const d = td(formatDuration(s.duration_s), 'num', 'duration');
    d.title = s.ended_at ? `ended ${s.ended_at}` : '';
    const cause = td('', '', 'end-cause');
    const tag = document.createElement('span');
    tag.className = 'tag';
    tag.dataset.cause = s.end_cause ?? '';
    tag.textContent = s.end_cause ?? '-';
    cause.append(tag);
    return tr;
  });
  $('history-tbody').replaceChildren(...rows);
  const empty = $('history-empty');
  empty.hidden = rows.length > 0;
  empty.textContent = 'No ended sessions match.';
  const pages = Math.max(1, Math.ceil(hist.total / hist.pageSize));
  const first = hist.total === 0 ? 0 : (hist.page - 1) * hist.pageSize + 1;
  setText(
    $('history-count'),
    `${first}–${first === 0 ? 0 : first + rows.length - 1} of ${hist.total} ended sessions`,
  );
  setText($('history-page-info'), `${hist.page} / ${pages}`);
  $('history-prev').disabled = hist.page <= 1;
  $('history-next').disabled = hist.page >= pages;
  $('history-pager').querySelector('.pager-buttons').hidden = pages <= 1;
}

async function downloadCsv() {
  const btn = $('download-csv');
  btn.disabled = true;
  try {
    const res = await api(`/api/v1/sessions/export?${exportQuery(historyFilters())}`, {
      accept: 'text/csv',
    });
    if (!res.ok) {
      toast(`Export failed: ${await errorMessage(res)}`, 'error');
      return;
    }
    const blob = await res.blob();
    const url = URL.createObjectURL(blob);
    const a = document.createElement('a');
    a.href = url;
    a.download = csvFilename();
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  } catch {
    toast('Could not reach the hub.', 'error');
  } finally {
    btn.disabled = false;
  }
}

// --- chart ---------------------------------------------------------------

let samples = [];

function loadSamples() {
  try {
    const saved = JSON.parse(sessionStorage.getItem(CHART_KEY) ?? '[]');
    const oldest = Date.now() - CHART_WINDOW_MS;
    samples = Array.isArray(saved) ? saved.filter((s) => s && s.t >= oldest) : [];
  } catch {
    samples = [];
  }
}

let lastSampleAt = 0;
function sampleChart() {
  const now = Date.now();
  // The snapshot samples at once; the timer keeps the cadence.
  if (now - lastSampleAt < CHART_SAMPLE_MS / 2) return renderChart();
  lastSampleAt = now;
  const c = countPresence(model);
  const sample = stream.healthy
    ? { t: now, users: c.onlineUsers, sessions: c.live }
    : { t: now, users: null, sessions: null };
  addSample(samples, sample);
  try {
    sessionStorage.setItem(CHART_KEY, JSON.stringify(samples));
  } catch {
    // Storage full or disabled: the chart still works for this page.
  }
  renderChart();
}

function renderChart() {
  const p = chartPaths(samples, { now: Date.now(), width: 600, height: 116 });
  $('chart-users').setAttribute('d', p.users);
  $('chart-sessions').setAttribute('d', p.sessions);
  setText($('chart-max'), String(p.max));
  const last = samples.at(-1);
  $('chart')
    .setAttribute(
      'aria-label',
      last?.users == null
        ? 'No live samples yet'
        : `Now ${last.users} users online in ${last.sessions} sessions; at most ${p.peakUsers} users in the last hour`,
    );
}

// --- tabs ----------------------------------------------------------------

function selectTab(name, { focus = false } = {}) {
  for (const tab of document.querySelectorAll('[role=tab]')) {
    const on = tab.id === `tab-${name}`;
    tab.setAttribute('aria-selected', String(on));
    tab.tabIndex = on ? 0 : -1;
    if (on && focus) tab.focus();
    $(tab.getAttribute('aria-controls')).hidden = !on;
  }
  const hash = name === 'history' ? '#history' : '';
  if (location.hash !== hash) {
    window.history.replaceState(null, '', `${location.pathname}${location.search}${hash}`);
  }
  if (name === 'history') loadHistory();
}

// --- events --------------------------------------------------------------

function bindEvents() {
  $('users-filters').addEventListener('submit', (e) => e.preventDefault());
  $('user-search').addEventListener('input', (e) => {
    view.q = e.target.value;
    view.page = 1;
    markDirty();
  });
  $('filter-status').addEventListener('change', (e) => {
    view.status = e.target.value;
    view.page = 1;
    markDirty();
  });
  $('filter-org').addEventListener('change', (e) => {
    view.org = e.target.value;
    view.page = 1;
    markDirty();
  });
  $('page-size').addEventListener('change', (e) => {
    view.pageSize = Number(e.target.value) || 100;
    view.page = 1;
    markDirty();
  });
  $('users-prev').addEventListener('click', () => {
    view.page -= 1;
    markDirty();
  });
  $('users-next').addEventListener('click', () => {
    view.page += 1;
    markDirty();
  });
  for (const th of document.querySelectorAll('#users-table th[data-sort]')) {
    th.querySelector('button').addEventListener('click', () => {
      const key = th.dataset.sort;
      if (view.sortKey === key) {
        view.sortDir = view.sortDir === 'asc' ? 'desc' : 'asc';
      } else {
        view.sortKey = key;
        view.sortDir = DESC_FIRST.has(key) ? 'desc' : 'asc';
      }
      renderSortHeaders();
      markDirty();
    });
  }
  $('users-tbody').addEventListener('click', (e) => {
    const tr = e.target.closest('tr[data-user-id]');
    if (!tr) return;
    const entry = rowCache.get(tr.dataset.userId);
    openDrawerForUser(tr.dataset.userId, entry?.refs.name);
  });

  $('drawer-close').addEventListener('click', closeDrawer);
  $('drawer-sessions').addEventListener('click', (e) => {
    const btn = e.target.closest('[data-session-id]');
    if (!btn) return;
    drawer.sessionId = btn.dataset.sessionId;
    renderDrawer();
  });
  $('terminate-session').addEventListener('click', terminateSession);
  $('revoke-user').addEventListener('click', revokeUser);
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && !$('drawer').hidden && !document.querySelector('dialog[open]')) {
      closeDrawer();
    }
  });

  $('history-filters').addEventListener('submit', (e) => {
    e.preventDefault();
    hist.page = 1;
    loadHistory();
  });
  $('history-filters').addEventListener('reset', () => {
    hist.page = 1;
    setTimeout(loadHistory, 0);
  });
  $('history-prev').addEventListener('click', () => {
    hist.page = Math.max(1, hist.page - 1);
    loadHistory();
  });
  $('history-next').addEventListener('click', () => {
    hist.page += 1;
    loadHistory();
  });
  $('history-tbody').addEventListener('click', (e) => {
    const tr = e.target.closest('tr[data-session-id]');
    const s = tr && hist.items.get(tr.dataset.sessionId);
    if (s) openDrawerForSession(s, tr.querySelector('button'));
  });
  $('download-csv').addEventListener('click', downloadCsv);

  const tabs = [...document.querySelectorAll('[role=tab]')];
  for (const tab of tabs) {
    tab.addEventListener('click', () => selectTab(tab.id.replace('tab-', '')));
    tab.addEventListener('keydown', (e) => {
      const i = tabs.indexOf(tab);
      let next = null;
      if (e.key === 'ArrowRight') next = tabs[(i + 1) % tabs.length];
      if (e.key === 'ArrowLeft') next = tabs[(i - 1 + tabs.length) % tabs.length];
      if (e.key === 'Home') next = tabs[0];
      if (e.key === 'End') next = tabs.at(-1);
      if (next) {
        e.preventDefault();
        selectTab(next.id.replace('tab-', ''), { focus: true });
      }
    });
  }
  addEventListener('hashchange', () => selectTab(location.hash === '#history' ? 'history' : 'live'));

  $('panel-signout').addEventListener('click', () => {
    sessionStorage.removeItem(TOKEN_KEY);
    location.reload();
  });
}

/** Once a second: ticking "ago" texts, the drawer's duration, the retry countdown. */
function tick() {
  const now = model.serverNow();
  for (const entry of rowCache.values()) updateAgo(entry, now);
  tickDrawer();
  updateConnDetail();
}

// --- start ---------------------------------------------------------------

async function boot() {
  bindEvents();
  renderSortHeaders();
  loadSamples();
  renderChart();
  $('panel-signout').hidden = !token;
  if (location.hash === '#history') selectTab('history');
  try {
    // Also the auth check: a 401 here asks for the admin token first.
    const res = await api('/api/v1/stats');
    if (res.ok) applyStats(await res.json());
  } catch {
    // Hub unreachable: the stream below retries with backoff.
  }
  booted = true;
  openStream();
  setInterval(tick, 1_000);
  setInterval(sampleChart, CHART_SAMPLE_MS);
  setInterval(() => {
    if (document.visibilityState === 'visible' && stream.healthy) refreshStats();
  }, STATS_REFRESH_MS);
}

boot();
