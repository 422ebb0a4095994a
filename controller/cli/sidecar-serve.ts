import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { parse } from 'yaml';
import { displayPath, packageRoot, readDirectoryFiles } from '../adapters/files.ts';
import type { HttpListener } from '../adapters/http-server.ts';
import { watchTrees } from '../adapters/watcher.ts';
import { createGateway, GatewayConfigError } from '../gateways/create-gateway.ts';
import { proxyFetch } from '../gateways/proxy-fetch.ts';
import { BundleDir } from '../runtime/bundle-dir.ts';
import { codeKeysFrom } from '../runtime/code-keys.ts';
import { failoverSender } from '../runtime/failover-sender.ts';
import { createDirectory } from '../directories/create-directory.ts';
import { DirectoryPool } from '../runtime/directory-pool.ts';
import { GatewayPool } from '../runtime/gateway-pool.ts';
import { openStateStore, StoreOpenError } from '../runtime/open-state-store.ts';
import { serveVerifier } from '../runtime/verifier-server.ts';
import { BundleRegistry } from '../verifier/bundle-registry.ts';
import { CodeHasher } from '../verifier/code-hasher.ts';
import { createVerifierMetrics } from '../verifier/metrics.ts';
import { compileOpenApi } from '../verifier/openapi-validators.ts';
import { Verifier } from '../verifier/verifier.ts';
import { StartupError, type CliIo } from './cli-io.ts';
import type { LogLevel } from './run-command.ts';
import { redisDisplay, type Cleanup } from './startup.ts';

/** SidecarOptions are `smsauth sidecar`'s checked command line. */
export interface SidecarOptions {
  bundleDir: string;
  keysDir: string;
  state: string;
  logLevel: LogLevel;
  allowConsole: boolean;
  redis?: string;
  token?: string;
  outbox?: string;
}

/**
 * serveSidecar wires `smsauth sidecar` behind a listener already bound, serves until SIGINT or
 * SIGTERM and returns the exit status; what it opens it registers with cleanup, which the caller runs.
 */
export async function serveSidecar(options: SidecarOptions, listener: HttpListener, io: CliIo, cleanup: Cleanup): Promise<number> {
  const log = pino({ level: options.logLevel }, pino.destination(2));
  cleanup.add(() => log.flush());
  const keysRead = await readDirectoryFiles(options.keysDir);
  const keys = codeKeysFrom(keysRead.files);
  if (!keys.ok) throw new StartupError(`--code-keys-dir ${displayPath(options.keysDir)}: ${keysRead.error ?? keys.error}`);
  const hasher = new CodeHasher(keys.codeKeys);
  let opened: ReturnType<typeof openStateStore>;
  try {
    opened = openStateStore({ redisUrl: options.redis, sqlitePath: options.state });
  } catch (err) {
    if (err instanceof StoreOpenError) throw new StartupError(`cannot open the state file ${options.state}: ${err.message}; give --state a writable path, or use --redis`);
    throw err;
  }
  const store = opened.store;
  cleanup.add(() => store.close());
  const registry = new BundleRegistry();
  const metrics = createVerifierMetrics({ processMetrics: true });
  const directories = new DirectoryPool(createDirectory, log);
  cleanup.add(() => directories.close());
  const pool = new GatewayPool((gw, credentials) => {
    if (gw.provider === 'console' && !options.allowConsole) {
      throw new GatewayConfigError(gw.name, 'spec.provider', 'the console gateway does not send anything: it is refused in a cluster unless the sidecar runs with --allow-console');
    }
    return createGateway(gw, credentials, { logger: log, proxyFetch, console: { ...(options.outbox !== undefined ? { outboxPath: options.outbox } : {}), print: (line) => io.stderr(`${line}\n`) } });
  }, log, directories);
  const verifier = new Verifier({ store, bundles: registry, hasher, send: failoverSender(log), log, metrics, decoySecret: keys.decoySecret });
  cleanup.add(() => verifier.drain());
  const root = packageRoot();
  const validators = compileOpenApi(parse(await readFile(join(root, 'docs', 'openapi.yaml'), 'utf8')) as Record<string, unknown>);
  const bundles = new BundleDir(options.bundleDir, { registry, pool, log });

  const syncBundles = async (reason: string): Promise<void> => {
    const report = await bundles.sync();
    metrics.bundles.set(registry.storeKeys().length);
    log.info({ reason, loaded: report.loaded, removed: report.removed, kept: report.kept.map((k) => k.file) }, 'bundles synced');
  };
  const syncKeys = async (): Promise<void> => {
    const read = await readDirectoryFiles(options.keysDir);
    const next = codeKeysFrom(read.files);
    if (next.ok) hasher.setKeys(next.codeKeys);
    else log.error({ error: next.error }, 'code keys unreadable; the current keys stay');
  };
  // Watch the folders (the kubelet swaps their ..data symlink), then read them.
  const watcher = watchTrees([options.bundleDir, options.keysDir], (reason) => {
    void syncBundles(reason);
    void syncKeys();
  });
  cleanup.add(() => watcher.close());
  await watcher.ready;
  await syncBundles('start');
  const server = serveVerifier(listener, { verifier, store, validators, metrics }, { log, ...(options.token !== undefined ? { token: options.token } : {}) });
  log.info({ url: server.url, stores: registry.storeKeys() }, 'serving');
  io.stdout(`${JSON.stringify({ event: 'serving', url: server.url, stores: registry.storeKeys() })}\n`);
  if (options.redis !== undefined) {
    const name = redisDisplay(options.redis);
    void opened.reachable(1000).then(async (reachable) => {
      if (reachable) return;
      log.warn({ redis: name }, 'Redis does not answer yet: the API answers 503 and /readyz says so until it does');
      if (await opened.reachable(Infinity)) log.info({ redis: name }, 'Redis answers: ready');
    });
  }
  const sweeper = setInterval(() => void store.sweep(Date.now()).catch(() => undefined), 60_000);
  cleanup.add(() => clearInterval(sweeper));

  await new Promise<void>((done) => {
    process.once('SIGINT', () => done());
    process.once('SIGTERM', () => done());
  });
  return 0;
}
