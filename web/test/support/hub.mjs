// Test support for the tests that need a real hub: starts the presence-hub
// binary (PRESENCE_HUB_BIN, which scripts/test exports after building it)
// on a free loopback port with an in-memory records store, reads the bound
// address from its start line, and stops it. Also loads the `ws` package
// from target/web-tools, where scripts/test installs the dev dependencies
// (web/ itself never gets a node_modules, it is embedded in the hub).
// Holds no tests of its own.

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { createHmac } from 'node:crypto';

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

/** The hub binary: PRESENCE_HUB_BIN, else a debug build in target/. */
export function hubBinary() {
  const fromEnv = process.env.PRESENCE_HUB_BIN;
  if (fromEnv) return fromEnv;
  const built = `${repoRoot}target/debug/presence-hub`;
  if (existsSync(built)) return built;
  throw new Error(
    'no hub binary: set PRESENCE_HUB_BIN (scripts/test does) or cargo build -p presence-hub --bin presence-hub',
  );
}

/** The `ws` package, from the dev dependencies scripts/test installs. */
export function loadWs() {
  const tools = process.env.PRESENCE_WEB_TOOLS ?? `${repoRoot}target/web-tools`;
  try {
    return createRequire(`${tools}/package.json`)('ws');
  } catch (err) {
    throw new Error(
      `the ws package is missing under ${tools}: run scripts/test, or npm ci there with web/package.json and web/package-lock.json (${err.message})`,
    );
  }
}

/**
 * Starts a hub; `env` adds to (or overrides) its environment. Resolves to
 * `{ addr, http, ws, stop }` once the start line names the bound address.
 */
export async function startHub(env = {}, { timeoutMs = 15_000 } = {}) {
  const child = spawn(hubBinary(), [], {
    env: {
      PATH: process.env.PATH,
      PRESENCE_BIND: '127.0.0.1:0',
      PRESENCE_DATABASE_URL: 'memory:',
      RUST_LOG: 'presence_hub=info',
      NO_COLOR: '1',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  const addr = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the hub did not start within ${timeoutMs} ms:\n${log}`));
    }, timeoutMs);
    const onData = (chunk) => {
      log += chunk;
      const match = log.match(/listening.*?bind=(127\.0\.0\.1:\d+)/);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    };
    child.stdout.setEncoding('utf8').on('data', onData);
    child.stderr.setEncoding('utf8').on('data', onData);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`the hub exited (${code ?? signal}) before listening:\n${log}`));
    });
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  // A test process that ends without stop() (a failure, a timeout) must not
  // leave its hub running.
  const reap = () => child.kill('SIGKILL');
  process.once('exit', reap);
  child.once('exit', () => process.off('exit', reap));
  return {
    addr,
    http: `http://${addr}`,
    ws: `ws://${addr}/ws`,
    log: () => log,
    async stop() {
      if (child.exitCode != null || child.signalCode != null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** An HS256 JWT signed with `secret` (the hub's PRESENCE_JWT_SECRET). */
export function signToken(secret, claims) {
  const part = (obj) => Buffer.from(JSON.stringify(obj)).toString('base64url');
  const body = `${part({ alg: 'HS256', typ: 'JWT' })}.${part(claims)}`;
  const signature = createHmac('sha256', secret).update(body).digest('base64url');
  return `${body}.${signature}`;
}

/** Resolves with the first `event` payload of `client` that `pred` accepts. */
export function nextEvent(client, event, pred = () => true, timeoutMs = 10_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no "${event}" event within ${timeoutMs} ms (state ${client.state})`));
    }, timeoutMs);
    const off = client.on(event, (payload) => {
      if (!pred(payload)) return;
      clearTimeout(timer);
      off();
      resolve(payload);
    });
  });
}

/** Resolves with the members once a room's list satisfies `pred`. */
export function roomMembers(room, pred, timeoutMs = 10_000) {
  if (room.synced && pred(room.members)) return Promise.resolve(room.members);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`room ${room.name}: members never matched, last ${JSON.stringify(room.members)}`));
    }, timeoutMs);
    const off = room.onChange((members) => {
      if (!pred(members)) return;
      clearTimeout(timer);
      off();
      resolve(members);
    });
  });
}
