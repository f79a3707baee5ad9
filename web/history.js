// history.js: the "History" tab (#panel-history).
//
// Owns its filters (#history-filters), loading a page of ended sessions from
// GET /api/v1/sessions?status=ended, drawing the rows and the pager, a click
// on a row (opens the drawer on that session) and the CSV download
// (GET /api/v1/sessions/export).

import { api } from './auth.js';
import { $, saveBlob, setText, toast } from './dom.js';
import { openDrawerForSession } from './drawer.js';
import {
  csvFilename,
  describeDevice,
  exportQuery,
  formatDuration,
  historyQuery,
  parseTime,
} from './panel-core.js';
import { errorMessage, formatClock, historyPager, isoTitle } from './panel-view.js';
import { anyLocated, locationParts } from './records-view.js';
import { state } from './state.js';

function historyFilters() {
  return {
    q: $('history-q').value,
    userId: $('history-user').value,
    org: $('history-org').value,
    nodeId: $('history-node').value,
    from: $('history-from').value,
    to: $('history-to').value,
  };
}

/** Loads and draws the current page; a call while one runs is dropped. */
export async function loadHistory() {
  const { hist } = state;
  if (hist.loading) return;
  hist.loading = true;
  const table = $('history-table');
  table.setAttribute('aria-busy', 'true');
  const empty = $('history-empty');
  try {
    const query = historyQuery({
      ...historyFilters(),
      page: hist.page,
      pageSize: hist.pageSize,
    });
    const res = await api(`/api/v1/sessions?${query}`);
    if (!res.ok) {
      empty.hidden = false;
      empty.textContent = `Could not load history: ${await errorMessage(res)}`;
      return;
    }
    const body = await res.json();
    renderHistory(body);
  } catch {
    empty.hidden = false;
    empty.textContent = 'Could not reach the hub.';
  } finally {
    hist.loading = false;
    table.removeAttribute('aria-busy');
  }
}

function historyRow(s) {
  const tr = document.createElement('tr');
  tr.dataset.sessionId = s.session_id;
  tr.dataset.userId = s.user_id;
  const td = (text, cls, field) => {
    const cell = document.createElement('td');
    if (cls) cell.className = cls;
    if (field) cell.dataset.field = field;
    cell.textContent = text;
    tr.append(cell);
    return cell;
  };
  const userCell = td('', 'cell-user');
  const btn = document.createElement('button');
  btn.type = 'button';
  btn.className = 'link';
  btn.dataset.field = 'name';
  btn.textContent = s.name || s.user_id;
  const sub = document.createElement('span');
  sub.className = 'sub muted small';
  sub.textContent = s.name ? s.user_id : '';
  userCell.append(btn, sub);
  td(s.org || '-', 'col-org', 'org');
  td(describeDevice(s), 'col-device', 'device');
  td(s.ip ?? '-', 'col-ip', 'ip');
  const where = locationParts(s.location);
  td(where.country, 'col-geo', 'country');
  td(where.city, 'col-geo', 'city').title = where.title;
  const connected = parseTime(s.connected_at);
  const c = td(formatClock(connected), '', 'connected-at');
  c.title = isoTitle(connected);
  const d = td(formatDuration(s.duration_s), 'num', 'duration');
  d.title = s.ended_at ? `ended ${s.ended_at}` : '';
  const cause = td('', '', 'end-cause');
  const tag = document.createElement('span');
  tag.className = 'tag';
  tag.dataset.cause = s.end_cause ?? '';
  tag.textContent = s.end_cause ?? '-';
  cause.append(tag);
  return tr;
}

function renderHistory(body) {
  const { hist } = state;
  const sessions = body?.sessions ?? [];
  hist.total = body?.total ?? sessions.length;
  hist.items = new Map(sessions.map((s) => [s.session_id, s]));
  const rows = sessions.map(historyRow);
  $('history-table').dataset.geo = anyLocated(sessions.map((s) => locationParts(s.location)))
    ? 'on'
    : 'off';
  $('history-tbody').replaceChildren(...rows);
  const empty = $('history-empty');
  empty.hidden = rows.length > 0;
  empty.textContent = 'No ended sessions match.';
  const pager = historyPager(hist.page, hist.pageSize, hist.total, rows.length);
  setText($('history-count'), pager.count);
  setText($('history-page-info'), pager.info);
  $('history-prev').disabled = hist.page <= 1;
  $('history-next').disabled = hist.page >= pager.pages;
  $('history-pager').querySelector('.pager-buttons').hidden = pager.pages <= 1;
}

async function downloadCsv() {
  const btn = $('download-csv');
  btn.disabled = true;
  try {
    const res = await api(`/api/v1/sessions/export?${exportQuery(historyFilters())}`, {
      accept: 'text/csv',
    });
    if (!res.ok) {
      toast(`Export failed: ${await errorMessage(res)}`, 'error');
      return;
    }
    saveBlob(await res.blob(), csvFilename());
  } catch {
    toast('Could not reach the hub.', 'error');
  } finally {
    btn.disabled = false;
  }
}

/** Binds the filters (apply, reset), the pager, clicks on a row and the CSV button. */
export function bindHistory() {
  const { hist } = state;
  $('history-filters').addEventListener('submit', (e) => {
    e.preventDefault();
    hist.page = 1;
    loadHistory();
  });
  $('history-filters').addEventListener('reset', () => {
    hist.page = 1;
    setTimeout(loadHistory, 0);
  });
  $('history-prev').addEventListener('click', () => {
    hist.page = Math.max(1, hist.page - 1);
    loadHistory();
  });
  $('history-next').addEventListener('click', () => {
    hist.page += 1;
    loadHistory();
  });
  $('history-tbody').addEventListener('click', (e) => {
    const tr = e.target.closest('tr[data-session-id]');
    const s = tr && hist.items.get(tr.dataset.sessionId);
    if (s) openDrawerForSession(s, tr.querySelector('button'));
  });
  $('download-csv').addEventListener('click', downloadCsv);
}
