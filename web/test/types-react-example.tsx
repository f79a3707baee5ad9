// A React program against react.d.ts: scripts/test type-checks it with
// `tsc --noEmit -p web/tsconfig.json` (with @types/react from
// target/web-tools), so the hook declarations stay usable from TSX.

import { PresenceProvider, usePresence, usePresenceClient, useRoom } from '../react.js';
import type { Member } from '../presence-client.js';

function Avatars({ doc }: { doc: string }) {
  const members: readonly Member[] = useRoom(`doc:${doc}`);
  const everyone = useRoom('org:acme', { watch: true });
  const client = usePresenceClient();
  return (
    <ul data-count={everyone.length} data-user={client?.userId ?? ''}>
      {members.map((m) => (
        <li key={m.user_id} data-status={m.manual ?? m.status}>
          {m.name ?? m.user_id}
        </li>
      ))}
    </ul>
  );
}

export function App({ token }: { token: string | null }) {
  const { client, state, status, session, error } = usePresence({
    token: token ?? undefined,
    enabled: token != null,
    app: { name: 'docs', version: '1.0.0' },
    onTokenExpiring: async ({ reason }) => (reason === 'unauthorized' ? null : 'fresh.jwt'),
  });
  if (error?.code === 'unauthorized') return <p>Sign in again</p>;
  return (
    <PresenceProvider client={client}>
      <p>
        {state} {status ?? 'offline'} {session?.sessionId ?? ''} {session?.resumed ? 'resumed' : ''}
      </p>
      <Avatars doc="42" />
    </PresenceProvider>
  );
}
