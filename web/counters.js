// counters.js: the counter cards.
//
// Owns the counts drawn from the model (online users and busy ones, live
// sessions by status, nodes with their live sessions) and the two the
// stream does not carry, read from GET /api/v1/stats (started today, peak
// online): re-read shortly after a change, and on app.js's timer.

import { api } from './auth.js';
import { $, setText } from './dom.js';
import { countPresence } from './panel-core.js';
import { nodeCounts, nodeItem, peakText } from './panel-view.js';
import { state } from './state.js';

// Sessions started today and the peak move with the stream; re-read them
// shortly after a change, at most once per STATS_DEBOUNCE_MS.
const STATS_DEBOUNCE_MS = 2_000;

/** Draws the stream's counters and the per-node list. */
export function renderCounters() {
  const { model } = state;
  const c = countPresence(model);
  setText($('counter-online-users'), String(c.onlineUsers));
  setText($('counter-busy'), String(c.busy));
  setText($('counter-sessions-live'), String(c.live));
  setText($('counter-sessions-active'), String(c.active));
  setText($('counter-sessions-idle'), String(c.idle));
  setText($('counter-sessions-away'), String(c.away));
  const nodes = nodeCounts(c.byNode, model.nodeId);
  setText($('counter-nodes'), String(nodes.length));
  const list = $('counter-by-node');
  const existing = new Map([...list.children].map((li) => [li.dataset.nodeId, li]));
  nodes.forEach((entry, i) => {
    const { node, self } = entry;
    const item = nodeItem(entry);
    let li = existing.get(node);
    if (!li) {
      li = document.createElement('li');
      li.dataset.nodeId = node;
      // The mark sits beside the name, which alone is cut short when long.
      li.innerHTML =
        '<span class="node-name"></span><span class="node-self"></span> <span class="node-count"></span>';
      li.querySelector('.node-name').textContent = item.name;
    }
    existing.delete(node);
    li.classList.toggle('self', self);
    li.title = item.title;
    const mark = li.querySelector('.node-self');
    setText(mark, item.selfMark ?? '');
    mark.hidden = item.selfMark == null;
    setText(li.querySelector('.node-count'), item.count);
    if (list.children[i] !== li) list.insertBefore(li, list.children[i] ?? null);
  });
  for (const li of existing.values()) li.remove();
}

/** Reads `/api/v1/stats` again; failures leave the last values. */
export async function refreshStats() {
  try {
    const res = await api('/api/v1/stats');
    if (res.ok) applyStats(await res.json());
  } catch {
    // The stream shows the connection state; stats follow when it is back.
  }
}

/** Re-reads the stats once, STATS_DEBOUNCE_MS from the first call. */
export function scheduleStatsRefresh() {
  if (state.statsTimer != null) return;
  state.statsTimer = setTimeout(() => {
    state.statsTimer = null;
    refreshStats();
  }, STATS_DEBOUNCE_MS);
}

/** Draws a `/api/v1/stats` body. */
export function applyStats(stats) {
  setText($('counter-started-today'), String(stats?.started?.today ?? '-'));
  setText($('counter-peak'), peakText(stats?.peak_online));
}
