// me.js: the self-service page's glue (web/me.html).
//
// Owns this page's own presence session (so "this device" is marked and
// "sign out all others" keeps it), the calls to `/api/v1/me/...` with
// `X-Presence-Session`, and rendering the rows of me-view.js.
//
// Dev mode:  me.html?user=alice
// JWT mode:  me.html?token=<jwt>

import { connect } from '/presence-client.js';
import { sessionRows, signedOutText } from '/me-view.js';

const params = new URLSearchParams(location.search);
const $ = (id) => document.getElementById(id);
const REFRESH_MS = 3_000;

const who = params.get('token')
  ? { token: params.get('token') }
  : { user: params.get('user') ?? undefined, name: params.get('name') ?? undefined, org: params.get('org') ?? undefined };

let current = null;

const presence = connect({
  ...who,
  page: '/me.html',
  app: { name: 'presence-self-service', version: '1' },
  // A page of its own, not the tab's other presence pages.
  resumeKey: 'presence-client.resume.me',
});

function apiUrl(path) {
  if (who.token) return path;
  const q = new URLSearchParams();
  if (who.user) q.set('user', who.user);
  return `${path}?${q}`;
}

async function api(method, path) {
  const headers = {};
  if (who.token) headers.Authorization = `Bearer ${who.token}`;
  if (current) headers['X-Presence-Session'] = current;
  const response = await fetch(apiUrl(path), { method, headers });
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    throw new Error(body?.error?.message ?? `HTTP ${response.status}`);
  }
  return body;
}

function showError(error) {
  const banner = $('me-error');
  banner.textContent = error ? `Could not reach the hub: ${error.message}` : '';
  banner.hidden = !error;
}

function toast(text) {
  $('me-toast').textContent = text;
}

function cell(className, text) {
  const span = document.createElement('span');
  span.className = className;
  span.textContent = text;
  return span;
}

function render(rows) {
  const list = $('me-sessions');
  list.replaceChildren(
    ...rows.map((row) => {
      const li = document.createElement('li');
      li.className = 'me-session';
      li.dataset.sessionId = row.sessionId;
      li.dataset.current = String(row.current);
      const facts = document.createElement('div');
      facts.className = 'me-facts';
      facts.append(cell('me-device', row.device), cell('me-browser', row.browser));
      if (row.location) facts.append(cell('me-location', row.location));
      facts.append(cell('me-since muted', `since ${row.since}`));
      if (row.reconnecting) facts.append(cell('pill me-reconnecting', 'reconnecting'));
      li.append(facts);
      if (row.current) {
        li.append(cell('pill me-this-device', 'This device'));
      } else {
        const button = document.createElement('button');
        button.type = 'button';
        button.className = 'btn btn-danger-outline me-sign-out';
        button.dataset.sessionId = row.sessionId;
        button.textContent = 'Sign out';
        button.addEventListener('click', () => signOut(row.sessionId));
        li.append(button);
      }
      return li;
    }),
  );
  $('me-empty').hidden = rows.length > 0;
  $('me-revoke-others').disabled = !rows.some((row) => !row.current);
}

async function refresh() {
  if (presence.state === 'terminated') return;
  try {
    render(sessionRows(await api('GET', '/api/v1/me/sessions')));
    showError(null);
  } catch (error) {
    showError(error);
  }
}

async function signOut(sessionId) {
  try {
    await api('DELETE', `/api/v1/me/sessions/${encodeURIComponent(sessionId)}`);
    toast(signedOutText(1));
  } catch (error) {
    showError(error);
  }
  await refresh();
}

$('me-revoke-others').addEventListener('click', async () => {
  try {
    const body = await api('POST', '/api/v1/me/sessions/revoke-others');
    toast(signedOutText(body?.terminated ?? 0));
  } catch (error) {
    showError(error);
  }
  await refresh();
});

presence.on('open', (info) => {
  current = info.sessionId;
  document.body.dataset.session = current ?? '';
  refresh();
});

presence.on('terminated', ({ reason, final }) => {
  if (!final) return;
  $('me-terminated-text').textContent =
    reason === 'user' ? 'This page was signed out from another of your sessions.' : `Reason: ${reason}.`;
  $('me-terminated').hidden = false;
  $('me-revoke-others').disabled = true;
});

setInterval(() => {
  if (document.visibilityState !== 'hidden') refresh();
}, REFRESH_MS);

// Handy from the devtools console and from browser tests.
window.presence = presence;
