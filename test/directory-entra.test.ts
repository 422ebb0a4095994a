import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { parse } from 'yaml';
import { CachedDirectory, type DirectoryUnavailableError } from '../controller/directories/directory.ts';
import { createEntraDirectory, type EntraSettings } from '../controller/directories/entra-directory.ts';
import { ROOT } from './helpers/fixtures.ts';
import { startEntraServer, type EntraUser, type FakeEntra } from './directories/entra-server.ts';

// The Entra ID adapter, through the official @azure/identity and @microsoft/microsoft-graph-client,
// against a server that answers as Entra ID's token endpoints and Microsoft Graph do (over HTTPS).

const DATA = parse(readFileSync(join(ROOT, 'test', 'fixtures', 'directories', 'acme-entra.yaml'), 'utf8')) as {
  tenant: string;
  clientId: string;
  clientSecret: string;
  users: EntraUser[];
};
const ALICE = '00000000-0000-0000-0000-00000000a11c';

const entra = suite<{ fake: FakeEntra }>('Entra ID directory (Microsoft Graph)', { fake: undefined as unknown as FakeEntra });
entra.before.each(async (ctx) => {
  ctx.fake = await startEntraServer(DATA);
});
entra.after.each(async (ctx) => {
  await ctx.fake?.close();
});

const settings = (fake: FakeEntra, over: Partial<EntraSettings> = {}): EntraSettings => ({
  tenantId: DATA.tenant,
  clientId: DATA.clientId,
  clientSecret: DATA.clientSecret,
  authorityHost: fake.url,
  graphEndpoint: fake.url,
  mobileAttribute: 'mobilePhone',
  ca: fake.ca,
  timeoutMs: 2000,
  ...over,
});

entra('a user by principal name: their id, mobile number and every group (transitive, across pages)', async ({ fake }) => {
  const dir = createEntraDirectory(settings(fake));
  assert.equal(await dir.lookup('alice@acme.example'), {
    id: ALICE,
    groups: ['00000000-0000-0000-0000-000000000011', '00000000-0000-0000-0000-000000000012'],
    container: null,
    mobile: '+1 415 555 0101',
  });
  assert.equal((await dir.lookup('bob@acme.example'))!.groups.length, 3, 'two pages');
  assert.is((await dir.lookup('carol@acme.example'))!.mobile, null);
  assert.is(fake.requests.filter((r) => r.path.endsWith('/token')).length, 1, 'one token, cached by MSAL');
  assert.is((await createEntraDirectory(settings(fake, { mobileAttribute: 'businessPhones' })).lookup('alice@acme.example'))!.mobile, '+1 415 555 0199');
});

entra('no such user, and a disabled account: no user', async ({ fake }) => {
  const dir = createEntraDirectory(settings(fake));
  assert.is(await dir.lookup('nobody@acme.example'), undefined);
  assert.is(await dir.lookup('dan@acme.example'), undefined);
});

entra('a wrong client secret, an untrusted certificate, Graph throttling: each says so, never the secret', async ({ fake }) => {
  const { ca: _ca, ...systemCAs } = settings(fake);
  const cases: [EntraSettings, string, string][] = [
    [settings(fake, { clientSecret: 'wrong-Pw-66v' }), 'CredentialsRejected', 'invalid_client'],
    [systemCAs, 'Unreachable', 'CredentialUnavailableError'],
  ];
  for (const [chosen, problem, code] of cases) {
    const health = await createEntraDirectory(chosen).check();
    assert.equal([health.ok, !health.ok && health.problem, !health.ok && health.code], [false, problem, code], JSON.stringify(health));
    assert.not.match(JSON.stringify(health), /Pw-/);
  }
  const dir = createEntraDirectory(settings(fake));
  fake.fail(429, 1, { 'retry-after': '30' });
  const throttled = await dir.lookup('alice@acme.example').catch((e: unknown) => e);
  assert.equal(
    [(throttled as DirectoryUnavailableError).problem, (throttled as DirectoryUnavailableError).detail, (throttled as DirectoryUnavailableError).retryAfterMs],
    ['Unreachable', 'HTTP 429', 30_000],
    'not retried: the caller answers 503 at once, with the Retry-After',
  );
  assert.is((await dir.lookup('alice@acme.example'))?.id, ALICE);
});

entra('Graph stopped: cached users keep working for the TTL, others are unavailable', async ({ fake }) => {
  let now = 1_000_000;
  const dir = new CachedDirectory(createEntraDirectory(settings(fake)), { ttlMs: 60_000, now: () => now });
  assert.is((await dir.lookup('alice@acme.example'))?.id, ALICE);
  await fake.close();
  now += 30_000;
  assert.is((await dir.lookup('alice@acme.example'))?.id, ALICE);
  const err = await dir.lookup('bob@acme.example').catch((e: unknown) => e);
  assert.is((err as DirectoryUnavailableError).problem, 'Unreachable');
});

const SUPPORT = '00000000-0000-0000-0000-000000000031';
const SUPPORT_TIER2 = '00000000-0000-0000-0000-000000000032';
const ADMINS = '00000000-0000-0000-0000-000000000012';
const pagesAsked = (fake: FakeEntra): number => fake.requests.filter((r) => r.path.includes('/transitiveMembers/')).length;

entra('members of role groups: their enabled users, nested groups included, across pages, each once, lower-cased', async ({ fake }) => {
  const dir = createEntraDirectory(settings(fake));
  const list = await dir.members({ groups: [SUPPORT, SUPPORT_TIER2.toUpperCase()], containers: [] }, { limit: 10 });
  assert.equal([[...list.users].sort(), list.truncated], [['erin@acme.example', 'frank@acme.example', 'grace@acme.example'], false]);
  assert.is(pagesAsked(fake), 3, 'support in two pages, support-tier2 in one');
  assert.equal(
    await dir.members({ groups: [ADMINS], containers: ['/People'] }, { limit: 10 }),
    { users: ['alice@acme.example'], truncated: false },
    'not the disabled dan; Entra has no containers',
  );
  assert.equal(
    await dir.members({ groups: ['00000000-0000-0000-0000-000000000099', 'admins@acme.example', '../users'], containers: [] }, { limit: 10 }),
    { users: [], truncated: false },
    'no such group, and what is no object id',
  );
});

entra('members: at most limit, no page asked past it; Graph failing: unavailable', async ({ fake }) => {
  const dir = createEntraDirectory(settings(fake));
  const one = await dir.members({ groups: [SUPPORT], containers: [] }, { limit: 1 });
  assert.equal([one.users.length, one.truncated, pagesAsked(fake)], [1, true, 1]);
  fake.fail(503);
  const err = await dir.members({ groups: [SUPPORT], containers: [] }, { limit: 10 }).catch((e: unknown) => e);
  assert.equal([(err as DirectoryUnavailableError).problem, (err as DirectoryUnavailableError).detail], ['Unreachable', 'HTTP 503']);
});

entra.run();
