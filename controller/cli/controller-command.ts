import { parseArgs } from 'node:util';
import { listenHttp, type HttpListener, type TlsPair } from '../adapters/http-server.ts';
import { parseDuration } from '../core/duration.ts';
import { isLogLevel, UsageError, type CliIo } from './cli-io.ts';
import { readTlsPair, servingFailure } from './serving-cert.ts';
import { Cleanup, parseBind, requireFile } from './startup.ts';

/** CONTROLLER_USAGE is the help text of `smsauth controller`. */
export const CONTROLLER_USAGE = `Usage: smsauth controller [options]

The cluster controller: reconciles the smsauth.io custom resources, writes their status and Events,
holds linked gateway accounts with the smsauth.io/in-use finalizer, and publishes per namespace the
smsauth-bundle Secret that sidecars mount (and smsauth-code-keys when absent).

Options (named as controller-runtime names them):
      --kubeconfig FILE                  default: KUBECONFIG, ~/.kube/config, or in-cluster
      --namespace NS                     watch one namespace (default: all)
      --metrics-bind-address ADDR        default :8080 ("0" turns it off)
      --metrics-secure                   serve /metrics over HTTPS to callers the API server
                                         authenticates (TokenReview) and allows to get /metrics
                                         (SubjectAccessReview); plain HTTP to anyone without it
      --metrics-cert-dir DIR             tls.crt and tls.key for --metrics-secure, reloaded when
                                         they change (a cert-manager or chart Secret)
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
      'metrics-secure': { type: 'boolean', default: false },
      'metrics-cert-dir': { type: 'string' },
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
  const logLevel = values['log-level'];
  if (!isLogLevel(logLevel)) throw new UsageError('--log-level is debug, info, warn or error');
  const probes = parseBind('--health-probe-bind-address', values['health-probe-bind-address']);
  const metrics = parseBind('--metrics-bind-address', values['metrics-bind-address']);
  if (values.kubeconfig !== undefined) await requireFile('--kubeconfig', values.kubeconfig);
  const certDir = values['metrics-cert-dir'];
  if (values['metrics-secure'] && certDir === undefined) throw new UsageError('--metrics-secure needs --metrics-cert-dir, a folder with tls.crt and tls.key');
  if (!values['metrics-secure'] && certDir !== undefined) throw new UsageError('--metrics-cert-dir goes with --metrics-secure');
  const metricsTls = certDir === undefined ? undefined : { certDir, pair: await readTlsPair(certDir, '--metrics-cert-dir') };

  // The probe and metrics ports are bound before the Kubernetes client loads: one in use is told at once.
  const cleanup = new Cleanup();
  try {
    const bind = async (
      address: { host: string; port: number } | undefined,
      flag: string,
      tls?: { certDir: string; pair: TlsPair },
    ): Promise<HttpListener | undefined> => {
      if (address === undefined) return undefined;
      const listener = await listenHttp({ ...address, ...(tls !== undefined ? { tls: tls.pair } : {}) }).catch((err: unknown) => {
        throw servingFailure(err, flag, '--metrics-cert-dir', tls?.certDir ?? '', 'metrics Secret');
      });
      cleanup.add(() => listener.close(2000));
      return listener;
    };
    const probeListener = await bind(probes, '--health-probe-bind-address');
    const metricsListener = await bind(metrics, '--metrics-bind-address', metricsTls);
    const { serveController } = await import('./controller-serve.ts');
    return await serveController(
      {
        workers,
        requestTimeoutMs,
        logLevel,
        leaderElect: values['leader-elect'],
        ...(metricsTls !== undefined ? { metricsTls } : {}),
        ...(values.kubeconfig !== undefined ? { kubeconfig: values.kubeconfig } : {}),
        ...(values.namespace !== undefined ? { namespace: values.namespace } : {}),
        ...(values['leader-election-namespace'] !== undefined ? { leaderElectionNamespace: values['leader-election-namespace'] } : {}),
      },
      { probes: probeListener, metrics: metricsListener },
      io,
      cleanup,
    );
  } finally {
    await cleanup.run();
  }
}
