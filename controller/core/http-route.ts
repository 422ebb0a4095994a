import { hash, timingSafeEqual } from 'node:crypto';

// The shape of HTTP routes, shared by the handlers that serve them (the verifier's API, the
// controller's probes) and the node:http adapter that runs them.

/** HttpRequest is a request as handlers see it: the body read and bounded, the client named. */
export interface HttpRequest {
  method: string;
  /** The path and query as received. */
  url: string;
  path: string;
  query: URLSearchParams;
  headers: Readonly<Record<string, string | undefined>>;
  body: Buffer;
  ip: string;
  userAgent: string;
}

/** HttpResponse is a handler's answer; an object body is sent as JSON. */
export interface HttpResponse {
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
  /** Sets the content type of a string body or a stream (JSON otherwise). */
  contentType?: string;
  /** A body sent as it is produced (chunked), with backpressure: for exports of any length in flat memory. */
  stream?: AsyncIterable<string>;
  /** The answer for an error the stream raises before its first chunk (undefined: the error goes on, and the request fails). */
  streamError?: (err: unknown) => HttpResponse | undefined;
}

/** Route maps a method and a path pattern (`/v1/:ns/x`) to a handler. */
export interface Route {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH';
  pattern: string;
  /** Stable name for metrics and logs. */
  name: string;
  /** Whether the bearer token (when one is configured) is required. */
  auth: boolean;
  /**
   * Which token opens the route: the application's (the default; required when one is
   * configured) or the helpdesk's (always required). Neither token opens the other's routes.
   */
  scope?: 'application' | 'helpdesk';
  /** Largest body accepted, in bytes (default: the server's). */
  maxBodyBytes?: number;
  /** Whether the body must be JSON (Content-Type application/json). */
  json?: boolean;
  handler(req: HttpRequest, params: Readonly<Record<string, string>>): Promise<HttpResponse>;
}

/** errorBody is the JSON shape of every error: {error: {code, message, field?}}. */
export function errorBody(code: string, message: string, field?: string): { error: { code: string; message: string; field?: string } } {
  return { error: { code, message, ...(field !== undefined ? { field } : {}) } };
}

/** UP is the answer of a probe that only says the process serves. */
export const UP: HttpResponse = { status: 200, body: { status: 'ok' } };

/** probeRoutes are a kubelet's /healthz (up while the process serves) and /readyz (what ready answers). */
export function probeRoutes(ready: () => Promise<HttpResponse>): Route[] {
  return [
    { method: 'GET', pattern: '/healthz', name: 'healthz', auth: false, handler: () => Promise.resolve(UP) },
    { method: 'GET', pattern: '/readyz', name: 'readyz', auth: false, handler: ready },
  ];
}

/** tokensEqual compares a presented bearer token with the expected one in constant time. */
export function tokensEqual(presented: string, expected: string): boolean {
  return timingSafeEqual(tokenDigest(presented), tokenDigest(expected));
}

/**
 * tokenDigest is a token's SHA-256: two digests compare in constant time whatever the tokens'
 * lengths. A server digests its own tokens once and each presented token once (digestsEqual).
 */
export function tokenDigest(token: string): Buffer {
  return hash('sha256', token, 'buffer');
}

/** digestsEqual compares a presented token's digest with an expected token's digest, in constant time, as tokensEqual compares tokens. */
export function digestsEqual(presentedDigest: Buffer, expectedDigest: Buffer): boolean {
  return timingSafeEqual(presentedDigest, expectedDigest);
}
