// presence-client.js: keeps one browser tab (or one Node process) present
// on a presence-hub.
//
// Owns the client side of the `/ws` protocol (contract v1, section 4, and
// v1.1 sections 8 and 9): connecting, reporting real user activity as
// throttled `ping`s, the page on SPA navigation, the manual status,
// reconnecting with exponential backoff and full jitter (or after the hub's
// `retry_after_ms`), resuming the tab's session after a reload or a drop
// (the resume token is kept in `sessionStorage`, per tab), renewing the
// token when the hub asks (`onTokenExpiring`), telling a refused token
// (`unauthorized`) from a network error and asking `onTokenExpiring` for a
// fresh token once before giving up, ending the session for good on
// `close()`; and rooms: `join`/`watch` return a `PresenceRoom` that folds
// the hub's `room` snapshots and `presence` diffs into the current member
// list, and every room is joined or watched again after each reconnect. It
// does not render anything; the resume token is the only state it keeps.
// Outside a browser it needs a WebSocket implementation (`connect({
// WebSocket })`, e.g. the `ws` package) and an absolute `url`; every use of
// `window`, `document` and `sessionStorage` is skipped where they are absent.
//
//   import { connect } from '/presence-client.js';
//   const presence = connect({ app: { name: 'shop', version: '1.4.0' } });
//   presence.on('status', ({ status, manual }) => console.log(status, manual));
//   const room = presence.join('doc:42');
//   room.onChange((members, changes) => render(members));
//
// The pure parts (throttling, backoff, URL building) are exported so they can
// be tested without a browser (web/test/presence-client.test.mjs).

/** Used until the welcome frame says otherwise (the hub's default). */
export const DEFAULT_IDLE_AFTER_MS = 60_000;
/** Never ping more often than this, whatever idle_after is. */
export const MIN_ACTIVITY_INTERVAL_MS = 100;
/** Backoff defaults: the first retry waits up to BASE, later ones up to CAP. */
export const BACKOFF_BASE_MS = 500;
export const BACKOFF_CAP_MS = 30_000;

/** `terminated` reasons after which the client must not reconnect. */
export const FINAL_REASONS = Object.freeze([
  'admin',
  'revoked',
  'session_limit',
  'user',
  'max_age',
  'token_expired',
]);
/**
 * Close codes that end a session for good (4001 token expired, 4003
 * terminated, 4008 session limit). A 4003 that follows no `terminated` frame
 * means another socket resumed the session: not final for the session, but
 * this client stops (the session lives on elsewhere).
 */
export const FINAL_CLOSE_CODES = Object.freeze([4001, 4003, 4008]);
/**
 * How long the HTTP probe after a close-before-open may take (see
 * `probeUrl`); a probe that takes longer counts as a network error.
 */
export const PROBE_TIMEOUT_MS = 5_000;
/**
 * After this many closes-before-open in a row whose probe could not be
 * read (a cross-origin hub without CORS on `/ws`, or no `fetch`), the
 * client asks `onTokenExpiring` for a fresh token for the next attempts,
 * once per streak, without giving up: the cause may be a refused token.
 */
export const SUSPECT_TOKEN_AFTER = 3;
/** Where the resume token of this tab's session is kept (`sessionStorage`). */
export const RESUME_KEY = 'presence-client.resume';

/** The DOM events that count as a person doing something. */
export const ACTIVITY_EVENTS = Object.freeze([
  'pointerdown',
  'pointermove',
  'keydown',
  'wheel',
  'touchstart',
  'scroll',
]);

const LOCATION_CHANGE = 'presence:locationchange';
const HISTORY_PATCHED = Symbol.for('presence-client.history-patched');

/**
 * How long to wait between two activity pings: a quarter of idle_after, so a
 * person who keeps working never looks idle, and a busy page sends at most
 * four pings per idle period.
 */
export function activityInterval(idleAfterMs) {
  const idle =
    Number.isFinite(idleAfterMs) && idleAfterMs > 0 ? idleAfterMs : DEFAULT_IDLE_AFTER_MS;
  return Math.max(MIN_ACTIVITY_INTERVAL_MS, Math.floor(idle / 4));
}

/**
 * Throttle decision for one activity event at `now`.
 * Returns `{send: true}` when a ping may go out now, otherwise
 * `{send: false, waitMs}` with the time until the next one is allowed
 * (the caller schedules a single trailing ping then).
 */
export function throttleDecision(now, lastSentAt, intervalMs) {
  if (lastSentAt == null) return { send: true, waitMs: 0 };
  const elapsed = now - lastSentAt;
  // A clock that went backwards must not block pings forever.
  if (elapsed >= intervalMs || elapsed < 0) return { send: true, waitMs: 0 };
  return { send: false, waitMs: intervalMs - elapsed };
}

/**
 * Reconnect delay for the given attempt (0 = first retry): exponential
 * backoff with full jitter, a uniform draw in [0, min(cap, base * 2^attempt)).
 * `random` is injectable for tests and must return a number in [0, 1).
 */
export function backoffDelay(attempt, options = {}) {
  const { baseMs = BACKOFF_BASE_MS, capMs = BACKOFF_CAP_MS, random = Math.random } = options;
  const n = Math.max(0, Math.min(Number.isFinite(attempt) ? Math.floor(attempt) : 0, 30));
  const ceiling = Math.min(capMs, baseMs * 2 ** n);
  const r = Math.min(Math.max(Number(random()) || 0, 0), 1);
  return Math.min(Math.floor(r * ceiling), Math.max(0, ceiling - 1));
}

/** True when a `terminated` reason means "do not come back". */
export function isFinalReason(reason) {
  return FINAL_REASONS.includes(reason);
}

/** True when a close code means the session was ended for good. */
export function isFinalCloseCode(code) {
  return FINAL_CLOSE_CODES.includes(code);
}

/** `app` may be a name or `{name, version}`; returns `{name, version}` or null. */
export function normalizeApp(app) {
  if (app == null || app === '') return null;
  if (typeof app === 'string') return { name: app, version: null };
  return { name: app.name ?? null, version: app.version ?? null };
}

/** The page of a location: path plus query, without the fragment. */
export function pageOf(location) {
  if (!location) return null;
  return `${location.pathname ?? ''}${location.search ?? ''}` || null;
}

/**
 * The WebSocket URL for `connect()` options. Without `url` it is
 * `ws(s)://<same host>/ws`; an `http(s)://` or relative URL is turned into
 * the matching `ws(s)://` one. With a `token` only the token identifies the
 * client (JWT mode); otherwise `user`, `name` and `org` do (dev mode).
 */
export function buildSocketUrl(options, location) {
  const { url, token, user, name, org, page, resume } = options;
  const app = normalizeApp(options.app);
  const origin = location ? `${location.protocol}//${location.host}` : 'http://localhost';
  const target = new URL(url ?? '/ws', origin);
  if (target.protocol === 'http:') target.protocol = 'ws:';
  if (target.protocol === 'https:') target.protocol = 'wss:';
  const q = target.searchParams;
  if (token) {
    q.set('token', token);
  } else {
    if (user != null && user !== '') q.set('user', user);
    if (name != null && name !== '') q.set('name', name);
    if (org != null && org !== '') q.set('org', org);
  }
  if (page != null && page !== '') q.set('page', page);
  if (app?.name) q.set('app', app.name);
  if (app?.version) q.set('app_version', app.version);
  if (resume != null && resume !== '') q.set('resume', resume);
  return target.toString();
}

/**
 * The plain HTTP URL that asks the hub the same question as a WebSocket
 * URL: the hub checks the token before the upgrade, so a `GET` of it
 * without upgrade headers answers 401 `unauthorized` for a refused token
 * and 400 `bad_request` ("expected a WebSocket upgrade") for a good one.
 */
export function probeUrl(socketUrl) {
  const url = new URL(socketUrl);
  if (url.protocol === 'ws:') url.protocol = 'http:';
  if (url.protocol === 'wss:') url.protocol = 'https:';
  return url.toString();
}

/**
 * What a probe's HTTP answer says about a close-before-open: a refusal
 * (`{code: 'unauthorized' | 'forbidden', status, message}`) that no retry
 * with the same token can fix, or null (anything else: 400 means the
 * handshake would pass, 503 is the hub shedding load or shutting down,
 * which backing off handles). `body` is the parsed error JSON, if any.
 */
export function refusalOf(status, body) {
  const message = typeof body?.error?.message === 'string' ? body.error.message : null;
  if (status === 401) return { code: 'unauthorized', status, message: message ?? 'unauthorized' };
  if (status === 403) return { code: 'forbidden', status, message: message ?? 'forbidden' };
  return null;
}

/** The order of a room's member list: oldest member first, then by user id. */
export function compareMembers(a, b) {
  const at = String(a.joined_at ?? '').localeCompare(String(b.joined_at ?? ''));
  if (at !== 0) return at;
  return String(a.user_id).localeCompare(String(b.user_id));
}

/**
 * The changes that turn member list `before` into `after` (used when a
 * snapshot replaces what a room object held): a `join` for a new user, an
 * `update` when a visible field differs, a `leave` (with the old member) for
 * a user who is gone.
 */
export function diffMembers(before, after) {
  const old = new Map(before.map((m) => [m.user_id, m]));
  const changes = [];
  for (const member of after) {
    const prior = old.get(member.user_id);
    old.delete(member.user_id);
    if (!prior) changes.push({ event: 'join', member });
    else if (JSON.stringify(prior) !== JSON.stringify(member)) {
      changes.push({ event: 'update', member });
    }
  }
  for (const member of old.values()) changes.push({ event: 'leave', member });
  return changes;
}

/**
 * One room as this tab sees it: the current `members` (oldest first), kept
 * up to date from the hub's frames. Made by `client.join(room)` (present and
 * watching) or `client.watch(room)` (watching only).
 *
 * Properties: `name`, `members`, `joined`, `seq` (of the last frame, null
 * before the first snapshot), `synced` (a snapshot arrived since the last
 * (re)connect), `error` (the last `forbidden`/`room_limit` error, or null).
 */
export class PresenceRoom {
  constructor(name, { client = null, joined = false } = {}) {
    this.name = name;
    this.joined = joined;
    this.members = [];
    this.seq = null;
    this.synced = false;
    this.error = null;
    this._client = client;
    this._byUser = new Map();
    this._changeListeners = new Set();
    this._errorListeners = new Set();
  }

  /** Calls `fn(members, changes)` after every change; returns an unsubscribe function. */
  onChange(fn) {
    this._changeListeners.add(fn);
    return () => this._changeListeners.delete(fn);
  }

  /** Calls `fn({code, message, room})` when the hub refuses this room. */
  onError(fn) {
    this._errorListeners.add(fn);
    return () => this._errorListeners.delete(fn);
  }

  /** The member of a user, or undefined. */
  member(userId) {
    return this._byUser.get(userId);
  }

  /** Leaves the room (no longer present, no longer watching). */
  leave() {
    this._client?.leave(this.name);
  }

  /** Stops watching; for a joined room this is the same as `leave()`. */
  unwatch() {
    this._client?.unwatch(this.name);
  }

  /**
   * Folds one frame about this room in. Returns `'applied'`, `'ignored'`
   * (another room, or a type it does not know) or `'gap'` (a `presence`
   * frame whose `seq` does not follow: the caller asks for a new snapshot).
   */
  applyFrame(msg) {
    if (msg?.room !== this.name) return 'ignored';
    if (msg.type === 'room') {
      const next = [...(msg.members ?? [])].sort(compareMembers);
      const changes = diffMembers(this.members, next);
      this._byUser = new Map(next.map((m) => [m.user_id, m]));
      this.members = next;
      this.seq = 0;
      this.synced = true;
      this.error = null;
      this._emitChange(changes);
      return 'applied';
    }
    if (msg.type === 'presence') {
      if (this.seq == null || msg.seq !== this.seq + 1) {
        this.synced = false;
        return 'gap';
      }
      this.seq = msg.seq;
      const changes = msg.changes ?? [];
      for (const { event, member } of changes) {
        if (event === 'leave') this._byUser.delete(member.user_id);
        else this._byUser.set(member.user_id, member);
      }
      this.members = [...this._byUser.values()].sort(compareMembers);
      this._emitChange(changes);
      return 'applied';
    }
    return 'ignored';
  }

  /** The hub refused the room (`forbidden`, `room_limit`). */
  applyError(msg) {
    this.error = { code: msg.code, message: msg.message ?? '', room: this.name };
    for (const fn of [...this._errorListeners]) {
      try {
        fn(this.error);
      } catch (err) {
        globalThis.console?.error?.('presence-client: room error listener failed', err);
      }
    }
  }

  /** The connection dropped: the next snapshot starts the numbering again. */
  _disconnected() {
    this.seq = null;
    this.synced = false;
  }

  _emitChange(changes) {
    for (const fn of [...this._changeListeners]) {
      try {
        fn(this.members, changes);
      } catch (err) {
        globalThis.console?.error?.('presence-client: room listener failed', err);
      }
    }
  }
}

function defaultEnv() {
  const g = globalThis;
  return {
    WebSocket: g.WebSocket ?? null,
    // Properties of globalThis, never bare names: Node has no `window`.
    window: g.window ?? null,
    document: g.document ?? null,
    setTimeout: (fn, ms) => g.setTimeout(fn, ms),
    clearTimeout: (id) => g.clearTimeout(id),
    now: () => Date.now(),
    random: Math.random,
    // Called through globalThis: a browser's fetch refuses another `this`.
    fetch: typeof g.fetch === 'function' ? (url, init) => g.fetch(url, init) : null,
    // Without sessionStorage (Node, or refused) the token lives as long as
    // this client: reconnects still resume, a reload or restart does not.
    storage: sessionStorageOf(g) ?? memoryStorage(),
  };
}

/** A `sessionStorage` stand-in that forgets everything with its client. */
function memoryStorage() {
  const items = new Map();
  return {
    getItem: (key) => (items.has(key) ? items.get(key) : null),
    setItem: (key, value) => void items.set(key, String(value)),
    removeItem: (key) => void items.delete(key),
  };
}

/** The tab's `sessionStorage`, or null where it is missing or refused. */
function sessionStorageOf(g) {
  try {
    return g.sessionStorage ?? null;
  } catch {
    return null;
  }
}

/** Makes `history.pushState`/`replaceState` announce themselves (once per window). */
function patchHistory(win) {
  const history = win?.history;
  if (!history || history[HISTORY_PATCHED]) return;
  const EventCtor = win.Event ?? globalThis.Event;
  for (const method of ['pushState', 'replaceState']) {
    const original = history[method];
    if (typeof original !== 'function') continue;
    history[method] = function patched(...args) {
      const result = original.apply(this, args);
      win.dispatchEvent(new EventCtor(LOCATION_CHANGE));
      return result;
    };
  }
  history[HISTORY_PATCHED] = true;
}

/**
 * One tab's presence. Create it with `connect()`.
 *
 * Properties: `state` (`connecting`, `open`, `reconnecting`, `terminated`,
 * `closed`), `sessionId` (current or last session), `userId`, `nodeId`,
 * `status` (`active`/`idle`/`away`, null before the first welcome),
 * `manual` (`busy`/`away`/null), `page`, `resumed` (the last welcome
 * resumed an existing session), `expiresAt` (the token's `exp` as an ISO
 * string, JWT mode).
 */
export class PresenceClient {
  constructor(options = {}) {
    this.options = { ...options };
    this.env = { ...defaultEnv(), ...(options.env ?? {}) };
    // `connect({ WebSocket })` (Node, tests) wins over the environment's.
    if (options.WebSocket != null) this.env.WebSocket = options.WebSocket;
    this.state = 'connecting';
    this.sessionId = null;
    this.userId = null;
    this.nodeId = null;
    this.status = null;
    this.manual = options.manual ?? null;
    this.page = this._initialPage();
    this.idleAfterMs = DEFAULT_IDLE_AFTER_MS;
    this.terminatedReason = null;
    this.resumed = false;
    this.expiresAt = null;
    this.lastError = null;

    this._listeners = new Map();
    this._url = null;
    this._socketOpened = false;
    this._authRetried = false;
    this._closedBeforeOpen = 0;
    this._suspectAsked = false;
    this._retryAfterMs = null;
    this._ws = null;
    this._attempt = 0;
    this._reconnectTimer = null;
    this._trailingTimer = null;
    this._lastPingAt = null;
    this._sentPage = null;
    this._stopped = false;
    this._cleanup = [];
    this._rooms = new Map();
  }

  /** Subscribes to an event; returns a function that unsubscribes. */
  on(event, fn) {
    if (!this._listeners.has(event)) this._listeners.set(event, new Set());
    this._listeners.get(event).add(fn);
    return () => this.off(event, fn);
  }

  off(event, fn) {
    this._listeners.get(event)?.delete(fn);
  }

  /** Sets (`'busy'`, `'away'`) or clears (`null`) the manual status; kept across reconnects. */
  setStatus(manual) {
    if (manual !== null && manual !== 'busy' && manual !== 'away') {
      throw new TypeError(`manual status must be "busy", "away" or null, not ${manual}`);
    }
    this.manual = manual;
    this._send({ type: 'status', manual });
  }

  /**
   * Joins a room: this tab is present in it and watches it. Returns the
   * room object (the same one for the same name); joined again after every
   * reconnect.
   */
  join(name) {
    const room = this._room(name);
    room.joined = true;
    this._send({ type: 'join', room: name });
    return room;
  }

  /** Watches a room without being present in it; watched again after every reconnect. */
  watch(name) {
    const room = this._room(name);
    this._send({ type: room.joined ? 'join' : 'watch', room: name });
    return room;
  }

  /** Leaves a room (no longer present or watching); its object stops changing. */
  leave(name) {
    if (!this._rooms.delete(name)) return;
    this._send({ type: 'leave', room: name });
  }

  /** Stops watching a room; for a joined room this is the same as `leave()`. */
  unwatch(name) {
    const room = this._rooms.get(name);
    if (!room) return;
    this._rooms.delete(name);
    this._send({ type: room.joined ? 'leave' : 'unwatch', room: name });
  }

  /** The rooms this tab joined or watches. */
  rooms() {
    return [...this._rooms.values()];
  }

  _room(name) {
    if (typeof name !== 'string' || name === '') {
      throw new TypeError('a room name is a non-empty string');
    }
    let room = this._rooms.get(name);
    if (!room) {
      room = new PresenceRoom(name, { client: this });
      this._rooms.set(name, room);
    }
    return room;
  }

  /** Sends an activity ping now, ignoring the throttle (e.g. after an in-app action). */
  touch() {
    this._sendPing();
  }

  /**
   * Ends the session for good: sends `{"type":"end"}` (the hub closes with
   * 1000 and the session cannot be resumed) and does not reconnect.
   */
  close() {
    if (this._stopped) return;
    const ws = this._ws;
    if (ws && ws.readyState === 1) {
      try {
        ws.send(JSON.stringify({ type: 'end' }));
      } catch {
        // The close below ends the session all the same, after the grace.
      }
    }
    this._forgetResume();
    this._stop('closed');
    if (ws && ws.readyState <= 1) {
      ws.close(1000, 'client closed');
    } else {
      this._emit('close', { code: 1000, reason: 'client closed', willReconnect: false });
    }
  }

  // --- lifecycle --------------------------------------------------------

  _start() {
    if (typeof this.env.WebSocket !== 'function') {
      throw new TypeError(
        'presence-client: no WebSocket implementation; outside a browser pass connect({ WebSocket }) (e.g. the ws package)',
      );
    }
    if (this.options.url == null && !this.env.window?.location) {
      throw new TypeError('presence-client: outside a browser `url` is required (ws://host:port/ws)');
    }
    this._installListeners();
    this._open();
  }

  _open() {
    this._reconnectTimer = null;
    if (this._stopped) return;
    const { WebSocket: WS, window: win } = this.env;
    const resume = this._storedResume();
    const url = buildSocketUrl({ ...this.options, page: this.page, resume }, win?.location);
    this._url = url;
    this._socketOpened = false;
    let ws;
    try {
      ws = new WS(url);
    } catch (err) {
      this._emit('error', { code: 'socket', message: String(err?.message ?? err) });
      this._scheduleReconnect({ code: 1006, reason: '' });
      return;
    }
    this._ws = ws;
    ws.onopen = () => {
      if (this._ws === ws) this._socketOpened = true;
    };
    ws.onmessage = (event) => {
      if (this._ws !== ws) return;
      this._socketOpened = true;
      this._onFrame(event.data);
    };
    ws.onerror = () => {
      if (this._ws === ws) this._emit('error', { code: 'socket', message: 'WebSocket error' });
    };
    ws.onclose = (event) => {
      if (this._ws === ws) this._onClose(event);
    };
  }

  _onFrame(data) {
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      return;
    }
    switch (msg?.type) {
      case 'welcome':
        return this._onWelcome(msg);
      case 'status':
        this.status = msg.status ?? this.status;
        if ('manual' in msg) this.manual = msg.manual ?? null;
        return this._emit('status', { status: this.status, manual: this.manual });
      case 'error':
        if (msg.room != null) this._rooms.get(msg.room)?.applyError(msg);
        return this._emit('error', {
          code: msg.code,
          message: msg.message,
          ...(msg.room != null ? { room: msg.room } : {}),
          server: true,
        });
      case 'room':
      case 'presence':
        return this._onRoomFrame(msg);
      case 'terminated':
        if (Number.isFinite(msg.retry_after_ms)) this._retryAfterMs = msg.retry_after_ms;
        return this._onTerminated(msg.reason);
      case 'auth_required':
        return this._onAuthRequired(msg);
      case 'auth_ok':
        this.expiresAt = msg.expires_at ?? null;
        return this._emit('auth', { expiresAt: this.expiresAt });
      case 'pong':
        return this._emit('pong', msg);
      default:
        return undefined;
    }
  }

  _onWelcome(msg) {
    this._attempt = 0;
    this._authRetried = false;
    this._closedBeforeOpen = 0;
    this._suspectAsked = false;
    this.lastError = null;
    this.state = 'open';
    this.sessionId = msg.session_id ?? null;
    this.userId = msg.user_id ?? null;
    this.nodeId = msg.node_id ?? null;
    this.idleAfterMs = msg.idle_after_ms ?? DEFAULT_IDLE_AFTER_MS;
    this.terminatedReason = null;
    this.resumed = msg.resumed === true;
    this._storeResume(msg.resume_token);
    this.status = 'active';
    this._lastPingAt = null;
    this._sendHello();
    if (this.manual != null) this._send({ type: 'status', manual: this.manual });
    for (const room of this._rooms.values()) {
      this._send({ type: room.joined ? 'join' : 'watch', room: room.name });
    }
    this._emit('open', {
      sessionId: this.sessionId,
      userId: this.userId,
      nodeId: this.nodeId,
      idleAfterMs: this.idleAfterMs,
      awayAfterMs: msg.away_after_ms ?? null,
      heartbeatIntervalMs: msg.heartbeat_interval_ms ?? null,
      resumed: this.resumed,
    });
    this._emit('status', { status: this.status, manual: this.manual });
  }

  _sendHello() {
    const hello = { type: 'hello' };
    const app = normalizeApp(this.options.app);
    if (app) hello.app = app;
    if (this.options.device) hello.device = this.options.device;
    if (this.options.meta) hello.meta = this.options.meta;
    if (this.page != null) hello.page = this.page;
    this._send(hello);
    this._sentPage = this.page;
  }

  _onRoomFrame(msg) {
    const room = this._rooms.get(msg.room);
    if (!room) return;
    if (room.applyFrame(msg) === 'gap') {
      // Frames were lost: ask again, the hub answers with a fresh snapshot.
      this._send({ type: room.joined ? 'join' : 'watch', room: room.name });
    }
  }

  _onTerminated(reason) {
    this.terminatedReason = reason ?? null;
    const final = isFinalReason(reason);
    if (reason === 'token_expired') {
      // The session is over; whether the client starts a new one with a
      // fresh token is decided when the close (4001) follows.
      this._forgetResume();
    } else if (final) {
      this._forgetResume();
      this._stop('terminated');
    }
    this._emit('terminated', { reason: this.terminatedReason, final });
  }

  /** The hub asks for a new token: `onTokenExpiring` gives one, sent as `auth`. */
  _onAuthRequired(msg) {
    this.expiresAt = msg.expires_at ?? null;
    const hook = this.options.onTokenExpiring;
    this._emit('auth_required', { expiresAt: this.expiresAt });
    if (typeof hook !== 'function') return;
    const ws = this._ws;
    Promise.resolve()
      .then(() => hook({ expiresAt: this.expiresAt, reason: 'expiring' }))
      .then((token) => {
        if (typeof token !== 'string' || token === '') return;
        // Reconnects use the fresh token too.
        this.options.token = token;
        if (this._ws === ws) this._send({ type: 'auth', token });
      })
      .catch((err) => {
        this._emit('error', { code: 'token', message: String(err?.message ?? err) });
      });
  }

  _onClose(event) {
    const code = event?.code ?? 1006;
    const reason = event?.reason ?? '';
    const opened = this._socketOpened;
    this._ws = null;
    this._clearTrailing();
    for (const room of this._rooms.values()) room._disconnected();
    if (this._stopped) {
      this._emit('close', { code, reason, willReconnect: false });
      return;
    }
    if (code === 4001 || this.terminatedReason === 'token_expired') {
      // The token's exp passed on a live socket (§9): a refused token.
      if (this.terminatedReason !== 'token_expired') this._onTerminated('token_expired');
      this._onUnauthorized(
        { code: 'unauthorized', status: null, message: 'token expired' },
        { code, reason },
      );
      return;
    }
    if (isFinalCloseCode(code)) {
      // No terminated frame: for 4003 that is another socket that resumed
      // this session (stop quietly, the session lives on there); otherwise
      // the frame was lost and the close code still says it all.
      if (code === 4003 && this.terminatedReason == null) {
        this._stop('closed');
        this._emit('close', { code, reason, willReconnect: false, replaced: true });
        return;
      }
      this._onTerminated(code === 4008 ? 'session_limit' : 'admin');
      this._emit('close', { code, reason, willReconnect: false });
      return;
    }
    if (!opened) {
      this._onClosedBeforeOpen({ code, reason });
      return;
    }
    this._scheduleReconnect({ code, reason });
  }

  /**
   * The socket closed before it opened: a browser shows a refused upgrade
   * (401, 403) and an unreachable hub the same way, as close 1006. A plain
   * GET of the same URL tells them apart (see `probeUrl`, `refusalOf`).
   */
  _onClosedBeforeOpen(close) {
    this._closedBeforeOpen += 1;
    const fetchFn = this.env.fetch;
    if (typeof fetchFn !== 'function' || this._url == null) {
      this._onInconclusiveProbe(close);
      return;
    }
    this.state = 'reconnecting';
    this._probe(fetchFn, this._url).then((answer) => {
      if (this._stopped) return;
      if (answer === undefined) this._onInconclusiveProbe(close);
      else if (answer?.code === 'unauthorized') this._onUnauthorized(answer, close);
      else if (answer?.code === 'forbidden') this._onRefused(answer, close);
      else this._scheduleReconnect(close);
    });
  }

  /**
   * The HTTP answer to the socket URL: a refusal, null (the hub answered,
   * and not with a refusal), or undefined when no answer could be read
   * (network error, CORS, timeout).
   */
  async _probe(fetchFn, socketUrl) {
    const Abort = globalThis.AbortController;
    const abort = typeof Abort === 'function' ? new Abort() : null;
    const timer = this.env.setTimeout(() => abort?.abort(), PROBE_TIMEOUT_MS);
    try {
      const res = await fetchFn(probeUrl(socketUrl), {
        method: 'GET',
        cache: 'no-store',
        credentials: 'omit',
        ...(abort ? { signal: abort.signal } : {}),
      });
      if (res.type === 'opaque' || !Number.isFinite(res.status) || res.status === 0) return undefined;
      let body = null;
      if (res.status === 401 || res.status === 403) body = await res.json().catch(() => null);
      return refusalOf(res.status, body);
    } catch {
      return undefined;
    } finally {
      this.env.clearTimeout(timer);
    }
  }

  /**
   * No probe answer: back off as for a network error. After a streak of
   * such closes a token client asks for a fresh token once, in case the
   * hub is refusing this one where the probe cannot see it.
   */
  _onInconclusiveProbe(close) {
    const hook = this.options.onTokenExpiring;
    const suspect =
      this._closedBeforeOpen >= SUSPECT_TOKEN_AFTER &&
      !this._suspectAsked &&
      this.options.token &&
      typeof hook === 'function';
    if (suspect) {
      this._suspectAsked = true;
      this._askForToken(hook, 'unreachable');
    }
    this._scheduleReconnect(close);
  }

  /** Calls the token hook; a token it gives is used from the next attempt on. */
  _askForToken(hook, reason) {
    return Promise.resolve()
      .then(() => hook({ expiresAt: this.expiresAt, reason }))
      .then((token) => {
        if (typeof token !== 'string' || token === '') return null;
        this.options.token = token;
        return token;
      })
      .catch((err) => {
        this._emit('error', { code: 'token', message: String(err?.message ?? err) });
        return null;
      });
  }

  /**
   * The hub refused the token (401 before the upgrade, or 4001 on a live
   * socket). No backoff can fix that: ask `onTokenExpiring` once for a
   * fresh token and try again with it at once, else stop. The client's
   * last word is always an `error` with `willRetry: false`.
   */
  _onUnauthorized(refusal, close) {
    const hook = this.options.onTokenExpiring;
    const willRetry = typeof hook === 'function' && !this._authRetried;
    this._reportError({ ...refusal, willRetry });
    if (!willRetry) {
      this._stopUnauthorized(close);
      return;
    }
    this._authRetried = true;
    this.state = 'reconnecting';
    this._askForToken(hook, 'unauthorized').then((token) => {
      if (this._stopped) return;
      if (token == null) {
        this._reportError({ ...refusal, willRetry: false });
        this._stopUnauthorized(close);
        return;
      }
      this._attempt += 1;
      this._emit('close', {
        ...close,
        willReconnect: true,
        delayMs: 0,
        attempt: this._attempt,
        unauthorized: true,
      });
      this._reconnectTimer = this.env.setTimeout(() => this._open(), 0);
    });
  }

  /** Gives up after a refused token: `terminated` after a 4001, else `closed`. */
  _stopUnauthorized(close) {
    this._forgetResume();
    this._stop(this.terminatedReason === 'token_expired' ? 'terminated' : 'closed');
    this._emit('close', { ...close, willReconnect: false, unauthorized: true });
  }

  /** The hub refused the connection for good (403: Origin or Host). */
  _onRefused(refusal, close) {
    this._reportError({ ...refusal, willRetry: false });
    this._stop('closed');
    this._emit('close', { ...close, willReconnect: false });
  }

  _reportError(error) {
    this.lastError = error;
    this._emit('error', error);
  }

  _scheduleReconnect({ code, reason }) {
    // The hub's pacing on shutdown wins over our own backoff, once.
    const paced = this._retryAfterMs;
    this._retryAfterMs = null;
    const delayMs =
      paced != null
        ? Math.max(0, paced)
        : backoffDelay(this._attempt, {
            baseMs: this.options.backoffBaseMs ?? BACKOFF_BASE_MS,
            capMs: this.options.backoffCapMs ?? BACKOFF_CAP_MS,
            random: this.env.random,
          });
    this._attempt += 1;
    this.state = 'reconnecting';
    this._emit('close', { code, reason, willReconnect: true, delayMs, attempt: this._attempt });
    this._reconnectTimer = this.env.setTimeout(() => this._open(), delayMs);
  }

  _reconnectNow() {
    if (this._stopped || this._reconnectTimer == null) return;
    this.env.clearTimeout(this._reconnectTimer);
    this._open();
  }

  _stop(state) {
    this._stopped = true;
    this.state = state;
    if (this._reconnectTimer != null) this.env.clearTimeout(this._reconnectTimer);
    this._reconnectTimer = null;
    this._clearTrailing();
    for (const undo of this._cleanup.splice(0)) undo();
  }

  // --- activity ---------------------------------------------------------

  _installListeners() {
    const { window: win, document: doc } = this.env;
    const listen = (target, type, fn, opts) => {
      if (!target?.addEventListener) return;
      target.addEventListener(type, fn, opts);
      this._cleanup.push(() => target.removeEventListener(type, fn, opts));
    };
    const onActivity = () => {
      if (!this._isHidden()) this._onActivity();
    };
    for (const type of ACTIVITY_EVENTS) {
      listen(win, type, onActivity, { passive: true, capture: true });
    }
    listen(win, 'focus', onActivity);
    listen(doc, 'visibilitychange', () => {
      if (!this._isHidden()) this._onActivity();
    });
    const onNavigate = () => this._onLocationChange();
    listen(win, 'popstate', onNavigate);
    listen(win, LOCATION_CHANGE, onNavigate);
    listen(win, 'online', () => this._reconnectNow());
    patchHistory(win);
  }

  _isHidden() {
    const doc = this.env.document;
    return doc ? doc.visibilityState === 'hidden' : false;
  }

  _onActivity() {
    if (this.state !== 'open') return;
    const interval = activityInterval(this.idleAfterMs);
    const decision = throttleDecision(this.env.now(), this._lastPingAt, interval);
    if (decision.send) {
      this._sendPing();
    } else if (this._trailingTimer == null) {
      // One trailing ping reports the latest activity once the window ends.
      this._trailingTimer = this.env.setTimeout(() => {
        this._trailingTimer = null;
        this._sendPing();
      }, decision.waitMs);
    }
  }

  _onLocationChange() {
    const page = this._currentPage();
    if (page == null || page === this.page) return;
    this.page = page;
    // Navigation is activity and the page must show at once: no throttle.
    this._sendPing();
  }

  _sendPing() {
    this._clearTrailing();
    if (this.state !== 'open') return;
    const ping = { type: 'ping' };
    if (this.page != null && this.page !== this._sentPage) ping.page = this.page;
    if (this._send(ping)) {
      this._lastPingAt = this.env.now();
      if (ping.page != null) this._sentPage = ping.page;
    }
  }

  _clearTrailing() {
    if (this._trailingTimer != null) this.env.clearTimeout(this._trailingTimer);
    this._trailingTimer = null;
  }

  _initialPage() {
    const page = this.options.page;
    if (typeof page === 'function') return page() ?? null;
    if (page != null) return page;
    return pageOf(this.env.window?.location);
  }

  _currentPage() {
    const page = this.options.page;
    if (typeof page === 'function') return page() ?? null;
    return pageOf(this.env.window?.location);
  }

  // --- resume token -----------------------------------------------------

  _resumeKey() {
    return this.options.resumeKey ?? RESUME_KEY;
  }

  _storedResume() {
    try {
      return this.env.storage?.getItem(this._resumeKey()) ?? null;
    } catch {
      return null;
    }
  }

  _storeResume(token) {
    try {
      if (typeof token === 'string' && token !== '') {
        this.env.storage?.setItem(this._resumeKey(), token);
      } else {
        this.env.storage?.removeItem(this._resumeKey());
      }
    } catch {
      // Without storage a reload starts a new session; nothing else changes.
    }
  }

  _forgetResume() {
    this._storeResume(null);
  }

  // --- plumbing ---------------------------------------------------------

  _send(msg) {
    const ws = this._ws;
    if (!ws || ws.readyState !== 1 || this.state !== 'open') return false;
    try {
      ws.send(JSON.stringify(msg));
      return true;
    } catch {
      return false;
    }
  }

  _emit(event, payload) {
    for (const fn of [...(this._listeners.get(event) ?? [])]) {
      try {
        fn(payload);
      } catch (err) {
        globalThis.console?.error?.(`presence-client: "${event}" listener failed`, err);
      }
    }
  }
}

/**
 * Connects this tab (or process) to the hub and keeps it connected. Throws a
 * TypeError when there is no WebSocket implementation, or no `url` outside a
 * browser.
 *
 * Options: `url` (default `ws(s)://<this host>/ws`), `token` (JWT mode),
 * `user`, `name`, `org` (dev mode), `page` (string or function; default the
 * current path), `app` (name or `{name, version}`), `device`, `meta`,
 * `manual`, `backoffBaseMs`, `backoffCapMs`, `WebSocket` (the constructor
 * to use; needed outside a browser, e.g. `ws`), `onTokenExpiring` (called with
 * `{expiresAt}` when the hub asks for a new token; return the new JWT or a
 * promise of it), `resumeKey` (the `sessionStorage` key of the resume token).
 */
export function connect(options = {}) {
  const client = new PresenceClient(options);
  client._start();
  return client;
}
