// Authentication failures against a real hub in JWT mode, with the client in
// Node (`ws`): a refused upgrade (401: expired or badly signed token) is
// reported as `unauthorized` and ends the retry loop unless the token hook
// gives a fresh token; a token that expires on a live socket (4001) does
// the same. Tokens are signed here with node's crypto (HS256).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { connect } from '../presence-client.js';
import { loadWs, nextEvent, signToken, startHub } from './support/hub.mjs';

const WebSocket = loadWs();
const SECRET = 'node-auth-test-secret-0123456789abcdef';
let hub;

const nowS = () => Math.floor(Date.now() / 1000);
const token = (sub, expInS, secret = SECRET) =>
  signToken(secret, { sub, exp: nowS() + expInS, iat: nowS() - 1 });

before(async () => {
  hub = await startHub({ PRESENCE_JWT_SECRET: SECRET });
});

after(async () => {
  await hub?.stop();
});

/** Resolves when the client has stopped for good (`close` with willReconnect false). */
const stopped = (client) => nextEvent(client, 'close', (e) => e.willReconnect === false);

test('an expired token is unauthorized and the client stops retrying', async () => {
  const closes = [];
  const client = connect({ url: hub.ws, WebSocket, token: token('alice', -60), backoffCapMs: 50 });
  client.on('close', (e) => closes.push(e));
  const done = stopped(client);
  const error = await nextEvent(client, 'error', (e) => e.code === 'unauthorized');
  assert.deepEqual(error, {
    code: 'unauthorized',
    status: 401,
    message: 'token expired',
    willRetry: false,
  });
  await done;
  assert.equal(client.state, 'closed');
  assert.equal(client.lastError.code, 'unauthorized');
  assert.equal(client._reconnectTimer, null, 'no attempt scheduled');
  assert.deepEqual(closes.map((c) => c.willReconnect), [false]);
});

test('a badly signed token is unauthorized too', async () => {
  const client = connect({
    url: hub.ws,
    WebSocket,
    token: token('alice', 600, 'another-secret-of-at-least-32-bytes!!'),
  });
  const done = stopped(client);
  const error = await nextEvent(client, 'error', (e) => e.code === 'unauthorized');
  assert.equal(error.message, 'invalid token');
  await done;
  assert.equal(client.state, 'closed');
});

test('a refused token is replaced by the hook once, and the client connects', async () => {
  const asked = [];
  const client = connect({
    url: hub.ws,
    WebSocket,
    token: token('bob', -60),
    onTokenExpiring: async ({ reason }) => {
      asked.push(reason);
      return token('bob', 600);
    },
  });
  try {
    const error = await nextEvent(client, 'error', (e) => e.code === 'unauthorized');
    assert.equal(error.willRetry, true);
    const open = await nextEvent(client, 'open');
    assert.equal(open.userId, 'bob');
    assert.deepEqual(asked, ['unauthorized']);
    assert.equal(client.lastError, null);
  } finally {
    client.close();
  }
});

test('a hook that keeps giving refused tokens is asked once; then the client stops', async () => {
  const asked = [];
  const client = connect({
    url: hub.ws,
    WebSocket,
    token: token('carol', -60),
    onTokenExpiring: ({ reason }) => {
      asked.push(reason);
      return token('carol', -30);
    },
  });
  const done = stopped(client);
  const errors = [];
  client.on('error', (e) => {
    if (e.code === 'unauthorized') errors.push(e.willRetry);
  });
  await done;
  assert.deepEqual(asked, ['unauthorized']);
  assert.deepEqual(errors, [true, false]);
  assert.equal(client.state, 'closed');
});

test('a token that expires on a live socket (4001) gets a fresh one from the hook and a new session', async () => {
  const asked = [];
  const seen = [];
  const client = connect({
    url: hub.ws,
    WebSocket,
    token: token('dave', 2),
    // Decline the renewal the hub asks for, so the token runs out (4001).
    onTokenExpiring: ({ reason }) => {
      asked.push(reason);
      return reason === 'unauthorized' ? token('dave', 600) : null;
    },
  });
  try {
    const first = await nextEvent(client, 'open');
    client.on('terminated', (e) => seen.push(['terminated', e.reason]));
    client.on('error', (e) => seen.push(['error', e.code, e.willRetry]));
    client.on('close', (e) => seen.push(['close', e.code, e.willReconnect]));
    const second = await nextEvent(client, 'open', () => true, 15_000);
    assert.notEqual(second.sessionId, first.sessionId, 'an expired session is not resumed');
    assert.equal(second.resumed, false);
    assert.deepEqual(seen, [
      ['terminated', 'token_expired'],
      ['error', 'unauthorized', true],
      ['close', 4001, true],
    ]);
    assert.deepEqual(asked, ['expiring', 'unauthorized']);
  } finally {
    client.close();
  }
});
