import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { parse } from 'yaml';
import { CachedDirectory, type Directory, type DirectoryUnavailableError, type MemberScope } from '../controller/directories/directory.ts';
import { createGoogleDirectory, type GoogleSettings } from '../controller/directories/google-directory.ts';
import { isInContainer } from '../controller/core/membership.ts';
import { ROOT } from './helpers/fixtures.ts';
import { freePort } from './helpers/redis-server.ts';
import { startGoogleServer, type FakeGoogle } from './directories/google-server.ts';

// The Google Workspace adapter, through the official @googleapis/admin and google-auth-library,
// against a server that answers as Google's token endpoint and Directory API do.

const DATA = parse(readFileSync(join(ROOT, 'test', 'fixtures', 'directories', 'acme-google.yaml'), 'utf8')) as Parameters<typeof startGoogleServer>[0];

const google = suite<{ fake: FakeGoogle }>('Google Workspace directory (Admin SDK)', { fake: undefined as unknown as FakeGoogle });
google.before.each(async (ctx) => {
  ctx.fake = await startGoogleServer(DATA);
});
google.after.each(async (ctx) => {
  await ctx.fake?.close();
});

const settings = (fake: FakeGoogle, over: Partial<GoogleSettings> = {}): GoogleSettings => ({
  serviceAccountKey: fake.serviceAccountKey,
  adminSubject: DATA.subject,
  customer: 'my_customer',
  endpoint: fake.url,
  timeoutMs: 2000,
  ...over,
});

google('a user: their email, org unit, mobile number and groups, nested ones followed across pages, cycles stopped', async ({ fake }) => {
  const dir = createGoogleDirectory(settings(fake));
  assert.equal(await dir.lookup('alice@acme.example'), {
    id: 'alice@acme.example',
    groups: ['helpdesk-leads@acme.example', 'admins@acme.example'],
    container: '/People/Staff',
    mobile: '+1 415 555 0101',
  });
  assert.equal((await dir.lookup('bob@acme.example'))!.groups.sort(), [
    'all-hands@acme.example',
    'contractors@acme.example',
    'loop-a@acme.example',
    'loop-b@acme.example',
  ]);
  assert.is((await dir.lookup('carol@acme.example'))!.mobile, null);
  assert.is(fake.requests.find((r) => r.path === '/token')?.subject, 'admin@acme.example', 'the service account acts as the admin (domain-wide delegation)');
});

google('no such user, and a suspended one: no user', async ({ fake }) => {
  const dir = createGoogleDirectory(settings(fake));
  assert.is(await dir.lookup('nobody@acme.example'), undefined);
  assert.is(await dir.lookup('dan@acme.example'), undefined);
});

google('an org unit that only starts like another is not below it', async ({ fake }) => {
  const smith = await createGoogleDirectory(settings(fake)).lookup('smith@acme.example');
  assert.not.ok(isInContainer(smith!.container!, '/People/Staff'));
  assert.ok(isInContainer('/People/Staff', '/People'));
});

google('a key Google refuses, an admin it does not delegate to, a key that is not one, Google down, throttled', async ({ fake }) => {
  const { privateKey: _real, ...other } = JSON.parse(fake.serviceAccountKey) as Record<string, string>;
  const foreignKey = JSON.stringify({
    ...other,
    private_key: (await import('node:crypto'))
      .generateKeyPairSync('rsa', { modulusLength: 2048 })
      .privateKey.export({ type: 'pkcs8', format: 'pem' })
      .toString(),
  });
  const cases: [GoogleSettings, string, string][] = [
    [settings(fake, { serviceAccountKey: foreignKey }), 'CredentialsRejected', 'HTTP 400'],
    [settings(fake, { adminSubject: 'someone@acme.example' }), 'CredentialsRejected', 'HTTP 401'],
    [settings(fake, { endpoint: `http://127.0.0.1:${await freePort()}` }), 'Unreachable', 'ECONNREFUSED'],
  ];
  for (const [chosen, problem, code] of cases) {
    const health = await createGoogleDirectory(chosen).check();
    assert.equal([health.ok, !health.ok && health.problem, !health.ok && health.code], [false, problem, code], JSON.stringify(health));
  }
  assert.throws(() => createGoogleDirectory(settings(fake, { serviceAccountKey: 'not json' })), /not JSON/);
  const dir = createGoogleDirectory(settings(fake));
  fake.fail('api', 429, 1, { 'retry-after': '30' });
  const throttled = await dir.lookup('alice@acme.example').catch((e: unknown) => e);
  assert.equal(
    [(throttled as DirectoryUnavailableError).problem, (throttled as DirectoryUnavailableError).detail, (throttled as DirectoryUnavailableError).retryAfterMs],
    ['Unreachable', 'HTTP 429', 30_000],
    'not retried: the caller answers 503 at once, with the Retry-After',
  );
  assert.is((await dir.lookup('alice@acme.example'))?.id, 'alice@acme.example');
});

google('Google stopped: cached users keep working for the TTL, others are unavailable', async ({ fake }) => {
  let now = 1_000_000;
  const dir = new CachedDirectory(createGoogleDirectory(settings(fake)), { ttlMs: 60_000, now: () => now });
  assert.is((await dir.lookup('alice@acme.example'))?.id, 'alice@acme.example');
  await fake.close();
  now += 30_000;
  assert.is((await dir.lookup('alice@acme.example'))?.id, 'alice@acme.example');
  const err = await dir.lookup('bob@acme.example').catch((e: unknown) => e);
  assert.is((err as DirectoryUnavailableError).problem, 'Unreachable');
  assert.match((err as DirectoryUnavailableError).detail!, /^ECONN(REFUSED|RESET)$/, 'a kept-alive connection is reset, a new one refused');
});

const SUPPORT = ['erin@acme.example', 'frank@acme.example', 'grace@acme.example'];
const listed = async (dir: Directory, scope: Partial<MemberScope>, limit = 100): Promise<{ users: string[]; truncated: boolean }> => {
  const list = await dir.members({ groups: [], containers: [], ...scope }, { limit });
  return { users: [...list.users].sort(), truncated: list.truncated };
};
const asked = (fake: FakeGoogle, path: RegExp): FakeGoogle['requests'] => fake.requests.filter((r) => path.test(r.path));

google('members of role groups: active users, derived memberships included, across pages, each once, lower-cased', async ({ fake }) => {
  const dir = createGoogleDirectory(settings(fake));
  assert.equal(
    await listed(dir, { groups: ['Support@acme.example', 'support-tier2@acme.example'] }),
    { users: SUPPORT, truncated: false },
    'not the suspended dan',
  );
  const pages = asked(fake, /\/groups\/[^/]+\/members$/);
  assert.is(pages.length, 6, 'five members (two groups) three pages each');
  assert.ok(pages.every((r) => r.query.includeDerivedMembership === 'true'));
  assert.equal(
    await listed(dir, { groups: ['admins@acme.example', 'nothing@acme.example', 'cn=admins,ou=Groups'] }),
    { users: ['alice@acme.example'], truncated: false },
    'no such group, and what is no email',
  );
});

google('members of org units: the unit and those below it, active users, across pages', async ({ fake }) => {
  const dir = createGoogleDirectory(settings(fake));
  assert.equal(await listed(dir, { containers: ['/People/Support/'] }), {
    users: [...SUPPORT, 'heidi@acme.example', 'ivan@acme.example'].sort(),
    truncated: false,
  });
  assert.equal(
    asked(fake, /\/users$/).map((r) => r.query.query),
    Array(3).fill("orgUnitPath='/People/Support' isSuspended=false"),
    'five users, three pages',
  );
  assert.equal(
    await listed(dir, { containers: ['/People/Staff', 'ou=People,dc=acme,dc=example'] }),
    { users: ['alice@acme.example', 'carol@acme.example'], truncated: false },
    'not /People/Staffing, not the suspended dan; a DN names no unit',
  );
  assert.equal((await listed(dir, { groups: ['support@acme.example'], containers: ['/'] })).users.length, 9, 'everyone active, once');
});

google('members: at most limit, no page asked past it; Google failing: unavailable', async ({ fake }) => {
  const dir = createGoogleDirectory(settings(fake));
  const two = await dir.members({ groups: ['support@acme.example'], containers: ['/People'] }, { limit: 2 });
  assert.equal([two.users.length, two.truncated], [2, true]);
  assert.equal([asked(fake, /\/members$/).length, asked(fake, /\/users$/).length], [2, 0], 'the third user came on the second page');
  fake.fail('api', 503);
  const err = await dir.members({ groups: [], containers: ['/People'] }, { limit: 10 }).catch((e: unknown) => e);
  assert.equal([(err as DirectoryUnavailableError).problem, (err as DirectoryUnavailableError).detail], ['Unreachable', 'HTTP 503']);
});

google.run();
