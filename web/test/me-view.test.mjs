// Unit tests for web/me-view.js, the self-service page's pure functions.
// Run with `node --test web/test/*.test.mjs`.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';

import {
  describeBrowser,
  describeDevice,
  describeLocation,
  describeSince,
  sessionRows,
  signedOutText,
} from '../me-view.js';

describe('me-view', () => {
  test('devices and browsers are named as a person would', () => {
    assert.equal(describeDevice({ device_type: 'desktop', platform: 'macOS' }), 'Desktop · macOS');
    assert.equal(describeDevice({ device_type: 'mobile', platform: null }), 'Mobile');
    assert.equal(describeDevice({ device_type: 'unknown' }), 'Unknown device');
    assert.equal(describeDevice(null), 'Unknown device');
    assert.equal(describeBrowser({ browser: 'Firefox' }), 'Firefox');
    assert.equal(describeBrowser({ browser: null }), '-');
  });

  test('a location is shown only when known', () => {
    assert.equal(describeLocation(null), null);
    assert.equal(describeLocation({}), null);
    assert.equal(describeLocation('Lyon, FR'), 'Lyon, FR');
    assert.equal(describeLocation({ city: 'Lyon', country: 'FR' }), 'Lyon, FR');
    assert.equal(describeLocation({ city_name: 'Oslo', country_name: 'Norway' }), 'Oslo, Norway');
  });

  test('since is a date, or a dash for nonsense', () => {
    assert.notEqual(describeSince('2026-12-01T10:00:00.000Z', 'en-GB'), '-');
    assert.equal(describeSince('never', 'en-GB'), '-');
  });

  test('rows put this device first, then the newest', () => {
    const rows = sessionRows({
      sessions: [
        { session_id: 'a', connected_at: '2026-12-01T10:00:00.000Z', device: {}, current: false },
        { session_id: 'b', connected_at: '2026-12-01T09:00:00.000Z', device: {}, current: true },
        { session_id: 'c', connected_at: '2026-12-01T11:00:00.000Z', device: {}, reconnecting: true },
      ],
    });
    assert.deepEqual(
      rows.map((r) => r.sessionId),
      ['b', 'c', 'a'],
    );
    assert.equal(rows[0].current, true);
    assert.equal(rows[1].reconnecting, true);
    assert.deepEqual(sessionRows(null), []);
  });

  test('the sign-out toast counts', () => {
    assert.equal(signedOutText(0), 'No other session was signed in.');
    assert.equal(signedOutText(1), 'Signed out 1 session.');
    assert.equal(signedOutText(3), 'Signed out 3 sessions.');
  });
});
