import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Signal, waitUntil } from './wait.ts';

// A receiver of smsauth's events, as an application would write one, with a Standard Webhooks
// verifier written from the specification (github.com/standard-webhooks/standard-webhooks,
// spec/standard-webhooks.md, "Verifying webhook authenticity"), not from smsauth's signer:
// - the secret is whsec_ + base64; the key is the decoded bytes;
// - the signed content is `${webhook-id}.${webhook-timestamp}.${body}`, HMAC-SHA256, base64;
// - webhook-signature is a space-delimited list of `v1,<base64>` (other versions ignored), one of
//   which must match, compared in constant time;
// - webhook-timestamp (integer seconds) must be within the tolerance of the receiver's clock.

/** WEBHOOK_TOLERANCE_S is the replay window a receiver allows around its own clock (the spec's examples use five minutes). */
const WEBHOOK_TOLERANCE_S = 5 * 60;

/** verifyStandardWebhook throws unless the headers sign the body with the secret; it returns the parsed body. */
export function verifyStandardWebhook(secret: string, headers: Record<string, string | undefined>, body: string, nowSec: number): unknown {
  const id = headers['webhook-id'];
  const timestamp = headers['webhook-timestamp'];
  const signatures = headers['webhook-signature'];
  if (id === undefined || timestamp === undefined || signatures === undefined) throw new Error('missing webhook-id, webhook-timestamp or webhook-signature');
  if (!/^\d+$/.test(timestamp)) throw new Error('webhook-timestamp is not an integer');
  if (Math.abs(nowSec - Number(timestamp)) > WEBHOOK_TOLERANCE_S) throw new Error('webhook-timestamp outside the tolerance');
  if (!secret.startsWith('whsec_')) throw new Error('not a whsec_ secret');
  const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
  const expected = createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest();
  const matched = signatures.split(' ').some((s) => {
    const [version, value] = s.split(',', 2);
    if (version !== 'v1' || value === undefined) return false;
    const given = Buffer.from(value, 'base64');
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
  if (!matched) throw new Error('no signature matches');
  return JSON.parse(body);
}

/** Received is one delivery the receiver accepted: the headers, the raw body and the event. */
export interface Received {
  id: string;
  timestamp: number;
  raw: string;
  event: { id: string; type: string; source: string; subject: string; time: string; specversion: string; datacontenttype: string; data: any };
  contentType: string;
}

/** Receiver is an HTTP endpoint on a loopback port that can go down and come back on the same port. */
export interface Receiver {
  url: string;
  received: Received[];
  /** Deliveries refused (a bad signature): each a reason. */
  refused: string[];
  /** Requests that reached it, accepted or not. */
  requests: number;
  /** refuseOnce answers the next delivery whose event matches 503 with Retry-After (1 s unless told), as a receiver under load would. */
  refuseOnce(match: (event: Received['event']) => boolean, retryAfterSeconds?: number): void;
  /** Deliveries answered 503 by refuseOnce. */
  unavailable: Received['event'][];
  /** waitFor resolves once at least n deliveries were accepted (it fails after 20 s). */
  waitFor(n: number): Promise<Received[]>;
  down(): Promise<void>;
  up(): Promise<void>;
  close(): Promise<void>;
}

/** startReceiver serves a receiver that verifies each delivery with the secret and answers 204 (or 401 when the signature fails). */
export async function startReceiver(secret: string, options: { clock?: () => number } = {}): Promise<Receiver> {
  const clock = options.clock ?? Date.now;
  const received: Received[] = [];
  const refused: string[] = [];
  const unavailable: Received['event'][] = [];
  const refusals: { match: (event: Received['event']) => boolean; retryAfterSeconds: number }[] = [];
  const accepted = new Signal();
  let requests = 0;
  let port = 0;
  let server: Server | undefined;
  const serve = (): Server =>
    createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        requests += 1;
        const raw = Buffer.concat(chunks).toString('utf8');
        const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : v]));
        try {
          const event = verifyStandardWebhook(secret, headers, raw, Math.floor(clock() / 1000)) as Received['event'];
          const refusal = refusals.findIndex((r) => r.match(event));
          if (refusal >= 0) {
            const [{ retryAfterSeconds }] = refusals.splice(refusal, 1) as [(typeof refusals)[number]];
            unavailable.push(event);
            res.writeHead(503, { 'retry-after': String(retryAfterSeconds) }).end();
            return;
          }
          received.push({
            id: headers['webhook-id']!,
            timestamp: Number(headers['webhook-timestamp']),
            raw,
            event,
            contentType: headers['content-type'] ?? '',
          });
          res.writeHead(204).end();
          accepted.fire();
        } catch (err) {
          refused.push((err as Error).message);
          res.writeHead(401).end();
        }
      });
    });
  const listen = async (): Promise<void> => {
    server = serve();
    await new Promise<void>((resolve, reject) => {
      server!.once('error', reject);
      server!.listen(port, '127.0.0.1', () => resolve());
    });
    port = (server.address() as AddressInfo).port;
  };
  const stop = async (): Promise<void> => {
    const s = server;
    server = undefined;
    if (s === undefined) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  };
  await listen();
  return {
    url: `http://127.0.0.1:${port}/hooks/smsauth`,
    received,
    refused,
    unavailable,
    refuseOnce(match, retryAfterSeconds = 1) {
      refusals.push({ match, retryAfterSeconds });
    },
    get requests() {
      return requests;
    },
    // Bounded: a delivery that never comes fails its test instead of holding the run.
    waitFor: (n) =>
      waitUntil(
        `${n} deliveries (${received.length} so far)`,
        () => (received.length >= n ? received : undefined),
        () => accepted.next(),
      ),
    down: stop,
    up: listen,
    close: stop,
  };
}
