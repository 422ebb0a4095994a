import { mkdtempSync, readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createServer, type TLSSocket } from 'node:tls';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { isWithin, sameDn } from '../controller/core/dn.ts';
import { createDirectory } from '../controller/directories/create-directory.ts';
import { CachedDirectory, DirectoryUnavailableError, type Directory, type MemberScope } from '../controller/directories/directory.ts';
import { createLdapDirectory, directoryRoot, searchBases, type LdapSettings } from '../controller/directories/ldap-directory.ts';
import { ROOT } from './helpers/fixtures.ts';
import { freePort } from './helpers/redis-server.ts';
import { ldapSettingsOf, makeCertificates, startSlapd, type Slapd } from './helpers/slapd.ts';
import { startSambaAd, type AdEntry, type SambaAd } from './helpers/samba-ad.ts';
import { parse } from 'yaml';

// The GenericLDAP adapter against a real OpenLDAP (slapd), over LDAPS and StartTLS.

/** PagingTap stands between a directory and its LDAPS server, and counts the searches that ask for a page (RFC 2696's control), and all searches. */
interface PagingTap {
  url: string;
  ca: string;
  pagedSearches(): number;
  /** searches counts the SearchRequests the clients sent since the last call (LDAP messages read as BER, RFC 4511 §4.1.1). */
  searches(): number;
  close(): Promise<void>;
}

/** The paged results control's OID, as it is on the wire (an LDAPString in the request's controls). */
const PAGED_RESULTS = Buffer.from('1.2.840.113556.1.4.319');

/** startPagingTap terminates TLS with a certificate of its own and passes the plain LDAP on to server, reading what the client sends. */
async function startPagingTap(server: string, serverCa: string): Promise<PagingTap> {
  const certs = await makeCertificates(mkdtempSync(join(tmpdir(), 'smsauth-tap-')));
  const target = new URL(server);
  let sent = Buffer.alloc(0);
  let all = Buffer.alloc(0);
  const sockets = new Set<TLSSocket>();
  const tap = createServer({ key: readFileSync(certs.key), cert: readFileSync(certs.cert) }, (client) => {
    const upstream = connect({ host: target.hostname, port: Number(target.port), ca: serverCa });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => sockets.delete(s));
    }
    client.on('data', (d: Buffer) => {
      sent = Buffer.concat([sent, d]);
      all = Buffer.concat([all, d]);
    });
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => tap.listen(0, '127.0.0.1', resolve));
  return {
    url: `ldaps://127.0.0.1:${(tap.address() as AddressInfo).port}`,
    ca: readFileSync(certs.ca, 'utf8'),
    searches() {
      // Each LDAPMessage: SEQUENCE { messageID INTEGER, protocolOp … }; a SearchRequest's tag is [APPLICATION 3] (0x63).
      // Several clients' streams are appended in the order they arrive: each read holds whole messages of one client.
      let n = 0;
      let at = 0;
      const length = (i: number): [number, number] => {
        const first = all[i]!;
        if (first < 0x80) return [first, i + 1];
        let len = 0;
        for (let k = 1; k <= (first & 0x7f); k++) len = len * 256 + all[i + k]!;
        return [len, i + 1 + (first & 0x7f)];
      };
      while (at < all.length && all[at] === 0x30) {
        const [len, body] = length(at + 1);
        const [idLen, idBody] = length(body + 1);
        if (all[idBody + idLen] === 0x63) n++;
        at = body + len;
      }
      all = Buffer.alloc(0);
      return n;
    },
    pagedSearches() {
      let n = 0;
      for (let at = sent.indexOf(PAGED_RESULTS); at >= 0; at = sent.indexOf(PAGED_RESULTS, at + 1)) n++;
      sent = Buffer.alloc(0);
      return n;
    },
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        tap.close(() => resolve());
      }),
  };
}

/** listed is a listing with its names sorted, for comparing. */
async function listed(dir: Directory, scope: Partial<MemberScope>, limit = 100): Promise<{ users: string[]; truncated: boolean }> {
  const list = await dir.members({ groups: [], containers: [], ...scope }, { limit });
  return { users: [...list.users].sort(), truncated: list.truncated };
}

const SUFFIX = 'dc=acme,dc=example';
const ldap = suite<{ slapd: Slapd }>('GenericLDAP directory (slapd)', { slapd: undefined as unknown as Slapd });
ldap.before(async (ctx) => {
  ctx.slapd = await startSlapd({ suffix: SUFFIX, ldif: readFileSync(join(ROOT, 'test', 'fixtures', 'directories', 'acme.ldif'), 'utf8') });
});
ldap.after(async (ctx) => {
  await ctx.slapd?.stop();
});

const settings = (slapd: Slapd, over: Partial<LdapSettings> = {}): LdapSettings => ldapSettingsOf(slapd, `ou=People,${SUFFIX}`, over);

ldap('a user: DN, nested groups, the number', async ({ slapd }) => {
  const dir = createLdapDirectory(settings(slapd));
  try {
    const alice = await dir.lookup('alice');
    assert.equal(alice, {
      id: `uid=alice,ou=Staff,ou=People,${SUFFIX}`,
      groups: [`cn=helpdesk-leads,ou=Groups,${SUFFIX}`, `cn=admins,ou=Groups,${SUFFIX}`],
      container: `uid=alice,ou=Staff,ou=People,${SUFFIX}`,
      mobile: '+1 415 555 0101',
    });
    assert.is((await dir.lookup('carol'))?.mobile, null, 'no number in the directory');
    assert.is((await dir.lookup('ALICE'))?.id, alice!.id, 'user names compare without case, as uid does');
  } finally {
    await dir.close();
  }
});

ldap('groups that name each other: the walk stops, each group once', async ({ slapd }) => {
  const dir = createLdapDirectory(settings(slapd));
  try {
    assert.equal((await dir.lookup('bob'))!.groups.sort(), [
      `cn=contractors,ou=Groups,${SUFFIX}`,
      `cn=loop-a,ou=Groups,${SUFFIX}`,
      `cn=loop-b,ou=Groups,${SUFFIX}`,
    ]);
  } finally {
    await dir.close();
  }
});

ldap('no such user, a name that is a filter, a filter that matches everyone: no user', async ({ slapd }) => {
  const dir = createLdapDirectory(settings(slapd));
  try {
    for (const name of ['nobody', '*', 'alice)(uid=*', '*)(|(uid=*', 'al*']) assert.is(await dir.lookup(name), undefined, name);
  } finally {
    await dir.close();
  }
});

ldap('a user whose DN only ends like an OU is not in it', async ({ slapd }) => {
  const dir = createLdapDirectory(settings(slapd));
  try {
    const smith = await dir.lookup('smith');
    assert.ok(sameDn(smith!.id, `cn=Smith\\, ou=Staff,ou=People,${SUFFIX}`), smith!.id);
    assert.ok(`CN=Smith\\, OU=Staff,OU=People,${SUFFIX}`.toLowerCase().endsWith(`ou=staff,ou=people,${SUFFIX}`), 'as a string, it ends like ou=Staff');
    assert.not.ok(isWithin(smith!.container!, `ou=Staff,ou=People,${SUFFIX}`), 'as a name, it is not in it');
    assert.ok(isWithin((await dir.lookup('alice'))!.container!, `ou=Staff,ou=People,${SUFFIX}`));
  } finally {
    await dir.close();
  }
});

ldap('StartTLS on ldap://, and the next server when the first does not answer', async ({ slapd }) => {
  const dead = `ldaps://127.0.0.1:${await freePort()}`;
  const dir = createLdapDirectory(settings(slapd, { urls: [dead, slapd.ldapUrl], startTLS: true }));
  try {
    assert.is((await dir.lookup('alice'))?.mobile, '+1 415 555 0101');
    assert.equal(await dir.check(), { ok: true, server: slapd.ldapUrl });
  } finally {
    await dir.close();
  }
});

ldap('a wrong bind password, an untrusted certificate, a server down: each says so, never the password', async ({ slapd }) => {
  const { ca: _trusted, ...systemCAs } = settings(slapd);
  const cases: [LdapSettings, string, string][] = [
    [settings(slapd, { bindPassword: 'wrong-Pw-91x' }), 'CredentialsRejected', 'LDAP 49'],
    [systemCAs, 'CertificateUntrusted', 'SELF_SIGNED_CERT_IN_CHAIN'],
    [settings(slapd, { urls: [`ldaps://127.0.0.1:${await freePort()}`] }), 'Unreachable', 'ECONNREFUSED'],
  ];
  for (const [chosen, problem, code] of cases) {
    const dir = createLdapDirectory(chosen);
    try {
      const err = await dir.lookup('alice').then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.instance(err, DirectoryUnavailableError);
      assert.equal([(err as DirectoryUnavailableError).problem, (err as DirectoryUnavailableError).detail], [problem, code]);
      const health = await dir.check();
      assert.equal([health.ok, !health.ok && health.problem, !health.ok && health.code], [false, problem, code]);
      assert.not.match(`${(err as Error).message} ${JSON.stringify(health)}`, /Pw-/);
    } finally {
      await dir.close();
    }
  }
});

ldap('a connection the server dropped is made again and bound, never used anonymously; a closed directory opens nothing', async ({ slapd }) => {
  const dir = createLdapDirectory(settings(slapd));
  try {
    assert.is((await dir.lookup('alice'))?.groups.length, 2);
    await slapd.stop();
    await slapd.start();
    // The server forgot the connection: asked again, the answer is whole (anonymous reads get nothing here).
    const again = await dir.lookup('alice');
    assert.equal([again?.groups.length, again?.mobile], [2, '+1 415 555 0101']);
    assert.equal(await dir.check(), { ok: true, server: slapd.ldapsUrl });
  } finally {
    await dir.close();
  }
  const closed = await dir.lookup('alice').catch((e: unknown) => e);
  assert.equal([(closed as DirectoryUnavailableError).problem, (closed as DirectoryUnavailableError).detail], ['Unreachable', 'closed']);
});

ldap('stopped mid-run: cached users keep working for the TTL, others are unavailable; back up, it recovers by itself', async ({ slapd }) => {
  let now = 1_000_000;
  const dir = new CachedDirectory(createLdapDirectory(settings(slapd, { timeoutMs: 1000 })), { ttlMs: 60_000, now: () => now });
  try {
    assert.is((await dir.lookup('alice'))?.id, `uid=alice,ou=Staff,ou=People,${SUFFIX}`);
    assert.is(await dir.lookup('nobody'), undefined);
    await slapd.stop();
    now += 30_000;
    assert.is((await dir.lookup('alice'))?.id, `uid=alice,ou=Staff,ou=People,${SUFFIX}`, 'cached');
    assert.is(await dir.lookup('nobody'), undefined, 'an unknown name is cached as well');
    assert.instance(await dir.lookup('bob').catch((e: unknown) => e), DirectoryUnavailableError, 'not cached: unavailable, never "no such user"');
    now += 31_000;
    assert.instance(await dir.lookup('alice').catch((e: unknown) => e), DirectoryUnavailableError, 'past the TTL, nothing is guessed');
    await slapd.start();
    assert.is((await dir.lookup('bob'))?.id, `uid=bob,ou=Contractors,ou=People,${SUFFIX}`, 'recovered without a restart');
  } finally {
    await dir.close();
    await slapd.start().catch(() => undefined);
  }
});

ldap('members of a role group: nested groups walked down, each user once, what is no user left out', async ({ slapd }) => {
  const dir = createLdapDirectory(settings(slapd));
  try {
    const support = { users: ['erin', 'frank', 'grace'], truncated: false };
    assert.equal(await listed(dir, { groups: [`cn=support,ou=Groups,${SUFFIX}`] }), support, 'not the account outside ou=People, the device, the deleted user');
    assert.equal(await listed(dir, { groups: [`CN=Support , OU=groups,${SUFFIX.toUpperCase()}`] }), support, 'the group compared as a name (RFC 4514)');
    assert.equal(
      await listed(dir, { groups: [`cn=admins,ou=Groups,${SUFFIX}`, `cn=helpdesk-leads,ou=Groups,${SUFFIX}`] }),
      { users: ['alice'], truncated: false },
      'nested, and once for two groups',
    );
    assert.equal(
      await listed(dir, { groups: ['admins@acme.example', `cn=nothing,ou=Groups,${SUFFIX}`, `cn=admins,ou=Groups,dc=other,dc=example`] }),
      { users: [], truncated: false },
      'no DN, no such group, a group outside the directory',
    );
  } finally {
    await dir.close();
  }
});

ldap('members of groups that name each other: the walk stops', async ({ slapd }) => {
  const dir = createLdapDirectory(settings(slapd));
  try {
    assert.equal(await listed(dir, { groups: [`cn=loop-b,ou=Groups,${SUFFIX}`] }), { users: ['bob'], truncated: false });
    assert.equal(
      await listed(dir, { groups: [`cn=support-tier2,ou=Groups,${SUFFIX}`] }),
      { users: ['erin', 'frank', 'grace'], truncated: false },
      'back through support',
    );
  } finally {
    await dir.close();
  }
});

ldap('members of containers: the users below one, names lower-cased; baseDN bounds what a container above it holds', async ({ slapd }) => {
  const dir = createLdapDirectory(settings(slapd));
  try {
    assert.equal(await listed(dir, { containers: [`ou=Staff,ou=People,${SUFFIX}`] }), { users: ['alice', 'carol'], truncated: false }, 'not "Smith, ou=Staff"');
    assert.equal(await listed(dir, { containers: [`ou=Support,ou=People,${SUFFIX}`] }), {
      users: ['erin', 'frank', 'grace', 'heidi', 'ivan'],
      truncated: false,
    });
    assert.equal(
      (await listed(dir, { containers: [SUFFIX, `ou=Staff,ou=People,${SUFFIX}`] })).users,
      ['alice', 'bob', 'carol', 'erin', 'frank', 'grace', 'heidi', 'ivan', 'smith'],
      'not the account under ou=Services',
    );
    assert.equal(await listed(dir, { containers: [`ou=Services,${SUFFIX}`, '/People'] }), { users: [], truncated: false });
    assert.equal(await listed(dir, { groups: [`cn=admins,ou=Groups,${SUFFIX}`], containers: [`ou=Staff,ou=People,${SUFFIX}`] }), {
      users: ['alice', 'carol'],
      truncated: false,
    });
  } finally {
    await dir.close();
  }
});

ldap('members: the user filter applies to groups and containers alike', async ({ slapd }) => {
  const dir = createLdapDirectory(settings(slapd, { userFilter: '(!(uid=frank))' }));
  try {
    assert.equal((await listed(dir, { groups: [`cn=support,ou=Groups,${SUFFIX}`] })).users, ['erin', 'grace']);
    assert.equal((await listed(dir, { containers: [`ou=Support,ou=People,${SUFFIX}`] })).users, ['erin', 'grace', 'heidi', 'ivan']);
  } finally {
    await dir.close();
  }
});

ldap('members: at most limit, truncated when there were more', async ({ slapd }) => {
  const dir = createLdapDirectory(settings(slapd));
  const five = ['erin', 'frank', 'grace', 'heidi', 'ivan'];
  try {
    const container = { groups: [], containers: [`ou=Support,ou=People,${SUFFIX}`] };
    const group = { groups: [`cn=support,ou=Groups,${SUFFIX}`], containers: [] };
    for (const [scope, limit, truncated] of [
      [container, 3, true],
      [container, 5, false],
      [group, 2, true],
      [group, 0, true],
    ] as const) {
      const list = await dir.members(scope, { limit });
      assert.equal([list.users.length, list.truncated], [limit, truncated], `${JSON.stringify(scope)} limit ${limit}`);
      assert.ok(
        list.users.every((u) => five.includes(u)),
        list.users.join(),
      );
    }
  } finally {
    await dir.close();
  }
});

ldap('100 concurrent lookups of one user make the searches of one lookup (the cache coalesces them); the next lookup makes none', async ({ slapd }) => {
  const tap = await startPagingTap(slapd.ldapsUrl, slapd.ca);
  const dir = createDirectory(
    {
      kind: 'ldap',
      flavor: 'GenericLDAP',
      urls: [tap.url],
      startTLS: false,
      insecure: false,
      caBundle: { name: 'ca', key: 'ca.crt' },
      bindDN: slapd.bindDN,
      bindPassword: { name: 'bind', key: 'password' },
      baseDN: `ou=People,${SUFFIX}`,
      userAttribute: 'uid',
      userFilter: null,
      mobileAttribute: 'mobile',
      groupMemberAttribute: 'member',
      cacheTtlMs: 60_000,
      timeoutMs: 5000,
    },
    { caBundle: tap.ca, bindPassword: slapd.bindPassword },
  );
  try {
    // What one lookup costs, on a name the cache has not seen.
    assert.is((await dir.lookup('bob'))?.id, `uid=bob,ou=Contractors,ou=People,${SUFFIX}`);
    const one = tap.searches();
    assert.ok(one >= 1, `a lookup searches (${one})`);
    const answers = await Promise.all(Array.from({ length: 100 }, () => dir.lookup('alice')));
    assert.ok(answers.every((a) => a?.id === `uid=alice,ou=Staff,ou=People,${SUFFIX}`));
    assert.is(tap.searches(), one, "100 at once: one lookup's searches");
    await dir.lookup('alice');
    assert.is(tap.searches(), 0, 'then from the cache');
  } finally {
    await dir.close();
    await tap.close();
  }
});

ldap('members are searched in pages, and no further page is asked once past the limit', async ({ slapd }) => {
  const tap = await startPagingTap(slapd.ldapsUrl, slapd.ca);
  const dir = createLdapDirectory(settings(slapd, { urls: [tap.url], ca: tap.ca, pageSize: 2 }));
  try {
    const support = { containers: [`ou=Support,ou=People,${SUFFIX}`] };
    assert.equal((await listed(dir, support)).users.length, 5);
    assert.is(tap.pagedSearches(), 3, 'five users, two a page');
    assert.equal((await listed(dir, support, 2)).truncated, true);
    assert.is(tap.pagedSearches(), 2, 'the third user came on the second page');
    const both = await Promise.all([listed(dir, support), listed(dir, { containers: [`ou=Staff,ou=People,${SUFFIX}`] })]);
    assert.equal(
      both.map((l) => l.users.length),
      [5, 2],
      'two listings at once on one connection: one after the other',
    );
  } finally {
    await dir.close();
    await tap.close();
  }
});

ldap("members past the server's size limit (slapd's 500): truncated, not failed; the server down: unavailable", async () => {
  const many = Array.from(
    { length: 520 },
    (_, i) => `dn: uid=m${i},ou=Staff,ou=People,${SUFFIX}\nobjectClass: inetOrgPerson\nuid: m${i}\ncn: M ${i}\nsn: ${i}\n`,
  ).join('\n');
  const big = await startSlapd({ suffix: SUFFIX, ldif: `${readFileSync(join(ROOT, 'test', 'fixtures', 'directories', 'acme.ldif'), 'utf8')}\n${many}` });
  const dir = createLdapDirectory(settings(big));
  try {
    const list = await dir.members({ groups: [], containers: [`ou=Staff,ou=People,${SUFFIX}`] }, { limit: 1000 });
    assert.equal([list.users.length, list.truncated], [500, true]);
    await big.stop();
    const err = await dir.members({ groups: [], containers: [`ou=Staff,ou=People,${SUFFIX}`] }, { limit: 1000 }).catch((e: unknown) => e);
    assert.equal([(err as DirectoryUnavailableError).name, (err as DirectoryUnavailableError).problem], ['DirectoryUnavailableError', 'Unreachable']);
  } finally {
    await dir.close();
    await big.stop();
  }
});

ldap.run();

// The Active Directory flavor against Samba's AD domain controller: nested groups by the server's
// in-chain rule, simple binds refused without TLS.

const ad = suite<{ dc: SambaAd }>('Active Directory directory (Samba DC)', { dc: undefined as unknown as SambaAd });
ad.before(async (ctx) => {
  ctx.dc = await startSambaAd({ realm: 'ACME.EXAMPLE' });
  await ctx.dc.add(parse(readFileSync(join(ROOT, 'test', 'fixtures', 'directories', 'acme-ad.yaml'), 'utf8')) as AdEntry[]);
  // support-tier2 names support back: a cycle of groups.
  await ctx.dc.addMembers(`CN=support-tier2,OU=Groups,${ctx.dc.domain}`, [`CN=support,OU=Groups,${ctx.dc.domain}`]);
});
ad.after(async (ctx) => {
  await ctx.dc?.stop();
});
const adSettings = (dc: SambaAd, over: Partial<LdapSettings> = {}): LdapSettings => ({
  flavor: 'ActiveDirectory',
  urls: [dc.ldapsUrl],
  startTLS: false,
  ca: dc.ca,
  bindDN: dc.bindDN,
  bindPassword: dc.bindPassword,
  baseDN: `OU=People,${dc.domain}`,
  userAttribute: 'sAMAccountName',
  userFilter: '(objectCategory=person)',
  mobileAttribute: 'mobile',
  groupMemberAttribute: 'member',
  timeoutMs: 3000,
  ...over,
});

ad('a user: DN, nested groups by the in-chain rule, the number; no such user', async ({ dc }) => {
  const dir = createLdapDirectory(adSettings(dc));
  try {
    const alice = await dir.lookup('alice');
    assert.is(alice!.id, `CN=Alice Martin,OU=Staff,OU=People,${dc.domain}`);
    assert.equal([...alice!.groups].sort(), [`CN=admins,OU=Groups,${dc.domain}`, `CN=helpdesk-leads,OU=Groups,${dc.domain}`]);
    assert.is(alice!.mobile, '+1 415 555 0101');
    for (const name of ['nobody', '*', 'alice)(sAMAccountName=*', 'dan', 'helpdesk-leads'])
      assert.is(await dir.lookup(name), undefined, `${name}: no user (a disabled account, a group)`);
    const smith = await dir.lookup('smith');
    assert.not.ok(isWithin(smith!.container!, `OU=Staff,OU=People,${dc.domain}`), 'the escaped comma is part of the CN');
  } finally {
    await dir.close();
  }
});

ad('StartTLS works; a plain bind is refused by the DC; a wrong password is LDAP 49', async ({ dc }) => {
  const tls = createLdapDirectory(adSettings(dc, { urls: [dc.ldapUrl], startTLS: true }));
  const plain = createLdapDirectory(adSettings(dc, { urls: [dc.ldapUrl] }));
  const wrong = createLdapDirectory(adSettings(dc, { bindPassword: 'wrong-Pw-12' }));
  try {
    assert.is((await tls.lookup('alice'))?.mobile, '+1 415 555 0101');
    assert.equal(await plain.check(), { ok: false, problem: 'SearchFailed', server: dc.ldapUrl, code: 'LDAP 8' }, 'strongerAuthRequired');
    assert.equal(await wrong.check(), { ok: false, problem: 'CredentialsRejected', server: dc.ldapsUrl, code: 'LDAP 49' });
  } finally {
    await Promise.all([tls.close(), plain.close(), wrong.close()]);
  }
});

ad('members of a role group by the in-chain rule: nested groups, a cycle, each enabled user once', async ({ dc }) => {
  const dir = createLdapDirectory(adSettings(dc));
  try {
    const support = { users: ['erin', 'frank', 'grace'], truncated: false };
    assert.equal(await listed(dir, { groups: [`CN=support,OU=Groups,${dc.domain}`] }), support, 'not the disabled account, not the one outside OU=People');
    assert.equal(
      await listed(dir, { groups: [`cn=Support-Tier2, ou=groups,${dc.domain.toLowerCase()}`] }),
      support,
      'back through support, the group compared as a name',
    );
    assert.equal(await listed(dir, { groups: [`CN=admins,OU=Groups,${dc.domain}`, `CN=helpdesk-leads,OU=Groups,${dc.domain}`] }), {
      users: ['alice'],
      truncated: false,
    });
    assert.equal(await listed(dir, { groups: ['admins@acme.example', `CN=nothing,OU=Groups,${dc.domain}`] }), { users: [], truncated: false });
  } finally {
    await dir.close();
  }
});

ad('members of containers, limited and paged', async ({ dc }) => {
  const tap = await startPagingTap(dc.ldapsUrl, dc.ca);
  const dir = createLdapDirectory(adSettings(dc, { urls: [tap.url], ca: tap.ca, pageSize: 2 }));
  try {
    assert.equal(
      await listed(dir, { containers: [`OU=Staff,OU=People,${dc.domain}`] }),
      { users: ['alice', 'carol'], truncated: false },
      'not smith, not the disabled dan',
    );
    assert.equal(
      (await listed(dir, { containers: [dc.domain] })).users,
      ['alice', 'bob', 'carol', 'erin', 'frank', 'grace', 'heidi', 'ivan', 'smith'],
      'baseDN bounds the domain: not svc-backup, not the reader',
    );
    tap.pagedSearches();
    assert.equal(await listed(dir, { containers: [`OU=Support,OU=People,${dc.domain}`] }), {
      users: ['erin', 'frank', 'grace', 'heidi', 'ivan'],
      truncated: false,
    });
    assert.is(tap.pagedSearches(), 3, 'five users, two a page');
    const three = await dir.members({ groups: [`CN=support,OU=Groups,${dc.domain}`], containers: [`OU=Support,OU=People,${dc.domain}`] }, { limit: 3 });
    assert.equal([three.users.length, three.truncated], [3, true]);
  } finally {
    await dir.close();
    await tap.close();
  }
});

ad.run();

const root = suite('directoryRoot');
root('groups are searched from the domain, or the last RDN', () => {
  assert.is(directoryRoot('ou=People,dc=acme,dc=example'), 'dc=acme,dc=example');
  assert.is(directoryRoot('OU=Staff,DC=corp,DC=contoso,DC=example'), 'DC=corp,DC=contoso,DC=example');
  assert.is(directoryRoot('ou=People,o=Acme'), 'o=Acme');
  assert.is(directoryRoot('cn=Smith\\, John,dc=x'), 'dc=x');
});
root.run();

const bases = suite('searchBases');
for (const c of [
  { name: 'a container under baseDN is searched itself', in: ['ou=Staff,ou=People,dc=x'], want: ['ou=Staff,ou=People,dc=x'] },
  { name: 'one above baseDN is searched from baseDN', in: ['dc=x'], want: ['ou=People,dc=x'] },
  { name: 'one elsewhere, or no DN, is not searched', in: ['ou=Services,dc=x', '/People', 'ou=People,dc=y'], want: [] },
  {
    name: 'one below another, or the same written otherwise, is not searched again',
    in: ['ou=Staff,ou=People,dc=x', 'OU=people, DC=x', 'ou=Staff,ou=People,dc=x'],
    want: ['OU=people, DC=x'],
  },
])
  bases(c.name, () => assert.equal(searchBases(c.in, 'ou=People,dc=x'), c.want));
bases.run();
