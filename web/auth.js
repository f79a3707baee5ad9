// auth.js: the admin token.
//
// Owns asking for it (the #login dialog, once for concurrent callers),
// keeping it in sessionStorage (this tab only), sending it on REST calls
// (`api`, which asks again after a 401/403 and retries), and the "Forget
// token" button (#panel-signout).

import { $ } from './dom.js';
import { authFailureReason, normalizeToken } from './panel-view.js';
import { TOKEN_KEY, state } from './state.js';

/** Shows the token form once; concurrent callers share it. */
function askToken(reason) {
  if (state.login) return state.login;
  state.login = new Promise((resolve) => {
    const dlg = $('login');
    const form = $('login-form');
    const input = $('login-token');
    const error = $('login-error');
    error.hidden = !reason;
    error.textContent = reason ?? '';
    input.value = '';
    const onSubmit = (event) => {
      event.preventDefault();
      const value = normalizeToken(input.value);
      if (!value) return;
      form.removeEventListener('submit', onSubmit);
      dlg.removeEventListener('cancel', onCancel);
      state.token = value;
      sessionStorage.setItem(TOKEN_KEY, state.token);
      $('panel-signout').hidden = false;
      dlg.close();
      state.login = null;
      resolve(state.token);
      state.onToken?.();
    };
    // The panel is useless without a token: keep the form up.
    const onCancel = (event) => event.preventDefault();
    form.addEventListener('submit', onSubmit);
    dlg.addEventListener('cancel', onCancel);
    dlg.showModal();
    input.focus();
  });
  return state.login;
}

/**
 * fetch() with the admin token. On 401/403 asks for a token and retries.
 * Network failures reject as usual.
 */
export async function api(path, { method = 'GET', accept = 'application/json' } = {}) {
  for (let attempt = 0; ; attempt += 1) {
    const headers = { Accept: accept };
    if (state.token) headers.Authorization = `Bearer ${state.token}`;
    const res = await fetch(path, { method, headers, cache: 'no-store' });
    if ((res.status === 401 || res.status === 403) && attempt < 5) {
      const reason = authFailureReason(res.status, Boolean(state.token));
      if (state.token) {
        state.token = null;
        sessionStorage.removeItem(TOKEN_KEY);
      }
      await askToken(reason);
      continue;
    }
    return res;
  }
}

/**
 * Shows "Forget token" when a token is kept and binds it; `onToken` runs
 * each time the form takes a new token.
 */
export function bindAuth(onToken) {
  state.onToken = onToken;
  $('panel-signout').hidden = !state.token;
  $('panel-signout').addEventListener('click', () => {
    sessionStorage.removeItem(TOKEN_KEY);
    location.reload();
  });
}
