import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { stderrLog } from '../adapters/log-stream.ts';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { errorFields } from '../core/error-fields.ts';
import { packageRoot, readSchemaSet } from '../adapters/files.ts';
import type { HttpListener, TlsPair } from '../adapters/http-server.ts';
import { systemClock } from '../core/clock.ts';
import { probeRoutes, UP, type HttpRequest, type HttpResponse } from '../core/http-route.ts';
import { connectCluster, loadKubeConfig } from '../adapters/kubernetes.ts';
import type { LeaseClient } from '../adapters/lease-client.ts';
import { createDirectory } from '../directories/create-directory.ts';
import { SmsauthController } from '../kube/controller.ts';
import { DirectoryPool } from '../runtime/directory-pool.ts';
import { GatewayPool } from '../runtime/gateway-pool.ts';
import { metricsGuard } from '../runtime/metrics-auth.ts';
import { createGateway } from '../gateways/create-gateway.ts';
import { proxyFetch } from '../gateways/proxy-fetch.ts';
import { LeaderElector } from '../kube/leader-election.ts';
import { registerLeaderElectionMetrics } from '../kube/prometheus-metrics.ts';
import { createSchemaValidator } from '../validate/schema-validator.ts';
import { type CliIo, type LogLevel } from './cli-io.ts';
import { reloadServingCertificate } from './serving-cert.ts';
import { requireReachableCluster, untilSignalled, type Cleanup } from './startup.ts';

/** ControllerCommandOptions are `smsauth controller`'s checked command line. */
export interface ControllerCommandOptions {
  workers: number;
  requestTimeoutMs: number;
  logLevel: LogLevel;
  leaderElect: boolean;
  kubeconfig?: string;
  namespace?: string;
  leaderElectionNamespace?: string;
  /** --metrics-secure: the certificate folder and the pair read at start; /metrics then reviews each caller. */
  metricsTls?: { certDir: string; pair: TlsPair };
}

/**
 * serveController wires `smsauth controller` behind its probe and metrics listeners, bound already,
 * runs until SIGTERM (or lost leadership: exit 1) and returns the exit status.
 */
export async function serveController(
  options: ControllerCommandOptions,
  listeners: { probes: HttpListener | undefined; metrics: HttpListener | undefined },
  io: CliIo,
  cleanup: Cleanup,
): Promise<number> {
  const log = pino({ level: options.logLevel }, stderrLog());
  const identity = `${hostname()}_${randomBytes(4).toString('hex')}`;
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const validator = createSchemaValidator(await readSchemaSet(join(packageRoot(), 'schemas')));
  const cluster = connectCluster(loadKubeConfig(options.kubeconfig), { requestTimeoutMs: options.requestTimeoutMs });
  const directories = new DirectoryPool(createDirectory, log);
  // Gateways only to check the credentials of accounts with spec.credentialCheck: the controller sends nothing.
  const gateways = new GatewayPool((gw, credentials) => createGateway(gw, credentials, { logger: log, proxyFetch }), log);
  const controller = new SmsauthController(cluster, {
    ...(options.namespace !== undefined ? { namespace: options.namespace } : {}),
    identity,
    log,
    registry,
    validator,
    workers: options.workers,
    directories,
    gateways,
  });

  const guard = options.metricsTls === undefined ? undefined : metricsGuard(cluster.reviewAccess, systemClock, log);
  if (options.metricsTls !== undefined && listeners.metrics !== undefined)
    await reloadServingCertificate(options.metricsTls.certDir, '--metrics-cert-dir', listeners.metrics, options.metricsTls.pair, log, cleanup);
  const { probes, metrics } = serveProbes(listeners, controller, registry, log, guard);
  // Signals are heard from before the first line out: whoever reads it may stop the process at once.
  let stopping = false;
  const signalled = untilSignalled(() => {
    stopping = true;
  });
  io.stdout(`${JSON.stringify({ event: 'listening', identity, probes: probes?.url ?? null, metrics: metrics?.url ?? null })}\n`);

  // Once started, the informers ride out outages of the API server.
  await requireReachableCluster(cluster, options.requestTimeoutMs);
  await controller.watch();
  log.info({ identity }, 'caches synced');
  const lead = (): void => {
    io.stdout(`${JSON.stringify({ event: 'leading', identity })}\n`);
    controller.run();
  };
  let elector: LeaderElector | undefined;
  if (stopping) {
    // Stopped while the caches synced: nothing was led, nothing to hand over.
  } else if (options.leaderElect) {
    elector = electLeader(
      cluster.lease(options.leaderElectionNamespace ?? process.env.POD_NAMESPACE ?? 'default', LEASE_NAME),
      identity,
      registry,
      log,
      io,
      lead,
    );
  } else {
    lead();
  }
  await signalled;
  // Within 30 s: finish keys in flight and hand over the Lease; the caller closes the servers.
  await controller.stop(20_000);
  await elector?.release();
  return 0;
}

const LEASE_NAME = 'smsauth-controller';

/** serveProbes serves /healthz and /readyz (ready once the caches synced), and /metrics (behind the guard, when secure), on their listeners. */
function serveProbes(
  listeners: { probes: HttpListener | undefined; metrics: HttpListener | undefined },
  controller: SmsauthController,
  registry: Registry,
  log: Logger,
  guard: ((req: HttpRequest) => Promise<HttpResponse | undefined>) | undefined,
): { probes: { url: string } | undefined; metrics: { url: string } | undefined } {
  const probes = listeners.probes?.serve(
    probeRoutes(() => Promise.resolve(controller.isSynced() ? UP : { status: 503, body: { status: 'unavailable', checks: { informers: 'not synced yet' } } })),
    { log },
  );
  const metrics = listeners.metrics?.serve(
    [
      {
        method: 'GET',
        pattern: '/metrics',
        name: 'metrics',
        auth: false,
        handler: async (req) => (await guard?.(req)) ?? { status: 200, body: await registry.metrics(), contentType: registry.contentType },
      },
    ],
    { log },
  );
  return { probes, metrics };
}

/** electLeader runs for the Lease and calls lead when this replica holds it; a leadership lost ends the process (exit 1). */
function electLeader(client: LeaseClient, identity: string, registry: Registry, log: Logger, io: CliIo, lead: () => void): LeaderElector {
  const elector = new LeaderElector({
    client,
    identity,
    metrics: registerLeaderElectionMetrics(registry)(LEASE_NAME),
    callbacks: {
      onStartedLeading: () => {
        log.info({ identity }, 'leading');
        lead();
      },
      onStoppedLeading: (reason) => {
        if (reason === 'lost') {
          // As controller-runtime: exit at once, so that nothing in flight writes under another leader.
          log.error({ identity }, 'leadership lost; exiting so that a fresh replica takes over');
          process.exit(1);
        }
      },
      onNewLeader: (leader) => {
        log.info({ leader }, 'leader');
        // Who leads, as this replica sees it (a standby learns it when it finds the Lease held).
        io.stdout(`${JSON.stringify({ event: 'leader', leader, identity })}\n`);
      },
    },
    onError: (err) => log.warn({ err: errorFields(err) }, 'leader election'),
  });
  elector.start();
  return elector;
}
