// tabs.js: the views' tabs (#tab-live, #tab-history, #tab-analytics,
// #tab-audit, #tab-alerts).
//
// Owns selecting a tab (ARIA tab pattern: click, arrow keys, Home/End),
// keeping `#<tab>` in the URL (none for "Online now") and following it, and
// loading a tab's data when it is shown.

import { renderAlerts } from './alerts.js';
import { loadAnalytics } from './analytics.js';
import { loadAudit } from './audit.js';
import { $ } from './dom.js';
import { loadHistory } from './history.js';
import { tabFromHash, tabKeyTarget } from './panel-view.js';

/** What showing a tab loads or draws. */
const ON_SHOW = {
  history: loadHistory,
  analytics: loadAnalytics,
  audit: loadAudit,
  alerts: renderAlerts,
};

function tabNames() {
  return [...document.querySelectorAll('[role=tab]')].map((tab) => tab.id.replace('tab-', ''));
}

/** Shows the tab `name` ('live', 'history', 'analytics', 'audit', 'alerts') and hides the others. */
export function selectTab(name, { focus = false } = {}) {
  for (const tab of document.querySelectorAll('[role=tab]')) {
    const on = tab.id === `tab-${name}`;
    tab.setAttribute('aria-selected', String(on));
    tab.tabIndex = on ? 0 : -1;
    if (on && focus) tab.focus();
    $(tab.getAttribute('aria-controls')).hidden = !on;
  }
  const hash = name === 'live' ? '' : `#${name}`;
  if (location.hash !== hash) {
    window.history.replaceState(null, '', `${location.pathname}${location.search}${hash}`);
  }
  ON_SHOW[name]?.();
}

/** The tab the URL's hash names ('live' for none or an unknown one). */
export function tabOfLocation() {
  return tabFromHash(location.hash, tabNames());
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
    // Other anchors (the skip link's #main) leave the shown tab alone.
    const name = location.hash.replace(/^#/, '');
    if (name === '' || tabNames().includes(name)) selectTab(tabOfLocation());
  });
}
