// me-view.js: what the self-service page shows, as pure functions.
//
// Owns turning the `/api/v1/me/sessions` answer into rows (device, browser,
// location when known, since, this device) and the wording of the page, so
// it can be tested without a browser (web/test/me-view.test.mjs).

/** A device as a person names it: "Desktop · macOS", "Mobile", "Unknown device". */
export function describeDevice(device) {
  const type = device?.device_type;
  const kind = type && type !== 'unknown' ? type[0].toUpperCase() + type.slice(1) : null;
  const parts = [kind, device?.platform].filter((p) => p != null && p !== '');
  return parts.length ? parts.join(' · ') : 'Unknown device';
}

/** The browser, or a dash. */
export function describeBrowser(device) {
  const browser = device?.browser;
  return browser != null && browser !== '' && browser !== 'UNKNOWN' ? browser : '-';
}

/**
 * Where a session is, when the hub knows: a string as is, or the parts of
 * an object (`city`, `region`, `country`, or their `_name` forms) joined.
 * Null when unknown.
 */
export function describeLocation(location) {
  if (location == null) return null;
  if (typeof location === 'string') return location || null;
  const pick = (key) => location[key] ?? location[`${key}_name`] ?? null;
  const parts = [pick('city'), pick('region'), pick('country')].filter(
    (p) => typeof p === 'string' && p !== '',
  );
  return parts.length ? parts.join(', ') : null;
}

/** "since" as a short local date and time. */
export function describeSince(iso, locale) {
  const at = new Date(iso);
  if (Number.isNaN(at.getTime())) return '-';
  return at.toLocaleString(locale, { dateStyle: 'medium', timeStyle: 'short' });
}

/**
 * The rows of the sessions list: this device first, then newest first.
 * Each row: `{sessionId, device, browser, location, since, connectedAt,
 * current, status, reconnecting}`.
 */
export function sessionRows(body, locale) {
  const sessions = Array.isArray(body?.sessions) ? body.sessions : [];
  return sessions
    .map((s) => ({
      sessionId: s.session_id,
      device: describeDevice(s.device),
      browser: describeBrowser(s.device),
      location: describeLocation(s.location),
      since: describeSince(s.connected_at, locale),
      connectedAt: s.connected_at,
      current: s.current === true,
      status: s.status,
      reconnecting: s.reconnecting === true,
    }))
    .sort(
      (a, b) =>
        Number(b.current) - Number(a.current) ||
        String(b.connectedAt).localeCompare(String(a.connectedAt)),
    );
}

/** The toast after signing sessions out. */
export function signedOutText(count) {
  if (count === 0) return 'No other session was signed in.';
  return count === 1 ? 'Signed out 1 session.' : `Signed out ${count} sessions.`;
}
