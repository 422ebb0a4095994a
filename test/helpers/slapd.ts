import type { LdapSettings } from '../../controller/directories/ldap-directory.ts';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { listening, ownChild, runCommand as run, stopChild, untilServing } from './child-process.ts';
import { freePort } from './redis-server.ts';

/** Slapd is a real OpenLDAP server (Debian's slapd) on free loopback ports, with a certificate from a CA of the test's own. */
export interface Slapd {
  /** ldap://127.0.0.1:PORT (StartTLS offered). */
  ldapUrl: string;
  /** ldaps://127.0.0.1:PORT. */
  ldapsUrl: string;
  /** The CA that signed the server's certificate (PEM). */
  ca: string;
  suffix: string;
  /** A read-only account to bind as, and its password. */
  bindDN: string;
  bindPassword: string;
  stop(): Promise<void>;
  /** start starts it again on the same ports, with the same data (nothing when it runs). */
  start(): Promise<void>;
}

/** makeCertificates writes a CA and a server certificate for 127.0.0.1 and localhost (openssl, P-256) into dir. */
export async function makeCertificates(dir: string): Promise<{ ca: string; cert: string; key: string }> {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await run('openssl', ['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=smsauth test CA'], dir);
  await run('openssl', ['req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1'], dir);
  writeFileSync(join(dir, 'san.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  await run(
    'openssl',
    ['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'san.cnf'],
    dir,
  );
  return { ca: join(dir, 'ca.pem'), cert: join(dir, 'server.pem'), key: join(dir, 'server.key') };
}

/**
 * startSlapd starts slapd (mdb backend, the core, cosine, inetorgperson and nis schemas) with the
 * entries of an LDIF under suffix, loaded with slapadd first. The bind account `cn=reader,SUFFIX`
 * may read everything; userPassword is readable by nobody.
 */
export async function startSlapd(options: {
  suffix: string;
  ldif: string;
  /** Lifts the size limits for the bind account (paged listings of any length, as a directory for a large role is set up). */ sizeLimit?: 'unlimited';
}): Promise<Slapd> {
  const dir = mkdtempSync(join(tmpdir(), 'smsauth-slapd-'));
  mkdirSync(join(dir, 'db'));
  const certs = await makeCertificates(dir);
  const [ldapPort, ldapsPort] = [await freePort(), await freePort()];
  const bindDN = `cn=reader,${options.suffix}`;
  const bindPassword = 'reader-Pw-7Qz';
  writeFileSync(
    join(dir, 'slapd.conf'),
    [
      'include /etc/ldap/schema/core.schema',
      'include /etc/ldap/schema/cosine.schema',
      'include /etc/ldap/schema/inetorgperson.schema',
      'include /etc/ldap/schema/nis.schema',
      `pidfile ${join(dir, 'slapd.pid')}`,
      'modulepath /usr/lib/ldap',
      'moduleload back_mdb',
      `TLSCACertificateFile ${certs.ca}`,
      `TLSCertificateFile ${certs.cert}`,
      `TLSCertificateKeyFile ${certs.key}`,
      'database mdb',
      'maxsize 268435456',
      `suffix "${options.suffix}"`,
      `rootdn "cn=admin,${options.suffix}"`,
      `directory ${join(dir, 'db')}`,
      // As a real directory is set up: the attributes looked up by equality are indexed.
      'index objectClass,uid,member eq',
      'access to attrs=userPassword by anonymous auth by * none',
      `access to * by dn.exact="${bindDN}" read by * none`,
      ...(options.sizeLimit === 'unlimited' ? [`limits dn.exact="${bindDN}" size=unlimited size.prtotal=unlimited`] : []),
      '',
    ].join('\n'),
  );
  const reader = `dn: ${bindDN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: reader\nuserPassword: ${bindPassword}\n`;
  writeFileSync(join(dir, 'data.ldif'), `${options.ldif.trim()}\n\n${reader}`);
  await run('slapadd', ['-f', join(dir, 'slapd.conf'), '-l', join(dir, 'data.ldif')], dir);

  let child: ChildProcess | undefined;
  const start = async (): Promise<void> => {
    if (child !== undefined && child.exitCode === null && child.signalCode === null) return; // running already
    // Debug levels none and conns (0x8000 | 0x8): slapd prints `slapd starting`, then each listener
    // as its daemon thread adds it after listen(), and each connection's activity; nothing per request.
    child = spawn('slapd', ['-f', join(dir, 'slapd.conf'), '-h', `ldap://127.0.0.1:${ldapPort}/ ldaps://127.0.0.1:${ldapsPort}/`, '-d', String(0x8000 | 0x8)], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    ownChild(child);
    // The ports are asked each time slapd says something.
    await untilServing(child, {
      name: 'slapd',
      install: 'apt-get install -y slapd',
      what: `listen on ${ldapPort} and ${ldapsPort}`,
      serves: async () => (await listening(ldapPort)) && (await listening(ldapsPort)),
      ms: 60_000,
    });
  };
  await start();
  return {
    ldapUrl: `ldap://127.0.0.1:${ldapPort}`,
    ldapsUrl: `ldaps://127.0.0.1:${ldapsPort}`,
    ca: readFileSync(certs.ca, 'utf8'),
    suffix: options.suffix,
    bindDN,
    bindPassword,
    stop: () => stopChild(child),
    start,
  };
}

/** ldapSettingsOf are the settings smsauth's LDAP directory takes to read this slapd (GenericLDAP, users by uid under baseDN, nested groups by member); `over` changes any. */
export function ldapSettingsOf(slapd: Slapd, baseDN: string, over: Partial<LdapSettings> = {}): LdapSettings {
  return {
    flavor: 'GenericLDAP',
    urls: [slapd.ldapsUrl],
    startTLS: false,
    ca: slapd.ca,
    bindDN: slapd.bindDN,
    bindPassword: slapd.bindPassword,
    baseDN,
    userAttribute: 'uid',
    userFilter: null,
    mobileAttribute: 'mobile',
    groupMemberAttribute: 'member',
    timeoutMs: 2000,
    ...over,
  };
}
