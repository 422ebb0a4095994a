import type { ConnectionOptions } from 'node:tls';
import { isIP } from 'node:net';
import { Client, InvalidCredentialsError, InvalidDNSyntaxError, NoSuchObjectError, ResultCodeError, SizeLimitExceededError, type Entry } from 'ldapts';
import { canonicalDn, escapeFilterValue, isWithin, parseDn, sameDn } from '../core/dn.ts';
import {
  DirectoryUnavailableError,
  healthOf,
  memberListOf,
  type Directory,
  type DirectoryHealth,
  type DirectoryUser,
  type MemberList,
  type MemberScope,
} from './directory.ts';

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
  /** How many entries a page of a members listing holds (500 unless set; tests set fewer). */
  pageSize?: number;
}

/** On Active Directory, a user is an enabled person: not a group, a computer or a disabled account that shares the name attribute. */
export const AD_USER_FILTER = '(&(objectCategory=person)(objectClass=user)(!(userAccountControl:1.2.840.113556.1.4.803:=2)))';

/** LDAP result codes that say the server cannot answer now (busy, unavailable, over a limit): the next server is tried. */
const TRANSIENT_RESULTS = new Set([3, 11, 51, 52, 80]);

/** Active Directory's LDAP_MATCHING_RULE_IN_CHAIN: membership through any depth of nesting, decided by the server. */
const IN_CHAIN = '1.2.840.113556.1.4.1941';
/** How far GenericLDAP's nested groups are walked (up from a user, down from a role), and how many groups one walk may meet. */
const MAX_NESTING = 10;
const MAX_GROUPS = 1000;
/** What a members listing asks a page to hold, unless the settings say. */
const PAGE_SIZE = 500;
/** How many of a GenericLDAP group's member entries are read at once. */
const READ_BATCH = 32;

const TLS_FAILURES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_GET_ISSUER_CERT',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
]);

/**
 * createLdapDirectory reads users from Active Directory or an LDAPv3 server with ldapts: one bound
 * connection, shared by concurrent lookups, made again (on the next server) when it breaks. A user
 * is found by userAttribute (the name escaped per RFC 4515) under baseDN; their groups, nested ones
 * included, come from the server's in-chain rule on Active Directory, or by walking
 * groupMemberAttribute up on GenericLDAP (cycles stopped, depth and count bounded). A name that
 * matches no entry, or more than one, is no user; it costs the same searches as a user. A role's
 * members are listed with paged searches (one at a time per connection, as OpenLDAP keeps one paged
 * search per connection), and GenericLDAP's groups by reading their members down, bounded.
 */
export function createLdapDirectory(settings: LdapSettings): Directory {
  const ctx = ldapContext(settings);
  return {
    members(scope: MemberScope, options: { limit: number }): Promise<MemberList> {
      return listMembersInTurn(ctx, scope, options.limit);
    },
    lookup(name: string): Promise<DirectoryUser | undefined> {
      return withClient(ctx, (client) => lookupUser(ctx, client, name));
    },
    check(): Promise<DirectoryHealth> {
      return checkServer(ctx);
    },
    close(): Promise<void> {
      return closeConnection(ctx);
    },
  };
}

/** LdapContext is what one LDAP directory's operations share: its settings, the filters made from them, and its one connection. */
interface LdapContext {
  readonly settings: LdapSettings;
  /** Where groups are searched (directoryRoot of baseDN). */
  readonly root: string;
  /** The settings' user filter, after Active Directory's own (AD_USER_FILTER) on Active Directory. */
  readonly userFilter: string;
  /** Any user: an entry with userAttribute that passes userFilter. */
  readonly usersFilter: string;
  /** A group (it has members) or a user: what a member value may name. */
  readonly memberFilter: string;
  readonly pageSize: number;
  /** The index in settings.urls of the server that answered last: tried first next time. */
  preferred: number;
  current: { url: string; client: Promise<Client> } | undefined;
  closed: boolean;
  /** Paged searches wait for each other: a second on the connection would end the first's (OpenLDAP). */
  listing: Promise<unknown>;
}

/** ldapContext derives a directory's filters from its settings, with no connection made yet. */
function ldapContext(settings: LdapSettings): LdapContext {
  const userFilter = settings.flavor === 'ActiveDirectory' ? `${AD_USER_FILTER}${settings.userFilter ?? ''}` : (settings.userFilter ?? '');
  const usersFilter = `(&(${settings.userAttribute}=*)${userFilter})`;
  return {
    settings,
    root: directoryRoot(settings.baseDN),
    userFilter,
    usersFilter,
    memberFilter: `(|(${settings.groupMemberAttribute}=*)${usersFilter})`,
    pageSize: settings.pageSize ?? PAGE_SIZE,
    preferred: 0,
    current: undefined,
    closed: false,
    listing: Promise.resolve(),
  };
}

/** connect opens a connection to url, upgraded with StartTLS if the settings say, and bound with the settings' credentials. */
async function connect(settings: LdapSettings, url: string): Promise<Client> {
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
}

/** withClient runs an operation on a bound connection, trying the servers in order from the one that answered last. */
async function withClient<T>(ctx: LdapContext, operation: (client: Client) => Promise<T>): Promise<T> {
  const { settings } = ctx;
  if (ctx.closed) throw new DirectoryUnavailableError('Unreachable', 'the directory connection is closed', { detail: 'closed' });
  let last: DirectoryUnavailableError | undefined;
  for (let i = 0; i < settings.urls.length; i++) {
    const index = (ctx.preferred + i) % settings.urls.length;
    const url = settings.urls[index]!;
    if (ctx.current?.url !== url) {
      void ctx.current?.client.then((c) => c.unbind()).catch(() => undefined);
      ctx.current = { url, client: connect(settings, url) };
    }
    let mine = ctx.current;
    try {
      let client = await mine.client;
      // A connection the server dropped while idle would come back unbound (ldapts reconnects
      // by itself, anonymously): made again, bound, instead.
      if (!client.isConnected || !client.isBound) {
        void client.unbind().catch(() => undefined);
        ctx.current = mine = { url, client: connect(settings, url) };
        client = await mine.client;
      }
      if (ctx.closed) {
        void client.unbind().catch(() => undefined);
        throw new DirectoryUnavailableError('Unreachable', 'the directory connection is closed', { detail: 'closed' });
      }
      const result = await operation(client);
      ctx.preferred = index;
      return result;
    } catch (err) {
      const failure = classify(err, url);
      // A broken connection is made again next time; a refusal of the credentials is final for all servers.
      if (ctx.current === mine) ctx.current = undefined;
      void mine.client.then((c) => c.unbind()).catch(() => undefined);
      if (failure.problem === 'CredentialsRejected' || failure.problem === 'SearchFailed') throw failure;
      last = failure;
    }
  }
  throw last ?? new DirectoryUnavailableError('Unreachable', 'no LDAP server to ask');
}

/** lookupUser finds the one entry named name, its groups and its mobile number; undefined when no entry, or more than one, has the name. */
async function lookupUser(ctx: LdapContext, client: Client, name: string): Promise<DirectoryUser | undefined> {
  const { settings } = ctx;
  const filter = `(&(${settings.userAttribute}=${escapeFilterValue(name)})${ctx.userFilter})`;
  const { searchEntries } = await client.search(settings.baseDN, { scope: 'sub', filter, attributes: [settings.mobileAttribute], sizeLimit: 2 });
  const entry = searchEntries.length === 1 ? searchEntries[0]! : undefined;
  // The same searches whether or not the name is a user: the answer's timing tells nothing.
  const groups = await groupsOf(ctx, client, entry?.dn ?? `${settings.userAttribute}=${escapeDnValue(name)},${settings.baseDN}`);
  if (entry === undefined) return undefined;
  return { id: entry.dn, groups, container: entry.dn, mobile: firstString(entry, settings.mobileAttribute) };
}

/** groupsOf lists the groups dn is in, nested ones included: by the in-chain rule on Active Directory, by walking groupMemberAttribute up on GenericLDAP. */
async function groupsOf(ctx: LdapContext, client: Client, dn: string): Promise<string[]> {
  const { settings, root } = ctx;
  if (settings.flavor === 'ActiveDirectory') {
    const { searchEntries } = await client.search(root, {
      scope: 'sub',
      filter: `(member:${IN_CHAIN}:=${escapeFilterValue(dn)})`,
      attributes: ['1.1'],
      sizeLimit: MAX_GROUPS,
    });
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
}

/** listMembersInTurn lists a role's members once the listings asked for before it are done. */
function listMembersInTurn(ctx: LdapContext, scope: MemberScope, limit: number): Promise<MemberList> {
  const run = ctx.listing.then(() => withClient(ctx, (client) => listMembers(ctx, client, scope, limit)));
  ctx.listing = run.catch(() => undefined);
  return run;
}

/** listMembers lists the users in a role's groups (nested ones included) and under its containers, stopping once past limit. */
async function listMembers(ctx: LdapContext, client: Client, scope: MemberScope, limit: number): Promise<MemberList> {
  const { settings, root } = ctx;
  const names = new Set<string>();
  // Groups outside the root are none a lookup finds; anything not a DN names nothing here.
  const groups = scope.groups.filter((g) => isWithin(g, root));
  let cut = false;
  if (groups.length > 0) {
    if (settings.flavor === 'ActiveDirectory') {
      const inGroups = `(|${groups.map((g) => `(memberOf:${IN_CHAIN}:=${escapeFilterValue(g)})`).join('')})`;
      cut = await searchUsers(ctx, client, settings.baseDN, inGroups, names, limit);
    } else {
      cut = await walkGroups(ctx, client, groups, names, limit);
    }
  }
  for (const base of searchBases(scope.containers, settings.baseDN)) {
    if (cut || names.size > limit) break;
    cut = await searchUsers(ctx, client, base, '', names, limit);
  }
  return memberListOf(names, limit, cut);
}

/**
 * searchUsers adds the users a paged search finds under base (with a filter of its own, if any) to
 * names, stopping once past limit; true when the server's size limit ended it first (OpenLDAP counts
 * paged results against it unless the bind account's size.prtotal says otherwise).
 */
async function searchUsers(ctx: LdapContext, client: Client, base: string, filter: string, names: Set<string>, limit: number): Promise<boolean> {
  const { settings } = ctx;
  const paged = client.searchPaginated(base, {
    scope: 'sub',
    filter: `(&${ctx.usersFilter}${filter})`,
    attributes: [settings.userAttribute],
    paged: { pageSize: ctx.pageSize },
  });
  try {
    for await (const page of paged) {
      for (const entry of page.searchEntries) {
        const name = firstString(entry, settings.userAttribute);
        if (name !== null) names.add(name.toLowerCase());
        if (names.size > limit) return false;
      }
    }
  } catch (err) {
    if (err instanceof SizeLimitExceededError) return true;
    throw err;
  }
  return false;
}

/**
 * walkGroups walks GenericLDAP's groups down from the role's, as lookup walks them up: each group's
 * member values are read, a group among them is walked in turn (cycles stopped, MAX_NESTING deep, at
 * most MAX_GROUPS groups), a user found under baseDN counts. Reads are bounded (twice the limit,
 * besides the groups); true when a bound stopped the walk before the end.
 */
async function walkGroups(ctx: LdapContext, client: Client, groups: readonly string[], names: Set<string>, limit: number): Promise<boolean> {
  const { settings, root } = ctx;
  const seen = new Set<string>();
  // True the first time an entry is met, its DN compared as a name; never for what is no DN.
  const isNew = (dn: string): boolean => {
    const key = canonicalDn(dn);
    if (key === undefined || seen.has(key)) return false;
    seen.add(key);
    return true;
  };
  let frontier = groups.filter(isNew);
  let walked = 0;
  let reads = 0;
  for (let depth = 0; depth <= MAX_NESTING && frontier.length > 0; depth++) {
    const next: string[] = [];
    for (let i = 0; i < frontier.length; i += READ_BATCH) {
      const batch = frontier.slice(i, i + READ_BATCH);
      reads += batch.length;
      if (reads > 2 * (limit + 1) + MAX_GROUPS) return true;
      for (const entry of await Promise.all(batch.map((dn) => readMember(ctx, client, dn)))) {
        if (entry === undefined) continue;
        const members = stringsOf(entry, settings.groupMemberAttribute);
        if (members.length > 0) {
          if (++walked > MAX_GROUPS) return true;
          // Only what lookup could find: users under baseDN, groups under the root it searches.
          next.push(...members.filter((m) => isWithin(m, root) && isNew(m)));
        } else if (depth > 0 && isWithin(entry.dn, settings.baseDN)) {
          const name = firstString(entry, settings.userAttribute);
          if (name !== null) names.add(name.toLowerCase());
          if (names.size > limit) return false;
        }
      }
    }
    frontier = next;
  }
  return false;
}

/** readMember reads one member value's entry: a group (it has members) or a user (it passes the user filter); undefined for anything else. */
async function readMember(ctx: LdapContext, client: Client, dn: string): Promise<Entry | undefined> {
  const { settings } = ctx;
  try {
    return (await client.search(dn, { scope: 'base', filter: ctx.memberFilter, attributes: [settings.userAttribute, settings.groupMemberAttribute] }))
      .searchEntries[0];
  } catch (err) {
    // A member value that names no entry (a user since deleted) or is no DN names nobody.
    if (err instanceof NoSuchObjectError || err instanceof InvalidDNSyntaxError) return undefined;
    throw err;
  }
}

/** checkServer reads baseDN's entry on a bound connection: healthy, with the server that answered, or why not. */
async function checkServer(ctx: LdapContext): Promise<DirectoryHealth> {
  const { settings } = ctx;
  try {
    const server = await withClient(ctx, async (client) => {
      await client.search(settings.baseDN, { scope: 'base', filter: '(objectClass=*)', attributes: ['1.1'] });
      return ctx.current?.url;
    });
    return { ok: true, ...(server !== undefined ? { server } : {}) };
  } catch (err) {
    return healthOf(classify(err, settings.urls[0] ?? ''));
  }
}

/** closeConnection unbinds the connection, if there is one, and refuses every operation after. */
async function closeConnection(ctx: LdapContext): Promise<void> {
  ctx.closed = true;
  const c = ctx.current;
  ctx.current = undefined;
  if (c !== undefined) await c.client.then((client) => client.unbind()).catch(() => undefined);
}

/** classify says why an LDAP operation failed, in words that never quote a password. */
function classify(err: unknown, server: string): DirectoryUnavailableError {
  if (err instanceof DirectoryUnavailableError) return err;
  const at = { server };
  if (err instanceof InvalidCredentialsError)
    return new DirectoryUnavailableError(
      'CredentialsRejected',
      `${server} refused the bind credentials (LDAP 49)`,
      { ...at, detail: 'LDAP 49' },
      { cause: err },
    );
  if (err instanceof ResultCodeError && TRANSIENT_RESULTS.has(err.code))
    return new DirectoryUnavailableError(
      'Unreachable',
      `${server} cannot answer now (LDAP ${err.code})`,
      { ...at, detail: `LDAP ${err.code}` },
      { cause: err },
    );
  if (err instanceof ResultCodeError)
    return new DirectoryUnavailableError(
      'SearchFailed',
      `${server} refused the search (LDAP ${err.code})`,
      { ...at, detail: `LDAP ${err.code}` },
      { cause: err },
    );
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && TLS_FAILURES.has(code))
    return new DirectoryUnavailableError('CertificateUntrusted', `${server}'s certificate is not trusted (${code})`, { ...at, detail: code }, { cause: err });
  const detail = typeof code === 'string' ? code : (err as Error).name === 'TimeoutError' ? 'timeout' : (err as Error).name;
  return new DirectoryUnavailableError('Unreachable', `${server} did not answer (${detail})`, { ...at, detail }, { cause: err });
}

/**
 * searchBases are where a role's containers hold users a lookup finds: a container under baseDN
 * itself, baseDN for a container above it, nothing for one elsewhere (or not a DN); none below another.
 */
export function searchBases(containers: readonly string[], baseDN: string): string[] {
  const bases: string[] = [];
  for (const c of containers) {
    const base = isWithin(c, baseDN) ? c : isWithin(baseDN, c) ? baseDN : undefined;
    if (base !== undefined && !bases.some((b) => sameDn(b, base))) bases.push(base);
  }
  return bases.filter((b) => !bases.some((other) => other !== b && isWithin(b, other)));
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
  return stringsOf(entry, attribute)[0] ?? null;
}

// An attribute's values as text, trimmed, empty ones left out; the attribute named without case.
function stringsOf(entry: Entry, attribute: string): string[] {
  const key = Object.keys(entry).find((k) => k.toLowerCase() === attribute.toLowerCase());
  const v = key === undefined ? undefined : entry[key];
  const values = v === undefined ? [] : Array.isArray(v) ? v : [v];
  return values.map((x) => (Buffer.isBuffer(x) ? x.toString('utf8') : x).trim()).filter((x) => x !== '');
}
