import { createServer as createNodeServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { isIPv4, type AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { errorBody, tokenDigest, digestsEqual, type HttpRequest, type HttpResponse, type Route } from '../core/http-route.ts';
import { errorKind } from '../core/error-fields.ts';

/** ListenOptions say where to listen and how long clients get to send a request. */
export interface ListenOptions {
  host: string;
  port: number;
  /** Time to receive the request headers (slow clients). */
  headersTimeoutMs?: number;
  /** Time to receive the whole request. */
  requestTimeoutMs?: number;
  /** Serve HTTPS with this certificate and key (PEM) instead of HTTP. */
  tls?: TlsPair;
}

/** A serving certificate and its private key, PEM. */
export interface TlsPair {
  cert: string;
  key: string;
}

/** TlsPairError is a certificate and key that are not a PEM certificate and its private key (or do not match). */
export class TlsPairError extends Error {
  override readonly name = 'TlsPairError';
  readonly code = 'ERR_TLS_PAIR';
}

function tlsPairError(err: unknown): TlsPairError {
  return new TlsPairError('the certificate and key are not a PEM certificate and its private key', { cause: err });
}

/** ServeOptions configure the routes' guard, limits and reporting. */
export interface ServeOptions {
  /** When set, routes with auth require `Authorization: Bearer <token>`. */
  token?: string;
  /** The helpdesk's token: the only one that opens helpdesk routes, and one that opens no other. */
  helpdeskToken?: string;
  maxBodyBytes?: number;
  log: Logger;
  /** Called after each response, for metrics. */
  onResponse?: (route: string, status: number) => void;
}

/** HttpServerOptions configure the listener and its limits. */
export type HttpServerOptions = ListenOptions & ServeOptions;

/**
 * HttpListener holds its address from the start, before it has routes to serve: a command binds
 * first (a port in use is found at once) and serves once it is wired; until then every request is
 * answered 503 with Retry-After.
 */
export interface HttpListener {
  url: string;
  port: number;
  /** serve starts dispatching to the routes; call it once. */
  serve(routes: readonly Route[], options: ServeOptions): RunningServer;
  /** close stops listening (see RunningServer.close). */
  close(graceMs?: number): Promise<void>;
  /** setTls replaces the serving certificate of an HTTPS listener for new connections (a rotated Secret); TlsPairError when the pair is not one. */
  setTls(pair: TlsPair): void;
}

/** RunningServer is a listening server. */
export interface RunningServer {
  url: string;
  port: number;
  /** close stops accepting, lets requests in flight finish (up to graceMs) and closes idle connections. */
  close(graceMs?: number): Promise<void>;
}

/** ListenError is a server that could not listen: the address in use, not allowed, or not this machine's. */
export class ListenError extends Error {
  override readonly name = 'ListenError';
  readonly code = 'ERR_LISTEN';
  readonly host: string;
  readonly port: number;
  /** The system's code: EADDRINUSE, EACCES, EADDRNOTAVAIL, ENOTFOUND… */
  readonly reason: string;

  constructor(host: string, port: number, reason: string, options?: { cause?: unknown }) {
    super(listenProblem(host, port, reason), options);
    this.host = host;
    this.port = port;
    this.reason = reason;
  }
}

function listenProblem(host: string, port: number, reason: string): string {
  const where = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  if (reason === 'EADDRINUSE') return `${where} is already in use by another process`;
  if (reason === 'EACCES') return `not allowed to listen on ${where}${port < 1024 ? ' (ports below 1024 need privileges)' : ''}`;
  if (reason === 'EADDRNOTAVAIL' || reason === 'ENOTFOUND' || reason === 'EAI_AGAIN') return `${host} is not an address of this machine`;
  return `cannot listen on ${where} (${reason})`;
}

/** isLoopback tells whether a listen address is reachable from this host only. */
export function isLoopback(host: string): boolean {
  // An address, not a name that starts like one (127.example.com resolves anywhere).
  return host === '::1' || host === 'localhost' || (isIPv4(host) && host.startsWith('127.'));
}

interface CompiledRoute {
  route: Route;
  segments: string[];
  /** One character per segment, 1 for a literal and 0 for a parameter: of two routes that match a path, the greater wins (the leftmost literal first, as routers do). */
  rank: string;
}

/** startHttpServer listens and dispatches to the routes; expected failures become JSON errors with a field where one is at fault. */
export async function startHttpServer(routes: readonly Route[], options: HttpServerOptions): Promise<RunningServer> {
  const listener = await listenHttp(options);
  return listener.serve(routes, options);
}

/** listenHttp binds the address (ListenError when it cannot) and answers 503 until serve is called. */
export async function listenHttp(options: ListenOptions): Promise<HttpListener> {
  const inFlight = new Set<Promise<void>>();
  let log: Logger | undefined;
  const answers = new AnswerBatch((err) => log?.error({ err: errorKind(err) }, 'answer not written'));
  let dispatch: (req: IncomingMessage, res: ServerResponse) => Promise<void> = (req, res) => {
    req.resume();
    send(answers, res, { status: 503, headers: { 'retry-after': '1' }, body: errorBody('starting', 'the server is starting; try again in a moment') });
    return Promise.resolve();
  };

  const headersTimeout = options.headersTimeoutMs ?? 10_000;
  const requestTimeout = Math.max(options.requestTimeoutMs ?? 15_000, headersTimeout);
  const serverOptions = {
    requestTimeout,
    headersTimeout,
    keepAliveTimeout: 5000,
    // Node checks both timeouts on this interval (30 s by default, which would let a slow client
    // hold a connection for up to 40 s past a 10 s header timeout).
    connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(headersTimeout / 4))),
  };
  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    answers.arrived(res);
    const p = dispatch(req, res).catch((err: unknown) => {
      log?.error({ err: errorKind(err) }, 'request failed');
      if (!res.headersSent) send(answers, res, { status: 500, body: errorBody('internal', 'internal error') });
      else res.destroy();
    });
    const tracked = p.finally(() => inFlight.delete(tracked));
    inFlight.add(tracked);
  };
  const tls = options.tls;
  const server = (() => {
    if (tls === undefined) return createNodeServer(serverOptions, onRequest);
    try {
      return createHttpsServer({ ...serverOptions, cert: tls.cert, key: tls.key, minVersion: 'TLSv1.2' }, onRequest);
    } catch (err) {
      throw tlsPairError(err);
    }
  })();

  await new Promise<void>((resolve, reject) => {
    const failed = (err: NodeJS.ErrnoException): void => reject(new ListenError(options.host, options.port, err.code ?? err.name, { cause: err }));
    server.once('error', failed);
    server.listen(options.port, options.host, () => {
      server.off('error', failed);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const hostForUrl = options.host.includes(':') ? `[${options.host}]` : options.host;
  const url = `${options.tls === undefined ? 'http' : 'https'}://${hostForUrl}:${port}`;
  const close = async (graceMs = 10_000): Promise<void> => {
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    const timer = setTimeout(() => server.closeAllConnections(), graceMs);
    await Promise.allSettled([...inFlight]);
    await answers.flushed();
    server.closeIdleConnections();
    await closed;
    clearTimeout(timer);
  };
  return {
    url,
    port,
    serve(routes, serveOptions) {
      log = serveOptions.log;
      dispatch = routeHandler(routes, serveOptions, answers);
      return { url, port, close };
    },
    close,
    setTls(pair) {
      if (!('setSecureContext' in server)) throw new Error('setTls on a plain HTTP listener');
      try {
        server.setSecureContext({ cert: pair.cert, key: pair.key });
      } catch (err) {
        throw tlsPairError(err);
      }
    },
  };
}

function routeHandler(routes: readonly Route[], options: ServeOptions, answers: AnswerBatch): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  // Routes by their number of segments: a path is compared with those of its length alone.
  const bySize = new Map<number, CompiledRoute[]>();
  for (const route of routes) {
    const segments = route.pattern.split('/').slice(1);
    const sized = bySize.get(segments.length) ?? [];
    sized.push({ route, segments, rank: segments.map((seg) => (seg.startsWith(':') ? '0' : '1')).join('') });
    bySize.set(segments.length, sized);
  }
  const maxBody = options.maxBodyBytes ?? 16 * 1024;
  const tokens = tokenDigests(options);
  // A failing report (metrics) must not cost the client its answer, written or waiting to be.
  const report = (route: string, status: number): void => {
    try {
      options.onResponse?.(route, status);
    } catch (err) {
      options.log.warn({ err: errorKind(err), route }, 'response not reported');
    }
  };
  return async (req, res) => {
    const method = req.method ?? 'GET';
    const url = req.url ?? '/';
    const qIndex = url.indexOf('?');
    const rawPath = qIndex === -1 ? url : url.slice(0, qIndex);
    let routeName = 'unknown';
    const finish = (r: HttpResponse): void => {
      send(answers, res, r);
      report(routeName, r.status);
    };
    const matched = matchRoute(bySize, method, rawPath);
    if ('status' in matched) return finish(matched);
    const { route, params } = matched;
    routeName = route.name;
    const admitted = await admit(req, route, tokens, maxBody);
    if (!Buffer.isBuffer(admitted)) return finish(admitted);
    const response = await route.handler(
      requestOf(req, method, url, rawPath, new URLSearchParams(qIndex === -1 ? '' : url.slice(qIndex + 1)), admitted),
      params,
    );
    if (response.stream === undefined) return finish(response);
    // The first chunk is read before the status goes out: a stream that fails at once (its store
    // unreachable) still gets the answer its route gives for that error, not a cut connection.
    const chunks = response.stream[Symbol.asyncIterator]();
    let first: IteratorResult<string>;
    try {
      first = await chunks.next();
    } catch (err) {
      const answer = response.streamError?.(err);
      if (answer === undefined) throw err;
      return finish(answer);
    }
    await sendStream(res, response, first, chunks);
    report(routeName, response.status);
  };
}

/** matchRoute finds the route of a method and path and its parameters, or the 400, 404 or 405 that answers instead. */
function matchRoute(
  bySize: ReadonlyMap<number, readonly CompiledRoute[]>,
  method: string,
  rawPath: string,
): { route: Route; params: Record<string, string> } | HttpResponse {
  const decoded = rawPath.split('/');
  decoded.shift();
  for (let i = 0; i < decoded.length; i++) {
    const segment = decoded[i]!;
    if (!segment.includes('%')) continue;
    try {
      decoded[i] = decodeURIComponent(segment);
    } catch {
      return { status: 400, body: errorBody('invalid_path', 'the path has a malformed percent-encoding') };
    }
  }
  // /v1/callbacks/acme/verifications is the callback of an account named verifications, not a start in namespace callbacks.
  const sized = bySize.get(decoded.length) ?? [];
  let match: CompiledRoute | undefined;
  let found = false;
  for (const c of sized) {
    if (!isPathOfRoute(c, decoded)) continue;
    found = true;
    if (c.route.method === method && (match === undefined || c.rank > match.rank)) match = c;
  }
  // The path is not repeated: a client that put a number or a code in it would find it in the answer (and in its logs).
  if (!found) return { status: 404, body: errorBody('not_found', `no route for ${method} with ${decoded.length} path segments; see docs/openapi.yaml`) };
  if (match === undefined) {
    const allowed = new Set<string>();
    for (const c of sized) if (isPathOfRoute(c, decoded)) allowed.add(c.route.method);
    const allow = [...allowed].join(', ');
    return { status: 405, headers: { allow }, body: errorBody('method_not_allowed', `${method} is not allowed here; allowed: ${allow}`) };
  }
  const params: Record<string, string> = {};
  match.segments.forEach((seg, i) => {
    if (seg.startsWith(':')) params[seg.slice(1)] = decoded[i]!;
  });
  return { route: match.route, params };
}

/** isPathOfRoute tells whether a route's pattern matches a path's decoded segments (as many as the pattern's). */
function isPathOfRoute(c: CompiledRoute, decoded: readonly string[]): boolean {
  return c.segments.every((seg, i) => seg.startsWith(':') || seg === decoded[i]);
}

/** admit checks what comes before the handler (the token, the body's size and type) and gives the body read, or the refusal. */
async function admit(req: IncomingMessage, route: Route, tokens: TokenDigests, maxBody: number): Promise<Buffer | HttpResponse> {
  if (route.auth) {
    const presented = /^Bearer (.+)$/i.exec(req.headers.authorization ?? '')?.[1] ?? '';
    const refusal = tokenRefusal(route.scope ?? 'application', presented, tokens);
    if (refusal !== undefined) {
      req.resume();
      return { status: 401, headers: { 'www-authenticate': 'Bearer' }, body: errorBody('unauthorized', refusal, 'Authorization') };
    }
  }
  const limit = route.maxBodyBytes ?? maxBody;
  const tooLarge: HttpResponse = { status: 413, headers: { connection: 'close' }, body: errorBody('body_too_large', `the body is over ${limit} bytes`) };
  if (Number(req.headers['content-length'] ?? '0') > limit) {
    req.resume();
    return tooLarge;
  }
  const body = await readBody(req, limit);
  if (body === undefined) return tooLarge;
  if (route.json === true && body.length > 0) {
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/json') return { status: 415, body: errorBody('unsupported_media_type', 'send the body as application/json', 'Content-Type') };
  }
  return body;
}

/** requestOf is the request as handlers see it. */
function requestOf(req: IncomingMessage, method: string, url: string, path: string, query: URLSearchParams, body: Buffer): HttpRequest {
  const headers: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(req.headers)) headers[k] = Array.isArray(v) ? v.join(', ') : v;
  return { method, url, path, query, headers, body, ip: req.socket.remoteAddress ?? '', userAgent: (req.headers['user-agent'] ?? '').slice(0, 256) };
}

/** TokenDigests are the digests of the tokens a server expects, taken once (see tokenDigest). */
interface TokenDigests {
  token?: Buffer;
  helpdeskToken?: Buffer;
}

/** tokenDigests digests the tokens a server is given, when it starts serving. */
function tokenDigests(options: ServeOptions): TokenDigests {
  return {
    ...(options.token !== undefined ? { token: tokenDigest(options.token) } : {}),
    ...(options.helpdeskToken !== undefined ? { helpdeskToken: tokenDigest(options.helpdeskToken) } : {}),
  };
}

/**
 * tokenRefusal says why a bearer token does not open a route (undefined: it does). Application
 * routes need the application's token when one is configured; helpdesk routes need the helpdesk's,
 * always; and the helpdesk's token opens no application route, even one open without a token.
 */
function tokenRefusal(scope: 'application' | 'helpdesk', presented: string, expected: TokenDigests): string | undefined {
  if (expected.token === undefined && expected.helpdeskToken === undefined) return scope === 'helpdesk' ? 'the helpdesk token is required' : undefined;
  const digest = tokenDigest(presented);
  if (scope === 'helpdesk') {
    return expected.helpdeskToken !== undefined && digestsEqual(digest, expected.helpdeskToken) ? undefined : 'the helpdesk token is required';
  }
  if (expected.helpdeskToken !== undefined && presented !== '' && digestsEqual(digest, expected.helpdeskToken))
    return 'the helpdesk token does not open application routes';
  if (expected.token !== undefined && !digestsEqual(digest, expected.token)) return 'a valid bearer token is required';
  return undefined;
}

/** sendStream sends a streamed body chunk by chunk (the first one read already), waiting for the client to drain; a client gone stops it. */
async function sendStream(res: ServerResponse, r: HttpResponse, first: IteratorResult<string>, rest: AsyncIterator<string>): Promise<void> {
  res.writeHead(r.status, {
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    'content-type': r.contentType ?? 'application/octet-stream',
    ...r.headers,
  });
  for (let next = first; next.done !== true; next = await rest.next()) {
    const chunk = next.value;
    if (res.destroyed) {
      await rest.return?.();
      return;
    }
    if (!res.write(chunk))
      await new Promise<void>((resolve) => {
        const done = (): void => {
          res.off('drain', done);
          res.off('close', done);
          resolve();
        };
        res.on('drain', done);
        res.on('close', done);
      });
    // A client gone while we waited: nothing more is read.
    if (res.destroyed) {
      await rest.return?.();
      return;
    }
  }
  res.end();
}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (chunk: Buffer) => {
      if (over) return;
      size += chunk.length;
      if (size > limit) {
        over = true;
        chunks.length = 0;
        resolve(undefined);
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (!over) resolve(Buffer.concat(chunks));
    });
    req.on('error', reject);
  });
}

/**
 * AnswerBatch ends together the answers decided in the event-loop turn their requests arrived in
 * (the turn ends at its check phase, where a setImmediate ends them), rather than each as soon as
 * it is ready. Those are the answers with no I/O on the way: refusals, validation errors, reads from
 * memory. A client on the same machine (the application beside the sidecar; a load generator) is
 * then woken about once per turn rather than once per answer: a server answering such requests one
 * by one spent more of its CPU per request in the kernel, waking its idle client, than in any part of
 * the verifier's own work (docs/benchmarks.md). An answer decided in a later turn (after a store's
 * reply) is ended at once, as before: the answers of one store reply leave together already, and
 * deferring them measured worse on Redis. An answer waits at most for the rest of its turn's
 * requests. WARNING: until its end, Node counts a response as not yet sent (writeHead only stores
 * the head), so an error Node answers itself on that socket in between (a malformed request
 * pipelined behind it) goes out first.
 */
export class AnswerBatch {
  /** onError hears of an answer that could not be ended (its response is then destroyed). */
  private readonly onError: (err: unknown) => void;

  constructor(onError: (err: unknown) => void) {
    this.onError = onError;
  }

  /** The turn now receiving requests (a token), until its end. */
  private turn: object | undefined;
  private readonly turnOf = new WeakMap<ServerResponse, object>();
  private pending: { res: ServerResponse; payload: string }[] = [];
  private waiting: (() => void)[] = [];

  /** arrived notes that a request came in this turn. */
  arrived(res: ServerResponse): void {
    if (this.turn === undefined) {
      this.turn = {};
      setImmediate(this.flush);
    }
    this.turnOf.set(res, this.turn);
  }

  /** end ends a response whose head writeHead has stored, with its body: at the end of this turn if its request came in it, else now. */
  end(res: ServerResponse, payload: string): void {
    if (this.turn !== undefined && this.turnOf.get(res) === this.turn) this.pending.push({ res, payload });
    else res.end(payload);
  }

  /** flushed resolves once every answer handed to end so far has been ended (handed to res.end). */
  flushed(): Promise<void> {
    return this.pending.length === 0 ? Promise.resolve() : new Promise((resolve) => this.waiting.push(resolve));
  }

  private readonly flush = (): void => {
    const answers = this.pending;
    const waiting = this.waiting;
    this.turn = undefined;
    this.pending = [];
    this.waiting = [];
    for (const { res, payload } of answers) {
      try {
        res.end(payload);
      } catch (err) {
        // One answer that cannot be ended holds up none of the others.
        this.onError(err);
        res.destroy();
      }
    }
    for (const resolve of waiting) resolve();
  };
}

function send(answers: AnswerBatch, res: ServerResponse, r: HttpResponse): void {
  const headers: Record<string, string> = { 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', ...r.headers };
  let payload = '';
  if (r.body !== undefined) {
    if (typeof r.body === 'string' && r.contentType !== undefined) {
      payload = r.body;
      headers['content-type'] = r.contentType;
    } else {
      payload = JSON.stringify(r.body);
      headers['content-type'] = 'application/json; charset=utf-8';
    }
  }
  headers['content-length'] = String(Buffer.byteLength(payload));
  res.writeHead(r.status, headers);
  answers.end(res, payload);
}
