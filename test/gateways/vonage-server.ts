import { createHash, createHmac, randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { CallbackRequest } from '../../controller/gateways/gateway.ts';
import { BehaviourQueue, misbehave, sendJson, startFakeServer, type FakeServer, type RecordedRequest } from './fake-http.ts';
import { logScan } from '../helpers/log-scan.ts';

/** FakeVonage is a local Vonage SMS API (rest.nexmo.com: /sms/json and /account/get-balance). */
export interface FakeVonage extends FakeServer {
  baseUrl: string;
  behaviours: BehaviourQueue;
  /** Parameters of the /sms/json requests that passed authentication (api_secret removed). */
  messages: Record<string, string>[];
  /**
   * callback builds a delivery receipt as Vonage sends it to a message's callback URL, signed with
   * the signature secret (a `timestamp` and a `sig` parameter) by the given method.
   */
  callback(
    url: string,
    params: Record<string, string>,
    options: {
      signatureSecret: string;
      method: 'md5hash' | 'md5' | 'sha1' | 'sha256' | 'sha512';
      as?: 'GET' | 'POST' | 'POST-JSON';
      upperCase?: boolean;
      timestamp?: number;
    },
  ): CallbackRequest;
}

/**
 * startVonageServer serves Vonage's SMS API as documented: `POST /sms/json` with api_key and
 * api_secret in a form or JSON body answers HTTP 200 with a status per message part (0 success,
 * 1 throttled, 4 invalid credentials, 6 unroutable, 9 quota, 15 invalid sender, 29 non-whitelisted
 * destination...), one part per 153 characters; `GET /account/get-balance` answers 401 on wrong
 * credentials.
 */
export async function startVonageServer(account: { apiKey: string; apiSecret: string }): Promise<FakeVonage> {
  logScan.secret('Vonage API secret', account.apiSecret);
  const behaviours = new BehaviourQueue();
  const messages: Record<string, string>[] = [];
  const server = await startFakeServer((req, res) => handle(req, res));

  function answer(res: ServerResponse, parts: Record<string, string>[]): void {
    sendJson(res, 200, { 'message-count': String(parts.length), messages: parts });
  }

  function handle(req: RecordedRequest, res: ServerResponse): void {
    const [path, query = ''] = req.url.split('?') as [string, string | undefined];
    if (path === '/account/get-balance' && req.method === 'GET') {
      const q = new URLSearchParams(query);
      if (q.get('api_key') !== account.apiKey || q.get('api_secret') !== account.apiSecret) {
        res.writeHead(401);
        return void res.end();
      }
      return sendJson(res, 200, { value: 12.5, autoReload: false });
    }
    if (path !== '/sms/json' || req.method !== 'POST') return sendJson(res, 404, { 'error-code': '404', 'error-code-label': 'Not Found' });
    const type = req.headers['content-type'] ?? '';
    let params: Record<string, string>;
    try {
      params = type.startsWith('application/json') ? (JSON.parse(req.body) as Record<string, string>) : Object.fromEntries(new URLSearchParams(req.body));
    } catch {
      return answer(res, [{ status: '2', 'error-text': 'Missing Parameters' }]);
    }
    if (params.api_key === undefined || params.api_secret === undefined) return answer(res, [{ status: '2', 'error-text': 'Missing api_key' }]);
    if (params.api_key !== account.apiKey || params.api_secret !== account.apiSecret) return answer(res, [{ status: '4', 'error-text': 'Bad Credentials' }]);
    for (const p of ['from', 'to', 'text']) if (!params[p]) return answer(res, [{ status: '2', 'error-text': `Missing ${p} param` }]);
    const { api_secret: _secret, ...recorded } = params;
    messages.push(recorded);
    logScan.message(params.to!, params.text!);
    const to = params.to!;
    const behaviour = behaviours.next();
    const accept = (): void => {
      const perPart = params.type === 'unicode' ? 67 : 153;
      const single = params.type === 'unicode' ? 70 : 160;
      const count = params.text!.length <= single ? 1 : Math.ceil(params.text!.length / perPart);
      const parts = Array.from({ length: count }, () => ({
        to,
        'message-id': randomBytes(16).toString('hex'),
        status: '0',
        'remaining-balance': '12.30',
        'message-price': '0.0333',
        network: '20801',
        ...(params['client-ref'] !== undefined ? { 'client-ref': params['client-ref'] } : {}),
      }));
      answer(res, parts);
    };
    if (misbehave(behaviour, res, accept)) return;
    switch (behaviour) {
      case 'ok':
        return accept();
      case 'invalid-number':
        return answer(res, [{ to, status: '6', 'error-text': `Unroutable message - rejected ${to}` }]);
      case 'forbidden':
        return answer(res, [{ to, status: '29', 'error-text': `Non White-listed Destination - rejected ${to}` }]);
      case 'insufficient-funds':
        return answer(res, [{ to, status: '9', 'error-text': 'Quota Exceeded - rejected' }]);
      case 'rate-limited':
        return answer(res, [{ to, status: '1', 'error-text': 'Throughput Rate Exceeded - please wait [ 1000 ] and retry' }]);
      case 'server-error':
        return answer(res, [{ to, status: '5', 'error-text': 'Internal Error' }]);
      case 'rejected':
        return answer(res, [{ to, status: '15', 'error-text': 'Illegal Sender Address - rejected' }]);
    }
  }

  return {
    ...server,
    baseUrl: server.origin,
    behaviours,
    messages,
    callback(url, params, options) {
      const signed: Record<string, string> = { ...params, timestamp: String(options.timestamp ?? Math.floor(Date.now() / 1000)) };
      let base = '';
      for (const k of Object.keys(signed).sort()) base += `&${k}=${signed[k]!.replace(/&/g, '_').replace(/=/g, '_')}`;
      let sig =
        options.method === 'md5hash'
          ? createHash('md5')
              .update(base + options.signatureSecret)
              .digest('hex')
          : createHmac(options.method, options.signatureSecret).update(base).digest('hex');
      if (options.upperCase === true) sig = sig.toUpperCase();
      const all = { ...signed, sig };
      const as = options.as ?? 'GET';
      if (as === 'GET') return { url: `${url}?${new URLSearchParams(all).toString()}`, method: 'GET', headers: {}, body: Buffer.alloc(0) };
      if (as === 'POST-JSON') return { url, method: 'POST', headers: { 'content-type': 'application/json' }, body: Buffer.from(JSON.stringify(all)) };
      return { url, method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: Buffer.from(new URLSearchParams(all).toString()) };
    },
  };
}
