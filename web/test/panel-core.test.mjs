// Unit tests for web/panel-core.js: the admin panel's model and pure helpers.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';

import {
  PresenceModel,
  NO_ORG,
  addSample,
  chartPaths,
  checkSeq,
  compareRows,
  countPresence,
  csvFilename,
  describeApp,
  describeDevice,
  exportQuery,
  formatAgo,
  formatDuration,
  historyQuery,
  matchesFilters,
  niceMax,
  paginate,
  selectUsers,
  sessionTabs,
  userRow,
  userTabs,
} from '../panel-core.js';

const T0 = '2026-01-01T10:00:00.000Z';
const at = (s) => new Date(Date.parse(T0) + s * 1000).toISOString();

function user(id, extra = {}) {
  return {
    user_id: id,
    name: id[0].toUpperCase() + id.slice(1),
    org: 'acme',
    status: 'active',
    manual: null,
    session_count: 1,
    online_since: T0,
    last_activity: T0,
    ...extra,
  };
}

function session(id, userId, extra = {}) {
  return {
    session_id: id,
    user_id: userId,
    name: null,
    org: 'acme',
    node_id: 'n1',
    transport: 'ws',
    status: 'active',
    manual: null,
    connected_at: T0,
    last_activity: T0,
    page: '/',
    ip: '127.0.0.1',
    user_agent: 'x',
    device: { platform: 'Linux', device_type: 'desktop', browser: 'Chrome' },
    app: null,
    meta: null,
    ended_at: null,
    end_cause: null,
    duration_s: 0,
    ...extra,
  };
}

function snapshotModel() {
  const m = new PresenceModel();
  m.applySnapshot(
    {
      type: 'snapshot',
      seq: 0,
      at: T0,
      node_id: 'n1',
      users: [user('alice', { session_count: 2 }), user('bob', { org: null, status: 'idle' })],
      sessions: [
        session('s1', 'alice'),
        session('s2', 'alice', { node_id: 'n2', connected_at: at(5) }),
        session('s3', 'bob', { org: null, status: 'idle' }),
      ],
    },
    Date.parse(T0) + 2_000,
  );
  return m;
}

describe('formatting', () => {
  test('formatAgo', () => {
    assert.equal(formatAgo(null), '-');
    assert.equal(formatAgo(-500), 'just now');
    assert.equal(formatAgo(999), 'just now');
    assert.equal(formatAgo(12_400), '12 s ago');
    assert.equal(formatAgo(5 * 60_000 + 3_000), '5 min ago');
    assert.equal(formatAgo(3 * 3_600_000), '3 h ago');
    assert.equal(formatAgo(72 * 3_600_000), '3 d ago');
  });
  test('formatDuration', () => {
    assert.equal(formatDuration(null), '-');
    assert.equal(formatDuration(45.9), '45 s');
    assert.equal(formatDuration(12 * 60 + 3), '12 min 03 s');
    assert.equal(formatDuration(2 * 3600 + 5 * 60), '2 h 05 min');
    assert.equal(formatDuration(3 * 86400 + 4 * 3600), '3 d 4 h');
  });
  test('device and app', () => {
    assert.equal(describeDevice(session('s', 'u')), 'Chrome on Linux (desktop)');
    assert.equal(describeDevice({ device: {} }), 'Unknown browser');
    assert.equal(describeApp({ app: { name: 'shop', version: '1.4' } }), 'shop 1.4');
    assert.equal(describeApp({ app: null }), '-');
  });
});

describe('PresenceModel', () => {
  test('snapshot fills users, sessions and the per-user index', () => {
    const m = snapshotModel();
    assert.equal(m.users.size, 2);
    assert.equal(m.sessions.size, 3);
    assert.deepEqual(
      m.sessionsOf('alice').map((s) => s.session_id),
      ['s2', 's1'],
    );
    assert.equal(m.nextSeq, 1);
    assert.equal(m.skewMs, 2_000);
    assert.equal(m.serverNow(Date.parse(T0) + 7_000), Date.parse(T0) + 5_000);
  });

  test('events in order apply; a gap is reported and changes nothing', () => {
    const m = snapshotModel();
    let r = m.apply({ type: 'session', seq: 1, event: 'started', session: session('s4', 'carol') });
    assert.deepEqual(r, { kind: 'session', userId: 'carol', sessionId: 's4' });
    r = m.apply({ type: 'user', seq: 2, user: user('carol') });
    assert.equal(r.kind, 'user');
    assert.equal(m.users.size, 3);
    r = m.apply({ type: 'user', seq: 4, user: user('dave') });
    assert.deepEqual(r, { kind: 'gap', expected: 3, got: 4 });
    assert.equal(m.users.has('dave'), false);
    r = m.apply({ type: 'user', seq: 2, user: user('dave') });
    assert.equal(r.kind, 'gap', 'a repeated seq is a gap too');
  });

  test('unnumbered frames of other types are ignored, not a gap', () => {
    const m = snapshotModel();
    assert.equal(m.apply({ type: 'notice', text: 'hi' }).kind, 'ignored');
    assert.equal(m.apply({ type: 'user', seq: 1, user: user('carol') }).kind, 'user');
    assert.equal(m.apply({ type: 'notice', seq: 5 }).kind, 'gap');
  });

  test('events before any snapshot are a gap', () => {
    const m = new PresenceModel();
    assert.equal(m.apply({ type: 'user', seq: 1, user: user('x') }).kind, 'gap');
  });

  test('ended sessions leave the live set but are remembered', () => {
    const m = snapshotModel();
    const ended = session('s1', 'alice', { status: 'ended', end_cause: 'terminated' });
    m.apply({ type: 'session', seq: 1, event: 'ended', session: ended });
    assert.equal(m.sessions.has('s1'), false);
    assert.equal(m.session('s1').end_cause, 'terminated');
    assert.deepEqual(
      m.sessionsOf('alice').map((s) => s.session_id),
      ['s2'],
    );
  });

  test('an offline user disappears with any sessions left', () => {
    const m = snapshotModel();
    m.apply({ type: 'user', seq: 1, user: user('bob', { status: 'offline', session_count: 0 }) });
    assert.equal(m.users.has('bob'), false);
    assert.equal(m.sessions.has('s3'), false);
    assert.equal(m.sessionsByUser.has('bob'), false);
  });

  test('last activity is the newest of the user and its sessions', () => {
    const m = snapshotModel();
    m.apply({
      type: 'session',
      seq: 1,
      event: 'updated',
      session: session('s2', 'alice', { last_activity: at(30) }),
    });
    assert.equal(m.lastActivityOf('alice'), Date.parse(at(30)));
  });

  test('a new snapshot replaces everything and resets seq', () => {
    const m = snapshotModel();
    m.apply({ type: 'user', seq: 1, user: user('carol') });
    m.applySnapshot({ type: 'snapshot', seq: 0, at: T0, users: [user('zed')], sessions: [] });
    assert.deepEqual([...m.users.keys()], ['zed']);
    assert.equal(m.sessions.size, 0);
    assert.equal(m.nextSeq, 1);
  });

  test('orgs lists distinct orgs and notes users without one', () => {
    assert.deepEqual(snapshotModel().orgs(), { orgs: ['acme'], hasNone: true });
  });
});

test('checkSeq', () => {
  assert.equal(checkSeq(3, 3), 'ok');
  assert.equal(checkSeq(3, 4), 'gap');
  assert.equal(checkSeq(3, undefined), 'gap');
});

test('countPresence', () => {
  const c = countPresence(snapshotModel());
  assert.equal(c.onlineUsers, 2);
  assert.equal(c.live, 3);
  assert.equal(c.active, 2);
  assert.equal(c.idle, 1);
  assert.equal(c.away, 0);
  assert.deepEqual([...c.byNode], [
    ['n1', 2],
    ['n2', 1],
  ]);
});

describe('tabs and manual away', () => {
  test('sessionTabs counts WebSocket sessions as tabs, HTTP-heartbeat ones apart', () => {
    assert.deepEqual(sessionTabs([]), { tabs: 0, http: 0 });
    assert.deepEqual(
      sessionTabs([session('a', 'u'), session('b', 'u', { transport: 'http' }), session('c', 'u')]),
      { tabs: 2, http: 1 },
    );
  });

  test("a user's Tabs leave out sessions kept by HTTP heartbeats", () => {
    const m = new PresenceModel();
    m.applySnapshot({
      type: 'snapshot',
      seq: 0,
      at: T0,
      node_id: 'n1',
      // session_count counts every transport: 3.
      users: [user('alice', { session_count: 3 }), user('svc', { session_count: 1 })],
      sessions: [
        session('s1', 'alice'),
        session('s2', 'alice', { transport: 'http' }),
        session('s3', 'alice'),
        session('s4', 'svc', { transport: 'http' }),
      ],
    });
    assert.deepEqual(userTabs(m, m.users.get('alice')), { tabs: 2, http: 1 });
    const alice = m.row('alice');
    assert.equal(alice.tabs, 2);
    assert.equal(alice.httpSessions, 1);
    assert.equal(m.row('svc').tabs, 0, 'an integration is not a tab');
    assert.deepEqual(
      selectUsers(m, { sortKey: 'tabs', sortDir: 'desc' }).map((r) => r.id),
      ['alice', 'svc'],
    );
    // A user whose sessions the model does not hold falls back to session_count.
    assert.deepEqual(userTabs(new PresenceModel(), user('x', { session_count: 2 })), { tabs: 2, http: 0 });
  });

  test('the row tells a manual away from a derived one', () => {
    const m = new PresenceModel();
    const set = userRow(m, user('a', { status: 'away', manual: 'away' }));
    const went = userRow(m, user('b', { status: 'away', manual: null }));
    assert.equal(set.manualAway, true);
    assert.equal(went.manualAway, false);
    assert.equal(set.status, went.status, 'both filter and sort as away');
  });
});

describe('users table selection', () => {
  const row = (extra) => ({
    id: 'alice',
    name: 'Alice',
    org: 'acme',
    status: 'active',
    busy: false,
    tabs: 1,
    onlineSince: 0,
    lastActivity: 0,
    ...extra,
  });
  test('filters', () => {
    assert.ok(matchesFilters(row(), {}));
    assert.ok(matchesFilters(row(), { q: 'LIC' }));
    assert.ok(matchesFilters(row(), { q: 'acm' }));
    assert.ok(!matchesFilters(row(), { q: 'bob' }));
    assert.ok(matchesFilters(row(), { status: 'active' }));
    assert.ok(!matchesFilters(row(), { status: 'idle' }));
    assert.ok(!matchesFilters(row(), { status: 'busy' }));
    assert.ok(matchesFilters(row({ busy: true, status: 'idle' }), { status: 'busy' }));
    assert.ok(!matchesFilters(row(), { org: 'other' }));
    assert.ok(matchesFilters(row({ org: '' }), { org: NO_ORG }));
    assert.ok(!matchesFilters(row(), { org: NO_ORG }));
  });
  test('sorting with stable ties', () => {
    const rows = [
      row({ id: 'c', name: 'Carol', status: 'away', tabs: 3 }),
      row({ id: 'a', name: 'alice', status: 'idle', tabs: 1 }),
      row({ id: 'b', name: 'Bob', status: 'active', tabs: 1 }),
    ];
    const ids = (key, dir) => [...rows].sort(compareRows(key, dir)).map((r) => r.id);
    assert.deepEqual(ids('status'), ['b', 'a', 'c']);
    assert.deepEqual(ids('name'), ['a', 'b', 'c']);
    assert.deepEqual(ids('name', 'desc'), ['c', 'b', 'a']);
    assert.deepEqual(ids('tabs', 'desc'), ['c', 'a', 'b']);
  });
  test('selectUsers applies filters and sort', () => {
    const m = snapshotModel();
    assert.deepEqual(
      selectUsers(m, { sortKey: 'status' }).map((r) => r.id),
      ['alice', 'bob'],
    );
    assert.deepEqual(
      selectUsers(m, { org: NO_ORG }).map((r) => r.id),
      ['bob'],
    );
    assert.equal(selectUsers(m, { q: 'ali' })[0].tabs, 2);
  });
  test('paginate clamps the page', () => {
    const list = Array.from({ length: 250 }, (_, i) => i);
    const p = paginate(list, 3, 100);
    assert.equal(p.items.length, 50);
    assert.equal(p.first, 201);
    assert.equal(p.last, 250);
    assert.equal(paginate(list, 9, 100).page, 3);
    assert.equal(paginate([], 2, 100).page, 1);
    assert.equal(paginate([], 1, 100).first, 0);
  });
});

describe('history and export queries', () => {
  test('historyQuery keeps only what is set', () => {
    const q = new URLSearchParams(historyQuery({ q: ' al ', org: '', page: 2, pageSize: 25 }));
    assert.equal(q.get('status'), 'ended');
    assert.equal(q.get('q'), 'al');
    assert.equal(q.has('org'), false);
    assert.equal(q.get('page'), '2');
    assert.equal(q.get('page_size'), '25');
  });
  test('datetime-local bounds become RFC 3339 UTC', () => {
    const q = new URLSearchParams(historyQuery({ from: '2026-01-01T10:00' }));
    assert.match(q.get('from'), /^2026-01-01T\d\d:00:00\.000Z$/);
    const e = new URLSearchParams(exportQuery({ to: '2026-01-02T00:00' }));
    assert.equal(e.get('format'), 'csv');
    assert.match(e.get('to'), /Z$/);
    assert.equal(e.has('from'), false);
  });
  test('csvFilename', () => {
    assert.equal(csvFilename(new Date('2026-03-04T05:06:07Z')), 'sessions-20260304-0506.csv');
  });
});

describe('chart', () => {
  test('addSample drops samples older than the window', () => {
    const s = [];
    for (let t = 0; t <= 100; t += 10) addSample(s, { t, users: t, sessions: t }, 50);
    assert.deepEqual(
      s.map((x) => x.t),
      [50, 60, 70, 80, 90, 100],
    );
  });
  test('niceMax', () => {
    assert.equal(niceMax(0), 5);
    assert.equal(niceMax(7), 8);
    assert.equal(niceMax(10), 10);
    assert.equal(niceMax(11), 15);
    assert.equal(niceMax(120), 150);
    assert.equal(niceMax(592), 600);
    assert.equal(niceMax(801), 1000);
  });
  test('chartPaths maps time to x and breaks on null', () => {
    const samples = [
      { t: 0, users: 0, sessions: 10 },
      { t: 50, users: null, sessions: null },
      { t: 75, users: 5, sessions: 10 },
      { t: 90, users: 10, sessions: 10 },
    ];
    const p = chartPaths(samples, { now: 100, width: 100, height: 10, windowMs: 100 });
    assert.equal(p.max, 10);
    assert.equal(p.users, 'M0.0,10.0M75.0,5.0L90.0,0.0H100.0');
    assert.equal(p.sessions, 'M0.0,0.0M75.0,0.0L90.0,0.0H100.0');
    assert.equal(p.peakUsers, 10);
  });
  test('a series ending in a gap does not reach now', () => {
    const samples = [
      { t: 10, users: 1, sessions: 1 },
      { t: 20, users: null, sessions: null },
    ];
    const p = chartPaths(samples, { now: 100, width: 100, height: 10, windowMs: 100 });
    assert.equal(p.users, 'M10.0,8.0');
  });
});
