// stream.js: the admin stream (`/admin/ws`, contract v1 section 5).
//
// Owns the subscription: opening it with the token and the page's `?org=`,
// feeding its snapshot and events to the model (and its alert and audit
// frames to alerts.js and audit.js), resubscribing at once after
// a seq gap or a 4009 close, reconnecting with backoff otherwise (at once
// when the browser comes back online), and the connection state in the
// header (#conn-state, #conn-detail, #hub-node, body[data-conn]).

import { applyAlertFrame, loadAlerts } from './alerts.js';
import { onAuditEvent } from './audit.js';
import { sampleChart } from './chart.js';
import { refreshStats, scheduleStatsRefresh } from './counters.js';
import { $, setText } from './dom.js';
import { backoffDelay } from './presence-client.js';
import { adminStreamUrl, movesStats, resubscribeAtOnce, retryText } from './panel-view.js';
import { markDirty, state } from './state.js';

const STREAM_BACKOFF = { baseMs: 500, capMs: 15_000 };

/** (Re)subscribes now, closing the current socket if any. */
export function openStream() {
  const { stream } = state;
  clearTimeout(stream.timer);
  stream.timer = null;
  stream.retryAt = null;
  stream.healthy = false;
  const old = stream.ws;
  stream.ws = null;
  if (old && old.readyState <= 1) old.close(1000, 'resubscribing');
  let ws;
  try {
    ws = new WebSocket(adminStreamUrl(location.href, state.token));
  } catch (err) {
    console.error('admin stream: cannot open', err);
    scheduleStream(false);
    return;
  }
  stream.ws = ws;
  ws.onmessage = (event) => {
    if (stream.ws === ws) onStreamMessage(ws, event.data);
  };
  ws.onclose = (event) => {
    if (stream.ws === ws) onStreamClose(event);
  };
}

function onStreamMessage(ws, data) {
  const { model, stream } = state;
  let msg;
  try {
    msg = JSON.parse(data);
  } catch {
    return;
  }
  if (msg?.type === 'snapshot') {
    model.applySnapshot(msg);
    stream.attempt = 0;
    stream.healthy = true;
    setConn('live');
    setText($('hub-node'), model.nodeId ? `node ${model.nodeId}` : '');
    sampleChart();
    markDirty();
    refreshStats();
    // The snapshot lists no alerts: read the active ones. Audit frames
    // may have been missed while the stream was down.
    loadAlerts();
    onAuditEvent();
    return;
  }
  const result = model.apply(msg);
  if (movesStats(msg)) scheduleStatsRefresh();
  if (result.kind === 'gap') {
    console.warn('admin stream: seq gap, resubscribing', result);
    stream.resync = true;
    ws.close(4000, 'seq gap');
    return;
  }
  if (msg?.type === 'alert') applyAlertFrame(msg.alert);
  else if (msg?.type === 'audit') onAuditEvent();
  if (result.kind !== 'ignored') markDirty();
}

function onStreamClose(event) {
  const { stream } = state;
  stream.ws = null;
  const quick = resubscribeAtOnce(stream, event.code);
  stream.resync = false;
  setConn('reconnecting');
  scheduleStream(quick);
}

function scheduleStream(quick) {
  const { stream } = state;
  const wasHealthy = stream.healthy;
  stream.healthy = false;
  const delay = quick ? 0 : backoffDelay(stream.attempt, STREAM_BACKOFF);
  if (!quick) stream.attempt += 1;
  stream.retryAt = Date.now() + delay;
  clearTimeout(stream.timer);
  stream.timer = setTimeout(openStream, delay);
  updateConnDetail();
  // A socket that never delivers a snapshot may be refused for its token
  // (browsers hide the 401): ask the REST API, which can say so.
  if (!wasHealthy && stream.attempt === 2) refreshStats();
}

function setConn(connState) {
  const el = $('conn-state');
  setText(el, connState);
  el.dataset.state = connState;
  document.body.dataset.conn = connState;
  updateConnDetail();
}

/** The countdown to the next attempt beside the connection state (ticks). */
export function updateConnDetail() {
  const { stream } = state;
  const text =
    !stream.healthy && stream.retryAt != null ? retryText(stream.retryAt, Date.now()) : '';
  setText($('conn-detail'), text);
}

/** Retries at once when the browser says it is back online. */
export function bindStream() {
  addEventListener('online', () => {
    if (state.stream.timer != null) openStream();
  });
}
