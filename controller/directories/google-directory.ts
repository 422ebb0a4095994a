import { admin, type admin_directory_v1 } from '@googleapis/admin';
import { JWT } from 'google-auth-library';
import { retryAfterMs } from '../core/retry-after.ts';
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

/** GoogleSettings are a Google Workspace directory's settings with the service account key resolved. */
export interface GoogleSettings {
  /** The service account's JSON key (client_email, private_key, token_uri). */
  serviceAccountKey: string;
  /** The administrator the service account acts as (domain-wide delegation). */
  adminSubject: string;
  customer: string;
  /** The Admin SDK's root. */
  endpoint: string;
  timeoutMs: number;
}

const GOOGLE_TOKEN_URL = 'https://oauth2.googleapis.com/token';
const EMAIL = /^[^@\s/?#]+@[^@\s/?#]+$/;
const SCOPES = ['https://www.googleapis.com/auth/admin.directory.user.readonly', 'https://www.googleapis.com/auth/admin.directory.group.readonly'];
/** How far up nested groups are followed, and how many groups a user may collect. */
const MAX_NESTING = 10;
const MAX_GROUPS = 1000;

interface ServiceAccountKey {
  client_email: string;
  private_key: string;
  private_key_id?: string;
  token_uri?: string;
}

/** GoogleKeyError is a service account key that is not one. */
export class GoogleKeyError extends Error {
  override readonly name = 'GoogleKeyError';
  readonly code = 'ERR_GOOGLE_KEY';
}

/**
 * createGoogleDirectory reads users from Google Workspace through the Admin SDK Directory API
 * (@googleapis/admin), as a service account acting for adminSubject: a user by userKey (primary
 * email, alias or id), their org unit path as container, their mobile phone, and their groups by
 * email, nested ones followed (groups.list by member, cycles stopped, depth and count bounded). A
 * role's users come from members.list (derived memberships included) and users.list by org unit
 * path (the unit and those below it), paged. A suspended user is no user. Requests are not retried
 * (the caller answers 503 at once), and the key's token_uri is honoured (the library would always
 * ask Google's).
 */
export function createGoogleDirectory(settings: GoogleSettings): Directory {
  const auth = serviceAccountAuth(settings);
  const api = admin({ version: 'directory_v1', auth, rootUrl: settings.endpoint.replace(/\/?$/, '/'), retry: false, timeout: settings.timeoutMs });
  const ctx: GoogleContext = { api, customer: settings.customer, where: new URL(settings.endpoint).origin };
  return {
    lookup(name: string): Promise<DirectoryUser | undefined> {
      return lookupUser(ctx, name);
    },
    members(scope: MemberScope, options: { limit: number }): Promise<MemberList> {
      return listMembers(ctx, scope, options.limit);
    },
    check(): Promise<DirectoryHealth> {
      return checkApi(ctx);
    },
    close(): Promise<void> {
      return Promise.resolve();
    },
  };
}

/** GoogleContext is what one Google directory's operations share: the Directory API client, the customer, and the endpoint's origin to name in errors. */
interface GoogleContext {
  readonly api: admin_directory_v1.Admin;
  readonly customer: string;
  readonly where: string;
}

/** serviceAccountAuth signs in as the settings' service account acting for adminSubject, not retrying, its token asked of the key's token_uri. */
function serviceAccountAuth(settings: GoogleSettings): JWT {
  const key = parseKey(settings.serviceAccountKey);
  const auth = new JWT({
    email: key.client_email,
    key: key.private_key,
    ...(key.private_key_id !== undefined ? { keyId: key.private_key_id } : {}),
    subject: settings.adminSubject,
    scopes: SCOPES,
    transporterOptions: { timeout: settings.timeoutMs, retryConfig: { retry: 0, noResponseRetries: 0 } },
  });
  const tokenUri = key.token_uri ?? GOOGLE_TOKEN_URL;
  if (tokenUri !== GOOGLE_TOKEN_URL) {
    auth.transporter.interceptors.request.add({
      resolved: (config) => {
        if (String(config.url) === GOOGLE_TOKEN_URL) config.url = new URL(tokenUri);
        return Promise.resolve(config);
      },
    });
  }
  return auth;
}

/** lookupUser finds the active user whose primary email is name, with their org unit, mobile phone and groups; undefined for no such user of ours. */
async function lookupUser(ctx: GoogleContext, name: string): Promise<DirectoryUser | undefined> {
  // A user is named by their primary email: not by an alias or an id (each would be another
  // user to the verifier), nor by a path segment that would reach another resource.
  if (!EMAIL.test(name)) return undefined;
  let user: admin_directory_v1.Schema$User;
  try {
    user = (await ctx.api.users.get({ userKey: name, fields: 'primaryEmail,orgUnitPath,phones,suspended' })).data;
  } catch (err) {
    // 404: no such user; 400, 403 on this user (another domain, a malformed key): none of ours.
    const status = httpFailure(err)?.status;
    if ((status === 404 || status === 400 || status === 403) && !isTokenRequest(err as HttpFailure)) return undefined;
    throw classify(err, ctx.where);
  }
  if (user.suspended === true || typeof user.primaryEmail !== 'string' || user.primaryEmail.toLowerCase() !== name.toLowerCase()) return undefined;
  let groups: string[];
  try {
    groups = await groupsOf(ctx.api, user.primaryEmail);
  } catch (err) {
    throw classify(err, ctx.where);
  }
  const phones = Array.isArray(user.phones) ? (user.phones as { type?: unknown; value?: unknown }[]) : [];
  const mobile = phones.find((p) => p.type === 'mobile' && typeof p.value === 'string')?.value as string | undefined;
  return { id: user.primaryEmail, groups, container: user.orgUnitPath ?? '/', mobile: mobile ?? null };
}

/** groupsOf lists the emails of the groups userKey is in, nested ones followed (cycles stopped, MAX_NESTING deep, about MAX_GROUPS at most). */
async function groupsOf(api: admin_directory_v1.Admin, userKey: string): Promise<string[]> {
  const seen = new Set<string>();
  const groups: string[] = [];
  let frontier = [userKey];
  for (let depth = 0; depth < MAX_NESTING && frontier.length > 0 && groups.length < MAX_GROUPS; depth++) {
    const next: string[] = [];
    for (const member of frontier) {
      for (const email of await directGroups(api, member)) {
        const k = email.toLowerCase();
        if (seen.has(k)) continue;
        seen.add(k);
        groups.push(email);
        next.push(email);
      }
    }
    frontier = next;
  }
  return groups;
}

/** listMembers lists the active users in a role's groups (by email) and org units (by path), stopping once past limit. */
async function listMembers(ctx: GoogleContext, scope: MemberScope, limit: number): Promise<MemberList> {
  // Groups are named by email, containers by org unit path (/Sales/EMEA; a trailing / does not count).
  const groups = new Set(scope.groups.map((g) => g.trim().toLowerCase()).filter((g) => EMAIL.test(g)));
  const units = new Set(scope.containers.filter((c) => c.startsWith('/')).map((c) => c.replace(/(.)\/+$/, '$1')));
  const names = new Set<string>();
  try {
    for (const group of groups) {
      if (names.size > limit) break;
      await addGroupUsers(ctx.api, group, names, limit);
    }
    for (const unit of units) {
      if (names.size > limit) break;
      await addUnitUsers(ctx, unit, names, limit);
    }
  } catch (err) {
    throw classify(err, ctx.where);
  }
  return memberListOf(names, limit);
}

/** addGroupUsers adds the active users of a group, nested groups' included (Google derives them), to names; stops once past limit. */
async function addGroupUsers(api: admin_directory_v1.Admin, groupKey: string, names: Set<string>, limit: number): Promise<void> {
  let pageToken: string | undefined;
  do {
    let page: admin_directory_v1.Schema$Members;
    try {
      page = (
        await api.members.list({
          groupKey,
          includeDerivedMembership: true,
          maxResults: 200,
          fields: 'members(email,type,status),nextPageToken',
          ...(pageToken !== undefined ? { pageToken } : {}),
        })
      ).data;
    } catch (err) {
      // No such group: it has no users.
      if (httpFailure(err)?.status === 404 && !isTokenRequest(err as HttpFailure)) return;
      throw err;
    }
    for (const m of page.members ?? []) {
      if (m.type === 'USER' && m.status !== 'SUSPENDED' && typeof m.email === 'string') names.add(m.email.toLowerCase());
      if (names.size > limit) return;
    }
    pageToken = page.nextPageToken ?? undefined;
  } while (pageToken !== undefined);
}

/** addUnitUsers adds the active users in an org unit and the units below it to names; stops once past limit. */
async function addUnitUsers(ctx: GoogleContext, path: string, names: Set<string>, limit: number): Promise<void> {
  // orgUnitPath matches the unit and every unit below it (Google's search syntax); the path is quoted (it may hold spaces), a quote in it escaped.
  const query = `orgUnitPath='${path.replace(/['\\]/g, (c) => `\\${c}`)}' isSuspended=false`;
  let pageToken: string | undefined;
  do {
    const page = (
      await ctx.api.users.list({
        customer: ctx.customer,
        query,
        maxResults: 500,
        fields: 'users(primaryEmail),nextPageToken',
        ...(pageToken !== undefined ? { pageToken } : {}),
      })
    ).data;
    for (const u of page.users ?? []) {
      if (typeof u.primaryEmail === 'string') names.add(u.primaryEmail.toLowerCase());
      if (names.size > limit) return;
    }
    pageToken = page.nextPageToken ?? undefined;
  } while (pageToken !== undefined);
}

/** checkApi lists one user: healthy, with the endpoint that answered, or why not. */
async function checkApi(ctx: GoogleContext): Promise<DirectoryHealth> {
  try {
    await ctx.api.users.list({ customer: ctx.customer, maxResults: 1, fields: 'users(primaryEmail)' });
    return { ok: true, server: ctx.where };
  } catch (err) {
    return healthOf(classify(err, ctx.where));
  }
}

async function directGroups(api: admin_directory_v1.Admin, userKey: string): Promise<string[]> {
  const out: string[] = [];
  let pageToken: string | undefined;
  do {
    const res = await api.groups.list({ userKey, maxResults: 200, fields: 'groups(email),nextPageToken', ...(pageToken !== undefined ? { pageToken } : {}) });
    for (const g of res.data.groups ?? []) if (typeof g.email === 'string') out.push(g.email);
    pageToken = res.data.nextPageToken ?? undefined;
  } while (pageToken !== undefined && out.length < MAX_GROUPS);
  return out;
}

function parseKey(text: string): ServiceAccountKey {
  let key: Partial<ServiceAccountKey>;
  try {
    key = JSON.parse(text) as Partial<ServiceAccountKey>;
  } catch {
    throw new GoogleKeyError('the service account key is not JSON; give the key file Google made, whole');
  }
  if (typeof key.client_email !== 'string' || typeof key.private_key !== 'string')
    throw new GoogleKeyError('the service account key has no client_email or private_key');
  return key as ServiceAccountKey;
}

/** HttpFailure is what the Google client throws for a request (gaxios's error): the request, and the answer if one came. */
interface HttpFailure {
  config: { url?: unknown };
  response?: { status: number; headers?: unknown };
  code?: unknown;
}

function httpFailure(err: unknown): { status: number | undefined; retryAfter: string | undefined } | undefined {
  if (typeof err !== 'object' || err === null || !('config' in err)) return undefined;
  const response = (err as HttpFailure).response;
  const headers = response?.headers;
  const retryAfter =
    headers === undefined
      ? undefined
      : typeof (headers as { get?: unknown }).get === 'function'
        ? ((headers as { get(n: string): string | null }).get('retry-after') ?? undefined)
        : (headers as Record<string, string | undefined>)['retry-after'];
  return { status: response?.status, retryAfter };
}

function isTokenRequest(err: HttpFailure): boolean {
  const url = err.config.url;
  return !(typeof url === 'string' || url instanceof URL ? url.toString() : '').includes('/admin/directory/');
}

/** classify says why a Google request failed: the key or the delegation, or Google not answering; never quoting the key. */
function classify(err: unknown, server: string): DirectoryUnavailableError {
  if (err instanceof DirectoryUnavailableError) return err;
  if (err instanceof GoogleKeyError) return new DirectoryUnavailableError('CredentialsRejected', err.message, { server, detail: 'key' });
  const failed = httpFailure(err);
  if (failed !== undefined) {
    const status = failed.status;
    if (status === undefined) {
      const code = typeof (err as { code?: unknown }).code === 'string' ? (err as { code: string }).code : 'no answer';
      return new DirectoryUnavailableError('Unreachable', `${server} did not answer (${code})`, { server, detail: code }, { cause: err });
    }
    if (status === 429 || status >= 500) {
      const retryAfter = retryAfterMs(failed.retryAfter);
      return new DirectoryUnavailableError(
        'Unreachable',
        `${server} answered HTTP ${status}`,
        { server, detail: `HTTP ${status}`, ...(retryAfter !== undefined ? { retryAfterMs: retryAfter } : {}) },
        { cause: err },
      );
    }
    // The token request refused (invalid_grant: a revoked key, no delegation), or the API refused the token.
    return new DirectoryUnavailableError(
      'CredentialsRejected',
      `${server} refused the service account (HTTP ${status})`,
      { server, detail: `HTTP ${status}` },
      { cause: err },
    );
  }
  return new DirectoryUnavailableError(
    'Unreachable',
    `${server} did not answer (${(err as Error).name})`,
    { server, detail: (err as Error).name },
    { cause: err },
  );
}
