import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { isWithin, sameDn } from '../controller/core/dn.ts';
import { CachedDirectory, DirectoryUnavailableError } from '../controller/directories/directory.ts';
import { createLdapDirectory, directoryRoot, type LdapSettings } from '../controller/directories/ldap-directory.ts';
import { ROOT } from './helpers/fixtures.ts';
import { freePort } from './helpers/redis-server.ts';
import { startSlapd, type Slapd } from './helpers/slapd.ts';
import { startSambaAd, type AdEntry, type SambaAd } from './helpers/samba-ad.ts';
import { parse } from 'yaml';

// The GenericLDAP adapter against a real OpenLDAP (slapd), over LDAPS and StartTLS.

const SUFFIX = 'dc=acme,dc=example';
const ldap = suite<{ slapd: Slapd }>('GenericLDAP directory (slapd)', { slapd: undefined as unknown as Slapd });
ldap.before(async (ctx) => {
  ctx.slapd = await startSlapd({ suffix: SUFFIX, ldif: readFileSync(join(ROOT, 'test', 'fixtures', 'directories', 'acme.ldif'), 'utf8') });
});
ldap.after(async (ctx) => {
  await ctx.slapd?.stop();
});

const settings = (slapd: Slapd, over: Partial<LdapSettings> = {}): LdapSettings => ({
  flavor: 'GenericLDAP', urls: [slapd.ldapsUrl], startTLS: false, ca: slapd.ca, bindDN: slapd.bindDN, bindPassword: slapd.bindPassword,
  baseDN: `ou=People,${SUFFIX}`, userAttribute: 'uid', userFilter: null, mobileAttribute: 'mobile', groupMemberAttribute: 'member', timeoutMs: 2000, ...over,
});

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
    assert.equal((await dir.lookup('bob'))!.groups.sort(), [`cn=contractors,ou=Groups,${SUFFIX}`, `cn=loop-a,ou=Groups,${SUFFIX}`, `cn=loop-b,ou=Groups,${SUFFIX}`]);
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
      const err = await dir.lookup('alice').then(() => undefined, (e: unknown) => e);
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

ldap.run();

// The Active Directory flavor against Samba's AD domain controller: nested groups by the server's
// in-chain rule, simple binds refused without TLS.

const ad = suite<{ dc: SambaAd }>('Active Directory directory (Samba DC)', { dc: undefined as unknown as SambaAd });
ad.before(async (ctx) => {
  ctx.dc = await startSambaAd({ realm: 'ACME.EXAMPLE' });
  await ctx.dc.add(parse(readFileSync(join(ROOT, 'test', 'fixtures', 'directories', 'acme-ad.yaml'), 'utf8')) as AdEntry[]);
});
ad.after(async (ctx) => {
  await ctx.dc?.stop();
});
const adSettings = (dc: SambaAd, over: Partial<LdapSettings> = {}): LdapSettings => ({
  flavor: 'ActiveDirectory', urls: [dc.ldapsUrl], startTLS: false, ca: dc.ca, bindDN: dc.bindDN, bindPassword: dc.bindPassword,
  baseDN: `OU=People,${dc.domain}`, userAttribute: 'sAMAccountName', userFilter: '(objectCategory=person)', mobileAttribute: 'mobile', groupMemberAttribute: 'member', timeoutMs: 3000, ...over,
});

ad('a user: DN, nested groups by the in-chain rule, the number; no such user', async ({ dc }) => {
  const dir = createLdapDirectory(adSettings(dc));
  try {
    const alice = await dir.lookup('alice');
    assert.is(alice!.id, `CN=Alice Martin,OU=Staff,OU=People,${dc.domain}`);
    assert.equal([...alice!.groups].sort(), [`CN=admins,OU=Groups,${dc.domain}`, `CN=helpdesk-leads,OU=Groups,${dc.domain}`]);
    assert.is(alice!.mobile, '+1 415 555 0101');
    for (const name of ['nobody', '*', 'alice)(sAMAccountName=*', 'dan', 'helpdesk-leads']) assert.is(await dir.lookup(name), undefined, `${name}: no user (a disabled account, a group)`);
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

ad.run();

const root = suite('directoryRoot');
root('groups are searched from the domain, or the last RDN', () => {
  assert.is(directoryRoot('ou=People,dc=acme,dc=example'), 'dc=acme,dc=example');
  assert.is(directoryRoot('OU=Staff,DC=corp,DC=contoso,DC=example'), 'DC=corp,DC=contoso,DC=example');
  assert.is(directoryRoot('ou=People,o=Acme'), 'o=Acme');
  assert.is(directoryRoot('cn=Smith\\, John,dc=x'), 'dc=x');
});
root.run();
