// state.js: the admin panel's mutable state and its render scheduler.
//
// Owns every value the page changes after load, in one object (`state`):
// the admin token, the model of the cluster, the users table's view and
// rows, the stream's connection, the drawer and its timeline, the history,
// analytics and audit tabs, the active alerts, the chart's points and the
// helpers' timers. The other modules import it and change
// their own part in place; nothing else is mutable at module level.
// `markDirty()` asks for one batched render of whatever changed; app.js
// says what a render draws (`setRenderer`).

import { PresenceModel } from './panel-core.js';
import { renderRest } from './panel-view.js';

/** sessionStorage key of the admin token (docs/panel.md). */
export const TOKEN_KEY = 'presence.adminToken';

export const state = {
  // auth.js
  /** The admin token sent on REST calls and the stream, or null. */
  token: sessionStorage.getItem(TOKEN_KEY),
  /** The token form's pending answer while it is up; concurrent callers share it. */
  login: null,
  /** Called after the form took a new token (set by `bindAuth`). */
  onToken: null,
  // app.js
  /** Set once start-up made its auth check; from then on a new token reopens the stream. */
  booted: false,

  // stream.js feeds it; everyone reads it.
  model: new PresenceModel(),
  stream: { ws: null, attempt: 0, timer: null, retryAt: null, healthy: false, resync: false },

  // table.js
  /** The users table's search, filters, sort and page. */
  view: {
    q: '',
    status: '',
    org: '',
    sortKey: 'status',
    sortDir: 'asc',
    page: 1,
    pageSize: 100,
  },
  /** user_id -> {tr, refs, last}: the rows currently in the table. */
  rows: new Map(),
  /** The org options last drawn (see `orgOptions`). */
  orgKey: '',

  // drawer.js
  /**
   * The drawer's user and chosen session, the history row it was opened
   * with (`pinned`), the element to give focus back to, and the keys of the
   * session list and the alert marks last drawn.
   */
  drawer: { userId: null, sessionId: null, pinned: null, opener: null, listKey: '', alertsKey: '' },

  // history.js
  /** The history's page, its rows by session id, and whether a load is running. */
  hist: { page: 1, pageSize: 50, total: 0, items: new Map(), loading: false },

  // timeline.js
  /**
   * The drawer's timeline: the session it shows, the key it was read for
   * (`timelineKey`), the pending re-read, the re-reads after a 404, and a
   * counter that drops stale answers.
   */
  timeline: { sessionId: null, session: null, key: '', timer: null, retries: 0, request: 0 },

  // analytics.js
  /** Per part, a counter that drops the answers of an older load. */
  analytics: { heatmap: 0, durations: 0, daily: 0 },

  // audit.js
  /**
   * The audit trail's page, whether a load runs (and whether to load once
   * more after it), and the pending reload after a stream event.
   */
  audit: { page: 1, pageSize: 50, total: 0, loading: false, again: false, reloadTimer: null },

  // alerts.js
  /**
   * The active alerts by id, the alert frames seen while the list is being
   * read (`pending`, null when no read runs), whether to read once more
   * when it is done (`again`), the alert to highlight in the list, and the
   * key of the list last drawn.
   */
  alerts: { active: new Map(), pending: null, again: false, highlight: null, listKey: '' },

  // chart.js
  /** The hub's series points of the last hour, its interval, and whether a read is running. */
  chart: { points: [], intervalMs: 0, fetching: false },

  // counters.js, dom.js
  statsTimer: null,
  toastTimer: null,

  // markDirty() below
  render: { dirty: false, cost: 0, end: 0, draw: () => {} },
};

/** Sets what one render draws. */
export function setRenderer(draw) {
  state.render.draw = draw;
}

/**
 * Schedules one render for everything that changed since the last one.
 * rAF batches bursts of events; a render that took t ms is followed by at
 * least 4t ms of rest, so a busy cluster never saturates the page; the
 * timeout covers background tabs, where animation frames do not run.
 */
export function markDirty() {
  const r = state.render;
  if (r.dirty) return;
  r.dirty = true;
  const rest = renderRest(r.end, r.cost, performance.now());
  setTimeout(() => {
    const fallback = setTimeout(render, 250);
    requestAnimationFrame(() => {
      clearTimeout(fallback);
      render();
    });
  }, rest);
}

function render() {
  const r = state.render;
  if (!r.dirty) return;
  r.dirty = false;
  const start = performance.now();
  r.draw();
  r.end = performance.now();
  r.cost = r.end - start;
}
