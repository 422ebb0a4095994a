import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { parse } from 'yaml';
import { packageRoot, readDirectoryFiles } from '../adapters/files.ts';
import { watchTrees } from '../adapters/watcher.ts';
import { createGateway, GatewayConfigError } from '../gateways/create-gateway.ts';
import { proxyFetch } from '../gateways/proxy-fetch.ts';
import { BundleDir } from '../runtime/bundle-dir.ts';
import { codeKeysFrom } from '../runtime/code-keys.ts';
import { failoverSender } from '../runtime/failover-sender.ts';
import { GatewayPool } from '../runtime/gateway-pool.ts';
import { openStateStore } from '../runtime/open-state-store.ts';
import { BundleRegistry } from '../verifier/bundle-registry.ts';
import { CodeHasher } from '../verifier/code-hasher.ts';
import { createVerifierMetrics } from '../verifier/metrics.ts';
import { compileOpenApi } from '../verifier/openapi-validators.ts';
import { createServer } from '../runtime/verifier-server.ts';
import { Verifier } from '../verifier/verifier.ts';
import { UsageError, type CliIo } from './cli-io.ts';

/** SIDECAR_USAGE is the help text of `smsauth sidecar`. */
export const SIDECAR_USAGE = `Usage: smsauth sidecar --bundle-dir DIR --code-keys-dir DIR [options]

The verification endpoint next to an application in a cluster: serves the identity stores of the
bundle the controller publishes (the smsauth-bundle Secret, mounted), and follows it as the
kubelet swaps it; a bundle that cannot be read leaves its store on the last good one.

Options:
      --bundle-dir DIR     the mounted smsauth-bundle Secret (required)
      --code-keys-dir DIR  the mounted smsauth-code-keys Secret (required): key.<id> and decoy
      --redis URL          shared state for several replicas (recommended beyond one); or
                           SMSAUTH_REDIS_URL, which keeps a password out of the process list
      --state FILE         SQLite state for a single replica (default /tmp/smsauth.sqlite)
      --host ADDR          default 127.0.0.1 (any other needs a token)
      --port N             default 8787
      --token-file FILE    bearer token (or SMSAUTH_TOKEN)
      --allow-console      accept console gateway accounts (development clusters only)
      --outbox FILE        the console gateway's outbox, with --allow-console
      --log-level LEVEL    info (default), debug, warn or error
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
      'token-file': { type: 'string' },
      'allow-console': { type: 'boolean', default: false },
      outbox: { type: 'string' },
      'log-level': { type: 'string', default: 'info' },
    },
  });
  if (values['bundle-dir'] === undefined) throw new UsageError('--bundle-dir is required');
  if (values['code-keys-dir'] === undefined) throw new UsageError('--code-keys-dir is required (mount the smsauth-code-keys Secret)');
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError('--port takes a port number');
  if (!['debug', 'info', 'warn', 'error'].includes(values['log-level'])) throw new UsageError('--log-level is debug, info, warn or error');
  const log = pino({ level: values['log-level'] }, pino.destination(2));
  const token = values['token-file'] !== undefined ? (await readFile(values['token-file'], 'utf8')).trim() : process.env.SMSAUTH_TOKEN;

  const keysRead = await readDirectoryFiles(values['code-keys-dir']);
  const keys = codeKeysFrom(keysRead.files);
  if (!keys.ok) {
    io.stderr(`smsauth sidecar: ${values['code-keys-dir']}: ${keysRead.error ?? keys.error}\n`);
    return 1;
  }
  const hasher = new CodeHasher(keys.codeKeys);
  const store = await openStateStore({ redisUrl: values.redis ?? nonEmpty(process.env.SMSAUTH_REDIS_URL), sqlitePath: values.state });
  const registry = new BundleRegistry();
  const metrics = createVerifierMetrics({ processMetrics: true });
  const allowConsole = values['allow-console'];
  const pool = new GatewayPool((gw, credentials) => {
    if (gw.provider === 'console' && !allowConsole) {
      throw new GatewayConfigError(gw.name, 'spec.provider', 'the console gateway does not send anything: it is refused in a cluster unless the sidecar runs with --allow-console');
    }
    return createGateway(gw, credentials, { logger: log, proxyFetch, console: { ...(values.outbox !== undefined ? { outboxPath: values.outbox } : {}), print: (line) => io.stderr(`${line}\n`) } });
  }, log);
  const verifier = new Verifier({ store, bundles: registry, hasher, send: failoverSender(log), log, metrics, decoySecret: keys.decoySecret });
  const root = packageRoot();
  const validators = compileOpenApi(parse(await readFile(join(root, 'docs', 'openapi.yaml'), 'utf8')) as Record<string, unknown>);
  const bundles = new BundleDir(values['bundle-dir'], { registry, pool, log });

  const syncBundles = async (reason: string): Promise<void> => {
    const report = await bundles.sync();
    metrics.bundles.set(registry.storeKeys().length);
    log.info({ reason, loaded: report.loaded, removed: report.removed, kept: report.kept.map((k) => k.file) }, 'bundles synced');
  };
  const syncKeys = async (): Promise<void> => {
    const read = await readDirectoryFiles(values['code-keys-dir']!);
    const next = codeKeysFrom(read.files);
    if (next.ok) hasher.setKeys(next.codeKeys);
    else log.error({ error: next.error }, 'code keys unreadable; the current keys stay');
  };
  // Watch the folders (the kubelet swaps their ..data symlink), then read them.
  const watcher = watchTrees([values['bundle-dir'], values['code-keys-dir']], (reason) => {
    void syncBundles(reason);
    void syncKeys();
  });
  await watcher.ready;
  await syncBundles('start');
  const server = await createServer({ verifier, store, validators, metrics }, { host: values.host, port, log, ...(token !== undefined ? { token } : {}) });
  log.info({ url: server.url, stores: registry.storeKeys() }, 'serving');
  io.stdout(`${JSON.stringify({ event: 'serving', url: server.url, stores: registry.storeKeys() })}\n`);
  const sweeper = setInterval(() => void store.sweep(Date.now()).catch(() => undefined), 60_000);

  await new Promise<void>((done) => {
    const stop = (): void => {
      clearInterval(sweeper);
      void (async () => {
        await watcher.close();
        await server.close(10_000);
        await verifier.drain();
        await store.close();
        done();
      })();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  return 0;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}
