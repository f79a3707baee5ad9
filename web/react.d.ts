// Type declarations for react.js (`@presence-hub/client/react`), the React
// hooks over presence-client.js. Checked by `tsc --noEmit -p
// web/tsconfig.json` against web/test/types-react-example.tsx.

import type { ReactElement, ReactNode } from 'react';

import type {
  ClientError,
  ClientState,
  ConnectOptions,
  ManualStatus,
  Member,
  PresenceClient,
  SessionStatus,
} from './presence-client.js';

/** Options of `usePresence`: those of `connect()`, plus `enabled`. */
export interface UsePresenceOptions extends ConnectOptions {
  /** Default true; false closes the connection and waits (e.g. for a token). */
  enabled?: boolean;
}

/** The session of the last welcome. */
export interface PresenceSession {
  sessionId: string;
  userId: string | null;
  nodeId: string | null;
  resumed: boolean;
}

/** What `usePresence` returns; a new object only when something in it changed. */
export interface PresenceSnapshot {
  /** Null before the first effect, with `enabled: false`, or when connecting threw. */
  client: PresenceClient | null;
  state: ClientState;
  status: SessionStatus | null;
  manual: ManualStatus | null;
  /** Null before the first welcome. */
  session: PresenceSession | null;
  /** The client's `lastError`, or `{code: 'connect'}` when `connect()` threw. */
  error: ClientError | null;
}

/**
 * Connects while the component is mounted (closing the session on
 * unmount); connects again when `url`, `user`, `org` or `enabled` change.
 */
export function usePresence(options?: UsePresenceOptions): PresenceSnapshot;

/** The hook's view of a client (exposed for tests). */
export function presenceSnapshot(client: PresenceClient | null): PresenceSnapshot;

/** Makes `client` the one `useRoom` uses below it. */
export function PresenceProvider(props: {
  client: PresenceClient | null;
  children?: ReactNode;
}): ReactElement;

/** The client of the nearest `PresenceProvider`, or null. */
export function usePresenceClient(): PresenceClient | null;

/** Options of `useRoom`. */
export interface UseRoomOptions {
  /** Default: the nearest `PresenceProvider`'s client. */
  client?: PresenceClient | null;
  /** Only watch the room, without being present in it. */
  watch?: boolean;
}

/**
 * The members of room `name`, oldest first; re-renders on every change.
 * Joined (or watched) while the component is mounted.
 */
export function useRoom(name: string | null | undefined, options?: UseRoomOptions): readonly Member[];

/** One room of one client shared by the mounted `useRoom` calls (exposed for tests). */
export class RoomShare {
  static of(client: PresenceClient, name: string): RoomShare;
  readonly name: string;
  readonly joins: number;
  readonly watches: number;
  readonly mode: 'join' | 'watch' | null;
  readonly members: readonly Member[];
  acquire(join: boolean, listener: () => void): () => void;
}
