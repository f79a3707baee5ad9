// Unit tests for web/presence-client.js: the pure throttle and backoff
// functions, and the connection state machine against a fake WebSocket,
// fake timers and a fake window/document. Run with `node --test web/test/*.test.mjs`.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';

import {
  activityInterval,
  backoffDelay,
  buildSocketUrl,
  compareMembers,
  connect,
  diffMembers,
  PresenceRoom,
  isFinalCloseCode,
  isFinalReason,
  normalizeApp,
  pageOf,
  probeUrl,
  refusalOf,
  throttleDecision,
  SUSPECT_TOKEN_AFTER,
  BACKOFF_CAP_MS,
  DEFAULT_IDLE_AFTER_MS,
  RESUME_KEY,
} from '../presence-client.js';

describe('activityInterval', () => {
  test('is a quarter of idle_after', () => {
    assert.equal(activityInterval(60_000), 15_000);
    assert.equal(activityInterval(1_000), 250);
  });
  test('falls back to the default idle_after', () => {
    assert.equal(activityInterval(undefined), DEFAULT_IDLE_AFTER_MS / 4);
    assert.equal(activityInterval(0), DEFAULT_IDLE_AFTER_MS / 4);
    assert.equal(activityInterval(-5), DEFAULT_IDLE_AFTER_MS / 4);
  });
  test('has a floor', () => {
    assert.equal(activityInterval(40), 100);
  });
});

describe('throttleDecision', () => {
  test('the first activity is sent at once', () => {
    assert.deepEqual(throttleDecision(1_000, null, 250), { send: true, waitMs: 0 });
  });
  test('activity inside the window waits for its end', () => {
    assert.deepEqual(throttleDecision(1_100, 1_000, 250), { send: false, waitMs: 150 });
    assert.deepEqual(throttleDecision(1_249, 1_000, 250), { send: false, waitMs: 1 });
  });
  test('activity at or after the window end is sent', () => {
    assert.equal(throttleDecision(1_250, 1_000, 250).send, true);
    assert.equal(throttleDecision(9_000, 1_000, 250).send, true);
  });
  test('a clock that went backwards does not block', () => {
    assert.equal(throttleDecision(500, 1_000, 250).send, true);
  });
  test('at most one ping per interval over a burst of events', () => {
    const interval = 250;
    let last = null;
    const sent = [];
    for (let now = 0; now < 2_000; now += 7) {
      if (throttleDecision(now, last, interval).send) {
        sent.push(now);
        last = now;
      }
    }
    for (let i = 1; i < sent.length; i += 1) {
      assert.ok(sent[i] - sent[i - 1] >= interval, `pings ${sent[i - 1]} and ${sent[i]}`);
    }
    assert.equal(sent.length, 8);
  });
});

describe('backoffDelay', () => {
  test('full jitter: zero when random() is 0', () => {
    for (let a = 0; a < 10; a += 1) assert.equal(backoffDelay(a, { random: () => 0 }), 0);
  });
  test('the ceiling doubles per attempt', () => {
    const top = (a) => backoffDelay(a, { baseMs: 500, capMs: 30_000, random: () => 0.999999 });
    assert.equal(top(0), 499);
    assert.equal(top(1), 999);
    assert.equal(top(2), 1_999);
    assert.equal(top(3), 3_999);
  });
  test('is capped', () => {
    const top = backoffDelay(50, { random: () => 0.999999 });
    assert.ok(top < BACKOFF_CAP_MS && top >= BACKOFF_CAP_MS - 1);
    assert.equal(backoffDelay(1e9, { baseMs: 500, capMs: 8_000, random: () => 0.5 }), 4_000);
  });
  test('a random() of exactly 1 stays below the ceiling', () => {
    assert.equal(backoffDelay(0, { baseMs: 500, random: () => 1 }), 499);
  });
  test('spreads reconnects across the window', () => {
    let seed = 42;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const delays = Array.from({ length: 1000 }, () => backoffDelay(6, { random }));
    const ceiling = Math.min(BACKOFF_CAP_MS, 500 * 2 ** 6);
    assert.ok(delays.every((d) => d >= 0 && d < ceiling));
    const buckets = new Array(4).fill(0);
    for (const d of delays) buckets[Math.floor((d / ceiling) * 4)] += 1;
    for (const b of buckets) assert.ok(b > 150, `bucket sizes ${buckets}`);
  });
  test('bad attempt values are treated as 0', () => {
    assert.equal(backoffDelay(-3, { random: () => 0.999999 }), 499);
    assert.equal(backoffDelay(NaN, { random: () => 0.999999 }), 499);
  });
});

describe('small helpers', () => {
  test('final reasons and codes', () => {
    assert.ok(isFinalReason('admin'));
    assert.ok(isFinalReason('revoked'));
    assert.ok(isFinalReason('session_limit'));
    assert.ok(!isFinalReason('shutdown'));
    assert.ok(isFinalCloseCode(4003));
    assert.ok(isFinalCloseCode(4008));
    assert.ok(!isFinalCloseCode(1001));
    assert.ok(!isFinalCloseCode(1006));
  });
  test('normalizeApp', () => {
    assert.equal(normalizeApp(null), null);
    assert.deepEqual(normalizeApp('shop'), { name: 'shop', version: null });
    assert.deepEqual(normalizeApp({ name: 'shop', version: '2' }), { name: 'shop', version: '2' });
  });
  test('pageOf drops the fragment', () => {
    assert.equal(pageOf({ pathname: '/a', search: '?b=1', hash: '#c' }), '/a?b=1');
    assert.equal(pageOf(null), null);
  });
});

describe('buildSocketUrl', () => {
  const loc = { protocol: 'https:', host: 'hub.example:8443' };
  test('same host, wss on https, dev-mode identity', () => {
    const url = new URL(
      buildSocketUrl({ user: 'alice', name: 'Alice A', org: 'acme', page: '/x?y=1' }, loc),
    );
    assert.equal(url.protocol, 'wss:');
    assert.equal(url.host, 'hub.example:8443');
    assert.equal(url.pathname, '/ws');
    assert.equal(url.searchParams.get('user'), 'alice');
    assert.equal(url.searchParams.get('name'), 'Alice A');
    assert.equal(url.searchParams.get('org'), 'acme');
    assert.equal(url.searchParams.get('page'), '/x?y=1');
    assert.equal(url.searchParams.get('token'), null);
  });
  test('ws on http', () => {
    const url = buildSocketUrl({ user: 'bob' }, { protocol: 'http:', host: '127.0.0.1:8080' });
    assert.equal(url, 'ws://127.0.0.1:8080/ws?user=bob');
  });
  test('a token replaces the dev-mode identity', () => {
    const url = new URL(buildSocketUrl({ token: 'abc.def', user: 'alice', app: 'shop' }, loc));
    assert.equal(url.searchParams.get('token'), 'abc.def');
    assert.equal(url.searchParams.get('user'), null);
    assert.equal(url.searchParams.get('app'), 'shop');
  });
  test('explicit http and ws urls', () => {
    assert.equal(buildSocketUrl({ url: 'http://h:1/ws' }, loc), 'ws://h:1/ws');
    assert.equal(buildSocketUrl({ url: 'wss://h/ws', user: 'u' }, loc), 'wss://h/ws?user=u');
    const withApp = new URL(buildSocketUrl({ url: '/ws', app: { name: 'a', version: '1.2' } }, loc));
    assert.equal(withApp.searchParams.get('app_version'), '1.2');
  });
});

// --- state machine with fakes -----------------------------------------------

function fakeClock() {
  let now = 1_000_000;
  let nextId = 1;
  const timers = new Map();
  return {
    now: () => now,
    setTimeout: (fn, ms) => {
      const id = nextId++;
      timers.set(id, { fn, at: now + Math.max(0, ms) });
      return id;
    },
    clearTimeout: (id) => timers.delete(id),
    pending: () => timers.size,
    advance(ms) {
      const end = now + ms;
      for (;;) {
        let next = null;
        for (const [id, t] of timers) if (t.at <= end && (!next || t.at < next[1].at)) next = [id, t];
        if (!next) break;
        timers.delete(next[0]);
        now = next[1].at;
        next[1].fn();
      }
      now = end;
    },
  };
}

function fakeStorage() {
  const items = new Map();
  return {
    getItem: (key) => (items.has(key) ? items.get(key) : null),
    setItem: (key, value) => items.set(key, String(value)),
    removeItem: (key) => items.delete(key),
    items,
  };
}

function fakeEnv() {
  const clock = fakeClock();
  const storage = fakeStorage();
  const sockets = [];
  class FakeSocket {
    constructor(url) {
      this.url = url;
      this.readyState = 0;
      this.sent = [];
      sockets.push(this);
    }
    send(data) {
      this.sent.push(JSON.parse(data));
    }
    close(code = 1000, reason = '') {
      this.readyState = 3;
      this.onclose?.({ code, reason });
    }
    // test helpers
    serverOpen(welcome = {}) {
      this.readyState = 1;
      this.onmessage?.({
        data: JSON.stringify({
          type: 'welcome',
          session_id: `s${sockets.length}`,
          user_id: 'alice',
          node_id: 'n1',
          heartbeat_interval_ms: 20_000,
          idle_after_ms: 1_000,
          away_after_ms: 3_000,
          ...welcome,
        }),
      });
    }
    serverSend(msg) {
      this.onmessage?.({ data: JSON.stringify(msg) });
    }
    serverClose(code, reason = '') {
      this.readyState = 3;
      this.onclose?.({ code, reason });
    }
  }
  const win = new EventTarget();
  win.location = { protocol: 'http:', host: '127.0.0.1:8080', pathname: '/app', search: '' };
  win.history = {
    pushState(_s, _t, url) {
      const u = new URL(url, 'http://127.0.0.1:8080');
      win.location.pathname = u.pathname;
      win.location.search = u.search;
    },
    replaceState() {},
  };
  const doc = new EventTarget();
  doc.visibilityState = 'visible';
  const env = {
    WebSocket: FakeSocket,
    window: win,
    document: doc,
    setTimeout: clock.setTimeout,
    clearTimeout: clock.clearTimeout,
    now: clock.now,
    random: () => 0.5,
    storage,
    // No HTTP probe unless a test gives one (see the auth failure tests).
    fetch: null,
  };
  return { env, clock, sockets, win, doc, storage };
}

function pings(socket) {
  return socket.sent.filter((m) => m.type === 'ping');
}

describe('connect()', () => {
  test('sends hello once after welcome and emits open and status', () => {
    const { env, sockets } = fakeEnv();
    const events = [];
    const c = connect({ user: 'alice', app: { name: 'demo', version: '1' }, env });
    c.on('open', (e) => events.push(['open', e.sessionId]));
    c.on('status', (e) => events.push(['status', e.status]));
    assert.equal(sockets.length, 1);
    assert.match(sockets[0].url, /^ws:\/\/127\.0\.0\.1:8080\/ws\?user=alice&page=%2Fapp&app=demo/);
    sockets[0].serverOpen();
    assert.deepEqual(sockets[0].sent, [
      { type: 'hello', app: { name: 'demo', version: '1' }, page: '/app' },
    ]);
    assert.equal(c.sessionId, 's1');
    assert.equal(c.state, 'open');
    assert.deepEqual(events, [
      ['open', 's1'],
      ['status', 'active'],
    ]);
    sockets[0].serverSend({ type: 'status', status: 'idle', manual: null });
    assert.equal(c.status, 'idle');
    c.close();
  });

  test('activity is throttled to one ping per idle_after/4 with one trailing ping', () => {
    const { env, sockets, win, clock } = fakeEnv();
    const c = connect({ user: 'alice', env });
    sockets[0].serverOpen({ idle_after_ms: 1_000 });
    for (let i = 0; i < 10; i += 1) {
      win.dispatchEvent(new Event('pointermove'));
      clock.advance(10);
    }
    assert.equal(pings(sockets[0]).length, 1);
    clock.advance(250);
    assert.equal(pings(sockets[0]).length, 2, 'trailing ping');
    clock.advance(10_000);
    assert.equal(pings(sockets[0]).length, 2, 'nothing without activity');
    win.dispatchEvent(new Event('keydown'));
    assert.equal(pings(sockets[0]).length, 3);
    c.close();
  });

  test('nothing is sent while the tab is hidden; becoming visible pings', () => {
    const { env, sockets, win, doc, clock } = fakeEnv();
    const c = connect({ user: 'alice', env });
    sockets[0].serverOpen();
    doc.visibilityState = 'hidden';
    doc.dispatchEvent(new Event('visibilitychange'));
    win.dispatchEvent(new Event('scroll'));
    clock.advance(60_000);
    assert.equal(pings(sockets[0]).length, 0);
    doc.visibilityState = 'visible';
    doc.dispatchEvent(new Event('visibilitychange'));
    assert.equal(pings(sockets[0]).length, 1);
    c.close();
  });

  test('pushState and popstate send a ping with the new page at once', () => {
    const { env, sockets, win } = fakeEnv();
    const c = connect({ user: 'alice', env });
    sockets[0].serverOpen();
    win.dispatchEvent(new Event('pointerdown'));
    win.history.pushState({}, '', '/app/settings?tab=2');
    const sent = pings(sockets[0]);
    assert.equal(sent.length, 2);
    assert.deepEqual(sent[1], { type: 'ping', page: '/app/settings?tab=2' });
    assert.equal(c.page, '/app/settings?tab=2');
    win.location.pathname = '/app';
    win.location.search = '';
    win.dispatchEvent(new Event('popstate'));
    assert.deepEqual(pings(sockets[0])[2], { type: 'ping', page: '/app' });
    c.close();
  });

  test('reconnects with backoff and restores the manual status', () => {
    const { env, sockets, clock } = fakeEnv();
    const closes = [];
    const c = connect({ user: 'alice', env, backoffBaseMs: 1_000 });
    c.on('close', (e) => closes.push(e));
    sockets[0].serverOpen();
    c.setStatus('busy');
    assert.deepEqual(sockets[0].sent.at(-1), { type: 'status', manual: 'busy' });
    sockets[0].serverClose(1006);
    assert.equal(c.state, 'reconnecting');
    assert.equal(closes[0].willReconnect, true);
    assert.equal(closes[0].delayMs, 500); // random() = 0.5 of a 1000 ms ceiling
    clock.advance(499);
    assert.equal(sockets.length, 1);
    clock.advance(1);
    assert.equal(sockets.length, 2);
    sockets[1].serverClose(1006); // failed attempt: next ceiling doubles
    assert.equal(closes[1].delayMs, 1_000);
    clock.advance(1_000);
    assert.equal(sockets.length, 3);
    sockets[2].serverOpen();
    assert.equal(c.state, 'open');
    assert.equal(c.sessionId, 's3');
    assert.deepEqual(
      sockets[2].sent.map((m) => m.type),
      ['hello', 'status'],
    );
    assert.deepEqual(sockets[2].sent[1], { type: 'status', manual: 'busy' });
    // The welcome reset the attempt counter.
    sockets[2].serverClose(1001);
    assert.equal(closes[2].delayMs, 500);
    c.close();
  });

  for (const reason of ['admin', 'revoked', 'session_limit']) {
    test(`terminated (${reason}) stops for good`, () => {
      const { env, sockets, clock } = fakeEnv();
      const seen = [];
      const c = connect({ user: 'alice', env });
      c.on('terminated', (e) => seen.push(e));
      c.on('close', (e) => seen.push(e));
      sockets[0].serverOpen();
      sockets[0].serverSend({ type: 'terminated', reason });
      sockets[0].serverClose(reason === 'session_limit' ? 4008 : 4003);
      assert.equal(c.state, 'terminated');
      assert.equal(c.terminatedReason, reason);
      assert.deepEqual(seen[0], { reason, final: true });
      assert.equal(seen[1].willReconnect, false);
      clock.advance(120_000);
      assert.equal(sockets.length, 1);
      assert.equal(clock.pending(), 0);
    });
  }

  test('close code 4003 without a terminated frame (resumed elsewhere) stops quietly', () => {
    const { env, sockets, clock } = fakeEnv();
    const closes = [];
    const c = connect({ user: 'alice', env });
    c.on('close', (e) => closes.push(e));
    sockets[0].serverOpen();
    sockets[0].serverClose(4003);
    assert.equal(c.state, 'closed');
    assert.equal(c.terminatedReason, null);
    assert.equal(closes[0].willReconnect, false);
    assert.equal(closes[0].replaced, true);
    clock.advance(120_000);
    assert.equal(sockets.length, 1);
  });

  test('close code 4001 without a terminated frame means the token expired', () => {
    const { env, sockets } = fakeEnv();
    const c = connect({ user: 'alice', env });
    sockets[0].serverOpen();
    sockets[0].serverClose(4001);
    assert.equal(c.state, 'terminated');
    assert.equal(c.terminatedReason, 'token_expired');
  });

  test('terminated (shutdown) reconnects', () => {
    const { env, sockets, clock } = fakeEnv();
    const seen = [];
    const c = connect({ user: 'alice', env });
    c.on('terminated', (e) => seen.push(e));
    sockets[0].serverOpen();
    sockets[0].serverSend({ type: 'terminated', reason: 'shutdown' });
    sockets[0].serverClose(1001);
    assert.deepEqual(seen, [{ reason: 'shutdown', final: false }]);
    assert.equal(c.state, 'reconnecting');
    clock.advance(BACKOFF_CAP_MS);
    assert.equal(sockets.length, 2);
    c.close();
  });

  test('close() stops reconnecting and removes listeners', () => {
    const { env, sockets, clock, win } = fakeEnv();
    const c = connect({ user: 'alice', env });
    sockets[0].serverOpen();
    c.close();
    assert.equal(c.state, 'closed');
    win.dispatchEvent(new Event('pointerdown'));
    clock.advance(60_000);
    assert.equal(sockets.length, 1);
    assert.equal(pings(sockets[0]).length, 0);
  });

  test('the online event cuts a pending backoff short', () => {
    const { env, sockets, win } = fakeEnv();
    const c = connect({ user: 'alice', env, backoffBaseMs: 10_000 });
    sockets[0].serverClose(1006);
    assert.equal(sockets.length, 1);
    win.dispatchEvent(new Event('online'));
    assert.equal(sockets.length, 2);
    c.close();
  });

  test('server error frames are reported and the connection stays', () => {
    const { env, sockets } = fakeEnv();
    const errors = [];
    const c = connect({ user: 'alice', env });
    c.on('error', (e) => errors.push(e));
    sockets[0].serverOpen();
    sockets[0].serverSend({ type: 'error', code: 'bad_message', message: 'nope' });
    assert.deepEqual(errors, [{ code: 'bad_message', message: 'nope', server: true }]);
    assert.equal(c.state, 'open');
    c.close();
  });

  test('the WebSocket option is the constructor used, over the environment', () => {
    const { env, sockets } = fakeEnv();
    const made = [];
    class Other extends env.WebSocket {
      constructor(url) {
        super(url);
        made.push(url);
      }
    }
    const c = connect({ user: 'alice', env, WebSocket: Other });
    assert.equal(made.length, 1);
    assert.equal(sockets[0] instanceof Other, true);
    c.close();
  });

  test('setStatus rejects unknown values', () => {
    const { env } = fakeEnv();
    const c = connect({ user: 'alice', env });
    assert.throws(() => c.setStatus('sleeping'), TypeError);
    c.close();
  });
});

describe('session continuity (v1.1 section 9)', () => {
  test('the resume token is kept per tab and sent on every reconnect', () => {
    const { env, sockets, clock, storage } = fakeEnv();
    const c = connect({ user: 'alice', env });
    assert.equal(new URL(sockets[0].url).searchParams.get('resume'), null);
    sockets[0].serverOpen({ resume_token: 'tok-1', resumed: false });
    assert.equal(storage.getItem(RESUME_KEY), 'tok-1');
    assert.equal(c.resumed, false);
    sockets[0].serverClose(1006);
    clock.advance(BACKOFF_CAP_MS);
    assert.equal(new URL(sockets[1].url).searchParams.get('resume'), 'tok-1');
    sockets[1].serverOpen({ session_id: 's1', resume_token: 'tok-2', resumed: true });
    assert.equal(c.resumed, true);
    assert.equal(c.sessionId, 's1');
    assert.equal(storage.getItem(RESUME_KEY), 'tok-2', 'each token resumes once');
    c.close();
  });

  test('a reloaded tab (a new client on the same storage) resumes', () => {
    const { env, sockets, storage } = fakeEnv();
    storage.setItem(RESUME_KEY, 'from-before-reload');
    const c = connect({ user: 'alice', env });
    assert.equal(new URL(sockets[0].url).searchParams.get('resume'), 'from-before-reload');
    c.close();
  });

  test('close() sends end before closing and forgets the token', () => {
    const { env, sockets, storage } = fakeEnv();
    const c = connect({ user: 'alice', env });
    sockets[0].serverOpen({ resume_token: 'tok-1' });
    c.close();
    assert.deepEqual(sockets[0].sent.at(-1), { type: 'end' });
    assert.equal(storage.getItem(RESUME_KEY), null);
    assert.equal(c.state, 'closed');
  });

  test('retry_after_ms of a shutdown replaces the backoff once', () => {
    const { env, sockets, clock } = fakeEnv();
    const closes = [];
    const c = connect({ user: 'alice', env, backoffBaseMs: 60_000 });
    c.on('close', (e) => closes.push(e));
    sockets[0].serverOpen({ resume_token: 'tok-1' });
    sockets[0].serverSend({ type: 'terminated', reason: 'shutdown', retry_after_ms: 1234 });
    sockets[0].serverClose(1001);
    assert.equal(closes[0].delayMs, 1234);
    clock.advance(1233);
    assert.equal(sockets.length, 1);
    clock.advance(1);
    assert.equal(sockets.length, 2);
    assert.equal(new URL(sockets[1].url).searchParams.get('resume'), 'tok-1');
    sockets[1].serverClose(1006);
    assert.equal(closes[1].delayMs, 15_000, 'then our own backoff again (half the cap)');
    c.close();
  });

  test('auth_required asks onTokenExpiring and sends the new token as auth', async () => {
    const { env, sockets, clock } = fakeEnv();
    const asked = [];
    const events = [];
    const c = connect({
      token: 'old.jwt',
      env,
      onTokenExpiring: async ({ expiresAt }) => {
        asked.push(expiresAt);
        return 'new.jwt';
      },
    });
    c.on('auth', (e) => events.push(e));
    sockets[0].serverOpen({ resume_token: 'tok-1' });
    sockets[0].serverSend({ type: 'auth_required', expires_at: '2026-12-01T10:00:00.000Z' });
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(asked, ['2026-12-01T10:00:00.000Z']);
    assert.deepEqual(sockets[0].sent.at(-1), { type: 'auth', token: 'new.jwt' });
    sockets[0].serverSend({ type: 'auth_ok', expires_at: '2026-12-01T11:00:00.000Z' });
    assert.deepEqual(events, [{ expiresAt: '2026-12-01T11:00:00.000Z' }]);
    assert.equal(c.expiresAt, '2026-12-01T11:00:00.000Z');
    sockets[0].serverClose(1006);
    clock.advance(BACKOFF_CAP_MS);
    assert.equal(new URL(sockets[1].url).searchParams.get('token'), 'new.jwt');
    c.close();
  });

  for (const reason of ['user', 'max_age', 'token_expired']) {
    test(`terminated (${reason}) is final and forgets the token`, () => {
      const { env, sockets, storage, clock } = fakeEnv();
      const c = connect({ user: 'alice', env });
      sockets[0].serverOpen({ resume_token: 'tok-1' });
      sockets[0].serverSend({ type: 'terminated', reason });
      assert.equal(storage.getItem(RESUME_KEY), null);
      sockets[0].serverClose(reason === 'token_expired' ? 4001 : 4003);
      assert.equal(c.state, 'terminated');
      clock.advance(120_000);
      assert.equal(sockets.length, 1);
    });
  }
});

// --- auth failures ----------------------------------------------------------

/** A fetch that answers every probe with `answer(url)`: a status, or throws. */
function fakeFetch(answer) {
  const calls = [];
  const fetch = async (url, init) => {
    calls.push({ url, init });
    const status = answer(url);
    if (status instanceof Error) throw status;
    const messages = { 401: 'token expired', 403: 'origin not allowed', 400: 'expected a WebSocket upgrade request' };
    return {
      type: 'basic',
      status,
      json: async () => ({ error: { code: String(status), message: messages[status] ?? 'x' } }),
    };
  };
  return { fetch, calls };
}

/** Lets pending promise callbacks (probe, token hook) run. */
async function settle() {
  for (let i = 0; i < 5; i += 1) await new Promise((resolve) => setImmediate(resolve));
}

describe('auth failures', () => {
  test('probeUrl is the http(s) twin of the socket URL; refusalOf reads 401 and 403 only', () => {
    assert.equal(probeUrl('ws://h:1/ws?token=a.b.c&page=%2F'), 'http://h:1/ws?token=a.b.c&page=%2F');
    assert.equal(probeUrl('wss://h/ws?user=x'), 'https://h/ws?user=x');
    assert.deepEqual(refusalOf(401, { error: { code: 'unauthorized', message: 'token expired' } }), {
      code: 'unauthorized',
      status: 401,
      message: 'token expired',
    });
    assert.equal(refusalOf(403, null).code, 'forbidden');
    for (const status of [400, 404, 500, 503]) assert.equal(refusalOf(status, null), null);
  });

  test('a refused upgrade (401) without a token hook is unauthorized and stops', async () => {
    const { env, sockets, clock } = fakeEnv();
    const probe = fakeFetch(() => 401);
    const errors = [];
    const closes = [];
    const c = connect({ token: 'old.jwt', env: { ...env, fetch: probe.fetch } });
    c.on('error', (e) => errors.push(e));
    c.on('close', (e) => closes.push(e));
    sockets[0].serverClose(1006); // what a browser shows for a 401 upgrade
    await settle();
    assert.equal(probe.calls.length, 1);
    assert.match(probe.calls[0].url, /^http:\/\/127\.0\.0\.1:8080\/ws\?token=old\.jwt/);
    assert.deepEqual(errors, [
      { code: 'unauthorized', status: 401, message: 'token expired', willRetry: false },
    ]);
    assert.equal(c.lastError.code, 'unauthorized');
    assert.equal(c.state, 'closed');
    assert.equal(closes.at(-1).willReconnect, false);
    assert.equal(closes.at(-1).unauthorized, true);
    clock.advance(120_000);
    assert.equal(sockets.length, 1, 'no retry loop');
  });

  test('a refused upgrade asks onTokenExpiring once and retries at once with the new token', async () => {
    const { env, sockets, clock } = fakeEnv();
    const probe = fakeFetch(() => 401);
    const asked = [];
    const errors = [];
    const c = connect({
      token: 'old.jwt',
      env: { ...env, fetch: probe.fetch },
      onTokenExpiring: async (info) => {
        asked.push(info);
        return `new-${asked.length}.jwt`;
      },
    });
    c.on('error', (e) => errors.push(e));
    sockets[0].serverClose(1006);
    await settle();
    assert.deepEqual(asked, [{ expiresAt: null, reason: 'unauthorized' }]);
    assert.equal(errors[0].willRetry, true);
    clock.advance(0);
    assert.equal(sockets.length, 2);
    assert.equal(new URL(sockets[1].url).searchParams.get('token'), 'new-1.jwt');
    // The fresh token is refused too: no second hook call, no loop.
    sockets[1].serverClose(1006);
    await settle();
    assert.equal(asked.length, 1);
    assert.equal(errors.at(-1).willRetry, false);
    assert.equal(c.state, 'closed');
    clock.advance(120_000);
    assert.equal(sockets.length, 2);
  });

  test('a hook that gives no token stops the client, with a last error that says so', async () => {
    const { env, sockets, clock } = fakeEnv();
    const errors = [];
    const c = connect({
      token: 'old.jwt',
      env: { ...env, fetch: fakeFetch(() => 401).fetch },
      onTokenExpiring: () => null,
    });
    c.on('error', (e) => errors.push(e.willRetry));
    sockets[0].serverClose(1006);
    await settle();
    assert.deepEqual(errors, [true, false]);
    assert.equal(c.lastError.willRetry, false);
    assert.equal(c.state, 'closed');
    clock.advance(120_000);
    assert.equal(sockets.length, 1);
  });

  test('a probe that finds the handshake acceptable (400) or the hub busy (503) backs off as usual', async () => {
    for (const status of [400, 503]) {
      const { env, sockets, clock } = fakeEnv();
      const closes = [];
      const errors = [];
      const c = connect({ token: 't', env: { ...env, fetch: fakeFetch(() => status).fetch } });
      c.on('close', (e) => closes.push(e));
      c.on('error', (e) => errors.push(e));
      sockets[0].serverClose(1006);
      await settle();
      assert.equal(closes[0].willReconnect, true, `status ${status}`);
      assert.deepEqual(errors, []);
      clock.advance(BACKOFF_CAP_MS);
      assert.equal(sockets.length, 2);
      c.close();
    }
  });

  test('a 403 (Origin or Host refused) is reported as forbidden and stops', async () => {
    const { env, sockets, clock } = fakeEnv();
    const errors = [];
    const c = connect({ user: 'alice', env: { ...env, fetch: fakeFetch(() => 403).fetch } });
    c.on('error', (e) => errors.push(e));
    sockets[0].serverClose(1006);
    await settle();
    assert.equal(errors[0].code, 'forbidden');
    assert.equal(c.state, 'closed');
    clock.advance(120_000);
    assert.equal(sockets.length, 1);
  });

  test('no probe after a socket that opened: a drop is never taken for a refusal', async () => {
    const { env, sockets } = fakeEnv();
    const probe = fakeFetch(() => 401);
    const c = connect({ token: 't', env: { ...env, fetch: probe.fetch } });
    sockets[0].serverOpen();
    sockets[0].serverClose(1006);
    await settle();
    assert.equal(probe.calls.length, 0);
    assert.equal(c.state, 'reconnecting');
    c.close();
  });

  test('an unreadable probe backs off; a streak of them asks for a fresh token once', async () => {
    const { env, sockets, clock } = fakeEnv();
    const probe = fakeFetch(() => new TypeError('Failed to fetch'));
    const asked = [];
    const c = connect({
      token: 'old.jwt',
      env: { ...env, fetch: probe.fetch },
      onTokenExpiring: (info) => {
        asked.push(info.reason);
        return 'fresh.jwt';
      },
    });
    for (let i = 0; i < SUSPECT_TOKEN_AFTER + 2; i += 1) {
      sockets.at(-1).serverClose(1006);
      await settle();
      assert.equal(c.state, 'reconnecting');
      clock.advance(BACKOFF_CAP_MS);
    }
    assert.deepEqual(asked, ['unreachable'], 'once per streak');
    assert.equal(sockets.length, SUSPECT_TOKEN_AFTER + 3, 'still retrying');
    assert.equal(new URL(sockets.at(-1).url).searchParams.get('token'), 'fresh.jwt');
    c.close();
  });

  test('close 4001 on a live socket is unauthorized; the hook gives a token for a new session', async () => {
    const { env, sockets, clock, storage } = fakeEnv();
    const asked = [];
    const seen = [];
    const c = connect({
      token: 'old.jwt',
      env,
      onTokenExpiring: ({ reason }) => {
        asked.push(reason);
        return 'new.jwt';
      },
    });
    c.on('terminated', (e) => seen.push(['terminated', e.reason, e.final]));
    c.on('error', (e) => seen.push(['error', e.code, e.willRetry]));
    sockets[0].serverOpen({ resume_token: 'tok-1' });
    sockets[0].serverSend({ type: 'terminated', reason: 'token_expired' });
    sockets[0].serverClose(4001, 'token_expired');
    await settle();
    assert.deepEqual(seen, [
      ['terminated', 'token_expired', true],
      ['error', 'unauthorized', true],
    ]);
    assert.deepEqual(asked, ['unauthorized']);
    clock.advance(0);
    assert.equal(sockets.length, 2);
    const url = new URL(sockets[1].url);
    assert.equal(url.searchParams.get('token'), 'new.jwt');
    assert.equal(url.searchParams.get('resume'), null, 'an expired session cannot be resumed');
    assert.equal(storage.getItem(RESUME_KEY), null);
    // A welcome resets the once-only rule: the next expiry asks again.
    sockets[1].serverOpen();
    assert.equal(c.lastError, null);
    sockets[1].serverClose(4001, 'token_expired');
    await settle();
    assert.deepEqual(asked, ['unauthorized', 'unauthorized']);
    c.close();
  });

  test('a token_expired frame followed by a drop (no 4001) still ends as terminated', async () => {
    const { env, sockets, clock } = fakeEnv();
    const c = connect({ token: 'old.jwt', env });
    sockets[0].serverOpen();
    sockets[0].serverSend({ type: 'terminated', reason: 'token_expired' });
    sockets[0].serverClose(1006);
    await settle();
    assert.equal(c.state, 'terminated');
    assert.equal(c.lastError.code, 'unauthorized');
    clock.advance(120_000);
    assert.equal(sockets.length, 1);
  });
});

describe('rooms', () => {
  const member = (user_id, extra = {}) => ({
    user_id,
    name: null,
    status: 'active',
    manual: null,
    session_count: 1,
    page: null,
    joined_at: `2026-01-01T00:00:0${user_id.length}.000Z`,
    ...extra,
  });

  test('a room object applies snapshots and diffs and reports both', () => {
    const room = new PresenceRoom('doc:1');
    const seen = [];
    room.onChange((members, changes) =>
      seen.push([members.map((m) => m.user_id), changes.map((c) => `${c.event}:${c.member.user_id}`)]),
    );
    assert.equal(room.applyFrame({ type: 'room', room: 'doc:1', seq: 0, members: [member('bob'), member('al')] }), 'applied');
    assert.deepEqual(room.members.map((m) => m.user_id), ['al', 'bob'], 'oldest first');
    room.applyFrame({
      type: 'presence',
      room: 'doc:1',
      seq: 1,
      changes: [
        { event: 'join', member: member('carol') },
        { event: 'update', member: member('al', { manual: 'busy' }) },
      ],
    });
    assert.equal(room.member('al').manual, 'busy');
    room.applyFrame({ type: 'presence', room: 'doc:1', seq: 2, changes: [{ event: 'leave', member: member('bob') }] });
    assert.deepEqual(room.members.map((m) => m.user_id), ['al', 'carol']);
    assert.deepEqual(seen, [
      [['al', 'bob'], ['join:al', 'join:bob']],
      [['al', 'bob', 'carol'], ['join:carol', 'update:al']],
      [['al', 'carol'], ['leave:bob']],
    ]);
    assert.equal(room.applyFrame({ type: 'presence', room: 'other', seq: 3, changes: [] }), 'ignored');
  });

  test('a fresh snapshot is reported as the difference to what the room held', () => {
    const room = new PresenceRoom('r');
    room.applyFrame({ type: 'room', room: 'r', seq: 0, members: [member('al'), member('bob')] });
    let last = null;
    room.onChange((_members, changes) => {
      last = changes;
    });
    room.applyFrame({ type: 'room', room: 'r', seq: 0, members: [member('al', { status: 'idle' }), member('dan')] });
    assert.deepEqual(
      last.map((c) => `${c.event}:${c.member.user_id}`).sort(),
      ['join:dan', 'leave:bob', 'update:al'],
    );
    assert.equal(room.seq, 0, 'numbering starts again');
  });

  test('a gap in seq is not applied', () => {
    const room = new PresenceRoom('r');
    assert.equal(room.applyFrame({ type: 'presence', room: 'r', seq: 1, changes: [] }), 'gap', 'before a snapshot');
    room.applyFrame({ type: 'room', room: 'r', seq: 0, members: [] });
    assert.equal(room.applyFrame({ type: 'presence', room: 'r', seq: 2, changes: [{ event: 'join', member: member('x') }] }), 'gap');
    assert.deepEqual(room.members, []);
    assert.equal(room.synced, false);
  });

  test('diffMembers and compareMembers', () => {
    assert.deepEqual(diffMembers([], []), []);
    assert.ok(compareMembers(member('a'), member('bb')) < 0);
    assert.ok(compareMembers(member('b'), member('a')) > 0, 'same time: by user id');
  });

  test('join and watch are sent once open, and again after every reconnect', () => {
    const { env, sockets, clock } = fakeEnv();
    const c = connect({ user: 'alice', env });
    const doc = c.join('doc:1');
    const lobby = c.watch('lobby');
    assert.equal(c.join('doc:1'), doc, 'one object per room');
    sockets[0].serverOpen();
    const roomMessages = (socket) => socket.sent.filter((m) => m.room != null);
    assert.deepEqual(roomMessages(sockets[0]), [
      { type: 'join', room: 'doc:1' },
      { type: 'watch', room: 'lobby' },
    ]);
    sockets[0].serverSend({ type: 'room', room: 'doc:1', seq: 0, members: [member('alice')] });
    sockets[0].serverSend({ type: 'presence', room: 'doc:1', seq: 1, changes: [{ event: 'join', member: member('bob') }] });
    assert.deepEqual(doc.members.map((m) => m.user_id), ['bob', 'alice'].sort((a, b) => compareMembers(member(a), member(b))));
    sockets[0].serverClose(1006);
    assert.equal(doc.synced, false);
    clock.advance(60_000);
    sockets[1].serverOpen();
    assert.deepEqual(roomMessages(sockets[1]), [
      { type: 'join', room: 'doc:1' },
      { type: 'watch', room: 'lobby' },
    ]);
    sockets[1].serverSend({ type: 'room', room: 'doc:1', seq: 0, members: [member('alice')] });
    assert.deepEqual(doc.members.map((m) => m.user_id), ['alice']);
    lobby.unwatch();
    doc.leave();
    assert.deepEqual(roomMessages(sockets[1]).slice(2), [
      { type: 'unwatch', room: 'lobby' },
      { type: 'leave', room: 'doc:1' },
    ]);
    assert.deepEqual(c.rooms(), []);
    c.close();
  });

  test('a gap asks the hub for a fresh snapshot; a refusal reaches the room', () => {
    const { env, sockets } = fakeEnv();
    const c = connect({ user: 'alice', env });
    sockets[0].serverOpen();
    const room = c.watch('r');
    sockets[0].serverSend({ type: 'room', room: 'r', seq: 0, members: [] });
    sockets[0].serverSend({ type: 'presence', room: 'r', seq: 5, changes: [] });
    assert.deepEqual(sockets[0].sent.filter((m) => m.room === 'r'), [
      { type: 'watch', room: 'r' },
      { type: 'watch', room: 'r' },
    ]);
    const errors = [];
    const secret = c.join('secret');
    secret.onError((e) => errors.push(e));
    sockets[0].serverSend({ type: 'error', code: 'forbidden', room: 'secret', message: 'no' });
    assert.deepEqual(errors, [{ code: 'forbidden', message: 'no', room: 'secret' }]);
    assert.equal(secret.error.code, 'forbidden');
    assert.equal(room.error, null);
    c.close();
  });
});
