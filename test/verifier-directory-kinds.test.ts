import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { parse } from 'yaml';
import type { Bundle } from '../controller/core/bundle.ts';
import { CachedDirectory, unavailableDirectory, type Directory } from '../controller/directories/directory.ts';
import { createEntraDirectory } from '../controller/directories/entra-directory.ts';
import { createGoogleDirectory } from '../controller/directories/google-directory.ts';
import { createLdapDirectory } from '../controller/directories/ldap-directory.ts';
import { ROOT } from './helpers/fixtures.ts';
import { startSambaAd, type AdEntry } from './helpers/samba-ad.ts';
import { startStack, type Stack } from './helpers/verifier-stack.ts';
import { startEntraServer, type EntraUser } from './directories/entra-server.ts';
import { startGoogleServer } from './directories/google-server.ts';

// The verifier against each kind of directory (GenericLDAP has its own suite): Active Directory
// (Samba's DC), Entra ID and Google Workspace (servers that answer as theirs do, through the
// official SDKs). With none of them does the caller's word count.

const fixture = (name: string): string => readFileSync(join(ROOT, 'test', 'fixtures', 'directories', name), 'utf8');

interface Kind {
  store: string;
  /** The API's user name for a person of the fixtures. */
  user(person: 'alice' | 'bob' | 'smith' | 'nobody'): string;
  /** Whether the directory has containers (Entra has none). */
  containers: boolean;
  start(): Promise<{ directoryOf: (bundle: Bundle) => Directory; stop(): Promise<void> }>;
}

const KINDS: Kind[] = [
  {
    store: 'ad',
    user: (p) => p,
    containers: true,
    async start() {
      const dc = await startSambaAd({ realm: 'ACME.EXAMPLE' });
      try {
        await dc.add(parse(fixture('acme-ad.yaml')) as AdEntry[]);
      } catch (err) {
        await dc.stop();
        throw err;
      }
      return {
        directoryOf: (b) => {
          const d = b.directory!;
          if (d.kind !== 'ldap') throw new Error('an AD store');
          return createLdapDirectory({
            flavor: d.flavor,
            urls: [dc.ldapsUrl],
            startTLS: false,
            ca: dc.ca,
            bindDN: dc.bindDN,
            bindPassword: dc.bindPassword,
            baseDN: d.baseDN,
            userAttribute: d.userAttribute,
            userFilter: d.userFilter,
            mobileAttribute: d.mobileAttribute,
            groupMemberAttribute: d.groupMemberAttribute,
            timeoutMs: 3000,
          });
        },
        stop: () => dc.stop(),
      };
    },
  },
  {
    store: 'entra',
    user: (p) => `${p}@acme.example`,
    containers: false,
    async start() {
      const data = parse(fixture('acme-entra.yaml')) as { tenant: string; clientId: string; clientSecret: string; users: EntraUser[] };
      const fake = await startEntraServer(data);
      return {
        directoryOf: (b) => {
          const d = b.directory!;
          if (d.kind !== 'entra') throw new Error('an Entra store');
          return createEntraDirectory({
            tenantId: d.tenantId,
            clientId: d.clientId,
            clientSecret: data.clientSecret,
            authorityHost: fake.url,
            graphEndpoint: fake.url,
            mobileAttribute: d.mobileAttribute,
            ca: fake.ca,
            timeoutMs: 2000,
          });
        },
        stop: () => fake.close(),
      };
    },
  },
  {
    store: 'google',
    user: (p) => `${p}@acme.example`,
    containers: true,
    async start() {
      const fake = await startGoogleServer(parse(fixture('acme-google.yaml')) as Parameters<typeof startGoogleServer>[0]);
      return {
        directoryOf: (b) => {
          const d = b.directory!;
          if (d.kind !== 'google') throw new Error('a Google store');
          return createGoogleDirectory({
            serviceAccountKey: fake.serviceAccountKey,
            adminSubject: d.adminSubject,
            customer: d.customer,
            endpoint: fake.url,
            timeoutMs: 2000,
          });
        },
        stop: () => fake.close(),
      };
    },
  },
];

for (const kind of KINDS) {
  const base = `/v1/acme/${kind.store}`;
  const test = suite<{ stack: Stack; stop: () => Promise<void>; directories: Directory[] }>(`verifier with a ${kind.store} directory`, {} as never);
  test.before(async (ctx) => {
    const service = await kind.start();
    ctx.stop = () => service.stop();
    ctx.directories = [];
    ctx.stack = await startStack({
      fixture: 'verifier/directory-kinds.yaml',
      // Each suite serves its own kind; the other stores of the fixture have no directory to reach.
      directoryOf: (b) => {
        if (b.identityStore !== kind.store) return unavailableDirectory("another suite's store");
        const dir = new CachedDirectory(service.directoryOf(b), { ttlMs: b.directory!.cacheTtlMs });
        ctx.directories.push(dir);
        return dir;
      },
    });
  });
  test.after(async (ctx) => {
    await ctx.stack?.close();
    await Promise.all((ctx.directories ?? []).map((d) => d.close()));
    await ctx.stop?.();
  });

  test("a user in a nested group gets the outer group's role and its lockout, with no groups in the request", async ({ stack }) => {
    const alice = await stack.api('GET', `${base}/users/${encodeURIComponent(kind.user('alice'))}/policy`);
    assert.is(alice.status, 200, JSON.stringify(alice.body));
    assert.equal([alice.body.role?.name, alice.body.lockout.failedAttemptsThreshold], [`${kind.store}-admins`, 2]);
  });

  test('groups in a request are refused', async ({ stack }) => {
    const claim = await stack.api('POST', `${base}/users/${encodeURIComponent(kind.user('bob'))}/policy`, { groups: ['anything'] });
    assert.equal([claim.status, claim.body.error.code], [400, 'membership_from_directory']);
  });

  test('an unknown user is indistinguishable from wrong digits, and nothing is sent', async ({ stack }) => {
    const unknown = await stack.api('POST', `${base}/users/${encodeURIComponent(kind.user('nobody'))}/challenges`, { type: 'SMS', lastDigits: '0101' });
    const wrong = await stack.api('POST', `${base}/users/${encodeURIComponent(kind.user('alice'))}/challenges`, { type: 'SMS', lastDigits: '9999' });
    const shape = (r: { status: number; body: Record<string, unknown> }): unknown => [r.status, Object.keys(r.body).sort(), r.body.status, r.body.to];
    assert.equal(shape(unknown), shape(wrong));
    await stack.verifier.drain();
    assert.equal(stack.gateways.get('primary')?.sent ?? [], []);
  });

  if (kind.containers) {
    test("a user in a container that only looks like the role's is not in it", async ({ stack }) => {
      const smith = await stack.api('GET', `${base}/users/${encodeURIComponent(kind.user('smith'))}/policy`);
      assert.equal([smith.status, smith.body.role], [200, null]);
    });
  }

  test.run();
}
