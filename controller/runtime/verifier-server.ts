import type { Logger } from 'pino';
import { isLoopback, startHttpServer, type RunningServer } from '../adapters/http-server.ts';
import { verifierRoutes } from '../verifier/http-api.ts';
import type { VerifierMetrics } from '../verifier/metrics.ts';
import type { OperationValidator } from '../verifier/openapi-validators.ts';
import type { StateStore } from '../verifier/state-store.ts';
import type { Verifier } from '../verifier/verifier.ts';

/** VerifierServerOptions say where to listen and how to guard it. */
export interface VerifierServerOptions {
  host: string;
  port: number;
  /** Required unless host is a loopback address. */
  token?: string;
  /** Time a client gets to send its request headers (default 10 s), then 408 and the connection closes. */
  headersTimeoutMs?: number;
  /** Time a client gets to send the whole request (default 15 s). */
  requestTimeoutMs?: number;
  log: Logger;
}

/** InsecureListenError refuses to serve off loopback without a bearer token. */
export class InsecureListenError extends Error {
  override readonly name = 'InsecureListenError';
  readonly code = 'ERR_INSECURE_LISTEN';
}

/** createServer starts the verification endpoint: the routes of docs/openapi.yaml on node:http. */
export async function createServer(
  deps: { verifier: Verifier; store: StateStore; validators: ReadonlyMap<string, OperationValidator>; metrics: VerifierMetrics },
  options: VerifierServerOptions,
): Promise<RunningServer> {
  if (!isLoopback(options.host) && (options.token === undefined || options.token.length < 16)) {
    throw new InsecureListenError(`listening on ${options.host} needs a bearer token of at least 16 characters (--token-file or SMSAUTH_TOKEN); only loopback may go without`);
  }
  const routes = verifierRoutes({ verifier: deps.verifier, store: deps.store, validators: deps.validators, registry: deps.metrics.registry });
  return startHttpServer(routes, {
    host: options.host,
    port: options.port,
    ...(options.token !== undefined ? { token: options.token } : {}),
    ...(options.headersTimeoutMs !== undefined ? { headersTimeoutMs: options.headersTimeoutMs } : {}),
    ...(options.requestTimeoutMs !== undefined ? { requestTimeoutMs: options.requestTimeoutMs } : {}),
    log: options.log,
    onResponse: (route, status) => deps.metrics.requests.inc({ route, status: String(status) }),
  });
}
