import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** RecordedRequest is a request a fake provider received, body read in full. */
export interface RecordedRequest {
  method: string;
  /** Path and query, as sent. */
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

/** FakeServer is a local HTTP server on 127.0.0.1 with an ephemeral port. */
export interface FakeServer {
  /** http://127.0.0.1:PORT */
  origin: string;
  requests: RecordedRequest[];
  close(): Promise<void>;
}

/** Handler answers one recorded request; leaving `res` unanswered makes the request hang. */
export type Handler = (req: RecordedRequest, res: ServerResponse) => void;

/** startFakeServer listens on 127.0.0.1:0 and records every request before handing it to the handler. */
export async function startFakeServer(handler: Handler): Promise<FakeServer> {
  const requests: RecordedRequest[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const recorded: RecordedRequest = {
        method: req.method ?? 'GET',
        url: req.url ?? '/',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      requests.push(recorded);
      try {
        handler(recorded, res);
      } catch (err) {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`fake server bug: ${String(err)}`);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** sendJson answers with a JSON body and extra headers. */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)), ...headers });
  res.end(text);
}

/** basicCredentials reads an HTTP Basic Authorization header; undefined when absent or malformed. */
export function basicCredentials(header: string | undefined): { user: string; password: string } | undefined {
  if (header === undefined || !header.startsWith('Basic ')) return undefined;
  const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0 ? undefined : { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/**
 * Behaviour is what a fake provider does with the next message request: answer normally, answer
 * with one of the provider's documented errors, answer late, never answer, or drop the connection.
 */
export type Behaviour =
  | 'ok'
  | 'invalid-number'
  | 'forbidden'
  | 'insufficient-funds'
  | 'rate-limited'
  | 'server-error'
  | 'rejected'
  | 'hang'
  | 'reset'
  | { slowMs: number }
  | { status: number; body: unknown; headers?: Record<string, string> };

/** BehaviourQueue hands out queued behaviours in order, then 'ok'. */
export class BehaviourQueue {
  private readonly queue: Behaviour[] = [];
  /** then queues behaviours for the next message requests. */
  then(...next: Behaviour[]): void {
    this.queue.push(...next);
  }
  /** next takes the behaviour for a message request. */
  next(): Behaviour {
    return this.queue.shift() ?? 'ok';
  }
}

/** misbehave carries out the transport-level behaviours; true when it handled the response. */
export function misbehave(behaviour: Behaviour, res: ServerResponse, answer: () => void): boolean {
  if (behaviour === 'hang') return true;
  if (behaviour === 'reset') {
    res.socket?.destroy();
    return true;
  }
  if (typeof behaviour === 'object' && 'slowMs' in behaviour) {
    setTimeout(answer, behaviour.slowMs);
    return true;
  }
  if (typeof behaviour === 'object') {
    sendJson(res, behaviour.status, behaviour.body, behaviour.headers);
    return true;
  }
  return false;
}
