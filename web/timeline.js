// timeline.js: the session timeline in the drawer (#drawer-timeline).
//
// Owns reading GET /api/v1/sessions/{id}/timeline for the session the
// drawer shows (live or ended), reading it again shortly after that session
// changed in a way the timeline records (status, manual status, page, rooms,
// reconnecting, its end), and drawing the entries oldest first between the
// session's start and, once over, its end. drawer.js calls it.

import { api } from './auth.js';
import { $, setText } from './dom.js';
import { parseTime } from './panel-core.js';
import { errorMessage, formatClock, isEnded, isoTitle } from './panel-view.js';
import { timelineKey, timelineText } from './records-view.js';
import { state } from './state.js';

/** How long after a change the timeline is read again (changes come in bursts). */
const REREAD_MS = 400;
/** A 404 is read again this many times, this far apart, before the drawer says so. */
const MISSING_RETRIES = 3;
const MISSING_RETRY_MS = 1_000;

/** Shows the timeline of `session` (the drawer's), reading it when needed; null hides it. */
export function showTimeline(session) {
  const tl = state.timeline;
  const section = $('drawer-timeline');
  if (!session) {
    section.hidden = true;
    resetTimeline();
    return;
  }
  section.hidden = false;
  tl.session = session;
  const key = timelineKey(session);
  if (session.session_id !== tl.sessionId) {
    resetTimeline();
    tl.sessionId = session.session_id;
    tl.session = session;
    tl.key = key;
    $('drawer-timeline-list').replaceChildren();
    note('Loading…');
    readTimeline();
  } else if (key !== tl.key) {
    tl.key = key;
    if (tl.timer == null) {
      tl.timer = setTimeout(() => {
        tl.timer = null;
        readTimeline();
      }, REREAD_MS);
    }
  }
}

/** Forgets the shown timeline (the drawer closed or shows another session). */
export function resetTimeline() {
  const tl = state.timeline;
  clearTimeout(tl.timer);
  tl.timer = null;
  tl.sessionId = null;
  tl.session = null;
  tl.key = '';
  tl.retries = 0;
  tl.request += 1;
}

async function readTimeline() {
  const tl = state.timeline;
  const id = tl.sessionId;
  if (!id) return;
  const request = ++tl.request;
  const list = $('drawer-timeline-list');
  list.setAttribute('aria-busy', 'true');
  try {
    const res = await api(`/api/v1/sessions/${encodeURIComponent(id)}/timeline`);
    if (request !== tl.request) return;
    if (res.status === 404) {
      // A session that just ended may not be in the records yet: try again.
      if (tl.retries < MISSING_RETRIES) {
        tl.retries += 1;
        tl.timer = setTimeout(() => {
          tl.timer = null;
          readTimeline();
        }, MISSING_RETRY_MS);
        return;
      }
      list.replaceChildren();
      note('No timeline is kept for this session.');
      return;
    }
    if (!res.ok) {
      note(`Could not load the timeline: ${await errorMessage(res)}`);
      return;
    }
    const body = await res.json();
    if (request !== tl.request) return;
    tl.retries = 0;
    drawTimeline(body, tl.session);
  } catch {
    if (request === tl.request) note('Could not reach the hub.');
  } finally {
    if (request === tl.request) list.setAttribute('aria-busy', 'false');
  }
}

function note(text) {
  const el = $('drawer-timeline-note');
  setText(el, text ?? '');
  el.hidden = !text;
}

function drawTimeline(body, session) {
  const entries = Array.isArray(body?.entries) ? body.entries : [];
  const items = [];
  if (session?.connected_at && !body?.truncated) {
    items.push(item('connected', session.connected_at, 'Connected', true));
  }
  for (const entry of entries) items.push(item(entry.kind ?? '', entry.at, timelineText(entry)));
  if (session && isEnded(session) && session.ended_at) {
    items.push(item('ended', session.ended_at, `Ended (${session.end_cause ?? 'unknown cause'})`, true));
  }
  $('drawer-timeline-list').replaceChildren(...items);
  if (body?.truncated) note('Only the newest entries are kept: older ones were dropped.');
  else note(entries.length === 0 ? 'No changes yet.' : '');
}

function item(kind, at, text, edge = false) {
  const li = document.createElement('li');
  li.dataset.kind = kind;
  if (edge) li.className = 'timeline-edge';
  const ms = parseTime(at);
  const time = document.createElement('time');
  time.className = 'timeline-at small muted';
  time.textContent = formatClock(ms);
  if (ms != null) time.dateTime = isoTitle(ms);
  time.title = isoTitle(ms);
  const span = document.createElement('span');
  span.className = 'timeline-text';
  span.textContent = text;
  li.append(time, span);
  return li;
}
