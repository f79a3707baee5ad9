// chart.js: the "Last hour" chart (#chart).
//
// Owns its samples, kept in sessionStorage so a reload keeps the curve:
// one every CHART_SAMPLE_MS (a gap while the stream is down, app.js runs the
// timer), and drawing the two SVG paths, the axis maximum and the label.

import { $, setText } from './dom.js';
import { CHART_SAMPLE_MS, addSample, chartPaths, countPresence } from './panel-core.js';
import { chartLabel, chartSample, storedSamples } from './panel-view.js';
import { CHART_KEY, state } from './state.js';

/** Takes back the samples of the last hour from sessionStorage. */
export function loadSamples() {
  state.chart.samples = storedSamples(sessionStorage.getItem(CHART_KEY), Date.now());
}

/** Adds a sample (at most one per half period) and redraws. */
export function sampleChart() {
  const { chart } = state;
  const now = Date.now();
  // The snapshot samples at once; the timer keeps the cadence.
  if (now - chart.lastSampleAt < CHART_SAMPLE_MS / 2) return renderChart();
  chart.lastSampleAt = now;
  addSample(chart.samples, chartSample(now, countPresence(state.model), state.stream.healthy));
  try {
    sessionStorage.setItem(CHART_KEY, JSON.stringify(chart.samples));
  } catch {
    // Storage full or disabled: the chart still works for this page.
  }
  renderChart();
}

/** Draws the samples of the window ending now. */
export function renderChart() {
  const { samples } = state.chart;
  const p = chartPaths(samples, { now: Date.now(), width: 600, height: 116 });
  $('chart-users').setAttribute('d', p.users);
  $('chart-sessions').setAttribute('d', p.sessions);
  setText($('chart-max'), String(p.max));
  $('chart').setAttribute('aria-label', chartLabel(samples.at(-1), p.peakUsers));
}
