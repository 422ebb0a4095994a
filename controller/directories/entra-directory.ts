import { rootCertificates } from 'node:tls';
import { ClientSecretCredential } from '@azure/identity';
import {
  AuthenticationHandler,
  Client,
  GraphError,
  PageIterator,
  TelemetryHandler,
  type Context,
  type Middleware,
  type PageCollection,
} from '@microsoft/microsoft-graph-client';
import { Agent, fetch as undiciFetch } from 'undici';
import { retryAfterMs } from '../core/retry-after.ts';
import {
  DirectoryUnavailableError,
  healthOf,
  memberListOf,
  type Directory,
  type DirectoryHealth,
  type DirectoryProblem,
  type DirectoryUser,
  type MemberList,
  type MemberScope,
} from './directory.ts';

/** EntraSettings are a Microsoft Entra ID directory's settings with the client secret resolved. */
export interface EntraSettings {
  tenantId: string;
  clientId: string;
  clientSecret: string;
  /** The token authority's root (https). */
  authorityHost: string;
  /** Microsoft Graph's root. */
  graphEndpoint: string;
  /** mobilePhone, or businessPhones (its first entry). */
  mobileAttribute: string;
  /** PEM certificates to trust besides the system's (a TLS-inspecting proxy, a test server). */
  ca?: string;
  timeoutMs: number;
}

const MICROSOFT_AUTHORITY = 'login.microsoftonline.com';
const UPN = /^[^@\s/?#]+@[^@\s/?#]+$/;
/** An Entra object id: what roles name Entra groups by. */
const OBJECT_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const MAX_GROUPS = 5000;

/**
 * createEntraDirectory reads users from Microsoft Entra ID through Microsoft Graph
 * (@microsoft/microsoft-graph-client), with an app registration's client credentials
 * (@azure/identity): a user by id or user principal name, their mobile number, and every group
 * they are in, nested ones included (transitiveMemberOf, paged), by object id; a group's users
 * likewise (transitiveMembers, paged). Entra has no containers. A disabled account is no user.
 * Nothing is retried (the caller answers 503 at once).
 */
export function createEntraDirectory(settings: EntraSettings): Directory {
  const ctx = entraContext(settings);
  return {
    lookup(name: string): Promise<DirectoryUser | undefined> {
      return lookupUser(ctx, settings.mobileAttribute, name);
    },
    members(scope: MemberScope, options: { limit: number }): Promise<MemberList> {
      return listMembers(ctx, scope, options.limit);
    },
    check(): Promise<DirectoryHealth> {
      return checkGraph(ctx);
    },
    close(): Promise<void> {
      return Promise.resolve();
    },
  };
}

/** EntraContext is what one Entra directory's operations share: the Graph client, and Graph's origin to name in errors. */
interface EntraContext {
  readonly client: Client;
  readonly where: string;
}

/** entraContext makes the Graph client for the settings: the app's token from the authority, requests sent with the settings' CA and deadline. */
function entraContext(settings: EntraSettings): EntraContext {
  const authorityHost = settings.authorityHost.replace(/\/+$/, '');
  const graphEndpoint = settings.graphEndpoint.replace(/\/+$/, '');
  const ca = settings.ca === undefined ? undefined : [...rootCertificates, settings.ca];
  const credential = new ClientSecretCredential(settings.tenantId, settings.clientId, settings.clientSecret, {
    authorityHost,
    // Instance discovery asks login.microsoftonline.com whatever the authority: only for Microsoft's own.
    disableInstanceDiscovery: new URL(authorityHost).host !== MICROSOFT_AUTHORITY,
    retryOptions: { maxRetries: 0 },
    ...(ca !== undefined ? { tlsOptions: { ca } } : {}),
  });
  const scope = `${graphEndpoint}/.default`;
  const client = Client.initWithMiddleware({
    baseUrl: graphEndpoint,
    defaultVersion: 'v1.0',
    // The token goes only to https hosts that are Graph's or listed here.
    customHosts: new Set([new URL(graphEndpoint).hostname]),
    middleware: [
      new AuthenticationHandler({ getAccessToken: () => accessToken(credential, scope, settings.timeoutMs) }),
      new TelemetryHandler(),
      new FetchHandler(ca === undefined ? undefined : new Agent({ connect: { ca } }), settings.timeoutMs),
    ],
  });
  return { client, where: new URL(graphEndpoint).origin };
}

/** accessToken gets the app a token for scope, or throws an error whose name carries the verdict (tokenFailure's), as the Graph client keeps only that. */
async function accessToken(credential: ClientSecretCredential, scope: string, timeoutMs: number): Promise<string> {
  try {
    return (await credential.getToken(scope, { abortSignal: AbortSignal.timeout(timeoutMs) })).token;
  } catch (err) {
    const failure = tokenFailure(err);
    const verdict = new Error(failure.message);
    verdict.name = `Entra:${failure.problem}:${failure.code}`;
    throw verdict;
  }
}

/** GraphUser is what lookupUser selects of a Graph user. */
interface GraphUser {
  id?: unknown;
  userPrincipalName?: unknown;
  accountEnabled?: boolean;
  mobilePhone?: string | null;
  businessPhones?: string[];
}

/** lookupUser finds the enabled user whose user principal name is name, with their groups and the mobile number mobileAttribute holds; undefined for none. */
async function lookupUser(ctx: EntraContext, mobileAttribute: string, name: string): Promise<DirectoryUser | undefined> {
  // A user is named by their user principal name: not by their object id (they would be
  // another user to the verifier), nor by a path segment that would reach another resource.
  if (!UPN.test(name)) return undefined;
  try {
    let user: GraphUser;
    try {
      user = (await ctx.client
        .api(`/users/${encodeURIComponent(name)}`)
        .select(['id', 'userPrincipalName', 'accountEnabled', 'mobilePhone', 'businessPhones'])
        .get()) as GraphUser;
    } catch (err) {
      if (err instanceof GraphError && (err.statusCode === 404 || err.statusCode === 400)) return undefined;
      throw err;
    }
    if (typeof user.id !== 'string' || typeof user.userPrincipalName !== 'string' || user.userPrincipalName.toLowerCase() !== name.toLowerCase())
      return undefined;
    if (user.accountEnabled === false) return undefined;
    const mobile = mobileAttribute === 'businessPhones' ? (user.businessPhones?.[0] ?? null) : (user.mobilePhone ?? null);
    const id = user.id;
    return { id, groups: await groupsOf(ctx.client, id), container: null, mobile: mobile === '' ? null : mobile };
  } catch (err) {
    throw classify(err, ctx.where);
  }
}

/** groupsOf lists the object ids of every group the user id is in, nested ones included, at most about MAX_GROUPS. */
async function groupsOf(client: Client, id: string): Promise<string[]> {
  const ids: string[] = [];
  const first = (await client
    .api(`/users/${encodeURIComponent(id)}/transitiveMemberOf/microsoft.graph.group`)
    .select('id')
    .top(999)
    .get()) as PageCollection;
  await new PageIterator(client, first, (g: { id?: unknown }) => {
    if (typeof g.id === 'string') ids.push(g.id);
    return ids.length < MAX_GROUPS;
  }).iterate();
  return ids;
}

/** listMembers lists the enabled users in a role's groups (by object id), stopping once past limit; Entra has no containers. */
async function listMembers(ctx: EntraContext, scope: MemberScope, limit: number): Promise<MemberList> {
  // Entra has no containers: a role's containers cover no one here, as they match no Entra user.
  const groups = new Set(scope.groups.map((g) => g.trim().toLowerCase()).filter((g) => OBJECT_ID.test(g)));
  const names = new Set<string>();
  try {
    for (const group of groups) {
      if (names.size > limit) break;
      await addGroupUsers(ctx.client, group, names, limit);
    }
  } catch (err) {
    throw classify(err, ctx.where);
  }
  return memberListOf(names, limit);
}

/** addGroupUsers adds the enabled users of a group, nested groups' included, to names (by principal name); stops once past limit. */
async function addGroupUsers(client: Client, group: string, names: Set<string>, limit: number): Promise<void> {
  let first: PageCollection;
  try {
    first = (await client
      .api(`/groups/${group}/transitiveMembers/microsoft.graph.user`)
      .select(['userPrincipalName', 'accountEnabled'])
      .top(999)
      .get()) as PageCollection;
  } catch (err) {
    // No such group: it has no users.
    if (err instanceof GraphError && err.statusCode === 404) return;
    throw err;
  }
  await new PageIterator(client, first, (u: { userPrincipalName?: unknown; accountEnabled?: unknown }) => {
    if (typeof u.userPrincipalName === 'string' && UPN.test(u.userPrincipalName) && u.accountEnabled !== false) names.add(u.userPrincipalName.toLowerCase());
    return names.size <= limit;
  }).iterate();
}

/** checkGraph lists one user: healthy, with Graph's origin, or why not. */
async function checkGraph(ctx: EntraContext): Promise<DirectoryHealth> {
  try {
    await ctx.client.api('/users').select('id').top(1).get();
    return { ok: true, server: ctx.where };
  } catch (err) {
    return healthOf(classify(err, ctx.where));
  }
}

/** FetchHandler sends Graph's requests with undici (a CA of the settings' own, a deadline), the last step of the middleware chain. */
class FetchHandler implements Middleware {
  private readonly dispatcher: Agent | undefined;
  private readonly timeoutMs: number;

  constructor(dispatcher: Agent | undefined, timeoutMs: number) {
    this.dispatcher = dispatcher;
    this.timeoutMs = timeoutMs;
  }

  async execute(context: Context): Promise<void> {
    // The Graph client types its request and response with the DOM's fetch types, which this build has not.
    const request = context.request as unknown;
    const url = typeof request === 'string' ? request : (request as { url: string }).url;
    const init = {
      ...(context.options as object),
      signal: AbortSignal.timeout(this.timeoutMs),
      ...(this.dispatcher !== undefined ? { dispatcher: this.dispatcher } : {}),
    } as Parameters<typeof undiciFetch>[1];
    try {
      (context as { response?: unknown }).response = await undiciFetch(url, init);
    } catch (err) {
      const cause = (err as { cause?: { code?: unknown } }).cause;
      const failure = new Error(`Graph did not answer`);
      failure.name = `Entra:Unreachable:${typeof cause?.code === 'string' ? cause.code : (err as Error).name === 'TimeoutError' ? 'timeout' : 'no answer'}`;
      throw failure;
    }
  }
}

/** tokenFailure says why the client credentials got no token: refused by the authority, or the authority not reached. */
function tokenFailure(err: unknown): { problem: DirectoryProblem; code: string; message: string } {
  const e = err as { name?: string; cause?: { name?: string; errorCode?: unknown; status?: number } };
  if (e.name === 'AuthenticationRequiredError' && e.cause?.name === 'ServerError' && (e.cause.status ?? 0) < 500) {
    const code = typeof e.cause.errorCode === 'string' ? e.cause.errorCode : `HTTP ${String(e.cause.status)}`;
    return { problem: 'CredentialsRejected', code, message: `the authority refused the client credentials (${code})` };
  }
  return {
    problem: 'Unreachable',
    code: e.cause?.errorCode === 'network_error' ? 'network_error' : (e.name ?? 'error'),
    message: 'the token authority did not answer',
  };
}

/** classify says why a Graph request failed, never quoting a secret. */
function classify(err: unknown, server: string): DirectoryUnavailableError {
  if (err instanceof DirectoryUnavailableError) return err;
  if (err instanceof GraphError) {
    // A failure inside the middleware arrives as statusCode -1 with the thrown error's name.
    const verdict = /^Entra:(\w+):(.*)$/.exec(err.code ?? '');
    if (err.statusCode === -1 && verdict !== null)
      return new DirectoryUnavailableError(verdict[1] as DirectoryProblem, `${server}: ${err.message}`, { server, detail: verdict[2]! }, { cause: err });
    if (err.statusCode === 401 || err.statusCode === 403)
      return new DirectoryUnavailableError(
        'CredentialsRejected',
        `${server} refused the app's token (HTTP ${err.statusCode})`,
        { server, detail: `HTTP ${err.statusCode}` },
        { cause: err },
      );
    const retryAfter = retryAfterMs(err.headers?.get('retry-after'));
    return new DirectoryUnavailableError(
      'Unreachable',
      `${server} answered HTTP ${err.statusCode}`,
      { server, detail: `HTTP ${err.statusCode}`, ...(retryAfter !== undefined ? { retryAfterMs: retryAfter } : {}) },
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
