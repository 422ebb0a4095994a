import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { DirectoryUserBundle } from '../controller/core/bundle.ts';
import type { MemberList, MemberScope } from '../controller/directories/directory.ts';
import { createStaticDirectory } from '../controller/directories/static-directory.ts';

// The static directory's listing of a role's users: as the policy decides roles, from what the store writes.

const USERS: DirectoryUserBundle[] = [
  { name: 'Alice', mobile: null, groups: ['CN=Admins,OU=Groups,DC=acme,DC=example'], container: 'CN=Alice,OU=Staff,OU=People,DC=acme,DC=example' },
  { name: 'bob', mobile: null, groups: ['contractors@acme.example'], container: '/People/Contractors' },
  { name: 'carol', mobile: null, groups: [], container: 'CN=Carol,OU=Staff,OU=People,DC=acme,DC=example' },
  { name: 'smith', mobile: null, groups: [], container: 'CN=Smith\\, OU=Staff,OU=People,DC=acme,DC=example' },
  { name: 'dan', mobile: null, groups: ['Admins@acme.example'], container: null },
];

const cases: { name: string; scope: Partial<MemberScope>; limit?: number; want: MemberList }[] = [
  {
    name: 'a group, compared as a DN (RFC 4514); names lower-cased',
    scope: { groups: ['cn=admins, ou=groups,dc=acme,dc=example'] },
    want: { users: ['alice'], truncated: false },
  },
  {
    name: 'a group by email, without case',
    scope: { groups: ['admins@ACME.example', 'contractors@acme.example'] },
    want: { users: ['bob', 'dan'], truncated: false },
  },
  {
    name: 'a container: the users below it, not one whose DN only ends like it',
    scope: { containers: ['ou=staff,ou=people,dc=acme,dc=example'] },
    want: { users: ['alice', 'carol'], truncated: false },
  },
  { name: 'an org unit and the units below it', scope: { containers: ['/People'] }, want: { users: ['bob'], truncated: false } },
  {
    name: 'groups and containers: each user once',
    scope: { groups: ['cn=admins,ou=groups,dc=acme,dc=example'], containers: ['ou=People,dc=acme,dc=example'] },
    want: { users: ['alice', 'carol', 'smith'], truncated: false },
  },
  {
    name: 'at most limit, truncated when there were more',
    scope: { containers: ['ou=People,dc=acme,dc=example'] },
    limit: 2,
    want: { users: ['alice', 'carol'], truncated: true },
  },
  {
    name: 'exactly limit: not truncated',
    scope: { containers: ['ou=People,dc=acme,dc=example'] },
    limit: 3,
    want: { users: ['alice', 'carol', 'smith'], truncated: false },
  },
  { name: 'nothing in scope', scope: { groups: ['nobody@acme.example'], containers: ['/Sales'] }, want: { users: [], truncated: false } },
];

const members = suite('static directory: members');
for (const c of cases) {
  members(c.name, async () => {
    assert.equal(await createStaticDirectory(USERS).members({ groups: [], containers: [], ...c.scope }, { limit: c.limit ?? 100 }), c.want);
  });
}
members.run();
