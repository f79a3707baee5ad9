// The client in Node against a real hub (dev mode): `connect({ WebSocket })`
// with the `ws` package, no window, document or sessionStorage. Starts its
// own hub from PRESENCE_HUB_BIN on a free loopback port (see support/hub.mjs).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { connect, probeUrl, RESUME_KEY } from '../presence-client.js';
import { loadWs, nextEvent, roomMembers, startHub } from './support/hub.mjs';

const WebSocket = loadWs();
let hub;

before(async () => {
  hub = await startHub();
});

after(async () => {
  await hub?.stop();
});

test('Node has no browser globals here, so the client must do without them', () => {
  assert.equal(globalThis.window, undefined);
  assert.equal(globalThis.document, undefined);
  assert.equal(globalThis.sessionStorage, undefined);
});

test('connects with a given WebSocket, gets a welcome, joins a room and sees itself', async () => {
  const client = connect({
    url: hub.ws,
    WebSocket,
    user: 'node-bot',
    name: 'Node Bot',
    app: { name: 'node-test', version: '1.0.0' },
    page: '/jobs/7',
  });
  try {
    const open = await nextEvent(client, 'open');
    assert.match(open.sessionId, /^[0-9a-f-]{36}$/);
    assert.equal(open.userId, 'node-bot');
    assert.equal(client.state, 'open');
    assert.equal(client.status, 'active');

    const room = client.join('doc:node');
    const members = await roomMembers(room, (ms) => ms.some((m) => m.user_id === 'node-bot'));
    const me = members.find((m) => m.user_id === 'node-bot');
    assert.equal(me.name, 'Node Bot');
    assert.equal(me.session_count, 1);
    assert.equal(me.page, '/jobs/7');

    // The hub saw the app from hello, as it does for a browser tab.
    const res = await fetch(`${hub.http}/api/v1/sessions/${open.sessionId}`);
    assert.equal(res.status, 200);
    const session = await res.json();
    assert.equal(session.user_id, 'node-bot');
    assert.deepEqual(session.app, { name: 'node-test', version: '1.0.0' });
    assert.equal(session.transport, 'ws');

    // A second process joins: the first sees it arrive.
    const other = connect({ url: hub.ws, WebSocket, user: 'other-bot' });
    try {
      other.join('doc:node');
      await roomMembers(room, (ms) => ms.some((m) => m.user_id === 'other-bot'));
    } finally {
      other.close();
    }
    await roomMembers(room, (ms) => !ms.some((m) => m.user_id === 'other-bot'));
  } finally {
    const closed = nextEvent(client, 'close');
    client.close();
    const { code, willReconnect } = await closed;
    assert.equal(code, 1000);
    assert.equal(willReconnect, false);
  }
  assert.equal(client.state, 'closed');
});

test('without a WebSocket or a url outside a browser, connect() says what is missing', () => {
  assert.throws(() => connect({ url: hub.ws }), /no WebSocket implementation.*connect\(\{ WebSocket \}\)/);
  assert.throws(() => connect({ WebSocket, user: 'x' }), /`url` is required/);
});

test('a dropped socket reconnects and resumes the session (resume token in memory)', async () => {
  const client = connect({ url: hub.ws, WebSocket, user: 'node-resume', backoffCapMs: 200 });
  try {
    const first = await nextEvent(client, 'open');
    assert.equal(first.resumed, false);
    const again = nextEvent(client, 'open');
    // The socket goes away under the client (a proxy closing it, say).
    client._ws.close(4000, 'dropped by the test');
    const second = await again;
    assert.equal(second.resumed, true);
    assert.equal(second.sessionId, first.sessionId);
  } finally {
    client.close();
  }
});

test('the hub answers the probe of a good handshake with 400 and the probe does not use up a resume token', async () => {
  const client = connect({ url: hub.ws, WebSocket, user: 'node-probe', backoffCapMs: 100 });
  try {
    const first = await nextEvent(client, 'open');
    // What the client fetches after a close-before-open: the same URL over http.
    const res = await fetch(probeUrl(client._url));
    assert.equal(res.status, 400, 'the token (here: dev identity) passed; only the upgrade is missing');
    assert.equal((await res.json()).error.code, 'bad_request');
    // The probe of the resume URL of the next connect leaves the token usable.
    const resume = client.env.storage.getItem(RESUME_KEY);
    const probe = await fetch(probeUrl(`${hub.ws}?user=node-probe&resume=${resume}`));
    assert.equal(probe.status, 400);
    const again = nextEvent(client, 'open');
    client._ws.close(4000, 'dropped by the test');
    const second = await again;
    assert.equal(second.resumed, true);
    assert.equal(second.sessionId, first.sessionId);
  } finally {
    client.close();
  }
});
