import type { Logger } from 'pino';
import { isLoopback, listenHttp, type HttpListener, type RunningServer } from '../adapters/http-server.ts';
import type { TrustedProxies } from '../verifier/client-address.ts';
import { readiness, verifierRoutes } from '../verifier/http-api.ts';
import { probeRoutes, type Route } from '../core/http-route.ts';
import type { VerifierMetrics } from '../verifier/metrics.ts';
import type { OpenApiContract } from '../verifier/openapi-contract.ts';
import type { StateStore } from '../verifier/state-store.ts';
import type { Verifier } from '../verifier/verifier.ts';

/** VerifierServerOptions say where to listen and how to guard it. */
export interface VerifierServerOptions {
  host: string;
  port: number;
  /** Required unless host is a loopback address. */
  token?: string;
  /** The helpdesk's token: with one, the helpdesk routes are served, to it alone. */
  helpdeskToken?: string;
  /** Proxies whose X-Forwarded-For names the end user's address. */
  trustedProxies?: TrustedProxies;
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

/** VerifierDeps are what the endpoint's routes serve from. */
export interface VerifierServerDeps {
  verifier: Verifier;
  store: StateStore;
  /** docs/openapi.yaml, compiled. */
  contract: OpenApiContract;
  metrics: VerifierMetrics;
}

/** createServer starts the verification endpoint: the routes of docs/openapi.yaml on node:http. */
export async function createServer(deps: VerifierServerDeps, options: VerifierServerOptions): Promise<RunningServer> {
  refuseInsecure(options.host, options.token);
  const listener = await listenHttp({
    host: options.host,
    port: options.port,
    ...(options.headersTimeoutMs !== undefined ? { headersTimeoutMs: options.headersTimeoutMs } : {}),
    ...(options.requestTimeoutMs !== undefined ? { requestTimeoutMs: options.requestTimeoutMs } : {}),
  });
  return serveVerifier(listener, deps, options);
}

/** serveVerifier serves the endpoint's routes on a listener bound earlier (which answered 503 meanwhile). */
export function serveVerifier(
  listener: HttpListener,
  deps: VerifierServerDeps,
  options: Pick<VerifierServerOptions, 'token' | 'helpdeskToken' | 'trustedProxies' | 'log'>,
  extraRoutes: readonly Route[] = [],
): RunningServer {
  refuseInsecure(new URL(listener.url).hostname.replace(/^\[|\]$/g, ''), options.token);
  const routes = verifierRoutes({
    verifier: deps.verifier,
    store: deps.store,
    contract: deps.contract,
    registry: deps.metrics.registry,
    helpdesk: options.helpdeskToken !== undefined,
    ...(options.trustedProxies !== undefined ? { trustedProxies: options.trustedProxies } : {}),
  });
  return listener.serve([...routes, ...extraRoutes], {
    ...(options.token !== undefined ? { token: options.token } : {}),
    ...(options.helpdeskToken !== undefined ? { helpdeskToken: options.helpdeskToken } : {}),
    log: options.log,
    onResponse: (route, status) => deps.metrics.requests.inc({ route, status: String(status) }),
  });
}

function refuseInsecure(host: string, token: string | undefined): void {
  if (!isLoopback(host) && (token === undefined || token.length < 16)) {
    throw new InsecureListenError(
      `listening on ${host} needs a bearer token of at least 16 characters (--token-file or SMSAUTH_TOKEN); only loopback may go without`,
    );
  }
}

/**
 * verifierProbeRoutes are /healthz and /readyz alone, for a listener the kubelet reaches (the endpoint
 * itself listens on the pod's loopback): they tell nothing but up and ready.
 */
export function verifierProbeRoutes(verifier: Verifier, store: StateStore): Route[] {
  return probeRoutes(() => readiness(verifier, store));
}
