import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, chmodSync, mkdtempSync, readFileSync, watch } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { listening, ownChild, runCommand as run, stopChild, untilServing } from './child-process.ts';
import { Attribute, Change, Client } from 'ldapts';
import { makeCertificates } from './slapd.ts';
import { Signal } from './wait.ts';

/**
 * SambaAd is a real Active Directory domain controller (Samba's, Debian's samba-ad-dc) serving only
 * LDAP on 127.0.0.1:389 and :636 (fixed ports, as a DC's are), with a certificate from a CA of the
 * test's own. It refuses simple binds without TLS, and answers the in-chain matching rule.
 */
export interface SambaAd {
  ldapUrl: string;
  ldapsUrl: string;
  ca: string;
  /** The domain's DN, such as DC=acme,DC=example. */
  domain: string;
  /** A read-only account to bind as (its user principal name), and its password. */
  bindDN: string;
  bindPassword: string;
  /** add creates entries as the domain's Administrator, in order. */
  add(entries: readonly AdEntry[]): Promise<void>;
  /** addMembers adds members to a group that exists (AD accepts only members that exist: a cycle of groups is closed this way). */
  addMembers(group: string, members: readonly string[]): Promise<void>;
  stop(): Promise<void>;
  start(): Promise<void>;
}

/** AdEntry is an entry to create: its DN and attributes (member, objectClass… as arrays). */
export interface AdEntry {
  dn: string;
  attributes: Record<string, string | string[]>;
}

const ADMIN_PASSWORD = 'Adm1n-Pw-4Tests!';

/**
 * startSambaAd provisions a domain (realm, e.g. ACME.EXAMPLE) in a temporary folder (samba-tool
 * domain provision, about 8 s), serves it with `samba -i -M single`, and creates a read-only bind
 * account. npm test installs samba; the ports 389 and 636 of 127.0.0.1 must be free.
 */
export async function startSambaAd(options: { realm: string }): Promise<SambaAd> {
  if ((await listening(389)) || (await listening(636)))
    throw new Error("cannot start Samba's AD DC: 127.0.0.1:389 or :636 is in use (an AD domain controller listens on fixed ports)");
  const dir = mkdtempSync(join(tmpdir(), 'smsauth-samba-'));
  const certs = await makeCertificates(dir);
  chmodSync(certs.key, 0o600);
  const realm = options.realm.toUpperCase();
  const domain = realm
    .split('.')
    .map((p) => `DC=${p.toLowerCase()}`)
    .join(',');
  const netbios = realm.split('.')[0]!;
  await run(
    'samba-tool',
    [
      'domain',
      'provision',
      '--server-role=dc',
      '--dns-backend=NONE',
      `--targetdir=${join(dir, 'dc')}`,
      `--realm=${realm}`,
      `--domain=${netbios}`,
      `--adminpass=${ADMIN_PASSWORD}`,
      '--option=interfaces=lo',
      '--option=bind interfaces only=yes',
      '--option=server services = ldap',
    ],
    dir,
  ).catch((err: Error) => {
    throw new Error(`cannot provision Samba's AD DC (${err.message}); npm test installs it: apt-get install -y samba samba-ad-dc samba-ad-provision winbind`);
  });
  const conf = join(dir, 'dc', 'etc', 'smb.conf');
  // Logs in the test's folder, and the test's certificate instead of Samba's self-made one.
  appendFileSync(
    conf,
    [
      '',
      '[global]',
      `\tlog file = ${join(dir, 'dc', 'log.%m')}`,
      '\ttls enabled = yes',
      `\ttls keyfile = ${certs.key}`,
      `\ttls certfile = ${certs.cert}`,
      `\ttls cafile = ${certs.ca}`,
      '',
    ].join('\n'),
  );

  let child: ChildProcess | undefined;
  const start = async (): Promise<void> => {
    if (child !== undefined && child.exitCode === null && child.signalCode === null) return; // running already
    child = spawn('samba', ['-i', '-M', 'single', '-s', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    ownChild(child);
    // Port 636 is asked again each time Samba says something or writes in its private folder: its
    // LDAP server creates its ldapi sockets there once its TCP ports listen.
    const said = new Signal();
    const watcher = watch(join(dir, 'dc', 'private'), { recursive: true }, () => said.fire());
    try {
      await untilServing(child, {
        name: 'samba',
        install: 'apt-get install -y samba samba-ad-dc',
        what: 'listen on 636',
        serves: () => listening(636),
        ms: 120_000,
        said,
      });
    } finally {
      watcher.close();
    }
  };
  await start();
  const ca = readFileSync(certs.ca, 'utf8');
  const ldapsUrl = 'ldaps://127.0.0.1:636';
  const asAdmin = async <T>(fn: (c: Client) => Promise<T>): Promise<T> => {
    const client = new Client({ url: ldapsUrl, tlsOptions: { ca }, timeout: 10_000, strictDN: false });
    try {
      await client.bind(`Administrator@${realm.toLowerCase()}`, ADMIN_PASSWORD);
      return await fn(client);
    } finally {
      await client.unbind().catch(() => undefined);
    }
  };
  const bindPassword = 'Reader-Pw-9x!';
  const readerDn = `CN=smsauth-reader,CN=Users,${domain}`;
  const stop = (): Promise<void> => stopChild(child);
  // A DC left running would hold its fixed ports for every later suite: stopped on any failure here.
  await asAdmin(async (c) => {
    await c.add(readerDn, {
      objectClass: ['top', 'person', 'organizationalPerson', 'user'],
      sAMAccountName: 'smsauth-reader',
      userPrincipalName: `smsauth-reader@${realm.toLowerCase()}`,
    });
    // A password is set over TLS only, as a quoted UTF-16LE string; then the account is enabled.
    await c.modify(
      readerDn,
      new Change({ operation: 'replace', modification: new Attribute({ type: 'unicodePwd', values: [Buffer.from(`"${bindPassword}"`, 'utf16le')] }) }),
    );
    await c.modify(readerDn, new Change({ operation: 'replace', modification: new Attribute({ type: 'userAccountControl', values: ['512'] }) }));
  }).catch(async (err: unknown) => {
    await stop();
    throw err;
  });
  return {
    ldapUrl: 'ldap://127.0.0.1:389',
    ldapsUrl,
    ca,
    domain,
    bindDN: `smsauth-reader@${realm.toLowerCase()}`,
    bindPassword,
    add: (entries) =>
      asAdmin(async (c) => {
        for (const e of entries) {
          await c.add(e.dn, e.attributes).catch((err: unknown) => {
            throw new Error(`cannot add ${e.dn} to the test domain: ${(err as Error).message}`);
          });
        }
      }),
    addMembers: (group, members) =>
      asAdmin(async (c) => {
        await c.modify(group, new Change({ operation: 'add', modification: new Attribute({ type: 'member', values: [...members] }) }));
      }),
    stop,
    start,
  };
}
