// react.js: React hooks over presence-client.js (`@presence-hub/client/react`).
//
// Owns the React side only: `usePresence(options)` connects when the
// component mounts, keeps `{client, state, status, manual, session, error}`
// up to date from the client's events, and closes the session when it
// unmounts; `useRoom(name)` joins (or watches) a room for as long as a
// component uses it and returns its member list, re-rendering on every
// change; `PresenceProvider` hands a client down so `useRoom` needs no
// argument for it. Several components may use the same room: it is joined
// while any of them joins it, watched while any only watches it, and left
// when the last one unmounts. It renders nothing and keeps no state of its
// own beyond that bookkeeping. React is a peer dependency; the hub's panel
// never loads this file (it has no React).
//
//   import { usePresence, useRoom, PresenceProvider } from '@presence-hub/client/react';
//   function App() {
//     const { client, status } = usePresence({ token, app: 'docs' });
//     return <PresenceProvider client={client}><Avatars doc="42" /></PresenceProvider>;
//   }
//   function Avatars({ doc }) {
//     const members = useRoom(`doc:${doc}`);
//     return members.map((m) => <span key={m.user_id}>{m.name}</span>);
//   }

import {
  createContext,
  createElement,
  useCallback,
  useContext,
  useEffect,
  useRef,
  useState,
  useSyncExternalStore,
} from 'react';

import { connect } from './presence-client.js';

/** The member list of a room nobody has heard of yet (stable identity). */
const NO_MEMBERS = Object.freeze([]);

const PresenceContext = createContext(null);

/** Makes `client` the one `useRoom` and `usePresenceClient` use below it. */
export function PresenceProvider({ client, children }) {
  return createElement(PresenceContext.Provider, { value: client ?? null }, children);
}

/** The client of the nearest `PresenceProvider`, or null. */
export function usePresenceClient() {
  return useContext(PresenceContext);
}

/** What `usePresence` returns without a client, in `state`. */
function noClient(state, error = null) {
  return Object.freeze({ client: null, state, status: null, manual: null, session: null, error });
}
/** Before the first effect has connected. */
const CONNECTING = noClient('connecting');
/** With `enabled: false`. */
const DISABLED = noClient('closed');

/** The hook's view of a client, rebuilt after each of its events. */
export function presenceSnapshot(client) {
  if (!client) return DISABLED;
  return {
    client,
    state: client.state,
    status: client.status,
    manual: client.manual,
    session:
      client.sessionId == null
        ? null
        : {
            sessionId: client.sessionId,
            userId: client.userId,
            nodeId: client.nodeId,
            resumed: client.resumed,
          },
    error: client.lastError ?? null,
  };
}

/** True when two snapshots would render the same. */
function sameSnapshot(a, b) {
  return (
    a.client === b.client &&
    a.state === b.state &&
    a.status === b.status &&
    a.manual === b.manual &&
    a.error === b.error &&
    a.session?.sessionId === b.session?.sessionId &&
    a.session?.nodeId === b.session?.nodeId &&
    a.session?.resumed === b.session?.resumed
  );
}

/**
 * Holds one `usePresence` call's snapshot for `useSyncExternalStore`: `set`
 * keeps the old object when nothing visible changed, so the component does
 * not render again.
 */
function snapshotStore(initial) {
  let snapshot = initial;
  const listeners = new Set();
  return {
    get: () => snapshot,
    set(next) {
      if (sameSnapshot(snapshot, next)) return;
      snapshot = next;
      for (const fn of [...listeners]) fn();
    },
    subscribe(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
  };
}

/** The client events after which the snapshot may differ. */
const SNAPSHOT_EVENTS = ['open', 'status', 'close', 'error', 'terminated', 'auth'];

/**
 * Connects while the component is mounted and returns
 * `{client, state, status, manual, session, error}`:
 * - `client`: the `PresenceClient` (null before the first effect, when
 *   `enabled` is false, or when connecting threw);
 * - `state`: the client's state; without a client `'connecting'` (before
 *   the first effect) or `'closed'` (`enabled: false`, or connect threw);
 * - `session`: `{sessionId, userId, nodeId, resumed}` after a welcome;
 * - `error`: the client's `lastError` (`unauthorized`, `forbidden`), or the
 *   error `connect()` threw.
 *
 * `options` are those of `connect()`, plus `enabled` (default true; false
 * closes and waits, e.g. until a token has been fetched). The connection
 * is made again only when `url`, `user`, `org` or `enabled` change, or when
 * a new `token` comes after the client gave up on a refused one; otherwise
 * a new `token` is used for the next connect without dropping this one.
 * The latest `onTokenExpiring` is always the one called.
 */
export function usePresence(options = {}) {
  const { enabled = true, ...connectOptions } = options;
  const latest = useRef(connectOptions);
  const [store] = useState(() => snapshotStore(enabled ? CONNECTING : DISABLED));
  const [restarts, setRestarts] = useState(0);
  const snapshot = useSyncExternalStore(store.subscribe, store.get, store.get);
  const { url = null, user = null, org = null, token = null } = connectOptions;

  // Before the connect effect of the same commit, which reads it.
  useEffect(() => {
    latest.current = connectOptions;
  });

  useEffect(() => {
    if (!enabled) {
      store.set(DISABLED);
      return undefined;
    }
    const initial = latest.current;
    const client = openClient(initial, latest);
    if (client instanceof Error) {
      store.set(noClient('closed', { code: 'connect', message: client.message }));
      return undefined;
    }
    const refresh = () => store.set(presenceSnapshot(client));
    const offs = SNAPSHOT_EVENTS.map((event) => client.on(event, refresh));
    refresh();
    return () => {
      for (const off of offs) off();
      client.close();
    };
  }, [store, url, user, org, enabled, restarts]);

  // A new token is used from the next connect on; after the client gave up
  // on a refused token, it connects again at once with the new one.
  useEffect(() => {
    const { client } = snapshot;
    if (!client || !token || token === client.options.token) return;
    client.options.token = token;
    if (gaveUpOnToken(client)) setRestarts((n) => n + 1);
  }, [snapshot, token]);

  return snapshot;
}

/** True when the client stopped for good because the hub refused its token. */
function gaveUpOnToken(client) {
  const stopped = client.state === 'closed' || client.state === 'terminated';
  return stopped && client.lastError?.code === 'unauthorized' && client.lastError.willRetry === false;
}

/** `connect()` with a hook that always calls the latest `onTokenExpiring`; an Error if it throws. */
function openClient(initial, latest) {
  const hook = typeof initial.onTokenExpiring === 'function'
    ? (info) => latest.current.onTokenExpiring?.(info)
    : undefined;
  try {
    return connect({ ...initial, ...(hook ? { onTokenExpiring: hook } : {}) });
  } catch (err) {
    return err instanceof Error ? err : new Error(String(err));
  }
}

// --- rooms ------------------------------------------------------------------

/** Per client, the rooms the hooks hold: name -> RoomShare. */
const shares = new WeakMap();

/**
 * One room of one client as the mounted `useRoom` calls share it: counts
 * who joins and who only watches, joins, watches or leaves to match, and
 * keeps the latest member list for `useSyncExternalStore`.
 */
export class RoomShare {
  constructor(client, name) {
    this.client = client;
    this.name = name;
    this.joins = 0;
    this.watches = 0;
    this.mode = null;
    this.room = null;
    this.members = NO_MEMBERS;
    this._listeners = new Set();
    this._offChange = null;
  }

  /** The share of `name` on `client` (made on first use). */
  static of(client, name) {
    let byName = shares.get(client);
    if (!byName) {
      byName = new Map();
      shares.set(client, byName);
    }
    let share = byName.get(name);
    if (!share) {
      share = new RoomShare(client, name);
      byName.set(name, share);
    }
    return share;
  }

  /** A user of the room arrives; returns the function that lets it go. */
  acquire(join, listener) {
    if (join) this.joins += 1;
    else this.watches += 1;
    this._listeners.add(listener);
    this._sync();
    return () => {
      this._listeners.delete(listener);
      if (join) this.joins -= 1;
      else this.watches -= 1;
      this._sync();
    };
  }

  /** Joins, watches or leaves so the hub sees what the users want. */
  _sync() {
    const want = this.joins > 0 ? 'join' : this.watches > 0 ? 'watch' : null;
    if (want === this.mode) return;
    const before = this.mode;
    this.mode = want;
    if (before === 'watch' && want === 'join') {
      // Same room object, now present in it too.
      this.client.join(this.name);
      return;
    }
    if (before !== null) this._drop(before);
    // The share itself stays in `shares` (it goes with its client): a
    // component that lets go and comes back (StrictMode) holds this object.
    if (want === null) return;
    this.room = want === 'join' ? this.client.join(this.name) : this.client.watch(this.name);
    this._offChange = this.room.onChange((members) => this._setMembers(members));
    if (this.room.synced) this._setMembers(this.room.members);
  }

  _drop(mode) {
    this._offChange?.();
    this._offChange = null;
    if (mode === 'join') this.client.leave(this.name);
    else this.client.unwatch(this.name);
    this.room = null;
    // The members stay until the next room object's first snapshot.
  }

  _setMembers(members) {
    if (members === this.members) return;
    this.members = members;
    for (const fn of [...this._listeners]) fn();
  }
}

/**
 * The members of room `name` (oldest first), re-rendering on every change;
 * an empty array until the first snapshot, or without a client. The tab is
 * present in the room while the component is mounted (`{watch: true}`:
 * only watching). The client is `options.client`, else the nearest
 * `PresenceProvider`'s. `name` null or empty: no room, no members.
 */
export function useRoom(name, options = {}) {
  const fromContext = useContext(PresenceContext);
  const client = options.client ?? fromContext;
  const join = options.watch !== true;
  const share = client && name ? RoomShare.of(client, name) : null;
  const subscribe = useCallback(
    (onChange) => (share ? share.acquire(join, onChange) : () => {}),
    [share, join],
  );
  const getSnapshot = useCallback(() => share?.members ?? NO_MEMBERS, [share]);
  return useSyncExternalStore(subscribe, getSnapshot, getSnapshot);
}
