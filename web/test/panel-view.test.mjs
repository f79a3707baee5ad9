// Unit tests for web/panel-view.js: the admin panel's page decisions.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';

import { CHART_WINDOW_MS, NO_ORG, PresenceModel, paginate } from '../panel-core.js';
import {
  adminStreamUrl,
  ariaSort,
  authFailureReason,
  chartLabel,
  chartSamples,
  drawerSession,
  errorMessage,
  formatClock,
  historyPager,
  isEnded,
  isoTitle,
  listedSessions,
  manualMark,
  mergePoints,
  movesStats,
  nextSort,
  nodeCounts,
  nodeItem,
  normalizeToken,
  orgOptions,
  peakText,
  renderRest,
  resubscribeAtOnce,
  retryText,
  revokePrompt,
  revokedText,
  seriesPoints,
  sessionListKey,
  sessionPick,
  sessionTimes,
  statusText,
  tabKeyTarget,
  tabsTitle,
  terminatePrompt,
  usersCountText,
} from '../panel-view.js';

const T0 = '2026-01-01T10:00:00.000Z';
const T0_MS = Date.parse(T0);

function session(id, userId, extra = {}) {
  return {
    session_id: id,
    user_id: userId,
    name: null,
    status: 'active',
    manual: null,
    transport: 'ws',
    page: '/',
    connected_at: T0,
    last_activity: T0,
    device: { platform: 'Linux', device_type: 'desktop', browser: 'Chrome' },
    ended_at: null,
    duration_s: 0,
    ...extra,
  };
}

describe('time and errors', () => {
  test('formatClock: seconds today, the date on another day, "-" for none', () => {
    assert.equal(formatClock(null), '-');
    assert.equal(formatClock(undefined), '-');
    const today = formatClock(T0_MS, T0_MS + 60_000);
    const expectedToday = new Date(T0_MS).toLocaleTimeString([], {
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    });
    assert.equal(today, expectedToday);
    const month = new Date(T0_MS).toLocaleString([], { month: 'short' });
    const otherDay = formatClock(T0_MS, T0_MS + 3 * 86_400_000);
    assert.ok(otherDay.includes(month), `${otherDay} names the month`);
    assert.ok(!today.includes(month), `${today} does not`);
  });

  test('isoTitle', () => {
    assert.equal(isoTitle(null), '');
    assert.equal(isoTitle(T0_MS), T0);
  });

  test('errorMessage reads the error body, else says the status', async () => {
    const json = (body, status) =>
      new Response(JSON.stringify(body), {
        status,
        headers: { 'content-type': 'application/json' },
      });
    const notFound = json({ error: { message: 'no such session' } }, 404);
    assert.equal(await errorMessage(notFound), 'no such session');
    assert.equal(await errorMessage(json({ other: 1 }, 500)), 'HTTP 500');
    assert.equal(await errorMessage(new Response('not json', { status: 502 })), 'HTTP 502');
  });
});

describe('authentication and the stream', () => {
  test('normalizeToken strips spaces and a Bearer prefix', () => {
    assert.equal(normalizeToken('  abc.def.ghi \n'), 'abc.def.ghi');
    assert.equal(normalizeToken('Bearer abc'), 'abc');
    assert.equal(normalizeToken('bearer   abc'), 'abc');
    assert.equal(normalizeToken('   '), '');
  });

  test('authFailureReason', () => {
    assert.match(authFailureReason(403, true), /no admin role/);
    assert.match(authFailureReason(403, false), /no admin role/);
    assert.match(authFailureReason(401, true), /rejected or has expired/);
    assert.equal(authFailureReason(401, false), null);
  });

  test('adminStreamUrl follows the page scheme and passes token and org on', () => {
    const plain = adminStreamUrl('http://127.0.0.1:8080/', null);
    assert.equal(plain.href, 'ws://127.0.0.1:8080/admin/ws');
    const url = adminStreamUrl('https://hub.example/?org=acme#history', 'a.b c');
    assert.equal(url.protocol, 'wss:');
    assert.equal(url.pathname, '/admin/ws');
    assert.equal(url.searchParams.get('token'), 'a.b c');
    assert.equal(url.searchParams.get('org'), 'acme');
    assert.equal(url.hash, '');
  });

  test('resubscribeAtOnce only for a healthy stream after 4009 or a gap', () => {
    assert.equal(resubscribeAtOnce({ healthy: true, resync: false }, 4009), true);
    assert.equal(resubscribeAtOnce({ healthy: true, resync: true }, 4000), true);
    assert.equal(resubscribeAtOnce({ healthy: true, resync: false }, 1006), false);
    assert.equal(resubscribeAtOnce({ healthy: false, resync: true }, 4009), false);
  });

  test('movesStats: a started session or a user event', () => {
    assert.equal(movesStats({ type: 'session', event: 'started' }), true);
    assert.equal(movesStats({ type: 'session', event: 'updated' }), false);
    assert.equal(movesStats({ type: 'user' }), true);
    assert.equal(movesStats({ type: 'other' }), false);
    assert.equal(movesStats(null), false);
  });

  test('retryText counts down whole seconds', () => {
    assert.equal(retryText(10_000, 7_500), 'retrying in 3 s');
    assert.equal(retryText(10_000, 9_999), 'retrying in 1 s');
    assert.equal(retryText(10_000, 10_000), 'retrying…');
    assert.equal(retryText(10_000, 12_000), 'retrying…');
  });
});

describe('counters and the users table', () => {
  test('nodeCounts sorts by name and lists the serving node even when empty', () => {
    const byNode = new Map([
      ['n2', 3],
      ['n1', 1],
    ]);
    assert.deepEqual(nodeCounts(byNode, 'n3'), [
      { node: 'n1', count: 1, self: false },
      { node: 'n2', count: 3, self: false },
      { node: 'n3', count: 0, self: true },
    ]);
    assert.deepEqual(nodeCounts(byNode, 'n2')[1], { node: 'n2', count: 3, self: true });
    assert.deepEqual(nodeCounts(new Map(), null), []);
  });

  test('nodeItem: the "(this)" mark is a part of its own, never inside the cut-short name', () => {
    const long = 'node-eu-west-1-presence-7f3c9a1b2d4e';
    const self = nodeItem({ node: long, count: 12, self: true });
    assert.deepEqual(self, {
      name: long,
      title: `${long}: the node serving this panel`,
      selfMark: '(this)',
      count: '12',
    });
    assert.ok(!self.name.includes('(this)'));
    assert.deepEqual(nodeItem({ node: 'n2', count: 0, self: false }), {
      name: 'n2',
      title: 'n2',
      selfMark: null,
      count: '0',
    });
  });

  test('the NODES card CSS truncates only the name, not the "(this)" mark', async () => {
    const { readFile } = await import('node:fs/promises');
    const css = await readFile(new URL('../style.css', import.meta.url), 'utf8');
    const counters = await readFile(new URL('../counters.js', import.meta.url), 'utf8');
    assert.doesNotMatch(css, /\.node-name::after/, 'a mark inside the truncated name is cut off');
    const rule = css.match(/#counter-by-node \.node-self \{([^}]*)\}/);
    assert.ok(rule, 'a rule for .node-self');
    assert.match(rule[1], /flex:\s*none/, 'the mark does not shrink');
    assert.match(counters, /node-self/, 'counters.js renders the mark');
  });

  test('tabsTitle names the HTTP-heartbeat sessions the Tabs number leaves out', () => {
    assert.equal(tabsTitle({ tabs: 2, http: 0 }), '');
    assert.equal(
      tabsTitle({ tabs: 1, http: 1 }),
      '1 tab, plus 1 session kept by HTTP heartbeats (not counted as tabs)',
    );
    assert.equal(
      tabsTitle({ tabs: 0, http: 3 }),
      '0 tabs, plus 3 sessions kept by HTTP heartbeats (not counted as tabs)',
    );
  });

  test('peakText', () => {
    assert.equal(peakText(null), '-');
    assert.equal(peakText({ users: null }), '-');
    assert.equal(peakText({ users: 1 }), '1 user');
    assert.equal(peakText({ users: 0 }), '0 users');
    const at = formatClock(T0_MS, T0_MS);
    assert.equal(peakText({ users: 4, at: T0 }, T0_MS), `4 users at ${at}`);
  });

  test('orgOptions: all, no org when needed, the orgs, and the selected one kept', () => {
    const values = (r) => r.options.map((o) => o.value);
    const plain = orgOptions({ orgs: ['acme', 'globex'], hasNone: false }, '');
    assert.deepEqual(values(plain), ['', 'acme', 'globex']);
    assert.equal(plain.options[0].label, 'All orgs');
    const none = orgOptions({ orgs: ['acme'], hasNone: true }, '');
    assert.deepEqual(values(none), ['', NO_ORG, 'acme']);
    assert.equal(none.options[1].label, '(no org)');
    assert.deepEqual(values(orgOptions({ orgs: [], hasNone: false }, NO_ORG)), ['', NO_ORG]);
    const orgs = ['acme'];
    const kept = orgOptions({ orgs, hasNone: false }, 'initech');
    assert.deepEqual(values(kept), ['', 'acme', 'initech']);
    assert.deepEqual(orgs, ['acme'], 'the model list is not changed');
    assert.notEqual(kept.key, plain.key);
    assert.equal(orgOptions({ orgs: ['acme', 'globex'], hasNone: false }, 'acme').key, plain.key);
  });

  test('nextSort reverses the same key; counts and times start descending', () => {
    assert.deepEqual(nextSort({ sortKey: 'status', sortDir: 'asc' }, 'status'), {
      sortKey: 'status',
      sortDir: 'desc',
    });
    assert.deepEqual(nextSort({ sortKey: 'status', sortDir: 'desc' }, 'status').sortDir, 'asc');
    assert.deepEqual(nextSort({ sortKey: 'status', sortDir: 'desc' }, 'name'), {
      sortKey: 'name',
      sortDir: 'asc',
    });
    for (const key of ['tabs', 'online_since', 'last_activity']) {
      assert.equal(nextSort({ sortKey: 'name', sortDir: 'asc' }, key).sortDir, 'desc', key);
    }
  });

  test('ariaSort', () => {
    const view = { sortKey: 'org', sortDir: 'desc' };
    assert.equal(ariaSort(view, 'org'), 'descending');
    assert.equal(ariaSort({ ...view, sortDir: 'asc' }, 'org'), 'ascending');
    assert.equal(ariaSort(view, 'name'), 'none');
  });

  test('usersCountText', () => {
    const list = Array.from({ length: 240 }, (_, i) => i);
    assert.equal(usersCountText(paginate(list, 2, 100), 240, false), '101–200 of 240 users');
    assert.equal(
      usersCountText(paginate(list, 1, 100), 300, true),
      '1–100 of 240 (filtered from 300) users',
    );
    assert.equal(usersCountText(paginate([], 1, 100), 7, true), '0 of 7 users');
  });

  test('historyPager', () => {
    assert.deepEqual(historyPager(2, 50, 120, 50), {
      pages: 3,
      count: '51–100 of 120 ended sessions',
      info: '2 / 3',
    });
    assert.deepEqual(historyPager(1, 50, 0, 0), {
      pages: 1,
      count: '0–0 of 0 ended sessions',
      info: '1 / 1',
    });
    assert.equal(historyPager(3, 50, 120, 20).count, '101–120 of 120 ended sessions');
  });
});

describe('drawer and actions', () => {
  test('isEnded', () => {
    assert.equal(isEnded(session('s', 'u')), false);
    assert.equal(isEnded(session('s', 'u', { status: 'ended' })), true);
    assert.equal(isEnded(session('s', 'u', { ended_at: T0 })), true);
  });

  function model() {
    const m = new PresenceModel();
    m.applySnapshot({
      type: 'snapshot',
      seq: 0,
      at: T0,
      node_id: 'n1',
      users: [{ user_id: 'alice', status: 'active', session_count: 1 }],
      sessions: [session('live', 'alice')],
    });
    m.apply({ type: 'session', event: 'started', seq: 1, session: session('gone', 'alice') });
    m.apply({
      type: 'session',
      event: 'ended',
      seq: 2,
      session: session('gone', 'alice', { status: 'ended', ended_at: T0 }),
    });
    return m;
  }

  test('drawerSession: chosen, else newest live; live, recently ended or pinned', () => {
    const m = model();
    const live = m.sessionsOf('alice');
    assert.equal(drawerSession(m, { sessionId: null, pinned: null }, live)?.session_id, 'live');
    assert.equal(drawerSession(m, { sessionId: 'gone', pinned: null }, live)?.status, 'ended');
    const pinned = session('old', 'alice', { status: 'ended' });
    assert.equal(drawerSession(m, { sessionId: 'old', pinned }, live), pinned);
    assert.equal(drawerSession(m, { sessionId: 'other', pinned }, live), null);
    assert.equal(drawerSession(m, { sessionId: null, pinned: null }, []), null);
  });

  test('listedSessions adds the shown session when it is not live', () => {
    const live = [session('a', 'u'), session('b', 'u')];
    assert.deepEqual(listedSessions(live, live[1]).map((s) => s.session_id), ['a', 'b']);
    const ended = session('c', 'u', { status: 'ended' });
    assert.deepEqual(listedSessions(live, ended).map((s) => s.session_id), ['a', 'b', 'c']);
    assert.deepEqual(listedSessions(live, null).length, 2);
    assert.equal(live.length, 2, 'the live list is not changed');
  });

  test('sessionListKey changes with what the list shows', () => {
    const a = session('a', 'u');
    const key = sessionListKey([a], a);
    assert.equal(sessionListKey([{ ...a }], a), key);
    assert.notEqual(sessionListKey([a], null), key, 'selection');
    assert.notEqual(sessionListKey([{ ...a, status: 'idle' }], a), key, 'status');
    assert.notEqual(sessionListKey([{ ...a, manual: 'busy' }], a), key, 'manual');
    assert.notEqual(sessionListKey([{ ...a, page: '/x' }], a), key, 'page');
  });

  test('a manual away reads and is marked apart from a derived away', () => {
    assert.equal(statusText('away', 'away'), 'away (manual)');
    assert.equal(statusText('away', null), 'away');
    assert.equal(statusText('active', 'busy'), 'active', 'busy is shown beside, not in, the text');
    assert.equal(statusText('idle', null), 'idle');
    assert.notEqual(statusText('away', 'away'), statusText('away', null));
    assert.equal(manualMark('away', 'away'), 'away');
    assert.equal(manualMark('away', null), '');
    assert.equal(manualMark('idle', 'busy'), 'busy');
    assert.equal(manualMark('ended', null), '');
  });

  test('sessionPick', () => {
    assert.deepEqual(sessionPick(session('a', 'u', { manual: 'busy', page: '/shop' })), {
      status: 'active',
      manual: 'busy',
      mark: 'busy',
      label: 'Chrome on Linux (desktop)',
      sub: 'active (busy) · /shop',
    });
    const setAway = sessionPick(session('a', 'u', { status: 'away', manual: 'away' }));
    assert.equal(setAway.sub, 'away (manual) · /', 'not "away (away)"');
    assert.equal(setAway.mark, 'away');
    const wentAway = sessionPick(session('a', 'u', { status: 'away' }));
    assert.equal(wentAway.sub, 'away · /');
    assert.equal(wentAway.mark, '');
    const http = sessionPick(session('a', 'u', { status: 'idle', transport: 'http', page: null }));
    assert.equal(http.sub, 'idle · no page · via HTTP heartbeats');
    const ended = sessionPick(session('a', 'u', { ended_at: T0, manual: 'busy' }));
    assert.equal(ended.status, 'ended');
    assert.equal(ended.manual, null);
    assert.equal(ended.sub, 'ended · /');
  });

  test('sessionTimes: ticking while live, final once ended', () => {
    const now = T0_MS + 90_000;
    const recent = new Date(T0_MS + 80_000).toISOString();
    const live = sessionTimes(session('a', 'u', { last_activity: recent }), now);
    assert.deepEqual(live, { duration: 90, lastActivity: '10 s ago' });
    const unknown = session('a', 'u', { connected_at: null, last_activity: null });
    assert.deepEqual(sessionTimes(unknown, now), { duration: null, lastActivity: '-' });
    const ended = sessionTimes(session('a', 'u', { status: 'ended', duration_s: 42 }), now);
    assert.equal(ended.duration, 42);
    assert.equal(ended.lastActivity, new Date(T0_MS).toLocaleString());
  });

  test('terminatePrompt names who, where and the page', () => {
    const p = terminatePrompt(session('a', 'alice', { name: 'Alice', page: '/shop' }));
    assert.equal(p.title, 'Terminate session?');
    assert.equal(p.confirmLabel, 'Terminate session');
    assert.match(p.message, /^This ends Alice's session on Chrome on Linux \(desktop\) \(\/shop\)\. /);
    const noPage = terminatePrompt(session('a', 'alice', { page: null }));
    assert.match(noPage.message, /^This ends alice's session on Chrome on Linux \(desktop\)\. /);
    const unknown = terminatePrompt(null);
    assert.match(unknown.message, /^This ends this user's session on Unknown browser\. /);
    assert.match(p.message, /token still works/, 'terminating does not lock the user out');
  });

  test('revokePrompt and revokedText count sessions', () => {
    const one = revokePrompt({ name: 'Alice' }, 'alice', 1);
    assert.equal(one.title, 'Sign out everywhere?');
    assert.equal(one.confirmLabel, 'Sign out everywhere');
    assert.match(one.message, /^This ends all 1 live session of Alice \(alice\)\. /);
    const two = revokePrompt(undefined, 'bob', 2);
    assert.match(two.message, /^This ends all 2 live sessions of bob \(bob\)\. /);
    assert.match(two.message, /tokens they hold are refused/, 'revoking denies the tokens');
    assert.equal(revokedText(2), 'Signed out: 2 sessions ended.');
    assert.equal(revokedText(1), 'Signed out: 1 session ended.');
    assert.equal(revokedText(undefined), 'Signed out: 0 sessions ended.');
  });
});

describe('chart, tabs, rendering', () => {
  test('seriesPoints reads the hub series, oldest first, skipping bad points', () => {
    const body = {
      interval_ms: 10_000,
      points: [
        { at: '2026-01-01T00:00:10.000Z', users: 2, sessions: 3 },
        { at: 'later', users: 1, sessions: 1 },
        { at: '2026-01-01T00:00:00.000Z', users: 1, sessions: 1 },
        { at: '2026-01-01T00:00:20.000Z', users: null, sessions: 1 },
      ],
    };
    const t = Date.parse('2026-01-01T00:00:00.000Z');
    assert.deepEqual(seriesPoints(body), [
      { t, users: 1, sessions: 1 },
      { t: t + 10_000, users: 2, sessions: 3 },
    ]);
    assert.deepEqual(seriesPoints(null), []);
    assert.deepEqual(seriesPoints({ points: 'x' }), []);
  });

  test('mergePoints replaces by time and keeps only the window', () => {
    const now = T0_MS + 2 * CHART_WINDOW_MS;
    const stale = { t: now - CHART_WINDOW_MS - 1, users: 9, sessions: 9 };
    const kept = [stale, { t: now - 20_000, users: 1, sessions: 1 }];
    const fresh = [
      { t: now - 20_000, users: 2, sessions: 2 },
      { t: now - 10_000, users: 3, sessions: 4 },
    ];
    assert.deepEqual(mergePoints(kept, fresh, now), fresh);
  });

  test('chartSamples breaks the line where points are missing and when they stop', () => {
    const p = (t) => ({ t, users: 1, sessions: 1 });
    const gap = (t) => ({ t, users: null, sessions: null });
    assert.deepEqual(chartSamples([p(0), p(10), p(20)], 10, 25), [p(0), p(10), p(20)]);
    assert.deepEqual(chartSamples([p(0), p(50)], 10, 55), [p(0), gap(10), p(50)]);
    assert.deepEqual(chartSamples([p(0)], 10, 31), [p(0), gap(31)]);
    assert.deepEqual(chartSamples([], 10, 31), []);
  });

  test('chartLabel', () => {
    assert.equal(chartLabel(undefined, null), 'No live samples yet');
    assert.equal(chartLabel({ users: null, sessions: null }, 4), 'No live samples yet');
    assert.equal(
      chartLabel({ users: 3, sessions: 5 }, 4),
      'Now 3 users online in 5 sessions; at most 4 users in the last hour',
    );
  });

  test('tabKeyTarget wraps with the arrows and jumps with Home/End', () => {
    assert.equal(tabKeyTarget('ArrowRight', 0, 2), 1);
    assert.equal(tabKeyTarget('ArrowRight', 1, 2), 0);
    assert.equal(tabKeyTarget('ArrowLeft', 0, 2), 1);
    assert.equal(tabKeyTarget('Home', 1, 2), 0);
    assert.equal(tabKeyTarget('End', 0, 3), 2);
    assert.equal(tabKeyTarget('Enter', 0, 2), null);
  });

  test('renderRest: four times the last render, from its end', () => {
    assert.equal(renderRest(0, 0, 100), 0);
    assert.equal(renderRest(100, 10, 100), 40);
    assert.equal(renderRest(100, 10, 130), 10);
    assert.equal(renderRest(100, 10, 200), 0);
  });
});

describe('panel markup and styles', () => {
  const read = async (file) => {
    const { readFile } = await import('node:fs/promises');
    return readFile(new URL(`../${file}`, import.meta.url), 'utf8');
  };

  test('session ids never wrap mid-string', async () => {
    const css = await read('style.css');
    const rule = css.match(/(?:^|\n)code\.id \{([^}]*)\}/);
    assert.ok(rule, 'a code.id rule');
    assert.match(rule[1], /white-space:\s*nowrap/);
    // The global `code { word-break: break-all }` must be undone for ids.
    assert.match(rule[1], /word-break:\s*normal/);
    assert.match(rule[1], /overflow-wrap:\s*normal/);
    for (const [file, pattern] of [
      ['index.html', /<code[^>]*data-field="session-id"[^>]*>/g],
      ['demo.html', /<code[^>]*id="demo-session-id"[^>]*>/g],
    ]) {
      const tags = (await read(file)).match(pattern) ?? [];
      assert.ok(tags.length > 0, `${file} shows a session id`);
      for (const tag of tags) assert.match(tag, /class="id"/, `${file}: ${tag}`);
    }
  });

  test('a manual away has its own dot style, and the Tabs hint is a pseudo-element', async () => {
    const css = await read('style.css');
    assert.match(css, /\.dot\[data-status="away"\]\[data-manual="away"\] \{/);
    assert.match(css, /\[data-field="session-count"\]\[data-http\]::after \{[^}]*attr\(data-http\)/);
  });
});
