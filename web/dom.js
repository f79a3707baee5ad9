// dom.js: small DOM helpers shared by the panel's modules.
//
// Owns looking up elements by id, text updates that skip writes which change
// nothing, and the toast (#toast) that reports the result of an action.

import { state } from './state.js';

/** The element with this id. */
export const $ = (id) => document.getElementById(id);

/** Sets an element's text unless it already is that. */
export function setText(el, text) {
  if (el && el.textContent !== text) el.textContent = text;
}

/** Shows `message` in the toast for 6 s; `kind` is 'info' or 'error'. */
export function toast(message, kind = 'info') {
  const el = $('toast');
  el.textContent = message;
  el.dataset.kind = kind;
  el.hidden = false;
  clearTimeout(state.toastTimer);
  state.toastTimer = setTimeout(() => {
    el.hidden = true;
  }, 6_000);
}
