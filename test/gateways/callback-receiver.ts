import { request as httpRequest, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { CallbackRequest } from '../../controller/gateways/gateway.ts';

/**
 * CallbackReceiver stands in for the verifier's callback route: a real HTTP server whose requests
 * are turned into CallbackRequests with the public URL the provider called.
 */
export interface CallbackReceiver {
  origin: string;
  received: CallbackRequest[];
  close(): Promise<void>;
}

/** startCallbackReceiver listens on 127.0.0.1:0 and keeps every request it receives. */
export async function startCallbackReceiver(): Promise<CallbackReceiver> {
  const received: CallbackRequest[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const headers: Record<string, string | undefined> = {};
      for (const [k, v] of Object.entries(req.headers)) headers[k] = Array.isArray(v) ? v.join(', ') : v;
      received.push({ url: `http://${req.headers.host ?? ''}${req.url ?? '/'}`, method: req.method ?? 'GET', headers, body: Buffer.concat(chunks) });
      res.writeHead(204);
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    received,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** deliver sends a CallbackRequest over HTTP, as the provider would, and resolves with the status. */
export function deliver(callback: CallbackRequest): Promise<number> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(callback.headers)) if (v !== undefined) headers[k] = v;
    const req = httpRequest(callback.url, { method: callback.method, headers: { ...headers, 'content-length': String(callback.body.length) } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(callback.body);
  });
}
