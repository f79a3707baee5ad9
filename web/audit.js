// audit.js: the "Audit" tab (#panel-audit).
//
// Owns its filters (#audit-filters: action, actor, target user, time
// range), loading a page of the audit trail from GET /api/v1/audit (newest
// first), drawing the rows and the pager, reading the first page again when
// the admin stream carries a new audit event, opening the drawer on a
// target user or session, and the export links (GET /api/v1/audit/export as
// CSV or NDJSON, with the filters' time range).

import { api } from './auth.js';
import { $, addCell, saveBlob, setText, toast } from './dom.js';
import { openDrawerForSession, openDrawerForUser } from './drawer.js';
import { parseTime } from './panel-core.js';
import { errorMessage, formatClock, isoTitle } from './panel-view.js';
import {
  AUDIT_ACTIONS,
  auditCells,
  auditExportHref,
  auditFilename,
  auditQuery,
  listPager,
} from './records-view.js';
import { state } from './state.js';

/** How long after a stream event the shown first page is read again (events come in bursts). */
const RELOAD_MS = 300;

function auditFilters() {
  return {
    action: $('audit-action').value,
    actor: $('audit-actor').value,
    userId: $('audit-user').value,
    from: $('audit-from').value,
    to: $('audit-to').value,
  };
}

/** Loads and draws the current page; a call while one runs is read again after it. */
export async function loadAudit() {
  const { audit } = state;
  if (audit.loading) {
    audit.again = true;
    return;
  }
  audit.loading = true;
  const table = $('audit-table');
  table.setAttribute('aria-busy', 'true');
  const empty = $('audit-empty');
  try {
    const query = auditQuery({ ...auditFilters(), page: audit.page, pageSize: audit.pageSize });
    const res = await api(`/api/v1/audit?${query}`);
    if (!res.ok) {
      empty.hidden = false;
      empty.textContent = `Could not load the audit trail: ${await errorMessage(res)}`;
      return;
    }
    renderAudit(await res.json());
  } catch {
    empty.hidden = false;
    empty.textContent = 'Could not reach the hub.';
  } finally {
    audit.loading = false;
    table.removeAttribute('aria-busy');
    if (audit.again) {
      audit.again = false;
      loadAudit();
    }
  }
}

/**
 * An audit event on the admin stream (or a new snapshot, after which some
 * may have been missed): the shown first page is read again.
 */
export function onAuditEvent() {
  const { audit } = state;
  if ($('panel-audit').hidden || audit.page !== 1 || audit.reloadTimer != null) return;
  audit.reloadTimer = setTimeout(() => {
    audit.reloadTimer = null;
    loadAudit();
  }, RELOAD_MS);
}

function auditRow(event) {
  const tr = document.createElement('tr');
  tr.dataset.auditId = event.id ?? '';
  tr.dataset.action = event.action ?? '';
  tr.dataset.result = event.result ?? '';
  const cells = auditCells(event);
  const td = (text, field, cls) => addCell(tr, text, field, cls);
  const at = parseTime(event.at);
  td(formatClock(at), 'at').title = isoTitle(at);
  td(cells.action, 'action').title = event.action ?? '';
  td(cells.actor, 'actor');
  const target = td('', 'target');
  const { user_id: userId, session_id: sessionId } = event.target ?? {};
  if (userId) target.append(targetButton(`user ${userId}`, { userId }));
  if (userId && sessionId) target.append(', ');
  if (sessionId) target.append(targetButton(`session ${sessionId}`, { sessionId }));
  if (!userId && !sessionId) target.textContent = cells.target;
  const result = td('', 'result');
  const tag = document.createElement('span');
  tag.className = 'tag';
  tag.dataset.result = event.result === 'ok' ? 'ok' : 'error';
  tag.textContent = cells.result;
  result.append(tag);
  td(cells.reason, 'reason', 'col-reason wrap small');
  td(cells.node, 'node', 'col-node');
  return tr;
}

function targetButton(text, data) {
  const btn = document.createElement('button');
  btn.type = 'button';
  btn.className = 'link';
  Object.assign(btn.dataset, data);
  btn.textContent = text;
  return btn;
}

function renderAudit(body) {
  const { audit } = state;
  const events = body?.events ?? [];
  audit.total = body?.total ?? events.length;
  const rows = events.map(auditRow);
  $('audit-tbody').replaceChildren(...rows);
  const empty = $('audit-empty');
  empty.hidden = rows.length > 0;
  empty.textContent = 'No audit events match.';
  const pager = listPager(audit.page, audit.pageSize, audit.total, rows.length, 'events');
  setText($('audit-count'), pager.count);
  setText($('audit-page-info'), pager.info);
  $('audit-prev').disabled = audit.page <= 1;
  $('audit-next').disabled = audit.page >= pager.pages;
  $('audit-pager').querySelector('.pager-buttons').hidden = pager.pages <= 1;
}

function renderExportLinks() {
  const filters = auditFilters();
  for (const format of ['csv', 'ndjson']) {
    $(`audit-export-${format}`).href = auditExportHref(format, filters);
  }
}

/** Downloads an export with the token (a plain link cannot send it in JWT mode). */
async function downloadExport(link, format) {
  try {
    const res = await api(link.getAttribute('href'), {
      accept: format === 'csv' ? 'text/csv' : 'application/x-ndjson',
    });
    if (!res.ok) {
      toast(`Export failed: ${await errorMessage(res)}`, 'error');
      return;
    }
    saveBlob(await res.blob(), auditFilename(format));
  } catch {
    toast('Could not reach the hub.', 'error');
  }
}

/** Opens the drawer on an audit event's target session (read from the hub). */
async function openTargetSession(sessionId, opener) {
  try {
    const res = await api(`/api/v1/sessions/${encodeURIComponent(sessionId)}`);
    if (res.ok) openDrawerForSession(await res.json(), opener);
    else toast(res.status === 404 ? 'That session is no longer kept.' : await errorMessage(res), 'error');
  } catch {
    toast('Could not reach the hub.', 'error');
  }
}

/** Binds the filters, the pager, the targets and the export links. */
export function bindAudit() {
  const { audit } = state;
  $('audit-action').append(
    ...Object.entries(AUDIT_ACTIONS).map(([value, label]) => new Option(label, value)),
  );
  $('audit-filters').addEventListener('submit', (e) => {
    e.preventDefault();
    audit.page = 1;
    renderExportLinks();
    loadAudit();
  });
  $('audit-filters').addEventListener('reset', () => {
    audit.page = 1;
    setTimeout(() => {
      renderExportLinks();
      loadAudit();
    }, 0);
  });
  for (const id of ['audit-from', 'audit-to']) $(id).addEventListener('change', renderExportLinks);
  $('audit-prev').addEventListener('click', () => {
    audit.page = Math.max(1, audit.page - 1);
    loadAudit();
  });
  $('audit-next').addEventListener('click', () => {
    audit.page += 1;
    loadAudit();
  });
  $('audit-tbody').addEventListener('click', (e) => {
    const btn = e.target.closest('button');
    if (btn?.dataset.userId) openDrawerForUser(btn.dataset.userId, btn);
    else if (btn?.dataset.sessionId) openTargetSession(btn.dataset.sessionId, btn);
  });
  for (const format of ['csv', 'ndjson']) {
    const link = $(`audit-export-${format}`);
    link.addEventListener('click', (e) => {
      e.preventDefault();
      downloadExport(link, format);
    });
  }
  renderExportLinks();
}
