// analytics.js: the "Analytics" tab (#panel-analytics).
//
// Owns its controls (#analytics-filters: a range preset or a custom range,
// the time zone; the heatmap's metric, the durations' grouping), reading
// GET /api/v1/analytics/heatmap, /durations and /daily, and drawing the
// weekday x hour heatmap (#heatmap), the durations report
// (#durations-table) and the per-day table (#daily-table). Each part is
// read when the tab is shown, on Apply, and when its own control changes.

import { api } from './auth.js';
import { $, setText } from './dom.js';
import { parseTime } from './panel-core.js';
import { errorMessage } from './panel-view.js';
import {
  WEEKDAYS,
  analyticsQueries,
  analyticsRange,
  dailyCells,
  durationCells,
  heatCellTitle,
  heatLevel,
  heatmapSummary,
  heatmapText,
  localInputValue,
  zoneOptions,
} from './records-view.js';
import { state } from './state.js';

const PARTS = ['heatmap', 'durations', 'daily'];
const DRAW = { heatmap: drawHeatmap, durations: drawDurations, daily: drawDaily };

function controls() {
  return {
    preset: $('analytics-range').value,
    from: $('analytics-from').value,
    to: $('analytics-to').value,
    tz: $('analytics-tz').value || 'UTC',
    metric: $('heatmap-metric').value,
    groupBy: $('durations-group').value,
  };
}

/** Reads and draws `parts` (all three by default); older answers are dropped. */
export async function loadAnalytics(parts = PARTS) {
  const c = controls();
  const queries = analyticsQueries(analyticsRange(c), c);
  const error = $('analytics-error');
  error.hidden = true;
  await Promise.all(
    (Array.isArray(parts) ? parts : PARTS).map(async (part) => {
      const request = (state.analytics[part] ?? 0) + 1;
      state.analytics[part] = request;
      const target = $(`${part}-table`) ?? $(part);
      target.setAttribute('aria-busy', 'true');
      try {
        const res = await api(`/api/v1/analytics/${part}?${queries[part]}`);
        if (state.analytics[part] !== request) return;
        if (!res.ok) {
          showError(`Could not load the ${part}: ${await errorMessage(res)}`);
          return;
        }
        DRAW[part](await res.json(), c);
      } catch {
        if (state.analytics[part] === request) showError('Could not reach the hub.');
      } finally {
        if (state.analytics[part] === request) target.removeAttribute('aria-busy');
      }
    }),
  );
}

function showError(text) {
  const error = $('analytics-error');
  error.textContent = text;
  error.hidden = false;
}

/** "Nov 25, 10:00 – Dec 2, 10:00" in the browser's time. */
function rangeText(from, to, tz) {
  const fmt = (iso) => {
    const ms = parseTime(iso);
    return ms == null
      ? '?'
      : new Date(ms).toLocaleString([], { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
  };
  return `${fmt(from)} – ${fmt(to)}; days and hours in ${tz}`;
}

function buildHeatmap() {
  const hours = $('heatmap-hours');
  for (let h = 0; h < 24; h += 1) {
    const th = document.createElement('th');
    th.scope = 'col';
    th.textContent = String(h);
    hours.append(th);
  }
  const rows = WEEKDAYS.map((name, day) => {
    const tr = document.createElement('tr');
    tr.dataset.day = String(day);
    const th = document.createElement('th');
    th.scope = 'row';
    th.textContent = name;
    tr.append(th);
    for (let h = 0; h < 24; h += 1) {
      const td = document.createElement('td');
      td.dataset.day = String(day);
      td.dataset.hour = String(h);
      td.dataset.level = '0';
      tr.append(td);
    }
    return tr;
  });
  $('heatmap-body').replaceChildren(...rows);
}

function drawHeatmap(body) {
  const cells = body?.cells ?? [];
  const summary = heatmapSummary(cells);
  const metric = body?.metric ?? 'sessions_started';
  $('heatmap').dataset.metric = metric;
  for (const td of $('heatmap-body').querySelectorAll('td')) {
    const day = Number(td.dataset.day);
    const hour = Number(td.dataset.hour);
    const value = Number(cells[day]?.[hour]) || 0;
    td.dataset.value = String(value);
    td.dataset.level = String(heatLevel(value, summary.max));
    td.textContent = value > 0 ? String(value) : '';
    td.title = heatCellTitle(day, hour, value, metric);
  }
  setText($('heatmap-summary'), heatmapText(summary, metric));
  setText($('analytics-range-text'), rangeText(body?.from, body?.to, body?.tz ?? 'UTC'));
}

function row(data, cells, fields) {
  const tr = document.createElement('tr');
  Object.assign(tr.dataset, data);
  for (const [field, key, cls] of fields) {
    const td = document.createElement('td');
    td.dataset.field = field;
    if (cls) td.className = cls;
    td.textContent = cells[key];
    tr.append(td);
  }
  return tr;
}

function drawDurations(body) {
  const groups = body?.groups ?? [];
  const fields = [
    ['key', 'key'],
    ['sessions', 'sessions', 'num'],
    ['avg', 'avg', 'num'],
    ['p50', 'p50', 'num'],
    ['p90', 'p90', 'num'],
    ['p99', 'p99', 'num'],
    ['total', 'total', 'num'],
  ];
  const groupBy = body?.group_by ?? 'none';
  const rows = groups.map((g) => row({ key: g.key ?? '' }, durationCells(g, groupBy), fields));
  $('durations-tbody').replaceChildren(...rows);
  $('durations-table').dataset.groupBy = groupBy;
}

function drawDaily(body, c) {
  const tz = body?.tz ?? c.tz;
  const time = (iso) => {
    try {
      return new Date(iso).toLocaleTimeString([], { timeZone: tz, hour: '2-digit', minute: '2-digit' });
    } catch {
      return iso;
    }
  };
  const fields = [
    ['date', 'date'],
    ['sessions-started', 'sessionsStarted', 'num'],
    ['distinct-users', 'distinctUsers', 'num'],
    ['peak-online', 'peakOnline', 'num'],
    ['online-time', 'onlineTime', 'num'],
  ];
  // Newest day first: today's row is the one looked at most.
  const days = [...(body?.days ?? [])].reverse();
  const rows = days.map((d) => row({ date: d.date ?? '' }, dailyCells(d, time), fields));
  $('daily-tbody').replaceChildren(...rows);
}

function onRangeChange() {
  const custom = $('analytics-range').value === 'custom';
  for (const id of ['analytics-from', 'analytics-to']) $(id).disabled = !custom;
  if (custom && !$('analytics-from').value && !$('analytics-to').value) {
    const now = Date.now();
    $('analytics-from').value = localInputValue(now - 7 * 24 * 3_600_000);
    $('analytics-to').value = localInputValue(now);
  }
}

/** Builds the heatmap's grid and the zone options, and binds the controls. */
export function bindAnalytics() {
  buildHeatmap();
  const local = Intl.DateTimeFormat().resolvedOptions().timeZone;
  $('analytics-tz').replaceChildren(...zoneOptions(local).map((z) => new Option(z, z)));
  $('analytics-range').addEventListener('change', onRangeChange);
  $('analytics-filters').addEventListener('submit', (e) => {
    e.preventDefault();
    loadAnalytics();
  });
  $('heatmap-metric').addEventListener('change', () => loadAnalytics(['heatmap']));
  $('durations-group').addEventListener('change', () => loadAnalytics(['durations']));
}
