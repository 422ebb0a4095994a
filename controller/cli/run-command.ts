import { mkdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { pino, type Logger } from 'pino';
import { parse } from 'yaml';
import { loadOrCreateLocalSecrets, packageRoot, readSchemaSet, displayPath } from '../adapters/files.ts';
import type { RunningServer } from '../adapters/http-server.ts';
import { watchTrees } from '../adapters/watcher.ts';
import { createGateway } from '../gateways/create-gateway.ts';
import { proxyFetch } from '../gateways/proxy-fetch.ts';
import { secretsFromEnv } from '../runtime/credentials.ts';
import { failoverSender } from '../runtime/failover-sender.ts';
import { GatewayPool } from '../runtime/gateway-pool.ts';
import { openStateStore } from '../runtime/open-state-store.ts';
import { LocalRun } from '../runtime/local-run.ts';
import { createSchemaValidator } from '../validate/schema-validator.ts';
import { BundleRegistry } from '../verifier/bundle-registry.ts';
import { CodeHasher } from '../verifier/code-hasher.ts';
import { createVerifierMetrics } from '../verifier/metrics.ts';
import { compileOpenApi } from '../verifier/openapi-validators.ts';
import { createServer } from '../runtime/verifier-server.ts';
import { Verifier } from '../verifier/verifier.ts';
import { UsageError, type CliIo } from './cli-io.ts';
import { createStatusOutput } from './status-output.ts';

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
      --log-level LEVEL    info (default), debug, warn or error
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
      'log-level': { type: 'string', default: 'info' },
      'state-dir': { type: 'string', default: '.smsauth' },
    },
  });
  if (values.dir === undefined) throw new UsageError('--dir is required');
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError('--port takes a port number');
  if (!['debug', 'info', 'warn', 'error'].includes(values['log-level'])) throw new UsageError('--log-level is debug, info, warn or error');
  const env = secretsFromEnv(process.env);
  if (!env.ok) throw new UsageError(env.error);
  const token = values['token-file'] !== undefined ? (await readFile(values['token-file'], 'utf8')).trim() : process.env.SMSAUTH_TOKEN;

  const stateDir = resolve(values['state-dir']);
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const outboxPath = values.outbox ?? join(stateDir, 'outbox.jsonl');
  // On a terminal the status table owns the screen: logs go to a file.
  const log: Logger = io.isTTY
    ? pino({ level: values['log-level'] }, pino.destination({ dest: join(stateDir, 'run.log'), mkdir: true, sync: false }))
    : pino({ level: values['log-level'] }, pino.destination(2));
  let listening = '';
  let lastRevision = '…';
  const output = createStatusOutput(io, () => `smsauth run: ${displayPath(values.dir!)} · ${listening} · revision ${lastRevision} · ${values.redis !== undefined ? 'Redis' : displayPath(values.state ?? join(stateDir, 'state.sqlite'))}`);

  const root = packageRoot();
  const validator = createSchemaValidator(await readSchemaSet(join(root, 'schemas')));
  const keys = await loadOrCreateLocalSecrets(join(stateDir, 'keys.json'));
  const store = await openStateStore({ redisUrl: values.redis, sqlitePath: values.state ?? join(stateDir, 'state.sqlite') });
  const registry = new BundleRegistry();
  const metrics = createVerifierMetrics({ processMetrics: true });
  const pool = new GatewayPool((gw, credentials) => createGateway(gw, credentials, { logger: log, proxyFetch, console: { outboxPath, print: (line) => output.message(line) } }), log);
  const verifier = new Verifier({ store, bundles: registry, hasher: new CodeHasher(keys.codeKeys), send: failoverSender(log), log, metrics, decoySecret: keys.decoySecret });
  const validators = compileOpenApi(parse(await readFile(join(root, 'docs', 'openapi.yaml'), 'utf8')) as Record<string, unknown>);
  const run = new LocalRun(
    {
      dir: values.dir,
      ...(values['secrets-dir'] !== undefined ? { secretsDir: values['secrets-dir'] } : {}),
      snapshotPath: join(stateDir, values.redis !== undefined ? 'status-redis.json' : 'status.json'),
      ...(values['status-file'] !== undefined ? { statusFile: values['status-file'] } : {}),
      allowEmpty: values['allow-empty'],
      envSecrets: env.value,
    },
    { validator, registry, pool, log },
  );

  const apply = async (reason: string): Promise<void> => {
    try {
      const report = await run.reload();
      lastRevision = report.revision;
      metrics.bundles.set(registry.storeKeys().length);
      log.info({ reason, revision: report.revision, swapped: report.swapped, refused: report.refused }, 'configuration reloaded');
      output.report(report);
    } catch (err) {
      log.error({ err: { name: (err as Error).name, message: (err as Error).message } }, 'reload failed; the last configuration stays live');
      output.note(`reload failed (${(err as Error).message}); the last configuration stays live`);
    }
  };

  // Watch first, read after: a change made while starting is never missed.
  // What this process writes is no news, even inside the watched folder (`--dir .` keeps .smsauth there).
  const ownFiles = [stateDir, outboxPath, ...(values.state !== undefined ? [values.state] : []), ...(values['status-file'] !== undefined ? [values['status-file']] : [])].map((p) => resolve(p));
  const watcher = watchTrees([values.dir, ...(values['secrets-dir'] !== undefined ? [values['secrets-dir']] : [])], (reason) => void apply(reason), { ignore: ownFiles });
  await watcher.ready;
  await apply('start');
  const server: RunningServer = await createServer({ verifier, store, validators, metrics }, { host: values.host, port, log, ...(token !== undefined ? { token } : {}) });
  listening = server.url;
  output.note(`serving ${server.url} (GET /readyz); stop with Ctrl-C`);
  const sweeper = setInterval(() => void store.sweep(Date.now()).catch(() => undefined), 60_000);
  // Accounts with spec.credentialCheck are checked no more often than their interval.
  const checker = setInterval(() => {
    void run.checkCredentialsDue().then((report) => {
      if (report !== undefined) output.report(report);
    });
  }, 5_000);

  await new Promise<void>((done) => {
    const stop = (signal: string): void => {
      output.note(`${signal}: finishing requests in flight and stopping`);
      clearInterval(sweeper);
      clearInterval(checker);
      void (async () => {
        await watcher.close();
        await server.close(10_000);
        await verifier.drain();
        await store.close();
        log.flush();
        done();
      })();
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  return 0;
}
