import type { ConnectionOptions } from 'node:tls';
import { isIP } from 'node:net';
import { Client, InvalidCredentialsError, ResultCodeError, type Entry } from 'ldapts';
import { escapeFilterValue, parseDn } from '../core/dn.ts';
import { DirectoryUnavailableError, healthOf, type Directory, type DirectoryHealth, type DirectoryUser } from './directory.ts';

/** LdapSettings are an LDAP directory's settings with its credentials resolved. */
export interface LdapSettings {
  /** ActiveDirectory finds nested groups with the in-chain matching rule; GenericLDAP walks groupMemberAttribute up. */
  flavor: 'ActiveDirectory' | 'GenericLDAP';
  /** Tried in order; the one that answered last is tried first next time. */
  urls: readonly string[];
  startTLS: boolean;
  /** PEM certificates to trust instead of the system's. */
  ca?: string;
  bindDN: string;
  bindPassword: string;
  baseDN: string;
  userAttribute: string;
  userFilter: string | null;
  mobileAttribute: string;
  groupMemberAttribute: string;
  /** The longest a lookup may take, connecting included. */
  timeoutMs: number;
}

/** On Active Directory, a user is an enabled person: not a group, a computer or a disabled account that shares the name attribute. */
export const AD_USER_FILTER = '(&(objectCategory=person)(objectClass=user)(!(userAccountControl:1.2.840.113556.1.4.803:=2)))';

/** LDAP result codes that say the server cannot answer now (busy, unavailable, over a limit): the next server is tried. */
const TRANSIENT_RESULTS = new Set([3, 11, 51, 52, 80]);

/** Active Directory's LDAP_MATCHING_RULE_IN_CHAIN: membership through any depth of nesting, decided by the server. */
const IN_CHAIN = '1.2.840.113556.1.4.1941';
/** How far up GenericLDAP's nested groups are walked, and how many groups a user may collect. */
const MAX_NESTING = 10;
const MAX_GROUPS = 1000;

const TLS_FAILURES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'ERR_TLS_CERT_ALTNAME_INVALID',
  'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'UNABLE_TO_GET_ISSUER_CERT', 'CERT_UNTRUSTED', 'CERT_SIGNATURE_FAILURE',
]);

/**
 * createLdapDirectory reads users from Active Directory or an LDAPv3 server with ldapts: one bound
 * connection, shared by concurrent lookups, made again (on the next server) when it breaks. A user
 * is found by userAttribute (the name escaped per RFC 4515) under baseDN; their groups, nested ones
 * included, come from the server's in-chain rule on Active Directory, or by walking
 * groupMemberAttribute up on GenericLDAP (cycles stopped, depth and count bounded). A name that
 * matches no entry, or more than one, is no user; it costs the same searches as a user.
 */
export function createLdapDirectory(settings: LdapSettings): Directory {
  let preferred = 0;
  let current: { url: string; client: Promise<Client> } | undefined;
  let closed = false;
  const root = directoryRoot(settings.baseDN);
  const userFilter = settings.flavor === 'ActiveDirectory' ? `${AD_USER_FILTER}${settings.userFilter ?? ''}` : (settings.userFilter ?? '');

  const connect = async (url: string): Promise<Client> => {
    const { hostname } = new URL(url);
    const tlsOptions: ConnectionOptions = {
      minVersion: 'TLSv1.2',
      ...(settings.ca !== undefined ? { ca: settings.ca } : {}),
      ...(isIP(hostname) === 0 ? { servername: hostname } : {}),
    };
    const secure = url.toLowerCase().startsWith('ldaps://');
    // tlsOptions go to the constructor for ldaps:// only: given for ldap://, ldapts breaks the StartTLS upgrade.
    const client = new Client({ url, timeout: settings.timeoutMs, connectTimeout: settings.timeoutMs, strictDN: false, ...(secure ? { tlsOptions } : {}) });
    try {
      if (!secure && settings.startTLS) await client.startTLS(tlsOptions);
      await client.bind(settings.bindDN, settings.bindPassword);
      return client;
    } catch (err) {
      await client.unbind().catch(() => undefined);
      throw err;
    }
  };

  // Runs an operation on a bound connection, trying the servers in order from the one that answered last.
  const withClient = async <T>(operation: (client: Client) => Promise<T>): Promise<T> => {
    if (closed) throw new DirectoryUnavailableError('Unreachable', 'the directory connection is closed', { detail: 'closed' });
    let last: DirectoryUnavailableError | undefined;
    for (let i = 0; i < settings.urls.length; i++) {
      const index = (preferred + i) % settings.urls.length;
      const url = settings.urls[index]!;
      if (current?.url !== url) {
        void current?.client.then((c) => c.unbind()).catch(() => undefined);
        current = { url, client: connect(url) };
      }
      let mine = current;
      try {
        let client = await mine.client;
        // A connection the server dropped while idle would come back unbound (ldapts reconnects
        // by itself, anonymously): made again, bound, instead.
        if (!client.isConnected || !client.isBound) {
          void client.unbind().catch(() => undefined);
          current = mine = { url, client: connect(url) };
          client = await mine.client;
        }
        if (closed) {
          void client.unbind().catch(() => undefined);
          throw new DirectoryUnavailableError('Unreachable', 'the directory connection is closed', { detail: 'closed' });
        }
        const result = await operation(client);
        preferred = index;
        return result;
      } catch (err) {
        const failure = classify(err, url);
        // A broken connection is made again next time; a refusal of the credentials is final for all servers.
        if (current === mine) current = undefined;
        void mine.client.then((c) => c.unbind()).catch(() => undefined);
        if (failure.problem === 'CredentialsRejected' || failure.problem === 'SearchFailed') throw failure;
        last = failure;
      }
    }
    throw last ?? new DirectoryUnavailableError('Unreachable', 'no LDAP server to ask');
  };

  const groupsOf = async (client: Client, dn: string): Promise<string[]> => {
    if (settings.flavor === 'ActiveDirectory') {
      const { searchEntries } = await client.search(root, { scope: 'sub', filter: `(member:${IN_CHAIN}:=${escapeFilterValue(dn)})`, attributes: ['1.1'], sizeLimit: MAX_GROUPS });
      return searchEntries.map((e) => e.dn);
    }
    const attribute = settings.groupMemberAttribute;
    const seen = new Set<string>();
    const groups: string[] = [];
    let frontier = [dn];
    for (let depth = 0; depth < MAX_NESTING && frontier.length > 0 && groups.length < MAX_GROUPS; depth++) {
      const filter = `(|${frontier.map((m) => `(${attribute}=${escapeFilterValue(m)})`).join('')})`;
      const { searchEntries } = await client.search(root, { scope: 'sub', filter, attributes: ['1.1'], sizeLimit: MAX_GROUPS });
      frontier = [];
      for (const e of searchEntries) {
        const key = e.dn.toLowerCase();
        if (seen.has(key)) continue;
        seen.add(key);
        groups.push(e.dn);
        frontier.push(e.dn);
      }
    }
    return groups;
  };

  return {
    lookup(name: string): Promise<DirectoryUser | undefined> {
      return withClient(async (client) => {
        const filter = `(&(${settings.userAttribute}=${escapeFilterValue(name)})${userFilter})`;
        const { searchEntries } = await client.search(settings.baseDN, { scope: 'sub', filter, attributes: [settings.mobileAttribute], sizeLimit: 2 });
        const entry = searchEntries.length === 1 ? searchEntries[0]! : undefined;
        // The same searches whether or not the name is a user: the answer's timing tells nothing.
        const groups = await groupsOf(client, entry?.dn ?? `${settings.userAttribute}=${escapeDnValue(name)},${settings.baseDN}`);
        if (entry === undefined) return undefined;
        return { id: entry.dn, groups, container: entry.dn, mobile: firstString(entry, settings.mobileAttribute) };
      });
    },
    async check(): Promise<DirectoryHealth> {
      try {
        const server = await withClient(async (client) => {
          await client.search(settings.baseDN, { scope: 'base', filter: '(objectClass=*)', attributes: ['1.1'] });
          return current?.url;
        });
        return { ok: true, ...(server !== undefined ? { server } : {}) };
      } catch (err) {
        return healthOf(classify(err, settings.urls[0] ?? ''));
      }
    },
    async close(): Promise<void> {
      closed = true;
      const c = current;
      current = undefined;
      if (c !== undefined) await c.client.then((client) => client.unbind()).catch(() => undefined);
    },
  };
}

/** classify says why an LDAP operation failed, in words that never quote a password. */
function classify(err: unknown, server: string): DirectoryUnavailableError {
  if (err instanceof DirectoryUnavailableError) return err;
  const at = { server };
  if (err instanceof InvalidCredentialsError) return new DirectoryUnavailableError('CredentialsRejected', `${server} refused the bind credentials (LDAP 49)`, { ...at, detail: 'LDAP 49' }, { cause: err });
  if (err instanceof ResultCodeError && TRANSIENT_RESULTS.has(err.code)) return new DirectoryUnavailableError('Unreachable', `${server} cannot answer now (LDAP ${err.code})`, { ...at, detail: `LDAP ${err.code}` }, { cause: err });
  if (err instanceof ResultCodeError) return new DirectoryUnavailableError('SearchFailed', `${server} refused the search (LDAP ${err.code})`, { ...at, detail: `LDAP ${err.code}` }, { cause: err });
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && TLS_FAILURES.has(code)) return new DirectoryUnavailableError('CertificateUntrusted', `${server}'s certificate is not trusted (${code})`, { ...at, detail: code }, { cause: err });
  const detail = typeof code === 'string' ? code : (err as Error).name === 'TimeoutError' ? 'timeout' : (err as Error).name;
  return new DirectoryUnavailableError('Unreachable', `${server} did not answer (${detail})`, { ...at, detail }, { cause: err });
}

/** directoryRoot is where groups are searched: the domain (the DC= RDNs that end baseDN), else baseDN's last RDN. */
export function directoryRoot(baseDN: string): string {
  const parts = splitDn(baseDN);
  const dc = [];
  for (let i = parts.length - 1; i >= 0 && /^\s*dc\s*=/i.test(parts[i]!); i--) dc.unshift(parts[i]!);
  return (dc.length > 0 ? dc : parts.slice(-1)).join(',');
}

// The RDNs of a DN as written (escapes kept), for rebuilding a part of it.
function splitDn(dn: string): string[] {
  if (parseDn(dn) === undefined) return [dn];
  const out: string[] = [];
  let current = '';
  for (let i = 0; i < dn.length; i++) {
    const c = dn[i]!;
    if (c === '\\') {
      current += c + (dn[i + 1] ?? '');
      i++;
    } else if (c === ',') {
      out.push(current.trim());
      current = '';
    } else {
      current += c;
    }
  }
  out.push(current.trim());
  return out;
}

function escapeDnValue(value: string): string {
  return value.replace(/[\\,+"<>;=#]/g, (c) => `\\${c}`);
}

function firstString(entry: Entry, attribute: string): string | null {
  const key = Object.keys(entry).find((k) => k.toLowerCase() === attribute.toLowerCase());
  const v = key === undefined ? undefined : entry[key];
  const first = Array.isArray(v) ? v[0] : v;
  if (first === undefined) return null;
  const text = Buffer.isBuffer(first) ? first.toString('utf8') : first;
  return text.trim() === '' ? null : text.trim();
}
