// Unit tests for web/records-view.js: the panel's decisions about the
// records (analytics, audit, timeline, alerts, location).

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';

import { PresenceModel, selectUsers, userLocation } from '../panel-core.js';
import {
  ACTIVE_ALERTS_PATH,
  alertConcerns,
  alertsBadge,
  alertsFor,
  alertSubject,
  alertSummary,
  analyticsQueries,
  analyticsRange,
  anyLocated,
  applyAlert,
  auditCells,
  auditExportHref,
  auditFilename,
  auditQuery,
  dailyCells,
  durationCells,
  heatCellTitle,
  heatLevel,
  heatmapSummary,
  heatmapText,
  listPager,
  localInputValue,
  locationParts,
  mergeAlerts,
  sortedAlerts,
  timelineKey,
  timelineText,
  zoneOptions,
} from '../records-view.js';
import { tabFromHash } from '../panel-view.js';

const PARIS = { country: 'FR', city: 'Paris', timezone: 'Europe/Paris', lat: 48.8, lon: 2.3 };
const NEW_YORK = { country: 'US', city: 'New York', timezone: 'America/New_York', lat: 40.7, lon: -74 };

describe('location', () => {
  test('a located session shows its country and city, an unlocated one dashes', () => {
    assert.deepEqual(locationParts(PARIS), { country: 'FR', city: 'Paris', title: 'Paris, FR (Europe/Paris)' });
    assert.deepEqual(locationParts(null), { country: '-', city: '-', title: '' });
    assert.deepEqual(locationParts({ country: 'DE', city: null }), { country: 'DE', city: '-', title: 'DE' });
  });

  test("a user's location lists each distinct country and city once", () => {
    const s = (location) => ({ location });
    assert.deepEqual(userLocation([s(PARIS), s(NEW_YORK), s({ ...PARIS })]), {
      country: 'FR, US',
      city: 'Paris, New York',
    });
    assert.deepEqual(userLocation([s(null), s(undefined)]), { country: '-', city: '-' });
  });

  test('the users table rows carry the location of their live sessions', () => {
    const model = new PresenceModel();
    model.applySnapshot({
      seq: 0,
      at: new Date().toISOString(),
      users: [
        { user_id: 'ana', status: 'active', session_count: 1 },
        { user_id: 'dan', status: 'active', session_count: 1 },
      ],
      sessions: [
        { session_id: 'a1', user_id: 'ana', status: 'active', location: PARIS },
        { session_id: 'd1', user_id: 'dan', status: 'active', location: null },
      ],
    });
    const rows = selectUsers(model, { sortKey: 'name' });
    assert.deepEqual(
      rows.map((r) => [r.id, r.country, r.city]),
      [
        ['ana', 'FR', 'Paris'],
        ['dan', '-', '-'],
      ],
    );
    assert.equal(anyLocated(rows), true);
    assert.equal(anyLocated([rows[1]]), false, 'no location anywhere: the columns hide');
  });
});

describe('analytics', () => {
  test('a preset range ends now; a custom one takes the inputs, empty ones left out', () => {
    const now = Date.parse('2026-12-02T12:00:00Z');
    assert.deepEqual(analyticsRange({ preset: '1d' }, now), {
      from: '2026-12-01T12:00:00.000Z',
      to: '2026-12-02T12:00:00.000Z',
    });
    const custom = analyticsRange({ preset: 'custom', from: '', to: '' }, now);
    assert.deepEqual(custom, { from: null, to: null });
  });

  test('each route gets only the parameters it takes', () => {
    const range = { from: '2026-12-01T00:00:00.000Z', to: null };
    const q = analyticsQueries(range, { tz: 'Europe/Paris', metric: 'online_users', groupBy: 'org' });
    assert.equal(q.heatmap, 'from=2026-12-01T00%3A00%3A00.000Z&tz=Europe%2FParis&metric=online_users');
    assert.equal(q.durations, 'from=2026-12-01T00%3A00%3A00.000Z&group_by=org');
    assert.equal(q.daily, 'from=2026-12-01T00%3A00%3A00.000Z&tz=Europe%2FParis');
  });

  test('zones: UTC, and the local one when it differs', () => {
    assert.deepEqual(zoneOptions('Europe/Paris'), ['UTC', 'Europe/Paris']);
    assert.deepEqual(zoneOptions('UTC'), ['UTC']);
    assert.deepEqual(zoneOptions(undefined), ['UTC']);
  });

  test('the heatmap summary finds the maximum, the sum and the first peak', () => {
    const cells = Array.from({ length: 7 }, () => Array(24).fill(0));
    cells[1][14] = 3;
    cells[4][9] = 3;
    cells[6][23] = 1;
    const summary = heatmapSummary(cells);
    assert.deepEqual(summary, { max: 3, total: 7, peak: { day: 1, hour: 14, value: 3 } });
    assert.equal(heatmapText(summary, 'sessions_started'), '7 sessions started; busiest hour: Tue 14:00 (3).');
    assert.equal(heatmapText(summary, 'online_users'), 'Busiest hour: Tue 14:00, 3 users online at once.');
    assert.equal(heatmapText(heatmapSummary([]), 'sessions_started'), 'No session started in this range.');
  });

  test('levels go from 0 (none) to 4 (the maximum); any value is at least 1', () => {
    assert.equal(heatLevel(0, 10), 0);
    assert.equal(heatLevel(1, 100), 1);
    assert.equal(heatLevel(50, 100), 2);
    assert.equal(heatLevel(100, 100), 4);
    assert.equal(heatLevel(3, 0), 0);
  });

  test('cell titles name the day, the hour and the figure', () => {
    assert.equal(heatCellTitle(0, 9, 1, 'sessions_started'), 'Mon 09:00–10:00: 1 session started');
    assert.equal(heatCellTitle(6, 23, 4, 'online_users'), 'Sun 23:00–00:00: at most 4 users online');
  });

  test('durations and daily rows as texts', () => {
    const g = { key: null, sessions: 2, avg_s: 90, p50_s: 60, p90_s: 120, p99_s: 120, total_s: 180 };
    assert.equal(durationCells(g).key, 'All sessions');
    assert.deepEqual(durationCells(g, 'org'), {
      key: '(none)',
      sessions: '2',
      avg: '1 min 30 s',
      p50: '1 min 00 s',
      p90: '2 min 00 s',
      p99: '2 min 00 s',
      total: '3 min 00 s',
    });
    const day = {
      date: '2026-12-01',
      sessions_started: 5,
      distinct_users: 3,
      peak_online: { users: 2, at: '2026-12-01T10:00:00.000Z' },
      online_time_s: 3600,
    };
    assert.deepEqual(dailyCells(day, () => '10:00'), {
      date: '2026-12-01',
      sessionsStarted: '5',
      distinctUsers: '3',
      peakOnline: '2 at 10:00',
      onlineTime: '1 h 00 min',
    });
    const quiet = { date: '2026-12-02', sessions_started: 0, distinct_users: 0, peak_online: { users: 0, at: null }, online_time_s: 0 };
    assert.equal(dailyCells(quiet, () => '?').peakOnline, '0');
  });

  test('a datetime-local value is the local minute', () => {
    const ms = Date.parse('2026-12-02T12:34:56Z');
    assert.equal(Date.parse(localInputValue(ms)), ms - 56_000);
  });
});

describe('audit', () => {
  test('the query names only the filters given', () => {
    assert.equal(auditQuery({}), 'page=1&page_size=50');
    assert.equal(
      auditQuery({ action: 'session.terminate', actor: ' root ', userId: 'bob', page: 2, pageSize: 10 }),
      'action=session.terminate&actor=root&user_id=bob&page=2&page_size=10',
    );
    assert.match(auditQuery({ from: '2026-12-01T10:00' }), /^from=2026-12-01T\d\d%3A00%3A00\.000Z&page=1/);
  });

  test('the export links take the format and the time range only', () => {
    assert.equal(auditExportHref('csv', { action: 'auth.failed' }), '/api/v1/audit/export?format=csv');
    assert.match(auditExportHref('ndjson', { to: '2026-12-01T10:00' }), /^\/api\/v1\/audit\/export\?format=ndjson&to=2026-12-01T/);
    assert.equal(auditFilename('ndjson', new Date('2026-01-02T03:04:05Z')), 'audit-20260102-0304.ndjson');
  });

  test('rows say who did what to whom', () => {
    const terminate = {
      id: 'e1',
      at: '2026-12-01T10:00:00.000Z',
      action: 'session.terminate',
      actor: { user_id: 'root', role: 'admin', ip: '127.0.0.1' },
      target: { user_id: null, session_id: 's1' },
      reason: null,
      node_id: 'node-a',
      result: 'ok',
    };
    assert.deepEqual(auditCells(terminate), {
      action: 'Session terminated',
      actor: 'root (admin) from 127.0.0.1',
      target: 'session s1',
      result: 'ok',
      reason: '-',
      node: 'node-a',
    });
    const failed = auditCells({
      action: 'auth.failed',
      actor: { user_id: null, role: null, ip: '10.0.0.9' },
      target: { user_id: null, session_id: null },
      reason: 'folded:4',
      result: 'unauthorized',
    });
    assert.equal(failed.actor, 'unknown caller from 10.0.0.9');
    assert.equal(failed.target, '-');
    assert.equal(failed.reason, 'folded:4');
    assert.equal(auditCells({ action: 'new.kind', actor: null, target: {} }).action, 'new.kind');
  });

  test('the pager counts the shown page', () => {
    assert.deepEqual(listPager(2, 50, 120, 50, 'events'), { pages: 3, count: '51–100 of 120 events', info: '2 / 3' });
    assert.deepEqual(listPager(1, 50, 0, 0, 'events'), { pages: 1, count: '0–0 of 0 events', info: '1 / 1' });
  });
});

describe('timeline', () => {
  test('each kind reads as a sentence', () => {
    assert.equal(timelineText({ kind: 'status', from: 'active', to: 'idle' }), 'Status active → idle');
    assert.equal(timelineText({ kind: 'manual', from: null, to: 'busy' }), 'Manual status none → busy');
    assert.equal(timelineText({ kind: 'page', from: '/a', to: '/b' }), 'Page /a → /b');
    assert.equal(timelineText({ kind: 'room_join', from: null, to: 'doc:1' }), 'Joined room doc:1');
    assert.equal(timelineText({ kind: 'room_leave', from: 'doc:1', to: null }), 'Left room doc:1');
    assert.equal(timelineText({ kind: 'resumed', from: null, to: null }), 'Resumed');
    assert.match(timelineText({ kind: 'reconnecting' }), /waiting for the tab/);
    assert.equal(timelineText({ kind: 'later', from: 'x', to: 'y' }), 'later x → y');
  });

  test('the key moves with what the timeline records, not with activity', () => {
    const s = { session_id: 's', status: 'active', manual: null, page: '/a', rooms: [], reconnecting: false };
    const k = timelineKey(s);
    assert.equal(timelineKey({ ...s, last_activity: 'later' }), k);
    for (const change of [{ status: 'idle' }, { manual: 'busy' }, { page: '/b' }, { rooms: ['r'] }, { reconnecting: true }, { ended_at: 'x' }]) {
      assert.notEqual(timelineKey({ ...s, ...change }), k, JSON.stringify(change));
    }
    assert.equal(timelineKey(null), '');
  });
});

describe('alerts', () => {
  const raised = (id, at, extra = {}) => ({ id, rule: 'multi_ip', at, user_id: 'mallory', ip: '1.2.3.4', details: {}, cleared_at: null, ...extra });

  test('a raise adds, a clear removes, by id', () => {
    const active = new Map();
    assert.equal(applyAlert(active, raised('a', '2026-12-01T10:00:00Z')), true);
    assert.equal(active.size, 1);
    assert.equal(applyAlert(active, { ...raised('a', '2026-12-01T10:00:00Z'), cleared_at: '2026-12-01T10:01:00Z' }), true);
    assert.equal(active.size, 0);
    assert.equal(applyAlert(active, { ...raised('b', 'x'), cleared_at: 'y' }), false, 'unknown clear');
    assert.equal(applyAlert(active, { rule: 'multi_ip' }), false, 'no id');
  });

  test('frames seen while the list was read are applied on top of it', () => {
    const listed = [raised('a', '2026-12-01T10:00:00Z'), raised('b', '2026-12-01T10:05:00Z')];
    const frames = [{ ...raised('a', '2026-12-01T10:00:00Z'), cleared_at: 'now' }, raised('c', '2026-12-01T10:09:00Z')];
    const active = mergeAlerts(listed, frames);
    assert.deepEqual(sortedAlerts(active).map((a) => a.id), ['c', 'b']);
  });

  test('an alert concerns its user, and the sessions its details name', () => {
    const flood = raised('f', 't', { rule: 'session_flood' });
    const long = raised('l', 't', { rule: 'long_session', user_id: 'bob', details: { session_id: 's9' } });
    const travel = raised('t', 't', { rule: 'impossible_travel', user_id: 'eve', details: { session_ids: ['s1', 's2'] } });
    const ip = raised('i', 't', { rule: 'auth_failures', user_id: null });
    assert.equal(alertConcerns(flood, 'mallory', null), true);
    assert.equal(alertConcerns(flood, 'bob', null), false);
    assert.equal(alertConcerns(long, null, 's9'), true);
    assert.equal(alertConcerns(travel, null, 's2'), true);
    assert.equal(alertConcerns(ip, null, null), false);
    const active = mergeAlerts([flood, long, travel, ip]);
    assert.deepEqual(alertsFor(active, 'bob', 's9').map((a) => a.id), ['l']);
    assert.equal(alertSubject(ip), '1.2.3.4');
    assert.equal(alertSubject(flood), 'mallory');
  });

  test('summaries from the details of each rule', () => {
    assert.equal(
      alertSummary(raised('a', 't', { details: { count: 3, ips: ['a', 'b', 'c'] } })),
      '3 distinct IPs: a, b, c',
    );
    assert.equal(alertSummary({ rule: 'session_flood', details: { count: 10, window_s: 60 } }), '10 sessions started within 60 s');
    assert.equal(alertSummary({ rule: 'long_session', details: { threshold_s: 43200 } }), 'Session live longer than 12 h 00 min');
    assert.equal(
      alertSummary({
        rule: 'impossible_travel',
        details: { from: { city: 'Paris', country: 'FR' }, to: { city: 'New York', country: 'US' }, distance_km: 5837.2 },
      }),
      'Paris, FR → New York, US (5837 km)',
    );
  });

  test('the badge and the route', () => {
    assert.deepEqual(alertsBadge(0), { text: '0', label: 'no active alerts' });
    assert.deepEqual(alertsBadge(2), { text: '2', label: '2 active alerts' });
    assert.match(ACTIVE_ALERTS_PATH, /active=true/);
  });
});

describe('tabs', () => {
  test('the hash names a tab; none or an unknown one is the live view', () => {
    const names = ['live', 'history', 'analytics', 'audit', 'alerts'];
    assert.equal(tabFromHash('#audit', names), 'audit');
    assert.equal(tabFromHash('', names), 'live');
    assert.equal(tabFromHash('#nope', names), 'live');
    assert.equal(tabFromHash(undefined, names), 'live');
  });
});
