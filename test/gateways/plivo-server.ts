import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { CallbackRequest } from '../../controller/gateways/gateway.ts';
import { basicCredentials, BehaviourQueue, misbehave, sendJson, startFakeServer, type FakeServer, type RecordedRequest } from './fake-http.ts';
import { logScan } from '../helpers/log-scan.ts';

/** PlivoMessage is a message request the fake Plivo accepted for reading, as Plivo's API received it. */
export interface PlivoMessage {
  src: string;
  dst: string;
  text: string;
  [param: string]: unknown;
}

/** FakePlivo is a local Plivo-compatible API (v1 Account and Message resources) for the real plivo SDK. */
export interface FakePlivo extends FakeServer {
  /** The account's baseUrl setting (the API root, without /v1). */
  baseUrl: string;
  /** Queues behaviours for the next Message requests. */
  behaviours: BehaviourQueue;
  /** Message requests that passed authentication, as JSON bodies. */
  messages: PlivoMessage[];
  /** callback builds a delivery report as Plivo posts it to the `url` of a message, signed with X-Plivo-Signature-V3. */
  callback(url: string, params: Record<string, string>, options?: { method?: 'POST' | 'GET'; authToken?: string; nonce?: string }): CallbackRequest;
}

/**
 * startPlivoServer serves the parts of Plivo's REST API the gateway uses, the way Plivo documents
 * them: Basic auth with the Auth ID and Token (401 otherwise), `POST /v1/Account/{id}/Message/`
 * with a JSON body (202 with message_uuid), `GET /v1/Account/{id}/` (the SDK sends `//`), and
 * error answers `{api_id, error}` with Plivo's statuses: 400, 401, 403 (geo permissions), 429, 5xx.
 */
export async function startPlivoServer(account: { authId: string; authToken: string }): Promise<FakePlivo> {
  logScan.secret('Plivo auth token', account.authToken);
  const behaviours = new BehaviourQueue();
  const messages: PlivoMessage[] = [];
  const server = await startFakeServer((req, res) => handle(req, res));

  function error(res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
    sendJson(res, status, { api_id: randomUUID(), error: text }, headers);
  }

  function handle(req: RecordedRequest, res: ServerResponse): void {
    const path = req.url.split('?')[0]!.replace(/\/{2,}/g, '/');
    const match = /^\/v1\/Account\/([^/]+)\/(.*)$/.exec(path);
    if (match === null) return error(res, 404, 'not found');
    const creds = basicCredentials(req.headers.authorization);
    if (creds === undefined || creds.user !== account.authId || creds.password !== account.authToken || decodeURIComponent(match[1]!) !== account.authId) {
      return error(res, 401, 'Authentication failed');
    }
    const resource = match[2];
    if (req.method === 'GET' && resource === '') {
      return sendJson(res, 200, {
        account_type: 'standard',
        address: '',
        api_id: randomUUID(),
        auth_id: account.authId,
        auto_recharge: false,
        billing_mode: 'prepaid',
        cash_credits: '12.50000',
        city: '',
        name: 'Fake Plivo',
        resource_uri: `/v1/Account/${account.authId}/`,
        state: '',
        timezone: 'Europe/Paris',
      });
    }
    if (req.method !== 'POST' || resource !== 'Message/') return error(res, 405, 'method not allowed');
    let body: PlivoMessage;
    try {
      body = JSON.parse(req.body) as PlivoMessage;
    } catch {
      return error(res, 400, 'invalid JSON body');
    }
    if (typeof body.src !== 'string' || body.src === '') return error(res, 400, 'src parameter not present');
    if (typeof body.dst !== 'string' || body.dst === '') return error(res, 400, 'dst parameter not present');
    if (typeof body.text !== 'string' || body.text === '') return error(res, 400, 'text parameter not present');
    messages.push(body);
    logScan.message(body.dst, body.text);
    const behaviour = behaviours.next();
    const accept = (): void => sendJson(res, 202, { api_id: randomUUID(), message: 'message(s) queued', message_uuid: [randomUUID()] });
    if (misbehave(behaviour, res, accept)) return;
    switch (behaviour) {
      case 'ok':
        return accept();
      case 'invalid-number':
        return error(res, 400, `Invalid 'dst' parameter: ${body.dst} is not a valid phone number`);
      case 'forbidden':
        return error(res, 403, `This destination (${body.dst}) is not enabled in the account's geo permissions`);
      case 'insufficient-funds':
        return error(res, 400, 'Insufficient credit in the account to send this message');
      case 'rate-limited':
        return error(res, 429, 'too many requests', { 'retry-after': '1' });
      case 'server-error':
        return error(res, 503, 'service unavailable');
      case 'rejected':
        return error(res, 400, `Invalid 'src' parameter ${body.src} for text ${body.text}`);
    }
  }

  return {
    ...server,
    baseUrl: server.origin,
    behaviours,
    messages,
    callback(url, params, options = {}) {
      const method = options.method ?? 'POST';
      const nonce = options.nonce ?? randomBytes(10).toString('hex');
      const target = method === 'GET' ? `${url}${url.includes('?') ? '&' : '?'}${new URLSearchParams(params).toString()}` : url;
      const signature = plivoV3Signature(options.authToken ?? account.authToken, method, target, method === 'POST' ? params : {}, nonce);
      const headers: Record<string, string> = { 'x-plivo-signature-v3': signature, 'x-plivo-signature-v3-nonce': nonce };
      if (method === 'POST') headers['content-type'] = 'application/x-www-form-urlencoded';
      return { url: target, method, headers, body: Buffer.from(method === 'POST' ? new URLSearchParams(params).toString() : '') };
    },
  };
}

/**
 * plivoV3Signature signs a callback as Plivo's V3 scheme does: the URL without its query, then
 * `?` and the query parameters sorted as `k=v&...`, then for POST a `.` and the sorted form
 * parameters as `kv...` (no `.` without a query), then `.` and the nonce; base64 HMAC-SHA256
 * under the Auth Token.
 */
export function plivoV3Signature(authToken: string, method: 'GET' | 'POST', url: string, form: Record<string, string>, nonce: string): string {
  const parsed = new URL(url);
  const query = [...parsed.searchParams]
    .sort(([a, x], [b, y]) => (a === b ? (x < y ? -1 : 1) : a < b ? -1 : 1))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  let base = `${parsed.protocol}//${parsed.host}${parsed.pathname}`;
  const formKeys = Object.keys(form).sort();
  if (method === 'GET') {
    if (query !== '') base += `?${query}`;
  } else {
    if (query !== '' || formKeys.length > 0) base += `?${query}`;
    if (query !== '' && formKeys.length > 0) base += '.';
    for (const k of formKeys) base += `${k}${form[k]}`;
  }
  return createHmac('sha256', authToken).update(`${base}.${nonce}`).digest('base64');
}
