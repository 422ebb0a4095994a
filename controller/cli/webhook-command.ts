import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { stderrLog } from '../adapters/log-stream.ts';
import { packageRoot, readSchemaSet } from '../adapters/files.ts';
import { listenHttp } from '../adapters/http-server.ts';
import { parseDuration } from '../core/duration.ts';
import { KINDS } from '../core/kinds.ts';
import { webhookRoutes } from '../runtime/admission-webhook.ts';
import { createSchemaValidator } from '../validate/schema-validator.ts';
import { isLogLevel, UsageError, type CliIo } from './cli-io.ts';
import { readTlsPair, reloadServingCertificate, servingFailure } from './serving-cert.ts';
import { Cleanup, parseBind, requireFile, requireReachableCluster, untilSignalled } from './startup.ts';

/** WEBHOOK_USAGE is the help text of `smsauth webhook`. */
export const WEBHOOK_USAGE = `Usage: smsauth webhook [options]

The validating admission webhook: the API server sends it each smsauth.io object created or
updated, and it refuses what smsauth validate would refuse, with the same messages: what the CRDs'
CEL rules cannot say (look-alike placeholders, locale tags, country codes) and what needs other
objects (one default account per namespace, unique role priorities, roles that agree with their
store). It serves HTTPS on POST /validate, with /healthz and /readyz.

Options:
      --bind-address ADDR            default :9443
      --cert-dir DIR                 tls.crt and tls.key, reloaded when they change (a cert-manager
                                     or chart Secret); default /tmp/k8s-webhook-server/serving-certs
      --dangling-references POLICY   Warn (default): a reference to an object not there yet is a
                                     warning, as GitOps tools dry-run a folder before applying it;
                                     Deny refuses it
      --kubeconfig FILE              default: KUBECONFIG, ~/.kube/config, or in-cluster
      --request-timeout DURATION     longest wait for one API request (default 5s)
      --log-level LEVEL              info (default), debug, warn or error
`;

/** runWebhook is `smsauth webhook`; it serves until SIGTERM. */
export async function runWebhook(argv: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      'bind-address': { type: 'string', default: ':9443' },
      'cert-dir': { type: 'string', default: '/tmp/k8s-webhook-server/serving-certs' },
      'dangling-references': { type: 'string', default: 'Warn' },
      kubeconfig: { type: 'string' },
      'request-timeout': { type: 'string', default: '5s' },
      'log-level': { type: 'string', default: 'info' },
    },
  });
  const dangling = values['dangling-references'];
  if (dangling !== 'Warn' && dangling !== 'Deny') throw new UsageError('--dangling-references is Warn or Deny');
  const requestTimeoutMs = parseDuration(values['request-timeout']);
  if (requestTimeoutMs === undefined || requestTimeoutMs < 100) throw new UsageError('--request-timeout takes a duration of at least 100ms, such as 5s');
  const logLevel = values['log-level'];
  if (!isLogLevel(logLevel)) throw new UsageError('--log-level is debug, info, warn or error');
  const bind = parseBind('--bind-address', values['bind-address']);
  if (bind === undefined) throw new UsageError('--bind-address needs an address, such as :9443');
  if (values.kubeconfig !== undefined) await requireFile('--kubeconfig', values.kubeconfig);
  const certDir = values['cert-dir'];
  const tls = await readTlsPair(certDir, '--cert-dir');

  const cleanup = new Cleanup();
  try {
    const listener = await listenHttp({ ...bind, tls }).catch((err: unknown) => {
      throw servingFailure(err, '--bind-address', '--cert-dir', certDir, "webhook's Secret");
    });
    cleanup.add(() => listener.close(5000));
    const log = pino({ level: logLevel }, stderrLog());
    await reloadServingCertificate(certDir, '--cert-dir', listener, tls, log, cleanup);

    const { connectCluster, loadKubeConfig } = await import('../adapters/kubernetes.ts');
    const cluster = connectCluster(loadKubeConfig(values.kubeconfig), { requestTimeoutMs });
    // Else the webhook would say it is ready and refuse every admission.
    await requireReachableCluster(cluster, requestTimeoutMs);
    const validator = createSchemaValidator(await readSchemaSet(join(packageRoot(), 'schemas')));
    const readNamespace = async (namespace: string): Promise<unknown[]> =>
      (await Promise.all(KINDS.map(async (k) => (await cluster.list(k, namespace)).map((o) => ({ ...o, kind: k.kind }))))).flat();
    listener.serve(webhookRoutes({ schema: (kind, object) => validator.validate(kind, object as Record<string, unknown>), readNamespace, dangling, log }), {
      log,
    });
    const stopped = untilSignalled();
    io.stdout(`${JSON.stringify({ event: 'listening', url: listener.url })}\n`);
    await stopped;
    return 0;
  } finally {
    await cleanup.run();
  }
}
