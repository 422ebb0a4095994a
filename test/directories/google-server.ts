import { generateKeyPairSync, randomUUID, verify } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** GoogleUser is a Workspace user as the fake holds it (the Directory API's users resource, trimmed). */
export interface GoogleUser {
  primaryEmail: string;
  orgUnitPath: string;
  suspended?: boolean;
  phones?: { type: string; value: string }[];
}

/**
 * FakeGoogle answers as Google's token endpoint (the JWT bearer grant of a service account, its
 * signature checked) and the Admin SDK Directory API (users.get, users.list with an org unit and
 * suspension query, groups.list by member, members.list with derived memberships, all paged) do,
 * on 127.0.0.1.
 */
export interface FakeGoogle {
  url: string;
  /** The service account's JSON key, its token_uri pointing here. */
  serviceAccountKey: string;
  /** Requests seen, for assertions. */
  requests: { method: string; path: string; query: Record<string, string>; subject?: string }[];
  /** fail answers the next `times` API requests (or token requests) with this status and body. */
  fail(target: 'api' | 'token', status: number, times?: number, headers?: Record<string, string>): void;
  close(): Promise<void>;
}

/** startGoogleServer serves users and direct group memberships (member email → group emails); lists come two per page. */
export async function startGoogleServer(options: { users: GoogleUser[]; memberOf: Record<string, string[]>; subject: string }): Promise<FakeGoogle> {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const clientEmail = 'smsauth@smsauth-tests.iam.gserviceaccount.com';
  const tokens = new Set<string>();
  const requests: FakeGoogle['requests'] = [];
  const failures: {
    api?: { status: number; times: number; headers: Record<string, string> };
    token?: { status: number; times: number; headers: Record<string, string> };
  } = {};
  const users = new Map(options.users.map((u) => [u.primaryEmail.toLowerCase(), u]));

  const send = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void => {
    res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8', ...headers });
    res.end(JSON.stringify(body));
  };
  const failed = (target: 'api' | 'token', res: ServerResponse): boolean => {
    const f = failures[target];
    if (f === undefined || f.times <= 0) return false;
    f.times--;
    send(
      res,
      f.status,
      target === 'token' ? { error: 'invalid_grant', error_description: 'Invalid grant.' } : { error: { code: f.status, message: 'fake failure' } },
      f.headers,
    );
    return true;
  };

  // A page of a list: at most two (fewer if maxResults says), from the pageToken on.
  const paged = (key: string, all: unknown[], url: URL): Record<string, unknown> => {
    const size = Math.min(2, Number(url.searchParams.get('maxResults') ?? '2'));
    const start = Number(url.searchParams.get('pageToken') ?? '0');
    const page = all.slice(start, start + size);
    return { ...(page.length > 0 ? { [key]: page } : {}), ...(start + size < all.length ? { nextPageToken: String(start + size) } : {}) };
  };
  // users.list's query, the clauses the adapter writes: orgUnitPath='…' (the unit and those below it) and isSuspended=….
  const matches =
    (query: string) =>
    (u: GoogleUser): boolean => {
      for (const [, field, value] of query.matchAll(/(\w+)=('(?:[^'\\]|\\.)*'|\S+)/g)) {
        const v = value!.startsWith("'") ? value!.slice(1, -1).replace(/\\(.)/g, '$1') : value!;
        if (field === 'orgUnitPath' && !(v === '/' || u.orgUnitPath === v || u.orgUnitPath.startsWith(`${v}/`))) return false;
        if (field === 'isSuspended' && (u.suspended === true) !== (v === 'true')) return false;
      }
      return true;
    };
  // A group's members: direct ones, or with derived memberships every user and group below it (cycles stopped).
  const membersOf = (group: string, derived: boolean): { kind: string; email: string; type: string; status: string }[] => {
    const direct = (g: string): string[] => Object.keys(options.memberOf).filter((m) => options.memberOf[m]!.some((x) => x.toLowerCase() === g));
    const seen = new Set<string>([group]);
    const out: string[] = [];
    for (let frontier = [group]; frontier.length > 0;) {
      const next = [...new Set(frontier.flatMap(direct))].filter((m) => !seen.has(m));
      for (const m of next) seen.add(m);
      out.push(...next);
      frontier = derived ? next : [];
    }
    return out.map((m) => {
      const user = users.get(m);
      return {
        kind: 'admin#directory#member',
        email: user?.primaryEmail ?? m,
        type: user !== undefined ? 'USER' : 'GROUP',
        status: user?.suspended === true ? 'SUSPENDED' : 'ACTIVE',
      };
    });
  };

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://fake');
      const seen: FakeGoogle['requests'][number] = { method: req.method ?? 'GET', path: url.pathname, query: Object.fromEntries(url.searchParams) };
      requests.push(seen);
      if (req.method === 'POST' && url.pathname === '/token') {
        if (failed('token', res)) return;
        const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
        const [h, p, sig] = (form.get('assertion') ?? '').split('.');
        const signed =
          h !== undefined && p !== undefined && sig !== undefined && verify('RSA-SHA256', Buffer.from(`${h}.${p}`), publicKey, Buffer.from(sig, 'base64url'));
        const claims = signed ? (JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as { iss?: string; sub?: string; exp?: number }) : undefined;
        if (form.get('grant_type') !== 'urn:ietf:params:oauth:grant-type:jwt-bearer' || claims?.iss !== clientEmail || (claims.exp ?? 0) * 1000 < Date.now()) {
          return send(res, 400, { error: 'invalid_grant', error_description: 'Invalid JWT Signature.' });
        }
        if (claims.sub !== options.subject)
          return send(res, 401, { error: 'unauthorized_client', error_description: 'Client is unauthorized to retrieve access tokens using this method.' });
        seen.subject = claims.sub;
        const token = `ya29.fake-${randomUUID()}`;
        tokens.add(token);
        return send(res, 200, { access_token: token, expires_in: 3599, token_type: 'Bearer' });
      }
      if (!tokens.has((req.headers.authorization ?? '').replace(/^Bearer /, '')))
        return send(res, 401, { error: { code: 401, message: 'Request had invalid authentication credentials.' } });
      if (failed('api', res)) return;
      const userPath = /^\/admin\/directory\/v1\/users\/([^/]+)$/.exec(url.pathname);
      if (userPath !== null) {
        const user = users.get(decodeURIComponent(userPath[1]!).toLowerCase());
        if (user === undefined) return send(res, 404, { error: { code: 404, message: 'Resource Not Found: userKey', errors: [{ reason: 'notFound' }] } });
        return send(res, 200, { kind: 'admin#directory#user', ...user });
      }
      if (url.pathname === '/admin/directory/v1/users') {
        const all = [...users.values()].filter(matches(url.searchParams.get('query') ?? '')).map((u) => ({ primaryEmail: u.primaryEmail }));
        return send(res, 200, { kind: 'admin#directory#users', ...paged('users', all, url) });
      }
      const groupMembers = /^\/admin\/directory\/v1\/groups\/([^/]+)\/members$/.exec(url.pathname);
      if (groupMembers !== null) {
        const group = decodeURIComponent(groupMembers[1]!).toLowerCase();
        if (!Object.values(options.memberOf).some((gs) => gs.some((g) => g.toLowerCase() === group)))
          return send(res, 404, { error: { code: 404, message: 'Resource Not Found: groupKey', errors: [{ reason: 'notFound' }] } });
        return send(res, 200, {
          kind: 'admin#directory#members',
          ...paged('members', membersOf(group, url.searchParams.get('includeDerivedMembership') === 'true'), url),
        });
      }
      if (url.pathname === '/admin/directory/v1/groups') {
        const member = url.searchParams.get('userKey') ?? '';
        const all = (options.memberOf[member.toLowerCase()] ?? []).map((email) => ({ kind: 'admin#directory#group', email }));
        return send(res, 200, { kind: 'admin#directory#groups', ...paged('groups', all, url) });
      }
      return send(res, 404, { error: { code: 404, message: 'Not Found' } });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    serviceAccountKey: JSON.stringify({
      type: 'service_account',
      client_email: clientEmail,
      private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      private_key_id: 'fake-key-1',
      token_uri: `${url}/token`,
    }),
    requests,
    fail(target, status, times = 1, headers = {}) {
      failures[target] = { status, times, headers };
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
