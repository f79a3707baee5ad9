// alerts.js: the active alerts (contract v1.1 section 12).
//
// Owns the set of active alerts: read from GET /api/v1/alerts?active=true
// at start and after every snapshot (the snapshot lists none), kept up to
// date by the admin stream's alert frames (raised, then cleared); the badge
// on the Alerts tab (#alerts-count) and the tab's list (#alerts-table),
// where a user opens the drawer. The drawer marks its own user's alerts
// from `state.alerts`.

import { api } from './auth.js';
import { $, addCell, setText } from './dom.js';
import { openDrawerForUser } from './drawer.js';
import { parseTime } from './panel-core.js';
import { formatClock, isoTitle } from './panel-view.js';
import {
  ACTIVE_ALERTS_PATH,
  ALERT_RULES,
  alertSummary,
  alertsBadge,
  applyAlert,
  mergeAlerts,
  sortedAlerts,
} from './records-view.js';
import { markDirty, state } from './state.js';

/**
 * Reads the active alerts again (after each snapshot); frames arriving
 * meanwhile are applied on top of the answer.
 */
export async function loadAlerts() {
  const { alerts } = state;
  if (alerts.pending) {
    // A snapshot while a read runs: read once more when it is done.
    alerts.again = true;
    return;
  }
  alerts.pending = [];
  try {
    const res = await api(ACTIVE_ALERTS_PATH);
    if (!res.ok) return;
    const body = await res.json();
    alerts.active = mergeAlerts(body?.alerts, alerts.pending);
    alerts.listKey = '';
    markDirty();
  } catch {
    // Unreachable: the stream's next snapshot reads them again.
  } finally {
    alerts.pending = null;
    if (alerts.again) {
      alerts.again = false;
      loadAlerts();
    }
  }
}

/** One alert frame of the admin stream (`{"type":"alert","alert":...}`). */
export function applyAlertFrame(alert) {
  const { alerts } = state;
  alerts.pending?.push(alert);
  if (applyAlert(alerts.active, alert)) markDirty();
}

/** Draws the badge, and the list when its tab is shown. */
export function renderAlerts() {
  const { alerts } = state;
  const badge = alertsBadge(alerts.active.size);
  const el = $('alerts-count');
  setText(el, badge.text);
  el.dataset.count = badge.text;
  el.setAttribute('aria-label', badge.label);
  if ($('panel-alerts').hidden) return;
  const list = sortedAlerts(alerts.active);
  const key = `${alerts.highlight}|${list.map((a) => a.id).join(',')}`;
  if (key === alerts.listKey) return;
  alerts.listKey = key;
  const rows = list.map(alertRow);
  $('alerts-tbody').replaceChildren(...rows);
  $('alerts-empty').hidden = rows.length > 0;
  $('alerts-tbody').querySelector('tr.highlight')?.scrollIntoView({ block: 'nearest' });
}

function alertRow(alert) {
  const tr = document.createElement('tr');
  tr.dataset.alertId = alert.id;
  tr.dataset.rule = alert.rule ?? '';
  tr.classList.toggle('highlight', alert.id === state.alerts.highlight);
  const td = (text, field, cls) => addCell(tr, text, field, cls);
  const at = parseTime(alert.at);
  td(formatClock(at), 'at').title = isoTitle(at);
  const rule = td('', 'rule');
  const tag = document.createElement('span');
  tag.className = 'tag tag-alert';
  tag.textContent = ALERT_RULES[alert.rule] ?? alert.rule ?? '-';
  tag.title = alert.rule ?? '';
  rule.append(tag);
  const subject = td('', 'subject');
  if (alert.user_id) {
    const btn = document.createElement('button');
    btn.type = 'button';
    btn.className = 'link';
    btn.dataset.userId = alert.user_id;
    btn.textContent = alert.user_id;
    btn.setAttribute('aria-label', `${alert.user_id}: show sessions`);
    subject.append(btn);
  } else {
    subject.textContent = `IP ${alert.ip ?? '-'}`;
  }
  td(alert.ip ?? '-', 'ip', 'col-ip');
  td(alertSummary(alert), 'details', 'wrap');
  return tr;
}

/** Binds clicks on a user in the list (opens the drawer). */
export function bindAlerts() {
  $('alerts-tbody').addEventListener('click', (e) => {
    const btn = e.target.closest('button[data-user-id]');
    if (btn) openDrawerForUser(btn.dataset.userId, btn);
  });
}
