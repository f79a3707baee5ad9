// dom.js: small DOM helpers shared by the panel's modules.
//
// Owns looking up elements by id, text updates that skip writes which change
// nothing, table cells holding text, saving a downloaded file, and the toast
// (#toast) that reports the result of an action.

import { state } from './state.js';

/** The element with this id. */
export const $ = (id) => document.getElementById(id);

/** Sets an element's text unless it already is that. */
export function setText(el, text) {
  if (el && el.textContent !== text) el.textContent = text;
}

/** Shows `message` in the toast for 6 s; `kind` is 'info' or 'error'. */
/** Appends a cell to `row`: `text` (as text, never markup), `data-field`, an optional class. */
export function addCell(row, text, field, cls) {
  const cell = document.createElement('td');
  cell.dataset.field = field;
  if (cls) cell.className = cls;
  cell.textContent = text;
  row.append(cell);
  return cell;
}

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

/** Saves `blob` as a download named `filename`. */
export function saveBlob(blob, filename) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
