// Type declarations for presence-client.js (the browser and Node client of
// presence-hub, the main entry of the npm package `@presence-hub/client`).
// Checked by `tsc --noEmit -p web/tsconfig.json` against
// web/test/types-example.ts in scripts/test.

/** A session's derived status. */
export type SessionStatus = 'active' | 'idle' | 'away';
/** A manual status a person sets. */
export type ManualStatus = 'busy' | 'away';
/** The client's connection state. */
export type ClientState = 'connecting' | 'open' | 'reconnecting' | 'terminated' | 'closed';
/** Why the hub terminated a session. */
export type TerminateReason =
  | 'admin'
  | 'revoked'
  | 'session_limit'
  | 'user'
  | 'max_age'
  | 'token_expired'
  | 'shutdown';

/** Used until the welcome frame says otherwise (the hub's default). */
export const DEFAULT_IDLE_AFTER_MS: number;
/** Never ping more often than this, whatever idle_after is. */
export const MIN_ACTIVITY_INTERVAL_MS: number;
/** First reconnect waits up to this. */
export const BACKOFF_BASE_MS: number;
/** No reconnect waits longer than this. */
export const BACKOFF_CAP_MS: number;
/** `terminated` reasons after which the client does not reconnect. */
export const FINAL_REASONS: readonly TerminateReason[];
/** Close codes that end a session for good. */
export const FINAL_CLOSE_CODES: readonly number[];
/** The DOM events that count as a person doing something. */
export const ACTIVITY_EVENTS: readonly string[];
/** The default `sessionStorage` key of the resume token. */
export const RESUME_KEY: string;
/** How long the HTTP probe after a close-before-open may take. */
export const PROBE_TIMEOUT_MS: number;
/** Closes-before-open with an unreadable probe before the token hook is asked. */
export const SUSPECT_TOKEN_AFTER: number;

/** An application name, or name and version. */
export type AppOption = string | { name?: string | null; version?: string | null };

/** Device facts that override those the hub parses from the User-Agent. */
export interface DeviceInfo {
  platform?: string | null;
  device_type?: 'desktop' | 'mobile' | 'tablet' | 'bot' | 'unknown' | null;
  browser?: string | null;
}

/**
 * What the client needs of a WebSocket: the browser's `WebSocket`, the `ws`
 * package's, or a test double.
 */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: any) => void) | null;
  onmessage: ((event: any) => void) | null;
  onclose: ((event: any) => void) | null;
  onerror: ((event: any) => void) | null;
}

/** A WebSocket constructor (`new WebSocket(url)`). */
export type WebSocketConstructor = new (url: string) => WebSocketLike;

/** The part of `sessionStorage` the client uses (the resume token). */
export interface ResumeStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/** Everything the client uses from its surroundings (injectable for tests). */
export interface ClientEnv {
  WebSocket: WebSocketConstructor | null;
  window: Window | null;
  document: Document | null;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(id: unknown): void;
  now(): number;
  random(): number;
  /** `sessionStorage`, or null where it is missing (Node) or refused. */
  storage: ResumeStorage | null;
  /** For the probe after a close-before-open; null: no probe. */
  fetch:
    | ((url: string, init?: Record<string, unknown>) => Promise<{
        type?: string;
        status: number;
        json(): Promise<unknown>;
      }>)
    | null;
}

/** Why the token hook is called. */
export type TokenRequestReason =
  /** The hub sent `auth_required`: the token expires soon. */
  | 'expiring'
  /** The hub refused the token (401 upgrade, or 4001 at its `exp`). */
  | 'unauthorized'
  /** Several closes-before-open in a row whose cause could not be read. */
  | 'unreachable';

/** Options of `connect()`. */
export interface ConnectOptions {
  /**
   * Default `ws(s)://<this host>/ws`; `http(s)://` and relative URLs work
   * too. Required outside a browser.
   */
  url?: string;
  /**
   * The WebSocket constructor to use; default the global `WebSocket`.
   * Needed where there is none (Node before 22: `import WebSocket from 'ws'`).
   */
  WebSocket?: WebSocketConstructor;
  /** JWT mode: the client token. */
  token?: string;
  /** Dev mode: the user id. */
  user?: string;
  /** Dev mode: the display name. */
  name?: string;
  /** Dev mode: the organisation. */
  org?: string;
  /** The page, or a function giving it; default the current path and query. */
  page?: string | (() => string | null | undefined);
  app?: AppOption;
  device?: DeviceInfo;
  /** Application attributes shown to admins (at most 16 keys, 1 KiB). */
  meta?: Record<string, unknown>;
  /** A manual status to set on every connect. */
  manual?: ManualStatus | null;
  backoffBaseMs?: number;
  backoffCapMs?: number;
  /**
   * JWT mode: called when the hub asks for a new token (`auth_required`),
   * when it refused the token (once, before giving up), and after a streak
   * of failed connects; return the new JWT, or a promise of it (nothing:
   * no new token).
   */
  onTokenExpiring?: (info: {
    expiresAt: string | null;
    reason: TokenRequestReason;
  }) => string | null | undefined | Promise<string | null | undefined>;
  /** The `sessionStorage` key of the resume token. */
  resumeKey?: string;
  env?: Partial<ClientEnv>;
}

/** A member of a room: a user, exactly these seven fields. */
export interface Member {
  user_id: string;
  name: string | null;
  /** The best status of the user's sessions in the room. */
  status: SessionStatus;
  manual: ManualStatus | null;
  /** The user's sessions in the room. */
  session_count: number;
  /** Page of the user's most present session in the room; null in `org:` rooms. */
  page: string | null;
  /** RFC 3339 UTC with milliseconds. */
  joined_at: string;
}

/** One change of a room's member list. */
export interface MemberChange {
  event: 'join' | 'update' | 'leave';
  /** After the change; for `leave`, as last seen. */
  member: Member;
}

/** A room frame from the hub. */
export interface RoomSnapshotFrame {
  type: 'room';
  room: string;
  seq: 0;
  members: Member[];
}

/** A batch of member changes from the hub. */
export interface PresenceFrame {
  type: 'presence';
  room: string;
  seq: number;
  changes: MemberChange[];
}

/** The hub refused a room. */
export interface RoomError {
  code: 'forbidden' | 'room_limit' | string;
  message: string;
  room: string;
}

/** One room as this tab sees it (made by `client.join` or `client.watch`). */
export class PresenceRoom {
  constructor(name: string, options?: { client?: PresenceClient | null; joined?: boolean });
  readonly name: string;
  /** True when this tab is present in the room (joined), not only watching. */
  joined: boolean;
  /** The current members, oldest first. */
  members: Member[];
  /** `seq` of the last frame applied; null before the first snapshot. */
  seq: number | null;
  /** A snapshot arrived since the last (re)connect. */
  synced: boolean;
  /** The last refusal of this room, or null. */
  error: RoomError | null;
  /** Called after every change; returns a function that unsubscribes. */
  onChange(fn: (members: Member[], changes: MemberChange[]) => void): () => void;
  /** Called when the hub refuses the room. */
  onError(fn: (error: RoomError) => void): () => void;
  member(userId: string): Member | undefined;
  leave(): void;
  unwatch(): void;
  /** Folds one frame in (exposed for tests). */
  applyFrame(msg: RoomSnapshotFrame | PresenceFrame | { type: string; room?: string }): 'applied' | 'ignored' | 'gap';
  applyError(msg: { code: string; message?: string }): void;
}

/** The payload of `error` events (and `client.lastError`). */
export interface ClientError {
  /**
   * `unauthorized`: the hub refused the token; `forbidden`: it refused the
   * connection (Origin or Host); `socket`: the socket failed; `token`: the
   * token hook threw; otherwise the code of a hub `error` frame.
   */
  code: 'unauthorized' | 'forbidden' | 'socket' | 'token' | (string & {});
  message: string;
  /** For `unauthorized`/`forbidden` from the upgrade: 401/403 (null for close 4001). */
  status?: number | null;
  /** For `unauthorized`: the client will try once more with a token from the hook. */
  willRetry?: boolean;
  room?: string;
  /** A hub `error` frame; the connection stays open. */
  server?: boolean;
}

/** Payloads of the client's events. */
export interface ClientEvents {
  open: {
    sessionId: string | null;
    userId: string | null;
    nodeId: string | null;
    idleAfterMs: number;
    awayAfterMs: number | null;
    heartbeatIntervalMs: number | null;
    /** The welcome resumed an existing session (same `sessionId`). */
    resumed: boolean;
  };
  status: { status: SessionStatus | null; manual: ManualStatus | null };
  error: ClientError;
  terminated: { reason: string | null; final: boolean };
  close: {
    code: number;
    reason: string;
    willReconnect: boolean;
    delayMs?: number;
    attempt?: number;
    /** Another socket resumed this session (close 4003 with no `terminated`). */
    replaced?: boolean;
    /** The close was a refused token (`error` with `unauthorized` came first). */
    unauthorized?: boolean;
  };
  pong: { type: 'pong'; id?: number | string; ts: string };
  /** The hub asks for a new token (before `onTokenExpiring` is called). */
  auth_required: { expiresAt: string | null };
  /** The hub accepted the new token. */
  auth: { expiresAt: string | null };
}

/** One tab's presence. */
export class PresenceClient {
  constructor(options?: ConnectOptions);
  readonly options: ConnectOptions;
  state: ClientState;
  sessionId: string | null;
  userId: string | null;
  nodeId: string | null;
  status: SessionStatus | null;
  manual: ManualStatus | null;
  page: string | null;
  idleAfterMs: number;
  terminatedReason: string | null;
  /** The last welcome resumed an existing session. */
  resumed: boolean;
  /** JWT mode: the token's `exp` (ISO string) as last told by the hub. */
  expiresAt: string | null;
  /** The last `unauthorized`/`forbidden` error; null again after a welcome. */
  lastError: ClientError | null;
  on<E extends keyof ClientEvents>(event: E, fn: (payload: ClientEvents[E]) => void): () => void;
  off<E extends keyof ClientEvents>(event: E, fn: (payload: ClientEvents[E]) => void): void;
  setStatus(manual: ManualStatus | null): void;
  touch(): void;
  close(): void;
  /** Present in the room and watching it; joined again after every reconnect. */
  join(room: string): PresenceRoom;
  /** Watching the room without being present; watched again after every reconnect. */
  watch(room: string): PresenceRoom;
  leave(room: string): void;
  unwatch(room: string): void;
  rooms(): PresenceRoom[];
}

/**
 * Connects this tab (or process) to the hub and keeps it connected. Throws a
 * TypeError without a WebSocket implementation, or without `url` outside a
 * browser.
 */
export function connect(options?: ConnectOptions): PresenceClient;

export function activityInterval(idleAfterMs: number | undefined): number;
export function throttleDecision(
  now: number,
  lastSentAt: number | null,
  intervalMs: number,
): { send: boolean; waitMs: number };
export function backoffDelay(
  attempt: number,
  options?: { baseMs?: number; capMs?: number; random?: () => number },
): number;
export function isFinalReason(reason: string | null | undefined): boolean;
export function isFinalCloseCode(code: number): boolean;
export function normalizeApp(
  app: AppOption | null | undefined,
): { name: string | null; version: string | null } | null;
export function pageOf(location: { pathname?: string; search?: string } | null | undefined): string | null;
export function buildSocketUrl(
  options: ConnectOptions,
  location?: { protocol: string; host: string } | null,
): string;
/** The `http(s)://` URL that asks the hub the same question as a `ws(s)://` one. */
export function probeUrl(socketUrl: string): string;
/** A refusal (401, 403) from a probe's answer, or null. */
export function refusalOf(
  status: number,
  body: unknown,
): { code: 'unauthorized' | 'forbidden'; status: number; message: string } | null;
export function compareMembers(a: Member, b: Member): number;
export function diffMembers(before: Member[], after: Member[]): MemberChange[];
