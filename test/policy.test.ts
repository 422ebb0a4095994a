import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { RoleBundle } from '../controller/core/bundle.ts';
import { decideRole } from '../controller/verifier/policy.ts';

const role = (name: string, priority: number, members: { groups?: string[]; containers?: string[] }): RoleBundle => ({
  name,
  priority,
  groups: members.groups ?? [],
  containers: members.containers ?? [],
  enforced: [],
  chosenByEndUser: 0,
  secondFactor: false,
  lockout: { failedAttemptsThreshold: 5, durationMs: 60_000 },
});

const ROLES = [
  role('admins', 1, { groups: ['CN=Admins,OU=Groups,DC=acme,DC=example', '00000000-0000-0000-0000-0000000000aa', 'admins@acme.example'] }),
  role('staff', 50, { containers: ['OU=Staff,DC=acme,DC=example', '/Staff/Lyon'] }),
];

const decide = suite('decideRole');
const cases: { name: string; groups?: string[]; containers?: string[]; want: string | undefined }[] = [
  { name: 'a group DN, written otherwise', groups: ['cn=admins, ou=groups, dc=ACME, dc=example'], want: 'admins' },
  { name: 'an Entra object id, any case', groups: ['00000000-0000-0000-0000-0000000000AA'], want: 'admins' },
  { name: 'a Google group email', groups: ['Admins@acme.example'], want: 'admins' },
  { name: 'a user in the OU', containers: ['CN=Bob,OU=Lyon,OU=Staff,DC=acme,DC=example'], want: 'staff' },
  { name: 'an escaped comma makes a CN that only looks like it ends in the OU', containers: ['CN=Smith\\, OU=Staff,DC=acme,DC=example'], want: undefined },
  { name: 'an OU whose name ends like it', containers: ['CN=Bob,OU=MyStaff,DC=acme,DC=example'], want: undefined },
  { name: "a Google org unit below the role's", containers: ['/Staff/Lyon/Part-time'], want: 'staff' },
  { name: 'a Google org unit that only starts like it', containers: ['/Staff/Lyonnais'], want: undefined },
  { name: 'the highest priority wins', groups: ['CN=Admins,OU=Groups,DC=acme,DC=example'], containers: ['OU=Staff,DC=acme,DC=example'], want: 'admins' },
  { name: 'nothing matches', groups: ['CN=Other,DC=acme,DC=example'], want: undefined },
];
for (const c of cases) decide(c.name, () => assert.is(decideRole(ROLES, { groups: c.groups ?? [], containers: c.containers ?? [] })?.name, c.want));
decide.run();
