import { parseArgs } from 'node:util';
import { isLogLevel, UsageError, type CliIo } from './cli-io.ts';
import { listenHttp } from '../adapters/http-server.ts';
import {
  apiToken,
  AUDIT_FLAGS,
  AUDIT_USAGE,
  checkRedisUrl,
  listenAddress,
  listenFailure,
  parseBind,
  readAuditOptions,
  requireFolder,
  requireOutputFile,
  withListener,
} from './startup.ts';

/** SIDECAR_USAGE is the help text of `smsauth sidecar`. */
export const SIDECAR_USAGE = `Usage: smsauth sidecar --bundle-dir DIR --code-keys-dir DIR [options]

The verification endpoint next to an application in a cluster: serves the identity stores of the
bundle the controller publishes (the smsauth-bundle Secret, mounted), and follows it as the
kubelet swaps it; a bundle that cannot be read leaves its store on the last good one.

Options:
      --bundle-dir DIR     the mounted smsauth-bundle Secret (required)
      --code-keys-dir DIR  the mounted smsauth-code-keys Secret (required): key.<id> and decoy
      --redis URL          shared state for several replicas (recommended beyond one); or
                           SMSAUTH_REDIS_URL, which keeps a password out of the process list;
                           redis+cluster://host:port,host:port for a Redis Cluster
      --state FILE         SQLite state for a single replica (default /tmp/smsauth.sqlite)
      --host ADDR          default 127.0.0.1 (any other needs a token)
      --port N             default 8787
      --health-probe-bind-address ADDR
                           /healthz and /readyz alone, for the kubelet (which cannot reach
                           the pod's loopback): such as :8788; default 0, none
      --token-file FILE    bearer token (or SMSAUTH_TOKEN)
      --allow-console      accept console gateway accounts (development clusters only)
      --twilio-compat      serve the Twilio Verify-compatible API under /twilio/v2/ for the
                           stores with spec.twilioCompat (docs/twilio-compat.md)
      --outbox FILE        the console gateway's outbox, with --allow-console
      --log-level LEVEL    info (default), debug, warn or error
${AUDIT_USAGE}
`;

/** runSidecar is `smsauth sidecar`; it serves until SIGINT or SIGTERM and returns the exit status. */
export async function runSidecar(argv: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      'bundle-dir': { type: 'string' },
      'code-keys-dir': { type: 'string' },
      redis: { type: 'string' },
      state: { type: 'string', default: '/tmp/smsauth.sqlite' },
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '8787' },
      'health-probe-bind-address': { type: 'string', default: '0' },
      'token-file': { type: 'string' },
      'allow-console': { type: 'boolean', default: false },
      'twilio-compat': { type: 'boolean', default: false },
      outbox: { type: 'string' },
      'log-level': { type: 'string', default: 'info' },
      ...AUDIT_FLAGS,
    },
  });
  // Everything the command line says is checked, and the port bound, before anything else is
  // loaded or opened: a mistake or a port in use is told at once.
  const bundleDir = values['bundle-dir'];
  const keysDir = values['code-keys-dir'];
  if (bundleDir === undefined) throw new UsageError('--bundle-dir is required');
  if (keysDir === undefined) throw new UsageError('--code-keys-dir is required (mount the smsauth-code-keys Secret)');
  const { port } = listenAddress(values.host, values.port);
  const probes = parseBind('--health-probe-bind-address', values['health-probe-bind-address']);
  const logLevel = values['log-level'];
  if (!isLogLevel(logLevel)) throw new UsageError('--log-level is debug, info, warn or error');
  const redis = values.redis ?? nonEmpty(process.env.SMSAUTH_REDIS_URL);
  if (redis !== undefined) checkRedisUrl(values.redis !== undefined ? '--redis' : 'SMSAUTH_REDIS_URL', redis);
  if (values.outbox !== undefined) {
    if (!values['allow-console'])
      throw new UsageError("--outbox is the console gateway's, which the sidecar refuses without --allow-console; give both, or neither");
    await requireOutputFile('--outbox', values.outbox);
  }
  await requireFolder('--bundle-dir', bundleDir);
  await requireFolder('--code-keys-dir', keysDir);
  const token = await apiToken(values.host, values['token-file'], process.env.SMSAUTH_TOKEN);
  const audit = await readAuditOptions(values, token);

  return withListener(values.host, port, async (listener, cleanup) => {
    const probeListener =
      probes === undefined
        ? undefined
        : await listenHttp(probes).catch((err: unknown) => {
            throw listenFailure(err, '--health-probe-bind-address', '--health-probe-bind-address');
          });
    if (probeListener !== undefined) cleanup.add(() => probeListener.close(2000));
    const { serveSidecar } = await import('./sidecar-serve.ts');
    return serveSidecar(
      {
        bundleDir,
        keysDir,
        state: values.state,
        logLevel,
        allowConsole: values['allow-console'],
        twilioCompat: values['twilio-compat'],
        ...(redis !== undefined ? { redis } : {}),
        ...(token !== undefined ? { token } : {}),
        audit,
        ...(values.outbox !== undefined ? { outbox: values.outbox } : {}),
      },
      { api: listener, probes: probeListener },
      io,
      cleanup,
    );
  });
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}
