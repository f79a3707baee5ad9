// tabs.js: the two views' tabs (#tab-live, #tab-history).
//
// Owns selecting a tab (ARIA tab pattern: click, arrow keys, Home/End),
// keeping `#history` in the URL and following it, and loading the history
// when its tab is shown.

import { $ } from './dom.js';
import { loadHistory } from './history.js';
import { tabKeyTarget } from './panel-view.js';

/** Shows the tab `name` ('live' or 'history') and hides the other. */
export function selectTab(name, { focus = false } = {}) {
  for (const tab of document.querySelectorAll('[role=tab]')) {
    const on = tab.id === `tab-${name}`;
    tab.setAttribute('aria-selected', String(on));
    tab.tabIndex = on ? 0 : -1;
    if (on && focus) tab.focus();
    $(tab.getAttribute('aria-controls')).hidden = !on;
  }
  const hash = name === 'history' ? '#history' : '';
  if (location.hash !== hash) {
    window.history.replaceState(null, '', `${location.pathname}${location.search}${hash}`);
  }
  if (name === 'history') loadHistory();
}

/** Binds clicks and keys on the tabs, and the URL's hash. */
export function bindTabs() {
  const tabs = [...document.querySelectorAll('[role=tab]')];
  for (const tab of tabs) {
    tab.addEventListener('click', () => selectTab(tab.id.replace('tab-', '')));
    tab.addEventListener('keydown', (e) => {
      const next = tabKeyTarget(e.key, tabs.indexOf(tab), tabs.length);
      if (next != null) {
        e.preventDefault();
        selectTab(tabs[next].id.replace('tab-', ''), { focus: true });
      }
    });
  }
  addEventListener('hashchange', () => {
    selectTab(location.hash === '#history' ? 'history' : 'live');
  });
}
