// table.js: the users table of the "Online now" tab (#users-table).
//
// Owns the search, filters and page size (#users-filters), the org options,
// the sortable headers (aria-sort), the pager, and the rows: keyed by user
// id, built from a template, updated field by field in place, with their
// ticking "ago" texts and their location columns (shown while a row of the
// page is located). A click on a user opens the drawer.

import { $, setText } from './dom.js';
import { openDrawerForUser } from './drawer.js';
import { formatAgo, paginate, selectUsers } from './panel-core.js';
import {
  ariaSort,
  formatClock,
  isoTitle,
  manualMark,
  nextSort,
  orgOptions,
  statusText,
  tabsTitle,
  usersCountText,
} from './panel-view.js';
import { anyLocated } from './records-view.js';
import { markDirty, state } from './state.js';

const ROW_TEMPLATE = document.createElement('template');
ROW_TEMPLATE.innerHTML = `<tr>
  <td data-field="status"><span class="status-line"><span class="dot" aria-hidden="true"></span><span class="status-text"></span></span></td>
  <td class="cell-user"><button type="button" class="link" data-field="name"></button><span class="tag tag-busy" hidden>busy</span><span class="sub muted small" data-field="user-id"></span></td>
  <td class="col-org" data-field="org"></td>
  <td class="num" data-field="session-count"></td>
  <td class="col-geo" data-field="country"></td>
  <td class="col-geo" data-field="city"></td>
  <td class="col-since" data-field="online-since"></td>
  <td data-field="last-activity"></td>
</tr>`;

/** Draws the org options and the current page of users. */
export function renderTable() {
  renderOrgOptions();
  renderUsers();
}

function renderOrgOptions() {
  const { view } = state;
  const { key, options } = orgOptions(state.model.orgs(), view.org);
  if (key === state.orgKey) return;
  state.orgKey = key;
  const select = $('filter-org');
  select.replaceChildren(...options.map((o) => new Option(o.label, o.value)));
  select.value = view.org;
}

function createRow(id) {
  const tr = ROW_TEMPLATE.content.firstElementChild.cloneNode(true);
  tr.dataset.userId = id;
  const q = (sel) => tr.querySelector(sel);
  const refs = {
    status: q('[data-field=status]'),
    dot: q('.dot'),
    statusText: q('.status-text'),
    name: q('[data-field=name]'),
    busy: q('.tag-busy'),
    userId: q('[data-field=user-id]'),
    org: q('[data-field=org]'),
    tabs: q('[data-field=session-count]'),
    country: q('[data-field=country]'),
    city: q('[data-field=city]'),
    since: q('[data-field=online-since]'),
    activity: q('[data-field=last-activity]'),
  };
  const entry = { tr, refs, last: {} };
  state.rows.set(id, entry);
  return entry;
}

function updateField(entry, key, value, apply) {
  if (entry.last[key] === value) return;
  entry.last[key] = value;
  apply(value);
}

function updateRow(entry, row, now) {
  const { refs, tr } = entry;
  const manual = row.busy ? 'busy' : row.manualAway ? 'away' : null;
  updateField(entry, 'status', `${row.status}|${manual}`, () => {
    tr.dataset.status = row.status;
    refs.status.dataset.status = row.status;
    refs.dot.dataset.status = row.status;
    refs.statusText.textContent = statusText(row.status, manual);
    const mark = manualMark(row.status, manual);
    refs.status.dataset.manual = mark;
    refs.dot.dataset.manual = mark;
    refs.dot.classList.toggle('busy', row.busy);
    refs.busy.hidden = !row.busy;
  });
  updateField(entry, 'name', row.name, (v) => {
    refs.name.textContent = v;
    refs.name.setAttribute('aria-label', `${v}: show sessions`);
  });
  updateField(entry, 'id', row.id === row.name ? '' : row.id, (v) => {
    refs.userId.textContent = v;
  });
  updateField(entry, 'org', row.org, (v) => {
    refs.org.textContent = v || '-';
  });
  updateField(entry, 'tabs', `${row.tabs}|${row.httpSessions}`, () => {
    refs.tabs.textContent = String(row.tabs);
    refs.tabs.title = tabsTitle({ tabs: row.tabs, http: row.httpSessions });
    if (row.httpSessions) refs.tabs.dataset.http = String(row.httpSessions);
    else delete refs.tabs.dataset.http;
  });
  updateField(entry, 'country', row.country, (v) => {
    refs.country.textContent = v;
  });
  updateField(entry, 'city', row.city, (v) => {
    refs.city.textContent = v;
  });
  updateField(entry, 'since', row.onlineSince, (v) => {
    refs.since.textContent = formatClock(v);
    refs.since.title = isoTitle(v);
  });
  updateField(entry, 'activity', row.lastActivity, (v) => {
    refs.activity.title = isoTitle(v);
  });
  updateAgo(entry, now);
}

function updateAgo(entry, now) {
  const at = entry.last.activity;
  updateField(entry, 'ago', at == null ? '-' : formatAgo(now - at), (v) => {
    entry.refs.activity.textContent = v;
  });
}

/** The rows' "ago" texts at hub time `now` (once a second). */
export function tickTable(now) {
  for (const entry of state.rows.values()) updateAgo(entry, now);
}

function renderUsers() {
  const { model, view, rows: rowCache } = state;
  const rows = selectUsers(model, view);
  const page = paginate(rows, view.page, view.pageSize);
  view.page = page.page;
  const tbody = $('users-tbody');
  const now = model.serverNow();
  const keep = new Set();
  let cursor = tbody.firstElementChild;
  for (const row of page.items) {
    const entry = rowCache.get(row.id) ?? createRow(row.id);
    updateRow(entry, row, now);
    keep.add(row.id);
    if (entry.tr === cursor) {
      cursor = cursor.nextElementSibling;
    } else {
      tbody.insertBefore(entry.tr, cursor);
    }
  }
  for (const [id, entry] of rowCache) {
    if (!keep.has(id)) {
      entry.tr.remove();
      rowCache.delete(id);
    }
  }
  const geo = anyLocated(page.items) ? 'on' : 'off';
  const table = $('users-table');
  if (table.dataset.geo !== geo) table.dataset.geo = geo;
  const filtered = Boolean(view.q || view.status || view.org);
  const empty = $('users-empty');
  empty.hidden = rows.length > 0;
  setText(empty, filtered ? 'No users match these filters.' : 'No users online.');
  setText($('users-count'), usersCountText(page, model.users.size, filtered));
  setText($('users-page-info'), `${page.page} / ${page.pages}`);
  $('users-prev').disabled = page.page <= 1;
  $('users-next').disabled = page.page >= page.pages;
  $('users-pager').querySelector('.pager-buttons').hidden = page.pages <= 1;
}

/** Sets each sortable header's aria-sort from the view. */
export function renderSortHeaders() {
  for (const th of document.querySelectorAll('#users-table th[data-sort]')) {
    th.setAttribute('aria-sort', ariaSort(state.view, th.dataset.sort));
  }
}

/** A filter control whose `event` changes one view field and goes back to page 1. */
function bindFilter(id, event, apply) {
  $(id).addEventListener(event, (e) => {
    apply(e.target.value);
    state.view.page = 1;
    markDirty();
  });
}

/** Binds the filters, the pager, the sort headers and clicks on a user. */
export function bindTable() {
  const { view } = state;
  $('users-filters').addEventListener('submit', (e) => e.preventDefault());
  bindFilter('user-search', 'input', (v) => {
    view.q = v;
  });
  bindFilter('filter-status', 'change', (v) => {
    view.status = v;
  });
  bindFilter('filter-org', 'change', (v) => {
    view.org = v;
  });
  bindFilter('page-size', 'change', (v) => {
    view.pageSize = Number(v) || 100;
  });
  $('users-prev').addEventListener('click', () => {
    view.page -= 1;
    markDirty();
  });
  $('users-next').addEventListener('click', () => {
    view.page += 1;
    markDirty();
  });
  for (const th of document.querySelectorAll('#users-table th[data-sort]')) {
    th.querySelector('button').addEventListener('click', () => {
      Object.assign(view, nextSort(view, th.dataset.sort));
      renderSortHeaders();
      markDirty();
    });
  }
  $('users-tbody').addEventListener('click', (e) => {
    const tr = e.target.closest('tr[data-user-id]');
    if (!tr) return;
    const entry = state.rows.get(tr.dataset.userId);
    openDrawerForUser(tr.dataset.userId, entry?.refs.name);
  });
}
