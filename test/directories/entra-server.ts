import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeCertificates } from '../helpers/slapd.ts';

/** EntraUser is a user as the fake Graph holds it, with the group ids transitiveMemberOf answers. */
export interface EntraUser {
  id: string;
  userPrincipalName: string;
  accountEnabled: boolean;
  mobilePhone: string | null;
  businessPhones: string[];
  groups: string[];
}

/**
 * FakeEntra answers as Entra ID's v2 endpoints (OpenID configuration, the client credentials
 * grant) and Microsoft Graph (users, a user's transitiveMemberOf and a group's transitiveMembers,
 * paged two by two with @odata.nextLink) do,
 * over HTTPS on 127.0.0.1 with a certificate from a CA of the test's own (MSAL requires https).
 */
export interface FakeEntra {
  url: string;
  /** The CA to trust (PEM). */
  ca: string;
  requests: { method: string; path: string }[];
  /** fail answers the next `times` Graph requests with this status. */
  fail(status: number, times?: number, headers?: Record<string, string>): void;
  close(): Promise<void>;
}

export async function startEntraServer(options: { tenant: string; clientId: string; clientSecret: string; users: EntraUser[] }): Promise<FakeEntra> {
  const certs = await makeCertificates(mkdtempSync(join(tmpdir(), 'smsauth-entra-')));
  const tokens = new Set<string>();
  const requests: FakeEntra['requests'] = [];
  let failure: { status: number; times: number; headers: Record<string, string> } | undefined;
  let base = '';
  const user = (key: string): EntraUser | undefined => options.users.find((u) => u.id === key || u.userPrincipalName.toLowerCase() === key.toLowerCase());
  const send = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  };
  const server = createServer({ key: readFileSync(certs.key), cert: readFileSync(certs.cert) }, (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', base);
      const path = decodeURIComponent(url.pathname);
      requests.push({ method: req.method ?? 'GET', path });
      const t = options.tenant;
      if (req.method === 'GET' && path === `/${t}/v2.0/.well-known/openid-configuration`) {
        return send(res, 200, {
          issuer: `${base}/${t}/v2.0`,
          authorization_endpoint: `${base}/${t}/oauth2/v2.0/authorize`,
          token_endpoint: `${base}/${t}/oauth2/v2.0/token`,
          jwks_uri: `${base}/${t}/discovery/v2.0/keys`,
        });
      }
      if (req.method === 'POST' && path === `/${t}/oauth2/v2.0/token`) {
        const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
        if (
          form.get('grant_type') !== 'client_credentials' ||
          form.get('client_id') !== options.clientId ||
          form.get('client_secret') !== options.clientSecret
        ) {
          return send(res, 401, { error: 'invalid_client', error_description: 'AADSTS7000215: Invalid client secret provided.', error_codes: [7000215] });
        }
        const token = `eyJ0.fake.${randomUUID()}`;
        tokens.add(token);
        return send(res, 200, { token_type: 'Bearer', expires_in: 3599, access_token: token });
      }
      if (!tokens.has((req.headers.authorization ?? '').replace(/^Bearer /, '')))
        return send(res, 401, { error: { code: 'InvalidAuthenticationToken', message: 'Access token is empty.' } });
      if (failure !== undefined && failure.times > 0) {
        failure.times--;
        return send(res, failure.status, { error: { code: 'TooManyRequests', message: 'fake failure' } }, failure.headers);
      }
      if (path === '/v1.0/users') return send(res, 200, { value: options.users.slice(0, 1).map((u) => ({ id: u.id })) });
      const one = /^\/v1\.0\/users\/([^/]+)$/.exec(path);
      if (one !== null) {
        const u = user(one[1]!);
        if (u === undefined) return send(res, 404, { error: { code: 'Request_ResourceNotFound', message: `Resource '${one[1]!}' does not exist.` } });
        const { groups: _groups, ...rest } = u;
        return send(res, 200, rest);
      }
      const memberOf = /^\/v1\.0\/users\/([^/]+)\/transitiveMemberOf\/microsoft\.graph\.group$/.exec(path);
      if (memberOf !== null) {
        const u = user(memberOf[1]!);
        if (u === undefined) return send(res, 404, { error: { code: 'Request_ResourceNotFound', message: 'not found' } });
        const skip = Number(url.searchParams.get('$skiptoken') ?? '0');
        const page = u.groups.slice(skip, skip + 2).map((id) => ({ '@odata.type': '#microsoft.graph.group', id }));
        const next =
          skip + 2 < u.groups.length
            ? `${base}/v1.0/users/${u.id}/transitiveMemberOf/microsoft.graph.group?$select=id&$top=999&$skiptoken=${skip + 2}`
            : undefined;
        return send(res, 200, { value: page, ...(next !== undefined ? { '@odata.nextLink': next } : {}) });
      }
      const members = /^\/v1\.0\/groups\/([^/]+)\/transitiveMembers\/microsoft\.graph\.user$/.exec(path);
      if (members !== null) {
        // A group is one some user is in: the users' groups are transitive already, as Graph computes them.
        const group = members[1]!.toLowerCase();
        const users = options.users.filter((u) => u.groups.some((g) => g.toLowerCase() === group));
        if (users.length === 0) return send(res, 404, { error: { code: 'Request_ResourceNotFound', message: `Resource '${members[1]!}' does not exist.` } });
        const skip = Number(url.searchParams.get('$skiptoken') ?? '0');
        const page = users
          .slice(skip, skip + 2)
          .map((u) => ({ '@odata.type': '#microsoft.graph.user', userPrincipalName: u.userPrincipalName, accountEnabled: u.accountEnabled }));
        const next =
          skip + 2 < users.length
            ? `${base}/v1.0/groups/${group}/transitiveMembers/microsoft.graph.user?$select=userPrincipalName,accountEnabled&$top=999&$skiptoken=${skip + 2}`
            : undefined;
        return send(res, 200, { value: page, ...(next !== undefined ? { '@odata.nextLink': next } : {}) });
      }
      return send(res, 404, { error: { code: 'NotFound', message: 'no such route' } });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: base,
    ca: readFileSync(certs.ca, 'utf8'),
    requests,
    fail(status, times = 1, headers = {}) {
      failure = { status, times, headers };
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
