// chart.js: the "Last hour" chart (#chart).
//
// Owns drawing the hub's online series (GET /api/v1/stats/series, sampled by
// the hub every 10 s and kept for 24 h): the last hour is read when the
// panel starts, then every CHART_SAMPLE_MS (and on each stream snapshot) the
// points since the last one are appended. So the chart starts full, every
// tab shows the same curve, and it agrees with the stats' peak. Drawing is
// the two SVG paths, the axis maximum and the label; a gap where the hub
// kept no point. A hidden page reads nothing (app.js); it catches up when
// shown.

import { api } from './auth.js';
import { $, setText } from './dom.js';
import { CHART_SAMPLE_MS, CHART_WINDOW_MS, chartPaths } from './panel-core.js';
import { chartLabel, chartSamples, mergePoints, seriesPoints } from './panel-view.js';
import { state } from './state.js';

/** Reads the last hour of the hub's series and redraws. */
export function loadSeries() {
  state.chart.points = [];
  return sampleChart();
}

/** Appends the hub's points since the last one (the last hour at first) and redraws. */
export async function sampleChart() {
  const { chart } = state;
  if (chart.fetching) return renderChart();
  chart.fetching = true;
  try {
    // From the last point kept, or the whole hour when none is (at start,
    // or after the page slept longer than the window).
    const last = chart.points.at(-1);
    const query =
      last && now() - last.t < CHART_WINDOW_MS
        ? `from=${encodeURIComponent(new Date(last.t).toISOString())}`
        : `window=${CHART_WINDOW_MS / 1000}`;
    const res = await api(`/api/v1/stats/series?${query}`);
    if (res.ok) {
      const body = await res.json();
      if (body?.interval_ms > 0) chart.intervalMs = body.interval_ms;
      chart.points = mergePoints(chart.points, seriesPoints(body), now());
    }
  } catch {
    // Hub unreachable: the line breaks until it answers again.
  } finally {
    chart.fetching = false;
  }
  renderChart();
}

/** The hub's clock, as the stream's snapshot estimated it. */
function now() {
  return state.model.serverNow();
}

/** Draws the points of the window ending now. */
export function renderChart() {
  const at = now();
  const samples = chartSamples(state.chart.points, state.chart.intervalMs || CHART_SAMPLE_MS, at);
  const p = chartPaths(samples, { now: at, width: 600, height: 116 });
  $('chart-users').setAttribute('d', p.users);
  $('chart-sessions').setAttribute('d', p.sessions);
  setText($('chart-max'), String(p.max));
  const chart = $('chart');
  chart.setAttribute('aria-label', chartLabel(samples.at(-1), p.peakUsers));
  chart.dataset.points = String(state.chart.points.length);
}
