// panel-core.js: the admin panel's state and pure helpers, no DOM.
//
// Owns the panel's copy of the cluster's presence (built from the admin
// stream's snapshot and events, contract v1 section 5), sequence checking,
// and the pure decisions the page makes: filtering, sorting, paging,
// counters, users' locations, chart geometry and formatting. The page's
// other decisions are in panel-view.js and records-view.js; the DOM belongs to the modules app.js starts (docs/panel.md).
// Tested by web/test/panel-core.test.mjs.

/** Order of "presence", most present first. */
export const STATUS_RANK = Object.freeze({ active: 0, idle: 1, away: 2, offline: 3, ended: 4 });
/** Org filter value meaning "users without an org". */
export const NO_ORG = ':none';
/** How many recently ended sessions the panel remembers (for the drawer). */
export const RECENTLY_ENDED_LIMIT = 500;

/** Milliseconds since the epoch for an RFC 3339 string, or null. */
export function parseTime(value) {
  if (value == null || value === '') return null;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? null : ms;
}

/** "just now", "12 s ago", "5 min ago", "3 h ago", "2 d ago". */
export function formatAgo(ms) {
  if (ms == null || !Number.isFinite(ms)) return '-';
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 1) return 'just now';
  if (s < 60) return `${s} s ago`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ago`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ago`;
  return `${Math.floor(h / 24)} d ago`;
}

/** A duration in seconds as "45 s", "12 min 03 s", "2 h 05 min", "3 d 4 h". */
export function formatDuration(seconds) {
  if (seconds == null || !Number.isFinite(seconds)) return '-';
  const s = Math.max(0, Math.floor(seconds));
  const pad = (n) => String(n).padStart(2, '0');
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${pad(s % 60)} s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h} h ${pad(m % 60)} min`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

/** "Chrome on macOS (desktop)" from a Session's device. */
export function describeDevice(session) {
  const d = session?.device ?? {};
  const browser = d.browser || 'Unknown browser';
  const platform = d.platform ? ` on ${d.platform}` : '';
  const type = d.device_type && d.device_type !== 'unknown' ? ` (${d.device_type})` : '';
  return `${browser}${platform}${type}`;
}

/** "shop 1.4.0", "shop", or "-" from a Session's app. */
export function describeApp(session) {
  const app = session?.app;
  if (!app?.name) return '-';
  return app.version ? `${app.name} ${app.version}` : app.name;
}

/** Compares the next event's seq with the expected one: 'ok' or 'gap'. */
export function checkSeq(expected, got) {
  return Number.isInteger(got) && got === expected ? 'ok' : 'gap';
}

/**
 * The panel's view of the cluster, fed by the admin stream.
 * `apply*` return what changed so the page can re-render only that.
 */
export class PresenceModel {
  constructor() {
    this.users = new Map();
    this.sessions = new Map();
    this.sessionsByUser = new Map();
    this.recentlyEnded = new Map();
    this.nextSeq = null;
    this.nodeId = null;
    /** user_id -> table row, rebuilt only when that user or a session of it changes. */
    this.rows = new Map();
    this.snapshotAt = null;
    /** local clock minus hub clock, estimated at the snapshot. */
    this.skewMs = 0;
  }

  /** The hub's "now", from the local clock corrected by the snapshot's skew. */
  serverNow(localNow = Date.now()) {
    return localNow - this.skewMs;
  }

  /** Replaces everything with a snapshot frame. */
  applySnapshot(msg, localNow = Date.now()) {
    this.users.clear();
    this.sessions.clear();
    this.sessionsByUser.clear();
    this.rows.clear();
    for (const user of msg.users ?? []) this.users.set(user.user_id, user);
    for (const session of msg.sessions ?? []) this._putSession(session);
    this.nextSeq = (Number.isInteger(msg.seq) ? msg.seq : 0) + 1;
    this.nodeId = msg.node_id ?? null;
    this.snapshotAt = parseTime(msg.at);
    this.skewMs = this.snapshotAt == null ? 0 : localNow - this.snapshotAt;
    return { kind: 'snapshot' };
  }

  /**
   * Applies one stream event. Returns `{kind: 'gap', expected, got}` when the
   * event does not carry the next seq (the caller resubscribes), otherwise
   * `{kind: 'user'|'session'|'ignored', userId, sessionId}`.
   */
  apply(msg) {
    if (msg?.type === 'snapshot') return this.applySnapshot(msg);
    const numbered = msg?.type === 'session' || msg?.type === 'user' || msg?.seq != null;
    // A frame outside the numbered stream (an extension) is not a gap.
    if (!numbered) return { kind: 'ignored' };
    if (this.nextSeq == null) return { kind: 'gap', expected: null, got: msg?.seq };
    if (checkSeq(this.nextSeq, msg?.seq) === 'gap') {
      return { kind: 'gap', expected: this.nextSeq, got: msg?.seq };
    }
    this.nextSeq += 1;
    if (msg.type === 'session' && msg.session?.session_id) return this._applySession(msg);
    if (msg.type === 'user' && msg.user?.user_id) return this._applyUser(msg.user);
    return { kind: 'ignored' };
  }

  _applySession(msg) {
    const session = msg.session;
    if (msg.event === 'ended' || session.status === 'ended') {
      this._dropSession(session.session_id);
      this.recentlyEnded.set(session.session_id, session);
      if (this.recentlyEnded.size > RECENTLY_ENDED_LIMIT) {
        this.recentlyEnded.delete(this.recentlyEnded.keys().next().value);
      }
    } else {
      this._putSession(session);
    }
    return { kind: 'session', userId: session.user_id, sessionId: session.session_id };
  }

  _applyUser(user) {
    this.rows.delete(user.user_id);
    if (user.status === 'offline') {
      this.users.delete(user.user_id);
      for (const id of [...(this.sessionsByUser.get(user.user_id) ?? [])]) this._dropSession(id);
    } else {
      this.users.set(user.user_id, user);
    }
    return { kind: 'user', userId: user.user_id };
  }

  _putSession(session) {
    this.rows.delete(session.user_id);
    this.sessions.set(session.session_id, session);
    let set = this.sessionsByUser.get(session.user_id);
    if (!set) {
      set = new Set();
      this.sessionsByUser.set(session.user_id, set);
    }
    set.add(session.session_id);
  }

  _dropSession(sessionId) {
    const old = this.sessions.get(sessionId);
    if (!old) return;
    this.sessions.delete(sessionId);
    this.rows.delete(old.user_id);
    const set = this.sessionsByUser.get(old.user_id);
    set?.delete(sessionId);
    if (set && set.size === 0) this.sessionsByUser.delete(old.user_id);
  }

  /** The users-table row of an online user (cached until it changes), or null. */
  row(userId) {
    let row = this.rows.get(userId);
    if (!row) {
      const user = this.users.get(userId);
      if (!user) return null;
      row = userRow(this, user);
      this.rows.set(userId, row);
    }
    return row;
  }

  /** The live sessions of a user, most recently connected first. */
  sessionsOf(userId) {
    const ids = this.sessionsByUser.get(userId) ?? [];
    const list = [...ids].map((id) => this.sessions.get(id)).filter(Boolean);
    return list.sort(
      (a, b) => (parseTime(b.connected_at) ?? 0) - (parseTime(a.connected_at) ?? 0),
    );
  }

  /** A session, live or recently ended. */
  session(sessionId) {
    return this.sessions.get(sessionId) ?? this.recentlyEnded.get(sessionId) ?? null;
  }

  /**
   * The user's last activity: the newest of the user's own value and its
   * sessions' (session updates arrive more often than user events).
   */
  lastActivityOf(userId) {
    let best = parseTime(this.users.get(userId)?.last_activity);
    for (const id of this.sessionsByUser.get(userId) ?? []) {
      const t = parseTime(this.sessions.get(id)?.last_activity);
      if (t != null && (best == null || t > best)) best = t;
    }
    return best;
  }

  /** Distinct orgs of online users, sorted; `hasNone` when some have no org. */
  orgs() {
    const set = new Set();
    let hasNone = false;
    for (const u of this.users.values()) {
      if (u.org) set.add(u.org);
      else hasNone = true;
    }
    return { orgs: [...set].sort(collator.compare), hasNone };
  }
}

/** Live counters from the model: users online, sessions by status and node. */
export function countPresence(model) {
  const counts = { onlineUsers: 0, live: 0, active: 0, idle: 0, away: 0, busy: 0 };
  const byNode = new Map();
  for (const u of model.users.values()) if (u.status !== 'offline') counts.onlineUsers += 1;
  for (const s of model.sessions.values()) {
    counts.live += 1;
    if (s.status in counts) counts[s.status] += 1;
    if (s.manual === 'busy') counts.busy += 1;
    const node = s.node_id ?? '?';
    byNode.set(node, (byNode.get(node) ?? 0) + 1);
  }
  counts.byNode = new Map([...byNode].sort((a, b) => collator.compare(a[0], b[0])));
  return counts;
}

/**
 * A user's live sessions split by transport: `tabs` are WebSocket sessions
 * (a browser tab, an app window), `http` those kept by HTTP heartbeats
 * (a server-side integration, not a tab).
 */
export function sessionTabs(sessions) {
  let tabs = 0;
  let http = 0;
  for (const s of sessions) {
    if (s?.transport === 'http') http += 1;
    else tabs += 1;
  }
  return { tabs, http };
}

/**
 * The tab counts of a user from the model's live sessions; the User's
 * `session_count` (which counts every transport) only when the model holds
 * none of the user's sessions.
 */
export function userTabs(model, user) {
  const ids = model.sessionsByUser.get(user.user_id);
  if (!ids || ids.size === 0) return { tabs: user.session_count ?? 0, http: 0 };
  return sessionTabs([...ids].map((id) => model.sessions.get(id)));
}

/**
 * Where a user's live sessions are: the distinct countries and cities, in
 * the order of `sessions`, joined with ", "; '-' when none is located.
 */
export function userLocation(sessions) {
  const countries = new Set();
  const cities = new Set();
  for (const s of sessions) {
    if (s?.location?.country) countries.add(s.location.country);
    if (s?.location?.city) cities.add(s.location.city);
  }
  return {
    country: countries.size ? [...countries].join(', ') : '-',
    city: cities.size ? [...cities].join(', ') : '-',
  };
}

/** One users-table row: the User plus what sorting and display need. */
export function userRow(model, user) {
  const id = user.user_id;
  const name = user.name || id;
  const org = user.org ?? '';
  const { tabs, http } = userTabs(model, user);
  const ids = model.sessionsByUser.get(id) ?? [];
  const where = userLocation([...ids].map((sid) => model.sessions.get(sid)));
  return {
    user,
    id,
    name,
    org,
    hay: `${id}\u0000${name}\u0000${org}`.toLowerCase(),
    status: user.status,
    busy: user.manual === 'busy',
    manualAway: user.manual === 'away',
    tabs,
    httpSessions: http,
    country: where.country,
    city: where.city,
    onlineSince: parseTime(user.online_since),
    lastActivity: model.lastActivityOf(id),
  };
}

/** Does a row pass the search box and the status/org filters? */
export function matchesFilters(row, { q = '', status = '', org = '' } = {}) {
  if (status === 'busy') {
    if (!row.busy) return false;
  } else if (status && row.status !== status) {
    return false;
  }
  if (org === NO_ORG) {
    if (row.org) return false;
  } else if (org && row.org !== org) {
    return false;
  }
  const needle = q.trim().toLowerCase();
  if (needle) {
    const hay = row.hay ?? `${row.id}\u0000${row.name}\u0000${row.org}`.toLowerCase();
    if (!hay.includes(needle)) return false;
  }
  return true;
}

// One collator: far cheaper than localeCompare() with options per call.
const collator = new Intl.Collator(undefined, { sensitivity: 'base', numeric: true });

const SORTERS = {
  status: (a, b) => (STATUS_RANK[a.status] ?? 9) - (STATUS_RANK[b.status] ?? 9),
  name: (a, b) => collator.compare(a.name, b.name),
  org: (a, b) => collator.compare(a.org, b.org),
  tabs: (a, b) => a.tabs - b.tabs,
  online_since: (a, b) => (a.onlineSince ?? 0) - (b.onlineSince ?? 0),
  last_activity: (a, b) => (a.lastActivity ?? 0) - (b.lastActivity ?? 0),
};
/** Sort keys the users table offers. */
export const SORT_KEYS = Object.freeze(Object.keys(SORTERS));

/** A comparator for a sort key and direction; ties by name, then user id. */
export function compareRows(key, dir = 'asc') {
  const primary = SORTERS[key] ?? SORTERS.name;
  const sign = dir === 'desc' ? -1 : 1;
  return (a, b) =>
    sign * primary(a, b) || SORTERS.name(a, b) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/** Filtered and sorted rows for the users table. */
export function selectUsers(model, view = {}) {
  const rows = [];
  for (const user of model.users.values()) {
    if (user.status === 'offline') continue;
    const row = model.row(user.user_id);
    if (row && matchesFilters(row, view)) rows.push(row);
  }
  rows.sort(compareRows(view.sortKey ?? 'status', view.sortDir ?? 'asc'));
  return rows;
}

/** One page of a list; `page` is 1-based and clamped to what exists. */
export function paginate(list, page, pageSize) {
  const size = Math.max(1, Math.floor(pageSize) || 1);
  const pages = Math.max(1, Math.ceil(list.length / size));
  const current = Math.min(Math.max(1, Math.floor(page) || 1), pages);
  const start = (current - 1) * size;
  return {
    items: list.slice(start, start + size),
    page: current,
    pages,
    total: list.length,
    first: list.length === 0 ? 0 : start + 1,
    last: Math.min(start + size, list.length),
  };
}

/** A `datetime-local` value (local time) as RFC 3339 UTC, or null. */
export function localInputToIso(value) {
  if (!value) return null;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? null : new Date(ms).toISOString();
}

/** Query string for `GET /api/v1/sessions?status=ended` from the history filters. */
export function historyQuery(filters = {}) {
  const p = new URLSearchParams({ status: 'ended' });
  const put = (k, v) => {
    if (v != null && String(v).trim() !== '') p.set(k, String(v).trim());
  };
  put('q', filters.q);
  put('user_id', filters.userId);
  put('org', filters.org);
  put('node_id', filters.nodeId);
  put('from', localInputToIso(filters.from));
  put('to', localInputToIso(filters.to));
  put('page', filters.page ?? 1);
  put('page_size', filters.pageSize ?? 50);
  return p.toString();
}

/** Query string for the CSV export with the history's time range. */
export function exportQuery(filters = {}) {
  const p = new URLSearchParams({ format: 'csv' });
  const from = localInputToIso(filters.from);
  const to = localInputToIso(filters.to);
  if (from) p.set('from', from);
  if (to) p.set('to', to);
  return p.toString();
}

/** "sessions-20250101-1230.csv" in UTC. */
export function csvFilename(date = new Date()) {
  const iso = date.toISOString();
  return `sessions-${iso.slice(0, 10).replaceAll('-', '')}-${iso.slice(11, 16).replace(':', '')}.csv`;
}

// --- chart ---------------------------------------------------------------

export const CHART_WINDOW_MS = 60 * 60 * 1000;
export const CHART_SAMPLE_MS = 10_000;

/**
 * Adds a sample `{t, users, sessions}` (values null = no data, the line
 * breaks there) and drops what is older than the window. Returns the list.
 */
export function addSample(samples, sample, windowMs = CHART_WINDOW_MS) {
  samples.push(sample);
  const oldest = sample.t - windowMs;
  let drop = 0;
  while (drop < samples.length && samples[drop].t < oldest) drop += 1;
  if (drop) samples.splice(0, drop);
  return samples;
}

/** The smallest "nice" axis maximum (1, 1.5, 2, 3, 4, 5, 6, 8 x 10^n) at or above v; at least 5. */
export function niceMax(v) {
  if (!(v > 5)) return 5;
  const exp = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 1.5, 2, 3, 4, 5, 6, 8, 10]) if (m * exp >= v) return m * exp;
  return 10 * exp;
}

/**
 * SVG path data for both series over the window ending at `now`, in a
 * `width` x `height` box. Null values break the line.
 */
export function chartPaths(samples, { now, width, height, windowMs = CHART_WINDOW_MS }) {
  let max = 0;
  for (const s of samples) max = Math.max(max, s.users ?? 0, s.sessions ?? 0);
  const top = niceMax(max);
  const x = (t) => ((t - (now - windowMs)) / windowMs) * width;
  const y = (v) => height - (v / top) * height;
  const path = (key) => {
    let d = '';
    let pen = false;
    for (const s of samples) {
      const v = s[key];
      if (v == null) {
        pen = false;
        continue;
      }
      d += `${pen ? 'L' : 'M'}${x(s.t).toFixed(1)},${y(v).toFixed(1)}`;
      pen = true;
    }
    // The latest value holds until now (and a lone sample still shows).
    if (pen) d += `H${x(now).toFixed(1)}`;
    return d;
  };
  return { users: path('users'), sessions: path('sessions'), max: top, peakUsers: peak(samples, 'users') };
}

function peak(samples, key) {
  let best = null;
  for (const s of samples) if (s[key] != null && (best == null || s[key] > best)) best = s[key];
  return best;
}
