import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { packageRoot, readSchemaSet } from '../adapters/files.ts';
import { startHttpServer, type RunningServer } from '../adapters/http-server.ts';
import { connectCluster, loadKubeConfig } from '../adapters/kubernetes.ts';
import { parseDuration } from '../core/duration.ts';
import { SmsauthController } from '../kube/controller.ts';
import { LeaderElector } from '../kube/leader-election.ts';
import { registerLeaderElectionMetrics } from '../kube/prometheus-metrics.ts';
import { createSchemaValidator } from '../validate/schema-validator.ts';
import { UsageError, type CliIo } from './cli-io.ts';

/** CONTROLLER_USAGE is the help text of `smsauth controller`. */
export const CONTROLLER_USAGE = `Usage: smsauth controller [options]

The cluster controller: reconciles the smsauth.io custom resources, writes their status and Events,
holds linked gateway accounts with the smsauth.io/in-use finalizer, and publishes per namespace the
smsauth-bundle Secret that sidecars mount (and smsauth-code-keys when absent).

Options (named as controller-runtime names them):
      --kubeconfig FILE                  default: KUBECONFIG, ~/.kube/config, or in-cluster
      --namespace NS                     watch one namespace (default: all)
      --metrics-bind-address ADDR        default :8080 ("0" turns it off)
      --health-probe-bind-address ADDR   /healthz and /readyz, default :8081
      --leader-elect                     run several replicas; one leads (a Lease)
      --leader-election-namespace NS     where the Lease lives (default: POD_NAMESPACE or default)
      --workers N                        keys reconciled at once (default 2)
      --request-timeout DURATION         longest wait for one API request (default 30s; watches excepted)
      --log-level LEVEL                  info (default), debug, warn or error
`;

/** runController is `smsauth controller`; it runs until SIGTERM (or lost leadership: exit 1). */
export async function runController(argv: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      kubeconfig: { type: 'string' },
      namespace: { type: 'string' },
      'metrics-bind-address': { type: 'string', default: ':8080' },
      'health-probe-bind-address': { type: 'string', default: ':8081' },
      'leader-elect': { type: 'boolean', default: false },
      'leader-election-namespace': { type: 'string' },
      workers: { type: 'string', default: '2' },
      'request-timeout': { type: 'string', default: '30s' },
      'log-level': { type: 'string', default: 'info' },
    },
  });
  const workers = Number(values.workers);
  if (!Number.isInteger(workers) || workers < 1) throw new UsageError('--workers takes a positive number');
  const requestTimeoutMs = parseDuration(values['request-timeout']);
  if (requestTimeoutMs === undefined || requestTimeoutMs < 100) throw new UsageError('--request-timeout takes a duration of at least 100ms, such as 30s');
  if (!['debug', 'info', 'warn', 'error'].includes(values['log-level'])) throw new UsageError('--log-level is debug, info, warn or error');
  const log = pino({ level: values['log-level'] }, pino.destination(2));
  const identity = `${hostname()}_${randomBytes(4).toString('hex')}`;
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const validator = createSchemaValidator(await readSchemaSet(join(packageRoot(), 'schemas')));
  const cluster = connectCluster(loadKubeConfig(values.kubeconfig), { requestTimeoutMs });
  const controller = new SmsauthController(cluster, { ...(values.namespace !== undefined ? { namespace: values.namespace } : {}), identity, log, registry, validator, workers });

  const servers: RunningServer[] = [];
  const probes = parseBind(values['health-probe-bind-address']);
  if (probes !== undefined) {
    servers.push(await startHttpServer([
      { method: 'GET', pattern: '/healthz', name: 'healthz', auth: false, handler: () => Promise.resolve({ status: 200, body: { status: 'ok' } }) },
      { method: 'GET', pattern: '/readyz', name: 'readyz', auth: false, handler: () => Promise.resolve(controller.isSynced() ? { status: 200, body: { status: 'ok' } } : { status: 503, body: { status: 'unavailable', checks: { informers: 'not synced yet' } } }) },
    ], { ...probes, log }));
  }
  const metrics = parseBind(values['metrics-bind-address']);
  if (metrics !== undefined) {
    servers.push(await startHttpServer([
      { method: 'GET', pattern: '/metrics', name: 'metrics', auth: false, handler: async () => ({ status: 200, body: await registry.metrics(), contentType: registry.contentType }) },
    ], { ...metrics, log }));
  }
  io.stdout(`${JSON.stringify({ event: 'listening', identity, probes: probes === undefined ? null : servers[0]!.url, metrics: metrics === undefined ? null : servers.at(-1)!.url })}\n`);

  await controller.watch();
  log.info({ identity }, 'caches synced');
  let elector: LeaderElector | undefined;
  let exitCode = 0;
  const done = new Promise<void>((resolve) => {
    const stop = (code: number): void => {
      exitCode = code;
      void (async () => {
        // Within 30 s: finish keys in flight, hand over the Lease, close the servers.
        await controller.stop(20_000);
        if (elector !== undefined) await elector.release();
        await Promise.all(servers.map((s) => s.close(2000)));
        log.flush();
        resolve();
      })();
    };
    process.once('SIGTERM', () => stop(0));
    process.once('SIGINT', () => stop(0));
    if (values['leader-elect']) {
      const name = 'smsauth-controller';
      elector = new LeaderElector({
        client: cluster.lease(values['leader-election-namespace'] ?? process.env.POD_NAMESPACE ?? 'default', name),
        identity,
        metrics: registerLeaderElectionMetrics(registry)(name),
        callbacks: {
          onStartedLeading: () => {
            log.info({ identity }, 'leading');
            io.stdout(`${JSON.stringify({ event: 'leading', identity })}\n`);
            controller.run();
          },
          onStoppedLeading: (reason) => {
            if (reason === 'lost') {
              // As controller-runtime: exit at once, so that nothing in flight writes under another leader.
              log.error({ identity }, 'leadership lost; exiting so that a fresh replica takes over');
              log.flush();
              process.exit(1);
            }
          },
          onNewLeader: (leader) => log.info({ leader }, 'leader'),
        },
        onError: (err) => log.warn({ err: { name: (err as Error).name, message: (err as Error).message } }, 'leader election'),
      });
      elector.start();
    } else {
      io.stdout(`${JSON.stringify({ event: 'leading', identity })}\n`);
      controller.run();
    }
  });
  await done;
  return exitCode;
}

// ":8080" listens on every interface, "127.0.0.1:0" on a free loopback port, "0" not at all.
function parseBind(address: string): { host: string; port: number } | undefined {
  if (address === '0') return undefined;
  const i = address.lastIndexOf(':');
  const host = i <= 0 ? '0.0.0.0' : address.slice(0, i);
  const port = Number(address.slice(i + 1));
  if (!Number.isInteger(port) || port < 0) throw new UsageError(`bad bind address ${address}; use :8080 or 127.0.0.1:8080`);
  return { host, port };
}
