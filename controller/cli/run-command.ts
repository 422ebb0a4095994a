import { parseArgs } from 'node:util';
import { secretsFromEnv } from '../runtime/credentials.ts';
import { isLogLevel, UsageError, type CliIo } from './cli-io.ts';
import { apiToken, AUDIT_FLAGS, AUDIT_USAGE, checkRedisUrl, listenAddress, readAuditOptions, requireFolder, withListener } from './startup.ts';

/** RUN_USAGE is the help text of `smsauth run`. */
export const RUN_USAGE = `Usage: smsauth run --dir DIR [options]

The local GitOps mode: serves the verification endpoint for exactly what a folder of resources
declares, and follows the folder as it changes (edits, renames, deletions, git checkouts, and
symlink swaps of the folder itself). Invalid files never take anything down: their objects keep
serving their last valid version.

Options:
      --dir DIR            the folder of resources, watched (required)
      --port N             port of the verification endpoint (default 8787)
      --host ADDR          address to listen on (default 127.0.0.1; any other needs a token)
      --token-file FILE    bearer token for the API (or SMSAUTH_TOKEN)
      --state FILE         SQLite state file (default STATE-DIR/state.sqlite)
      --redis URL          keep state in Redis instead (several replicas)
      --secrets-dir DIR    Kubernetes Secret manifests kept out of the watched folder (watched too)
      --outbox FILE        the console gateway's outbox (default STATE-DIR/outbox.jsonl)
      --status-file FILE   write the full status there after every change
      --allow-empty        apply a folder that declares no resource (refused by default)
      --no-console         do not serve the console page at / (served by default)
      --twilio-compat      serve the Twilio Verify-compatible API under /twilio/v2/ for the
                           stores with spec.twilioCompat (docs/twilio-compat.md)
      --log-level LEVEL    info (default), debug, warn or error
${AUDIT_USAGE}
      --state-dir DIR      where keys, status, state, outbox and log live (default .smsauth)

Secrets also come from SMSAUTH_SECRETS, a JSON object {"namespace/name": {"key": "value"}}.
`;

/** runRun is `smsauth run`; it serves until SIGINT or SIGTERM and returns the exit status. */
export async function runRun(argv: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      dir: { type: 'string' },
      port: { type: 'string', default: '8787' },
      host: { type: 'string', default: '127.0.0.1' },
      'token-file': { type: 'string' },
      state: { type: 'string' },
      redis: { type: 'string' },
      'secrets-dir': { type: 'string' },
      outbox: { type: 'string' },
      'status-file': { type: 'string' },
      'allow-empty': { type: 'boolean', default: false },
      'no-console': { type: 'boolean', default: false },
      'twilio-compat': { type: 'boolean', default: false },
      'log-level': { type: 'string', default: 'info' },
      ...AUDIT_FLAGS,
      'state-dir': { type: 'string', default: '.smsauth' },
    },
  });
  // Everything the command line says is checked, and the port bound, before anything else is
  // loaded or opened: a mistake or a port in use is told at once.
  if (values.dir === undefined) throw new UsageError('--dir is required');
  const { port } = listenAddress(values.host, values.port);
  const logLevel = values['log-level'];
  if (!isLogLevel(logLevel)) throw new UsageError('--log-level is debug, info, warn or error');
  if (values.redis !== undefined) checkRedisUrl('--redis', values.redis);
  if (values.redis !== undefined && values.state !== undefined)
    throw new UsageError('--state names a SQLite file and --redis a Redis: the state lives in one of them; give one');
  const env = secretsFromEnv(process.env);
  if (!env.ok) throw new UsageError(env.error);
  await requireFolder('--dir', values.dir);
  if (values['secrets-dir'] !== undefined) await requireFolder('--secrets-dir', values['secrets-dir']);
  const token = await apiToken(values.host, values['token-file'], process.env.SMSAUTH_TOKEN);
  const audit = await readAuditOptions(values, token);
  const dir = values.dir;
  const envSecrets = env.value;

  return withListener(values.host, port, async (listener, cleanup) => {
    const { serveRun } = await import('./run-serve.ts');
    return serveRun(
      {
        dir,
        stateDir: values['state-dir'],
        logLevel,
        allowEmpty: values['allow-empty'],
        console: !values['no-console'],
        twilioCompat: values['twilio-compat'],
        envSecrets,
        ...(token !== undefined ? { token } : {}),
        audit,
        ...(values.state !== undefined ? { state: values.state } : {}),
        ...(values.redis !== undefined ? { redis: values.redis } : {}),
        ...(values['secrets-dir'] !== undefined ? { secretsDir: values['secrets-dir'] } : {}),
        ...(values.outbox !== undefined ? { outbox: values.outbox } : {}),
        ...(values['status-file'] !== undefined ? { statusFile: values['status-file'] } : {}),
      },
      listener,
      io,
      cleanup,
    );
  });
}
