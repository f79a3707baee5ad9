// demo.js: the demo page's glue around presence-client.js.
//
// Dev mode:  demo.html?user=alice&name=Alice&org=acme  (a random guest when
//            no user is given, kept for the life of the tab)
// JWT mode:  demo.html?token=<jwt>
// The "who is here" stack shows the room `page:<path>` (or `?room=<name>`);
// in JWT mode the token's `rooms` claim must allow it.

import { connect } from '/presence-client.js';

const params = new URLSearchParams(location.search);
const $ = (id) => document.getElementById(id);

function guestIdentity() {
  const key = 'presence.demo.guest';
  let id = sessionStorage.getItem(key);
  if (!id) {
    const bytes = crypto.getRandomValues(new Uint8Array(3));
    id = `guest-${[...bytes].map((b) => b.toString(16).padStart(2, '0')).join('')}`;
    sessionStorage.setItem(key, id);
  }
  return { user: id, name: `Guest ${id.slice(6)}`, org: 'demo' };
}

function identity() {
  const token = params.get('token');
  if (token) return { token };
  if (params.get('user')) {
    return {
      user: params.get('user'),
      name: params.get('name') ?? undefined,
      org: params.get('org') ?? undefined,
    };
  }
  return guestIdentity();
}

/** The page as reported to the hub: never with the token in it. */
function page() {
  const q = new URLSearchParams(location.search);
  q.delete('token');
  const search = q.toString();
  return `${location.pathname}${search ? `?${search}` : ''}`;
}

const who = identity();
const presence = connect({
  ...who,
  page,
  app: { name: 'presence-demo', version: '1' },
});

$('demo-user').textContent = who.token
  ? 'from token'
  : `${who.name ?? who.user} (${who.user}${who.org ? `, ${who.org}` : ''})`;

function log(text) {
  const li = document.createElement('li');
  const time = document.createElement('time');
  const now = new Date();
  time.dateTime = now.toISOString();
  time.textContent = now.toLocaleTimeString();
  li.append(time, ' ', text);
  const list = $('demo-log');
  list.prepend(li);
  while (list.children.length > 50) list.lastElementChild.remove();
}

function setState(state) {
  const el = $('demo-state');
  el.textContent = state;
  el.dataset.state = state;
}

function setStatus(status, manual) {
  const el = $('demo-status');
  el.dataset.status = status;
  el.dataset.manual = manual ?? '';
  el.textContent = manual === 'busy' ? `${status} · busy` : status;
  const dot = $('demo-status-dot');
  dot.dataset.status = status;
  dot.classList.toggle('busy', manual === 'busy');
  document.title = `${status} · Presence demo`;
}

function seconds(ms) {
  if (ms == null) return '?';
  return ms % 60_000 === 0 && ms >= 60_000 ? `${ms / 60_000} min` : `${ms / 1000} s`;
}

let failures = 0;
presence.on('open', (info) => {
  failures = 0;
  $('demo-hint').hidden = true;
  setState('open');
  $('demo-session-id').textContent = info.sessionId ?? '-';
  $('demo-node').textContent = info.nodeId ?? '-';
  if (who.token) $('demo-user').textContent = `${info.userId} (from token)`;
  $('demo-thresholds').textContent =
    `idle after ${seconds(info.idleAfterMs)}, away after ${seconds(info.awayAfterMs)}`;
  $('demo-page').textContent = presence.page ?? '-';
  $('demo-resumed').textContent = info.resumed ? 'yes' : 'no';
  log(`${info.resumed ? 'resumed' : 'connected'}, session ${info.sessionId}`);
});

presence.on('status', ({ status, manual }) => {
  setStatus(status, manual);
  log(`status ${status}${manual ? ` (manual ${manual})` : ''}`);
});

presence.on('close', (e) => {
  if (e.willReconnect) {
    failures += 1;
    setState('reconnecting');
    setStatus('offline', null);
    log(`disconnected (code ${e.code}), retrying in ${(e.delayMs / 1000).toFixed(1)} s`);
    if (failures >= 3 && !who.token) {
      const hint = $('demo-hint');
      hint.textContent =
        'Cannot connect. If the hub checks tokens (JWT mode), open this page as demo.html?token=<jwt>.';
      hint.hidden = false;
    }
  } else if (presence.state === 'terminated') {
    setState('terminated');
  } else if (e.replaced) {
    setState('closed');
    log('this session continues in another tab');
  } else {
    setState('closed');
    setStatus('offline', null);
    log('closed');
  }
});

const REASONS = {
  admin: 'An administrator terminated this tab’s session.',
  revoked: 'An administrator signed this user out everywhere.',
  session_limit: 'This user opened too many sessions; this, the oldest one, was ended.',
  user: 'You signed this session out from your sessions page.',
  max_age: 'This session reached its maximum age.',
  token_expired: 'The sign-in token expired.',
};

presence.on('terminated', ({ reason, final }) => {
  log(`terminated (${reason})`);
  if (!final) return;
  setState('terminated');
  setStatus('ended', null);
  const banner = $('demo-terminated');
  banner.dataset.reason = reason;
  $('demo-terminated-text').textContent =
    `${REASONS[reason] ?? `Reason: ${reason}.`} This tab will not reconnect; reload to start a new session.`;
  banner.hidden = false;
  for (const el of document.querySelectorAll('.card input, .card button')) el.disabled = true;
});

presence.on('error', (e) => {
  if (e.server) log(`hub error ${e.code}: ${e.message}`);
  if (e.code !== 'unauthorized' && e.code !== 'forbidden') return;
  log(`refused (${e.code}): ${e.message}`);
  // A token that ran out on a live socket already has its banner.
  if (e.willRetry || presence.terminatedReason === 'token_expired') return;
  const hint = $('demo-hint');
  hint.dataset.code = e.code;
  if (e.code === 'forbidden') {
    hint.textContent = `The hub refused this page (${e.message}).`;
  } else if (who.token) {
    hint.textContent = `The hub refused the token (${e.message}). Open this page with a fresh demo.html?token=<jwt>.`;
  } else {
    hint.textContent =
      'The hub requires a token (JWT mode): open this page as demo.html?token=<jwt>.';
  }
  hint.hidden = false;
});

for (const radio of document.querySelectorAll('input[name=manual]')) {
  radio.addEventListener('change', () => {
    if (radio.checked) presence.setStatus(radio.value || null);
  });
}

let view = Number(params.get('view') ?? 1);
$('demo-navigate').addEventListener('click', () => {
  view += 1;
  const next = new URLSearchParams(location.search);
  next.set('view', String(view));
  history.pushState({ view }, '', `${location.pathname}?${next}`);
  $('demo-page').textContent = presence.page ?? '-';
  log(`navigated to ${presence.page}`);
});
addEventListener('popstate', () => {
  $('demo-page').textContent = presence.page ?? '-';
});

$('demo-close').addEventListener('click', () => presence.close());

// The self-service page, as the same user.
{
  const q = new URLSearchParams();
  for (const key of ['token', 'user', 'name', 'org']) if (who[key]) q.set(key, who[key]);
  $('demo-me').href = `/me.html?${q}`;
}

// --- who is here ---------------------------------------------------------

const roomName = params.get('room') || `page:${location.pathname}`;
const room = presence.join(roomName);
$('demo-room').textContent = roomName;

function initials(member) {
  const words = (member.name || member.user_id).split(/[\s._@-]+/).filter(Boolean);
  return words.slice(0, 2).map((w) => w[0].toUpperCase()).join('') || '?';
}

function renderHere(members) {
  const list = $('demo-here');
  list.replaceChildren(
    ...members.map((member) => {
      const li = document.createElement('li');
      li.className = 'avatar';
      li.dataset.userId = member.user_id;
      li.dataset.status = member.status;
      li.dataset.manual = member.manual ?? '';
      li.textContent = initials(member);
      const label = `${member.name ?? member.user_id}: ${member.manual === 'busy' ? 'busy' : member.status}`;
      li.title = member.session_count > 1 ? `${label} (${member.session_count} tabs)` : label;
      li.setAttribute('aria-label', li.title);
      return li;
    }),
  );
  $('demo-here-count').textContent = String(members.length);
}

room.onChange((members, changes) => {
  renderHere(members);
  for (const { event, member } of changes) {
    if (member.user_id === presence.userId) continue;
    const what = { join: 'is here', leave: 'left' }[event] ?? `is ${member.manual ?? member.status}`;
    log(`${member.name ?? member.user_id} ${what}`);
  }
});
room.onError((e) => log(`room ${e.room}: ${e.code}`));

// Handy from the devtools console and from browser tests.
window.presence = presence;
