// Unit tests for web/react.js (run by vitest with jsdom from
// target/web-tools; see web/test/vitest.config.mjs). The hooks run over the
// real presence-client.js with a WebSocket stub that plays the hub; no hub,
// no network. The real-hub tests of the client are web/test/node-*.test.mjs.

import { afterEach, describe, expect, test } from 'vitest';
import { StrictMode, useState } from 'react';
import { act, cleanup, render, renderHook, screen } from '@testing-library/react';

import { PresenceProvider, RoomShare, usePresence, useRoom } from '../react.js';
import { PresenceClient } from '../presence-client.js';

afterEach(cleanup);

/** A WebSocket stub: records what the client sends, lets the test play the hub. */
function stubSocketClass() {
  const sockets = [];
  class StubSocket {
    constructor(url) {
      this.url = url;
      this.readyState = 0;
      this.sent = [];
      sockets.push(this);
    }
    send(data) {
      this.sent.push(JSON.parse(data));
    }
    close(code = 1000, reason = '') {
      if (this.readyState === 3) return;
      this.readyState = 3;
      this.onclose?.({ code, reason });
    }
    hubWelcome(extra = {}) {
      this.readyState = 1;
      this.onopen?.({});
      this.hubSend({
        type: 'welcome',
        session_id: `s-${sockets.indexOf(this) + 1}`,
        user_id: 'alice',
        node_id: 'n1',
        idle_after_ms: 60_000,
        resume_token: 'r',
        resumed: false,
        ...extra,
      });
    }
    hubSend(msg) {
      this.onmessage?.({ data: JSON.stringify(msg) });
    }
  }
  return { StubSocket, sockets };
}

const member = (user_id, extra = {}) => ({
  user_id,
  name: user_id.toUpperCase(),
  status: 'active',
  manual: null,
  session_count: 1,
  page: null,
  joined_at: `2026-01-01T00:00:0${user_id.length}.000Z`,
  ...extra,
});

/** A client over the stub, opened (welcome received). */
function openClient() {
  const { StubSocket, sockets } = stubSocketClass();
  const client = new PresenceClient({ url: 'ws://hub.test/ws', user: 'alice', WebSocket: StubSocket, env: { fetch: null } });
  client._start();
  sockets[0].hubWelcome();
  return { client, sockets };
}

const roomMessages = (socket) => socket.sent.filter((m) => m.room != null);

describe('usePresence', () => {
  test('connects on mount, follows status and session, closes on unmount', () => {
    const { StubSocket, sockets } = stubSocketClass();
    const { result, unmount } = renderHook(() =>
      usePresence({ url: 'ws://hub.test/ws', user: 'alice', WebSocket: StubSocket, env: { fetch: null } }),
    );
    expect(sockets).toHaveLength(1);
    expect(result.current.state).toBe('connecting');
    expect(result.current.session).toBeNull();

    act(() => sockets[0].hubWelcome());
    expect(result.current.state).toBe('open');
    expect(result.current.status).toBe('active');
    expect(result.current.session).toEqual({ sessionId: 's-1', userId: 'alice', nodeId: 'n1', resumed: false });
    const client = result.current.client;
    expect(client).toBeInstanceOf(PresenceClient);

    act(() => sockets[0].hubSend({ type: 'status', status: 'idle', manual: 'busy' }));
    expect(result.current.status).toBe('idle');
    expect(result.current.manual).toBe('busy');
    expect(result.current.client).toBe(client);

    unmount();
    expect(sockets[0].sent.at(-1)).toEqual({ type: 'end' });
    expect(sockets[0].readyState).toBe(3);
    expect(client.state).toBe('closed');
  });

  test('renders again only when something it returns changed', () => {
    const { StubSocket, sockets } = stubSocketClass();
    let renders = 0;
    const { result } = renderHook(() => {
      renders += 1;
      return usePresence({ url: 'ws://hub.test/ws', user: 'a', WebSocket: StubSocket, env: { fetch: null } });
    });
    act(() => sockets[0].hubWelcome());
    const before = renders;
    const snapshot = result.current;
    act(() => sockets[0].hubSend({ type: 'pong', ts: 'x' }));
    act(() => sockets[0].hubSend({ type: 'status', status: 'active', manual: null }));
    expect(renders).toBe(before);
    expect(result.current).toBe(snapshot);
  });

  test('enabled: false does not connect; enabling connects; a new url reconnects', () => {
    const { StubSocket, sockets } = stubSocketClass();
    const { result, rerender } = renderHook((props) => usePresence(props), {
      initialProps: { url: 'ws://a.test/ws', user: 'u', WebSocket: StubSocket, env: { fetch: null }, enabled: false },
    });
    expect(sockets).toHaveLength(0);
    expect(result.current.state).toBe('closed');
    expect(result.current.client).toBeNull();

    rerender({ url: 'ws://a.test/ws', user: 'u', WebSocket: StubSocket, env: { fetch: null }, enabled: true });
    expect(sockets).toHaveLength(1);
    // Same identity, other options: no new connection.
    rerender({ url: 'ws://a.test/ws', user: 'u', WebSocket: StubSocket, env: { fetch: null }, page: '/x' });
    expect(sockets).toHaveLength(1);

    rerender({ url: 'ws://b.test/ws', user: 'u', WebSocket: StubSocket, env: { fetch: null } });
    expect(sockets).toHaveLength(2);
    expect(sockets[0].readyState).toBe(3);
    expect(new URL(sockets[1].url).host).toBe('b.test');
  });

  test('a new token is used for the next connect without dropping this one', () => {
    const { StubSocket, sockets } = stubSocketClass();
    const base = { url: 'ws://hub.test/ws', WebSocket: StubSocket, env: { fetch: null } };
    const { result, rerender } = renderHook((props) => usePresence(props), {
      initialProps: { ...base, token: 'one.jwt' },
    });
    act(() => sockets[0].hubWelcome());
    rerender({ ...base, token: 'two.jwt' });
    expect(sockets).toHaveLength(1);
    expect(result.current.client.options.token).toBe('two.jwt');
  });

  test('the latest onTokenExpiring is the one called', async () => {
    const { StubSocket, sockets } = stubSocketClass();
    const base = { url: 'ws://hub.test/ws', token: 't0', WebSocket: StubSocket, env: { fetch: null } };
    const { rerender } = renderHook((props) => usePresence(props), {
      initialProps: { ...base, onTokenExpiring: () => 'from-first' },
    });
    act(() => sockets[0].hubWelcome());
    rerender({ ...base, onTokenExpiring: () => 'from-second' });
    await act(async () => {
      sockets[0].hubSend({ type: 'auth_required', expires_at: '2026-12-01T10:00:00.000Z' });
      await new Promise((resolve) => setTimeout(resolve, 0));
    });
    expect(sockets[0].sent.at(-1)).toEqual({ type: 'auth', token: 'from-second' });
  });

  test('an unauthorized close shows as error, and the client stops', async () => {
    const { StubSocket, sockets } = stubSocketClass();
    const { result } = renderHook(() =>
      usePresence({ url: 'ws://hub.test/ws', token: 'x', WebSocket: StubSocket, env: { fetch: null } }),
    );
    act(() => sockets[0].hubWelcome());
    act(() => sockets[0].close(4001, 'token_expired'));
    expect(result.current.error).toMatchObject({ code: 'unauthorized', willRetry: false });
    expect(result.current.state).toBe('terminated');
  });

  test('a new token after the client gave up on a refused one connects again', () => {
    const { StubSocket, sockets } = stubSocketClass();
    const base = { url: 'ws://hub.test/ws', WebSocket: StubSocket, env: { fetch: null } };
    const { result, rerender } = renderHook((props) => usePresence(props), {
      initialProps: { ...base, token: 'old.jwt' },
    });
    act(() => sockets[0].hubWelcome());
    act(() => sockets[0].close(4001, 'token_expired'));
    expect(result.current.error).toMatchObject({ code: 'unauthorized', willRetry: false });
    expect(sockets).toHaveLength(1);

    rerender({ ...base, token: 'fresh.jwt' });
    expect(sockets).toHaveLength(2);
    expect(new URL(sockets[1].url).searchParams.get('token')).toBe('fresh.jwt');
    act(() => sockets[1].hubWelcome({ session_id: 's-new' }));
    expect(result.current.state).toBe('open');
    expect(result.current.error).toBeNull();
    expect(result.current.session.sessionId).toBe('s-new');
  });

  test('connect() throwing (no WebSocket) is an error, not a crash', () => {
    const { result } = renderHook(() =>
      usePresence({ url: 'ws://hub.test/ws', env: { WebSocket: null, fetch: null } }),
    );
    expect(result.current.state).toBe('closed');
    expect(result.current.error.code).toBe('connect');
    expect(result.current.error.message).toMatch(/no WebSocket implementation/);
  });
});

describe('useRoom', () => {
  test('joins on mount, returns the members and re-renders on change, leaves on unmount', () => {
    const { client, sockets } = openClient();
    const { result, unmount } = renderHook(() => useRoom('doc:1', { client }));
    expect(result.current).toEqual([]);
    expect(roomMessages(sockets[0])).toEqual([{ type: 'join', room: 'doc:1' }]);

    act(() => sockets[0].hubSend({ type: 'room', room: 'doc:1', seq: 0, members: [member('alice')] }));
    expect(result.current.map((m) => m.user_id)).toEqual(['alice']);
    act(() =>
      sockets[0].hubSend({ type: 'presence', room: 'doc:1', seq: 1, changes: [{ event: 'join', member: member('bob') }] }),
    );
    expect(result.current.map((m) => m.user_id)).toEqual(['bob', 'alice']);

    unmount();
    expect(roomMessages(sockets[0]).at(-1)).toEqual({ type: 'leave', room: 'doc:1' });
    expect(client.rooms()).toEqual([]);
  });

  test('watch: true only watches', () => {
    const { client, sockets } = openClient();
    const { unmount } = renderHook(() => useRoom('org:acme', { client, watch: true }));
    expect(roomMessages(sockets[0])).toEqual([{ type: 'watch', room: 'org:acme' }]);
    unmount();
    expect(roomMessages(sockets[0]).at(-1)).toEqual({ type: 'unwatch', room: 'org:acme' });
  });

  test('takes the client from PresenceProvider and renders the list', () => {
    const { client, sockets } = openClient();
    function Here() {
      const members = useRoom('doc:9');
      return (
        <ul aria-label="here">
          {members.map((m) => (
            <li key={m.user_id}>{m.name}</li>
          ))}
        </ul>
      );
    }
    render(
      <PresenceProvider client={client}>
        <Here />
      </PresenceProvider>,
    );
    act(() => sockets[0].hubSend({ type: 'room', room: 'doc:9', seq: 0, members: [member('al'), member('bob')] }));
    expect(screen.getAllByRole('listitem').map((li) => li.textContent)).toEqual(['AL', 'BOB']);
    act(() =>
      sockets[0].hubSend({ type: 'presence', room: 'doc:9', seq: 1, changes: [{ event: 'leave', member: member('al') }] }),
    );
    expect(screen.getAllByRole('listitem').map((li) => li.textContent)).toEqual(['BOB']);
  });

  test('no client or no name: no members, nothing sent', () => {
    const { client, sockets } = openClient();
    const a = renderHook(() => useRoom('doc:1'));
    const b = renderHook(() => useRoom(null, { client }));
    expect(a.result.current).toEqual([]);
    expect(b.result.current).toEqual([]);
    expect(roomMessages(sockets[0])).toEqual([]);
  });

  test('two components share one room: it is left when the last one goes', () => {
    const { client, sockets } = openClient();
    const first = renderHook(() => useRoom('doc:2', { client }));
    const second = renderHook(() => useRoom('doc:2', { client }));
    expect(roomMessages(sockets[0])).toEqual([{ type: 'join', room: 'doc:2' }]);
    act(() => sockets[0].hubSend({ type: 'room', room: 'doc:2', seq: 0, members: [member('x')] }));
    expect(first.result.current).toBe(second.result.current);
    first.unmount();
    expect(roomMessages(sockets[0])).toHaveLength(1);
    second.unmount();
    expect(roomMessages(sockets[0]).at(-1)).toEqual({ type: 'leave', room: 'doc:2' });
  });

  test('a joiner and a watcher: present while the joiner is mounted, then only watching', () => {
    const { client, sockets } = openClient();
    const watcher = renderHook(() => useRoom('doc:3', { client, watch: true }));
    const joiner = renderHook(() => useRoom('doc:3', { client }));
    expect(roomMessages(sockets[0])).toEqual([
      { type: 'watch', room: 'doc:3' },
      { type: 'join', room: 'doc:3' },
    ]);
    act(() => sockets[0].hubSend({ type: 'room', room: 'doc:3', seq: 0, members: [member('alice')] }));
    joiner.unmount();
    expect(roomMessages(sockets[0]).slice(2)).toEqual([
      { type: 'leave', room: 'doc:3' },
      { type: 'watch', room: 'doc:3' },
    ]);
    // The watcher keeps the last list until the new snapshot, then follows it.
    expect(watcher.result.current.map((m) => m.user_id)).toEqual(['alice']);
    act(() => sockets[0].hubSend({ type: 'room', room: 'doc:3', seq: 0, members: [] }));
    expect(watcher.result.current).toEqual([]);
    expect(RoomShare.of(client, 'doc:3').mode).toBe('watch');
  });

  test('StrictMode mounting twice ends with the room joined once', () => {
    const { client, sockets } = openClient();
    function Here() {
      const members = useRoom('doc:s', { client });
      return <span data-testid="n">{members.length}</span>;
    }
    render(
      <StrictMode>
        <Here />
      </StrictMode>,
    );
    expect(RoomShare.of(client, 'doc:s').joins).toBe(1);
    expect(client.rooms().map((r) => r.name)).toEqual(['doc:s']);
    act(() => sockets[0].hubSend({ type: 'room', room: 'doc:s', seq: 0, members: [member('a'), member('b')] }));
    expect(screen.getByTestId('n').textContent).toBe('2');
  });

  test('a room name that changes leaves the old room and joins the new one', () => {
    const { client, sockets } = openClient();
    function Switcher() {
      const [doc, setDoc] = useState('doc:a');
      const members = useRoom(doc, { client });
      return (
        <button type="button" onClick={() => setDoc('doc:b')}>
          {doc}:{members.length}
        </button>
      );
    }
    render(<Switcher />);
    act(() => screen.getByRole('button').click());
    expect(roomMessages(sockets[0])).toEqual([
      { type: 'join', room: 'doc:a' },
      { type: 'leave', room: 'doc:a' },
      { type: 'join', room: 'doc:b' },
    ]);
    expect(screen.getByRole('button').textContent).toBe('doc:b:0');
  });
});
