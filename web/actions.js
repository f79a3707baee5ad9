// actions.js: the admin actions in the drawer.
//
// Owns "Terminate session" (#terminate-session, DELETE /api/v1/sessions/{id})
// and "Sign out everywhere" (#revoke-user, DELETE
// /api/v1/users/{id}/sessions): the confirmation dialog (#confirm), the
// call, and the toast with its result. The table and drawer then follow
// the stream.

import { api } from './auth.js';
import { $, setText, toast } from './dom.js';
import { renderDrawer } from './drawer.js';
import { errorMessage, revokePrompt, revokedText, terminatePrompt } from './panel-view.js';
import { state } from './state.js';

/** Asks in the #confirm dialog; resolves true for "yes". */
function confirmAction({ title, message, confirmLabel }) {
  const dlg = $('confirm');
  if (dlg.open) return Promise.resolve(false);
  setText($('confirm-title'), title);
  setText($('confirm-message'), message);
  setText($('confirm-yes'), confirmLabel);
  dlg.returnValue = '';
  return new Promise((resolve) => {
    dlg.addEventListener('close', () => resolve(dlg.returnValue === 'yes'), { once: true });
    dlg.showModal();
    $('confirm-no').focus();
  });
}

async function terminateSession() {
  const btn = $('terminate-session');
  const id = btn.dataset.sessionId;
  if (!id) return;
  const s = state.model.session(id) ?? state.drawer.pinned;
  const ok = await confirmAction(terminatePrompt(s));
  if (!ok) return;
  btn.disabled = true;
  try {
    const res = await api(`/api/v1/sessions/${encodeURIComponent(id)}`, { method: 'DELETE' });
    if (res.ok) toast('Session terminated.');
    else if (res.status === 404) toast('That session had already ended.');
    else toast(`Could not terminate: ${await errorMessage(res)}`, 'error');
  } catch {
    toast('Could not reach the hub.', 'error');
  } finally {
    renderDrawer();
  }
}

async function revokeUser() {
  const { model } = state;
  const userId = state.drawer.userId;
  if (!userId) return;
  const user = model.users.get(userId);
  const count = model.sessionsOf(userId).length;
  const ok = await confirmAction(revokePrompt(user, userId, count));
  if (!ok) return;
  const btn = $('revoke-user');
  btn.disabled = true;
  try {
    const res = await api(`/api/v1/users/${encodeURIComponent(userId)}/sessions`, {
      method: 'DELETE',
    });
    if (res.ok) {
      const body = await res.json().catch(() => ({}));
      toast(revokedText(body?.terminated));
    } else if (res.status === 404) {
      toast('That user has no live sessions.');
    } else {
      toast(`Could not sign out: ${await errorMessage(res)}`, 'error');
    }
  } catch {
    toast('Could not reach the hub.', 'error');
  } finally {
    renderDrawer();
  }
}

/** Binds the drawer's two action buttons. */
export function bindActions() {
  $('terminate-session').addEventListener('click', terminateSession);
  $('revoke-user').addEventListener('click', revokeUser);
}
