import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { CallbackRequest } from '../../controller/gateways/gateway.ts';
import { BehaviourQueue, misbehave, sendJson, startFakeServer, type FakeServer, type RecordedRequest } from './fake-http.ts';
import { logScan } from '../helpers/log-scan.ts';

/** FakePlugin is a webhook plug-in written from docs/gateways.md alone, as a third party would write one. */
export interface FakePlugin extends FakeServer {
  url: string;
  behaviours: BehaviourQueue;
  /** Message bodies whose signature checked out. */
  messages: Record<string, unknown>[];
  /** Why requests were refused (bad signature, stale timestamp). */
  refusals: string[];
  /** callback builds a signed delivery callback as the plug-in POSTs it to the account's statusCallbackUrl. */
  callback(url: string, body: unknown, options?: { secret?: string; timestamp?: number; rawBody?: string }): CallbackRequest;
}

const TOLERANCE_SECONDS = 300;

/**
 * startWebhookPlugin implements the plug-in side of the contract: it checks X-Smsauth-Timestamp
 * and X-Smsauth-Signature (`v1=` hex HMAC-SHA-256 of "<timestamp>.<raw body>" under the shared
 * secret, 5 minutes either way), answers 401 `{error: {code: "AuthFailed"}}` when they are wrong,
 * 200 `{messageId}` for a message and 204 for a signed GET (the credential check).
 */
export async function startWebhookPlugin(secret: string): Promise<FakePlugin> {
  logScan.secret('webhook signing secret', secret);
  const behaviours = new BehaviourQueue();
  const messages: Record<string, unknown>[] = [];
  const refusals: string[] = [];
  const server = await startFakeServer((req, res) => handle(req, res));

  function refuse(res: ServerResponse, why: string): void {
    refusals.push(why);
    sendJson(res, 401, { error: { code: 'AuthFailed', message: why } });
  }

  function handle(req: RecordedRequest, res: ServerResponse): void {
    const timestamp = req.headers['x-smsauth-timestamp'];
    const signature = req.headers['x-smsauth-signature'];
    if (typeof timestamp !== 'string' || typeof signature !== 'string') return refuse(res, 'unsigned');
    if (Math.abs(Date.now() / 1000 - Number(timestamp)) > TOLERANCE_SECONDS) return refuse(res, 'stale timestamp');
    const expected = Buffer.from(`v1=${createHmac('sha256', secret).update(`${timestamp}.${req.body}`).digest('hex')}`);
    const given = Buffer.from(signature);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return refuse(res, 'bad signature');
    if (req.method === 'GET') {
      res.writeHead(204);
      return void res.end();
    }
    if (req.method !== 'POST') return sendJson(res, 405, { error: { code: 'Rejected', message: 'POST only' } });
    const message = JSON.parse(req.body) as Record<string, unknown>;
    messages.push(message);
    logScan.message(String(message.to), String(message.text));
    const behaviour = behaviours.next();
    const accept = (): void => sendJson(res, 200, { messageId: `plugin-${randomUUID()}` });
    if (misbehave(behaviour, res, accept)) return;
    switch (behaviour) {
      case 'ok':
        return accept();
      case 'invalid-number':
        return sendJson(res, 422, { error: { code: 'InvalidNumber', message: `cannot deliver to ${String(message.to)}` } });
      case 'forbidden':
        return sendJson(res, 403, { error: { code: 'Forbidden', message: 'country not enabled' } });
      case 'insufficient-funds':
        return sendJson(res, 402, { error: { code: 'InsufficientFunds', message: 'no credit' } });
      case 'rate-limited':
        return sendJson(res, 429, { error: { code: 'RateLimited', message: 'slow down' } }, { 'retry-after': '1' });
      case 'server-error':
        return sendJson(res, 502, { error: { code: 'Transient', message: 'upstream gateway failed' } });
      case 'rejected':
        return sendJson(res, 400, { error: { code: 'Rejected', message: `refused text ${String(message.text)}` } });
    }
  }

  return {
    ...server,
    url: `${server.origin}/sms`,
    behaviours,
    messages,
    refusals,
    callback(url, body, options = {}) {
      const raw = options.rawBody ?? JSON.stringify(body);
      const timestamp = String(options.timestamp ?? Math.floor(Date.now() / 1000));
      const signature = `v1=${createHmac('sha256', options.secret ?? secret)
        .update(`${timestamp}.${raw}`)
        .digest('hex')}`;
      return {
        url,
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-smsauth-timestamp': timestamp, 'x-smsauth-signature': signature },
        body: Buffer.from(raw),
      };
    },
  };
}
