import { pino, type Logger } from 'pino';
import { stderrLog } from '../adapters/log-stream.ts';
import { displayPath, readDirectoryFiles } from '../adapters/files.ts';
import type { HttpListener } from '../adapters/http-server.ts';
import { watchTrees } from '../adapters/watcher.ts';
import { contentHash } from '../core/bundle.ts';
import { repeat, systemClock } from '../core/clock.ts';
import { errorFields, errorKind } from '../core/error-fields.ts';
import { createGateway, GatewayConfigError } from '../gateways/create-gateway.ts';
import { proxyFetch } from '../gateways/proxy-fetch.ts';
import { BundleDir } from '../runtime/bundle-dir.ts';
import type { GatewayFactory } from '../runtime/gateway-pool.ts';
import type { BundleRegistry } from '../verifier/bundle-registry.ts';
import type { Verifier } from '../verifier/verifier.ts';
import { codeKeysFrom } from '../runtime/code-keys.ts';
import { serveVerifier, verifierProbeRoutes } from '../runtime/verifier-server.ts';
import { twilioRoutes } from '../verifier/twilio-api.ts';
import { CodeHasher } from '../verifier/code-hasher.ts';
import { StartupError, type CliIo, type LogLevel } from './cli-io.ts';
import { redisDisplay, requireCredentialsAccepted, untilSignalled, watchRedis, type Cleanup } from './startup.ts';
import { COMPLIANCE_REFRESH_MS, complianceOfAll } from '../runtime/compliance-refresh.ts';
import { accessOf, wireVerifier } from './verifier-wiring.ts';
import type { AuditOptions } from './startup.ts';

/** SidecarOptions are `smsauth sidecar`'s checked command line. */
export interface SidecarOptions {
  bundleDir: string;
  keysDir: string;
  state: string;
  logLevel: LogLevel;
  allowConsole: boolean;
  /** Serve the Twilio Verify-compatible API (/twilio/v2/). */
  twilioCompat: boolean;
  redis?: string;
  token?: string;
  audit: AuditOptions;
  outbox?: string;
}

/**
 * serveSidecar wires `smsauth sidecar` behind a listener already bound, serves until SIGINT or
 * SIGTERM and returns the exit status; what it opens it registers with cleanup, which the caller runs.
 */
export async function serveSidecar(
  options: SidecarOptions,
  listeners: { api: HttpListener; probes: HttpListener | undefined },
  io: CliIo,
  cleanup: Cleanup,
): Promise<number> {
  const log = pino({ level: options.logLevel }, stderrLog());
  const keysRead = await readDirectoryFiles(options.keysDir);
  const keys = codeKeysFrom(keysRead.files);
  if (!keys.ok) throw new StartupError(`--code-keys-dir ${displayPath(options.keysDir)}: ${keysRead.error ?? keys.error}`);
  const hasher = new CodeHasher(keys.codeKeys);
  const { opened, store, registry, metrics, pool, verifier, contract } = await wireVerifier({
    log,
    cleanup,
    redisUrl: options.redis,
    sqlitePath: options.state,
    storeHint: 'give --state a writable path, or use --redis',
    gatewayFactory: sidecarGateways(options, log, io),
    hasher,
    historyRetentionMs: options.audit.historyRetentionMs,
    decoySecret: keys.decoySecret,
  });
  await requireCredentialsAccepted(opened, options.redis);
  const bundles = new BundleDir(options.bundleDir, { registry, pool, log });

  const syncBundles = async (reason: string): Promise<void> => {
    const report = await bundles.sync();
    metrics.bundles.set(registry.storeKeys().length);
    log.info({ reason, loaded: report.loaded, removed: report.removed, kept: report.kept.map((k) => k.file) }, 'bundles synced');
  };
  // What the keys last read were, as a digest: a sync of the bundles alone changes none of them.
  let keysDigest = '';
  // One read at a time, in order: an older read finishing last never puts back older keys.
  let keysRun = Promise.resolve();
  const syncKeys = (): Promise<void> =>
    (keysRun = keysRun.then(readKeys).catch((err: unknown) => log.error({ err: errorFields(err) }, 'code keys not read; the current keys stay')));
  const readKeys = async (): Promise<void> => {
    const read = await readDirectoryFiles(options.keysDir);
    const next = codeKeysFrom(read.files);
    if (next.ok) {
      const digest = contentHash({ keys: next.codeKeys.map((k) => [k.id, k.secret.toString('base64')]), decoy: next.decoySecret.toString('base64') });
      if (digest === keysDigest) return;
      keysDigest = digest;
      hasher.setKeys(next.codeKeys);
      verifier.setDecoySecret(next.decoySecret);
      log.info({ keys: next.codeKeys.map((k) => k.id) }, 'code keys read');
    } else log.error({ error: next.error }, 'code keys unreadable; the current keys stay');
  };
  // Watch the folders (the kubelet swaps their ..data symlink), then read them.
  const watcher = watchTrees([options.bundleDir, options.keysDir], (reason) => {
    void syncBundles(reason);
    void syncKeys();
  });
  cleanup.add(() => watcher.close());
  await watcher.ready;
  // Read again once watched: a change between the first read and the watch is not missed.
  await Promise.all([syncBundles('start'), syncKeys()]);
  const server = serveVerifier(
    listeners.api,
    { verifier, store, contract, metrics },
    { log, ...(options.token !== undefined ? { token: options.token } : {}), ...accessOf(options.audit) },
    options.twilioCompat ? twilioRoutes({ verifier, store, stores: registry, publicBase: `${listeners.api.url}/twilio` }) : [],
  );
  // Stopping, the server closes first: no new request reaches a store or directory being closed.
  cleanup.add(() => server.close(10_000));
  const probes = listeners.probes?.serve(verifierProbeRoutes(verifier, store), { log });
  // Listen for signals before saying it serves: whoever reads that line may stop it at once.
  const signalled = untilSignalled();
  log.info({ url: server.url, stores: registry.storeKeys() }, 'serving');
  io.stdout(`${JSON.stringify({ event: 'serving', url: server.url, probes: probes?.url ?? null, stores: registry.storeKeys() })}\n`);
  if (options.redis !== undefined) {
    const redis = redisDisplay(options.redis);
    watchRedis(
      opened,
      () => log.warn({ redis }, 'Redis does not answer yet: the API answers 503 and /readyz says so until it does'),
      () => log.info({ redis }, 'Redis answers: ready'),
      (reply) =>
        log.error({ redis, reply }, 'Redis refused the credentials of --redis: the API answers 503 until it accepts them; fix the user name and password'),
    );
  }

  countEnrollmentPeriodically(verifier, registry, log, cleanup);

  await signalled;
  return 0;
}

/** sidecarGateways makes each account's gateway; the console gateway, which sends nothing, only with --allow-console. */
function sidecarGateways(options: SidecarOptions, log: Logger, io: CliIo): GatewayFactory {
  return (gw, credentials) => {
    if (gw.provider === 'console' && !options.allowConsole) {
      throw new GatewayConfigError(
        gw.name,
        'spec.provider',
        'the console gateway does not send anything: it is refused in a cluster unless the sidecar runs with --allow-console',
      );
    }
    return createGateway(gw, credentials, {
      logger: log,
      proxyFetch,
      console: { ...(options.outbox !== undefined ? { outboxPath: options.outbox } : {}), print: (line) => io.stderr(`${line}\n`) },
    });
  };
}

/**
 * countEnrollmentPeriodically sets the roles' enrollment gauges every COMPLIANCE_REFRESH_MS, from
 * a random point, so that replicas started together do not list the directory together.
 */
function countEnrollmentPeriodically(verifier: Verifier, registry: BundleRegistry, log: Logger, cleanup: Cleanup): void {
  const count = (): void =>
    void complianceOfAll(verifier, registry, log).catch((err: unknown) => log.error({ err: errorKind(err) }, 'enrollment count failed'));
  cleanup.add(repeat(systemClock, COMPLIANCE_REFRESH_MS, count, Math.floor(Math.random() * COMPLIANCE_REFRESH_MS)));
}
