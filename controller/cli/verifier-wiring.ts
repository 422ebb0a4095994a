import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { parse } from 'yaml';
import { postEvent } from '../adapters/event-sink.ts';
import { packageRoot } from '../adapters/files.ts';
import { repeat, systemClock } from '../core/clock.ts';
import { createDirectory } from '../directories/create-directory.ts';
import { DirectoryPool } from '../runtime/directory-pool.ts';
import { EventDelivery } from '../runtime/event-delivery.ts';
import { failoverSender } from '../runtime/failover-sender.ts';
import { GatewayPool, type GatewayFactory } from '../runtime/gateway-pool.ts';
import { openStateStore, StoreOpenError, type OpenedStore } from '../runtime/open-state-store.ts';
import { BundleRegistry } from '../verifier/bundle-registry.ts';
import type { CodeHasher } from '../verifier/code-hasher.ts';
import { createVerifierMetrics, type VerifierMetrics } from '../verifier/metrics.ts';
import { compileContract, type OpenApiContract } from '../verifier/openapi-contract.ts';
import type { StateStore } from '../verifier/state-store.ts';
import { DEFAULT_VERIFIER_CONFIG, Verifier } from '../verifier/verifier.ts';
import { StartupError } from './cli-io.ts';
import type { AuditOptions, Cleanup } from './startup.ts';

/** VerifierParts are what serves the verification endpoint, as smsauth run and smsauth sidecar build it. */
export interface VerifierParts {
  opened: OpenedStore;
  store: StateStore;
  registry: BundleRegistry;
  metrics: VerifierMetrics;
  pool: GatewayPool;
  verifier: Verifier;
  contract: OpenApiContract;
  events: EventDelivery;
}

/**
 * wireVerifier opens the state store (a SQLite file that cannot be opened is a StartupError that
 * ends with storeHint) and builds the verifier with its gateway and directory pools; what it
 * opens it registers with cleanup, to be closed last opened first.
 */
export async function wireVerifier(options: {
  log: Logger;
  cleanup: Cleanup;
  redisUrl: string | undefined;
  sqlitePath: string;
  storeHint: string;
  gatewayFactory: GatewayFactory;
  hasher: CodeHasher;
  decoySecret: Buffer;
  /** How long history is kept; the sweep removes what is older, every minute. */
  historyRetentionMs: number;
}): Promise<VerifierParts> {
  const { log, cleanup } = options;
  let opened: OpenedStore;
  try {
    opened = openStateStore({ redisUrl: options.redisUrl, sqlitePath: options.sqlitePath });
  } catch (err) {
    if (err instanceof StoreOpenError) throw new StartupError(`cannot open the state file ${options.sqlitePath}: ${err.message}; ${options.storeHint}`);
    throw err;
  }
  const store = opened.store;
  cleanup.add(() => store.close());
  const registry = new BundleRegistry();
  const metrics = createVerifierMetrics({ processMetrics: true });
  const directories = new DirectoryPool(createDirectory, log);
  cleanup.add(() => directories.close());
  const pool = new GatewayPool(options.gatewayFactory, log, directories);
  const config = { ...DEFAULT_VERIFIER_CONFIG, history: { ...DEFAULT_VERIFIER_CONFIG.history, maxAgeMs: options.historyRetentionMs } };
  // The stores' events endpoints (spec.events), delivered from the outbox; it stops after the
  // verifier drains (whose last requests may add events) and before the store closes.
  const events = new EventDelivery({
    store,
    endpoints: () => registry.eventEndpoints(),
    post: postEvent,
    clock: systemClock,
    log,
    metrics,
    holder: `${hostname()}_${process.pid}_${randomBytes(4).toString('hex')}`,
  });
  cleanup.add(() => events.stop());
  events.start();
  const verifier = new Verifier({
    store,
    bundles: registry,
    hasher: options.hasher,
    send: failoverSender(log),
    log,
    metrics,
    decoySecret: options.decoySecret,
    config,
    published: () => events.wake(),
  });
  cleanup.add(() => verifier.drain());
  cleanup.add(repeat(systemClock, 60_000, () => void store.sweep(systemClock.now(), config.history).catch(() => undefined)));
  const contract = compileContract(parse(await readFile(join(packageRoot(), 'docs', 'openapi.yaml'), 'utf8')) as Record<string, unknown>);
  return { opened, store, registry, metrics, pool, verifier, contract, events };
}

/** accessOf is what the endpoint's guard takes of the audit options: the helpdesk token and the trusted proxies. */
export function accessOf(audit: AuditOptions): { helpdeskToken?: string; trustedProxies: AuditOptions['trustedProxies'] } {
  return { ...(audit.helpdeskToken !== undefined ? { helpdeskToken: audit.helpdeskToken } : {}), trustedProxies: audit.trustedProxies };
}
