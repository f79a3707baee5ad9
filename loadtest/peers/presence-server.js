// Owns the Node.js `ws` peer: a minimal presence server speaking the same
// client and admin protocol as presence-hub (dev mode only), so
// scripts/bench can run the same scenarios against both in the same run.
//
// Not a product: no JWT, no cluster, no history, no REST beyond the
// heartbeat route and /metrics (process RSS). Single process, in memory.
//
// Usage: node presence-server.js [--bind 127.0.0.1:0]
// Prints "listening on HOST:PORT" once bound.
'use strict';

const http = require('node:http');
const crypto = require('node:crypto');
const { WebSocketServer } = require('ws');

const IDLE_AFTER_MS = 60_000;
const AWAY_AFTER_MS = 300_000;
const HEARTBEAT_MS = 20_000;
const DEAD_AFTER_MS = 45_000;
const HTTP_TTL_MS = 90_000;
const COALESCE_MS = 1_000;
const NODE_ID = `node-peer-${crypto.randomBytes(3).toString('hex')}`;

const sessions = new Map(); // session_id -> session
const users = new Map(); // user_id -> Set<session_id>
const admins = new Set(); // { ws, seq }

function bindArg() {
  const at = process.argv.indexOf('--bind');
  const value = at >= 0 ? process.argv[at + 1] : process.env.PRESENCE_BIND || '127.0.0.1:0';
  const cut = value.lastIndexOf(':');
  return { host: value.slice(0, cut), port: Number(value.slice(cut + 1)) };
}

const iso = (ms) => (ms == null ? null : new Date(ms).toISOString());

function deriveStatus(s, now) {
  if (s.endedAt) return 'ended';
  if (s.manual === 'away') return 'away';
  const quiet = now - s.lastActivity;
  if (quiet >= AWAY_AFTER_MS) return 'away';
  if (quiet >= IDLE_AFTER_MS) return 'idle';
  return 'active';
}

function sessionView(s) {
  const now = Date.now();
  return {
    session_id: s.id, user_id: s.userId, name: s.name, org: s.org, node_id: NODE_ID,
    transport: s.transport, status: s.status, manual: s.manual,
    connected_at: iso(s.connectedAt), last_activity: iso(s.lastActivity), page: s.page,
    ip: s.ip, user_agent: s.userAgent,
    device: { platform: null, device_type: 'unknown', browser: null }, app: null, meta: null,
    ended_at: iso(s.endedAt), end_cause: s.endCause,
    duration_s: ((s.endedAt || now) - s.connectedAt) / 1000,
  };
}

const RANK = { active: 3, idle: 2, away: 1 };

function userView(userId) {
  const ids = users.get(userId);
  const list = ids ? [...ids].map((id) => sessions.get(id)) : [];
  if (list.length === 0) {
    return { user_id: userId, name: null, org: null, status: 'offline', manual: null,
      session_count: 0, online_since: null, last_activity: null };
  }
  list.sort((a, b) => (RANK[b.status] - RANK[a.status]) || (b.lastActivity - a.lastActivity));
  const top = list[0];
  return {
    user_id: userId, name: top.name, org: top.org, status: top.status, manual: top.manual,
    session_count: list.length,
    online_since: iso(Math.min(...list.map((s) => s.connectedAt))),
    last_activity: iso(Math.max(...list.map((s) => s.lastActivity))),
  };
}

function broadcast(build) {
  for (const admin of admins) {
    admin.seq += 1;
    const frame = JSON.stringify(build(admin.seq));
    if (admin.ws.bufferedAmount > 8 << 20) {
      admin.ws.close(4009, 'lagging');
      admins.delete(admin);
      continue;
    }
    admin.ws.send(frame);
  }
}

function emitSession(s, event) {
  if (admins.size === 0) return;
  const session = sessionView(s);
  broadcast((seq) => ({ type: 'session', seq, event, session }));
}

function emitUser(userId) {
  if (admins.size === 0) return;
  const user = userView(userId);
  broadcast((seq) => ({ type: 'user', seq, user }));
}

function scheduleTransition(s) {
  clearTimeout(s.timer);
  if (s.endedAt || s.manual === 'away') return;
  const quiet = Date.now() - s.lastActivity;
  const next = quiet < IDLE_AFTER_MS ? IDLE_AFTER_MS - quiet : AWAY_AFTER_MS - quiet;
  if (next <= 0) return;
  s.timer = setTimeout(() => refreshStatus(s), next + 1);
}

function refreshStatus(s) {
  const status = deriveStatus(s, Date.now());
  if (status !== s.status) {
    s.status = status;
    s.lastEmit = Date.now();
    if (s.ws) s.ws.send(JSON.stringify({ type: 'status', status, manual: s.manual }));
    emitSession(s, 'updated');
    emitUser(s.userId);
  }
  scheduleTransition(s);
}

function openSession(fields) {
  const now = Date.now();
  const s = {
    id: crypto.randomUUID(), status: 'active', manual: null, connectedAt: now,
    lastActivity: now, lastEmit: now, endedAt: null, endCause: null, page: null,
    timer: null, flush: null, ...fields,
  };
  sessions.set(s.id, s);
  if (!users.has(s.userId)) users.set(s.userId, new Set());
  users.get(s.userId).add(s.id);
  scheduleTransition(s);
  emitSession(s, 'started');
  emitUser(s.userId);
  return s;
}

function endSession(s, cause) {
  if (s.endedAt) return;
  s.endedAt = Date.now();
  s.endCause = cause;
  s.status = 'ended';
  clearTimeout(s.timer);
  clearTimeout(s.flush);
  sessions.delete(s.id);
  const ids = users.get(s.userId);
  ids.delete(s.id);
  if (ids.size === 0) users.delete(s.userId);
  emitSession(s, 'ended');
  emitUser(s.userId);
}

function markActivity(s, page) {
  s.lastActivity = Date.now();
  if (typeof page === 'string') s.page = page;
  const before = s.status;
  s.status = deriveStatus(s, s.lastActivity);
  scheduleTransition(s);
  if (s.status !== before) {
    clearTimeout(s.flush);
    s.flush = null;
    s.lastEmit = Date.now();
    emitSession(s, 'updated');
    emitUser(s.userId);
    return;
  }
  if (s.flush) return;
  const wait = Math.max(0, s.lastEmit + COALESCE_MS - Date.now());
  s.flush = setTimeout(() => {
    s.flush = null;
    s.lastEmit = Date.now();
    emitSession(s, 'updated');
  }, wait);
}

function setManual(s, manual) {
  s.manual = manual;
  s.status = deriveStatus(s, Date.now());
  scheduleTransition(s);
  s.lastEmit = Date.now();
  s.ws.send(JSON.stringify({ type: 'status', status: s.status, manual }));
  emitSession(s, 'updated');
  emitUser(s.userId);
}

function onClientMessage(s, data, isBinary) {
  s.lastFrame = Date.now();
  if (isBinary) {
    s.ws.send(JSON.stringify({ type: 'error', code: 'unsupported', message: 'binary frames are not supported' }));
    return;
  }
  let msg;
  try { msg = JSON.parse(data); } catch {
    s.ws.send(JSON.stringify({ type: 'error', code: 'bad_message', message: 'not JSON' }));
    return;
  }
  if (msg && msg.type === 'ping') {
    const pong = { type: 'pong', ts: new Date().toISOString() };
    if (msg.id !== undefined) pong.id = msg.id;
    s.ws.send(JSON.stringify(pong));
    markActivity(s, msg.page);
  } else if (msg && msg.type === 'status' && [null, 'busy', 'away'].includes(msg.manual)) {
    setManual(s, msg.manual);
  } else if (msg && msg.type === 'hello') {
    // Metadata is accepted and ignored by this peer.
  } else {
    s.ws.send(JSON.stringify({ type: 'error', code: 'unknown_type', message: 'unknown message' }));
  }
}

function acceptClient(ws, url, req) {
  const userId = url.searchParams.get('user');
  const s = openSession({
    userId, name: url.searchParams.get('name'), org: url.searchParams.get('org'),
    transport: 'ws', ws, ip: req.socket.remoteAddress, userAgent: req.headers['user-agent'] || null,
    lastFrame: Date.now(),
  });
  ws.send(JSON.stringify({
    type: 'welcome', session_id: s.id, user_id: userId, node_id: NODE_ID,
    heartbeat_interval_ms: HEARTBEAT_MS, idle_after_ms: IDLE_AFTER_MS, away_after_ms: AWAY_AFTER_MS,
  }));
  ws.on('message', (data, isBinary) => onClientMessage(s, data, isBinary));
  ws.on('pong', () => { s.lastFrame = Date.now(); });
  ws.on('close', () => endSession(s, 'client_closed'));
  ws.on('error', () => {});
}

function acceptAdmin(ws) {
  const admin = { ws, seq: 0 };
  const snapshot = {
    type: 'snapshot', seq: 0, at: new Date().toISOString(), node_id: NODE_ID,
    users: [...users.keys()].map(userView), sessions: [...sessions.values()].map(sessionView),
  };
  ws.send(JSON.stringify(snapshot));
  admins.add(admin);
  ws.on('close', () => admins.delete(admin));
  ws.on('error', () => {});
}

function readBody(req, limit) {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks = [];
    req.on('data', (c) => {
      size += c.length;
      if (size > limit) { reject(new Error('too large')); req.destroy(); } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString()));
    req.on('error', reject);
  });
}

function reply(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function heartbeat(req, res, url) {
  const userId = url.searchParams.get('user');
  if (!userId) return reply(res, 400, { error: { code: 'bad_parameter', message: 'user' } });
  let body;
  try { body = JSON.parse(await readBody(req, 16384)); } catch {
    return reply(res, 400, { error: { code: 'bad_message', message: 'body' } });
  }
  let s = body.session_id ? sessions.get(body.session_id) : null;
  if (body.session_id && (!s || s.userId !== userId || s.transport !== 'http')) {
    return reply(res, 404, { error: { code: 'not_found', message: 'session' } });
  }
  if (s && body.ended) {
    endSession(s, 'client_closed');
    return reply(res, 200, { session_id: s.id, status: 'ended', ttl_ms: 0 });
  }
  if (!s) {
    s = openSession({ userId, name: url.searchParams.get('name'), org: url.searchParams.get('org'),
      transport: 'http', ws: null, ip: req.socket.remoteAddress, userAgent: req.headers['user-agent'] || null });
  }
  clearTimeout(s.ttl);
  const session = s;
  s.ttl = setTimeout(() => endSession(session, 'timeout'), HTTP_TTL_MS);
  if (body.active) markActivity(s, body.page);
  return reply(res, 200, { session_id: s.id, status: s.status, ttl_ms: HTTP_TTL_MS });
}

function metrics(res) {
  const text = [
    '# TYPE process_resident_memory_bytes gauge',
    `process_resident_memory_bytes ${process.memoryUsage().rss}`,
    '# TYPE presence_connections gauge',
    `presence_connections ${sessions.size}`,
    '',
  ].join('\n');
  res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
  res.end(text);
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://peer');
  if (req.method === 'POST' && url.pathname === '/api/v1/heartbeat') {
    heartbeat(req, res, url).catch(() => reply(res, 400, { error: { code: 'bad_message', message: 'body' } }));
  } else if (url.pathname === '/healthz' || url.pathname === '/readyz') {
    reply(res, 200, { status: 'ok' });
  } else if (url.pathname === '/metrics') {
    metrics(res);
  } else {
    reply(res, 404, { error: { code: 'not_found', message: url.pathname } });
  }
});

const clients = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 4096 });
const adminServer = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 4096 });

server.on('upgrade', (req, socket, head) => {
  const url = new URL(req.url, 'http://peer');
  if (url.pathname === '/ws') {
    const user = url.searchParams.get('user');
    if (!user || Buffer.byteLength(user) > 128) {
      socket.end('HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    clients.handleUpgrade(req, socket, head, (ws) => acceptClient(ws, url, req));
  } else if (url.pathname === '/admin/ws') {
    adminServer.handleUpgrade(req, socket, head, (ws) => acceptAdmin(ws));
  } else {
    socket.end('HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n');
  }
});

// Liveness: ping every client; end sessions silent for DEAD_AFTER_MS.
setInterval(() => {
  const now = Date.now();
  for (const s of sessions.values()) {
    if (!s.ws) continue;
    if (now - s.lastFrame > DEAD_AFTER_MS) {
      endSession(s, 'timeout');
      s.ws.terminate();
    } else {
      s.ws.ping();
    }
  }
}, HEARTBEAT_MS).unref();

function shutdown() {
  for (const s of [...sessions.values()]) {
    if (s.ws) {
      s.ws.send(JSON.stringify({ type: 'terminated', reason: 'shutdown' }));
      s.ws.close(1001, 'shutdown');
    }
    endSession(s, 'shutdown');
  }
  server.close();
  setTimeout(() => process.exit(0), 500).unref();
}
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);

const { host, port } = bindArg();
server.listen({ host, port, backlog: 4096 }, () => {
  const addr = server.address();
  console.log(`listening on ${addr.address}:${addr.port}`);
});
