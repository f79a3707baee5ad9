// app.js: the admin panel's entry point (index.html loads it as a module).
//
// Owns start-up and the page's timers: binds each area's events, says what
// a render draws, makes the auth check (GET /api/v1/stats), opens the admin
// stream, and runs the one-second tick, the chart's reads and the stats
// refresh. Each area lives in its own module (docs/panel.md lists them), its
// mutable state in state.js, pure logic in panel-core.js, panel-view.js and
// records-view.js.

import { bindActions } from './actions.js';
import { bindAlerts, renderAlerts } from './alerts.js';
import { bindAnalytics } from './analytics.js';
import { bindAudit } from './audit.js';
import { api, bindAuth } from './auth.js';
import { loadSeries, renderChart, sampleChart } from './chart.js';
import { applyStats, refreshStats, renderCounters } from './counters.js';
import { bindDrawer, renderDrawer, tickDrawer } from './drawer.js';
import { bindHistory } from './history.js';
import { CHART_SAMPLE_MS } from './panel-core.js';
import { setRenderer, state } from './state.js';
import { bindStream, openStream, updateConnDetail } from './stream.js';
import { bindTable, renderSortHeaders, renderTable, tickTable } from './table.js';
import { bindTabs, selectTab, tabOfLocation } from './tabs.js';

const STATS_REFRESH_MS = 30_000;

/** A new token from the form: resubscribe if the stream is down, re-read the stats. */
function onTokenChanged() {
  if (!state.booted) return;
  if (!state.stream.healthy) openStream();
  refreshStats();
}

/** Once a second: ticking "ago" texts, the drawer's duration, the retry countdown. */
function tick() {
  tickTable(state.model.serverNow());
  tickDrawer();
  updateConnDetail();
}

async function boot() {
  bindStream();
  bindTable();
  bindDrawer();
  bindActions();
  bindHistory();
  bindAnalytics();
  bindAudit();
  bindAlerts();
  bindTabs();
  bindAuth(onTokenChanged);
  setRenderer(() => {
    renderCounters();
    renderTable();
    renderDrawer();
    renderAlerts();
  });
  renderSortHeaders();
  renderChart();
  const tab = tabOfLocation();
  if (tab !== 'live') selectTab(tab);
  try {
    // Also the auth check: a 401 here asks for the admin token first.
    const res = await api('/api/v1/stats');
    if (res.ok) applyStats(await res.json());
  } catch {
    // Hub unreachable: the stream below retries with backoff.
  }
  state.booted = true;
  loadSeries();
  openStream();
  setInterval(tick, 1_000);
  setInterval(() => {
    if (document.visibilityState === 'visible') sampleChart();
  }, CHART_SAMPLE_MS);
  setInterval(() => {
    if (document.visibilityState === 'visible' && state.stream.healthy) refreshStats();
  }, STATS_REFRESH_MS);
}

boot();
