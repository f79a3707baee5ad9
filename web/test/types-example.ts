// A small program against presence-client.d.ts: scripts/test type-checks it
// with `tsc --noEmit -p web/tsconfig.json`, so the declarations stay usable.

import { connect, diffMembers, type Member, type MemberChange } from '../presence-client.js';

const presence = connect({ app: { name: 'docs', version: '1.0.0' }, page: () => location.pathname });
presence.on('status', ({ status, manual }) => {
  const label: string = manual ?? status ?? 'offline';
  document.title = label;
});
presence.on('close', ({ willReconnect, delayMs }) => {
  if (willReconnect && delayMs !== undefined) console.log(`back in ${delayMs} ms`);
});
presence.setStatus('busy');

const room = presence.join('doc:42');
const stop = room.onChange((members: Member[], changes: MemberChange[]) => {
  const names = members.map((m) => m.name ?? m.user_id);
  const left = changes.filter((c) => c.event === 'leave').map((c) => c.member.user_id);
  console.log(names.join(', '), left, room.seq, room.synced);
});
room.onError(({ code, room: name }) => console.warn(code, name));
const org = presence.watch('org:acme');
const anna: Member | undefined = org.member('anna');
if (anna?.page === null && anna.session_count > 0) console.log(anna.joined_at);
const changes: MemberChange[] = diffMembers(room.members, org.members);
console.log(changes.length, presence.rooms().length);
stop();
org.unwatch();
room.leave();
presence.close();
