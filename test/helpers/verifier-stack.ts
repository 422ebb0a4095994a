import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import type { RunningServer } from '../../controller/adapters/http-server.ts';
import { SqliteStore } from '../../controller/adapters/sqlite-store.ts';
import type { Bundle } from '../../controller/core/bundle.ts';
import { reconcile } from '../../controller/core/reconciler.ts';
import { systemClock } from '../../controller/core/clock.ts';
import type { Directory } from '../../controller/directories/directory.ts';
import { GatewayError } from '../../controller/gateways/gateway.ts';
import { BundleRegistry } from '../../controller/verifier/bundle-registry.ts';
import { TrustedProxies } from '../../controller/verifier/client-address.ts';
import { CodeHasher } from '../../controller/verifier/code-hasher.ts';
import { createVerifierMetrics, type VerifierMetrics } from '../../controller/verifier/metrics.ts';
import { signingKeyOf } from '../../controller/verifier/events.ts';
import { compileContract } from '../../controller/verifier/openapi-contract.ts';
import { createServer } from '../../controller/runtime/verifier-server.ts';
import type { StateStore } from '../../controller/verifier/state-store.ts';
import { DEFAULT_VERIFIER_CONFIG, Verifier, type Sender, type VerifierConfig } from '../../controller/verifier/verifier.ts';
import { desiredStateOf } from '../../controller/validate/desired-state.ts';
import { validateFiles } from '../../controller/validate/validate-files.ts';
import { ROOT, fixtureBytes, schemaValidator } from './fixtures.ts';
import { checkResponse } from './openapi-check.ts';
import { RecordingGateway } from './recording-gateway.ts';
import { logScan } from './log-scan.ts';

/** ApiAnswer is a response, already checked against docs/openapi.yaml. */
export interface ApiAnswer {
  status: number;
  body: any;
  headers: Headers;
}

/** Stack is a verifier served over HTTP on a free loopback port, with fakes of our own ports only. */
export interface Stack {
  url: string;
  api(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<ApiAnswer>;
  gateways: Map<string, RecordingGateway>;
  clock: { now: number; advance(ms: number): void };
  store: StateStore;
  verifier: Verifier;
  metrics: VerifierMetrics;
  registry: BundleRegistry;
  logs: string[];
  close(): Promise<void>;
}

/** simpleSender tries each account of the chain in order; a number the gateway refuses is not tried elsewhere. */
export const simpleSender: Sender = async (chain, message) => {
  let last: GatewayError | undefined;
  for (const { account, gateway } of chain) {
    try {
      return { ok: true, account, result: await gateway.send({ ...message, account }) };
    } catch (err) {
      last = err as GatewayError;
      if (last.code === 'InvalidNumber') return { ok: false, error: last, account };
    }
  }
  return { ok: false, error: last ?? new GatewayError('Transient', 'no account', { provider: 'console' }) };
};

/**
 * startStack builds bundles from test/fixtures/verifier/stores.yaml (or another fixture) through
 * the real loader and reconciler and serves them; directoryOf gives the stores that name a
 * directory theirs.
 */
export async function startStack(
  options: {
    store?: StateStore;
    config?: Partial<VerifierConfig>;
    token?: string;
    host?: string;
    timeouts?: { headersMs: number; requestMs: number };
    codeKey?: Buffer;
    decoySecret?: Buffer;
    gateways?: Map<string, RecordingGateway>;
    fixture?: string;
    /** The fixture's text, instead of a file (a test that writes its receiver's URL into it). */
    yaml?: string;
    /** The value of every events endpoint's signing secret (spec.events). */
    eventsSecret?: string;
    /** Told after a change that may have put events in an outbox (the verifier's published hook). */
    published?: (namespace: string, store: string) => void;
    directoryOf?: (bundle: Bundle) => Directory;
    helpdeskToken?: string;
    trustedProxies?: string[];
  } = {},
): Promise<Stack> {
  const fixture = options.fixture ?? 'verifier/stores.yaml';
  const bytes = options.yaml !== undefined ? Buffer.from(options.yaml) : fixtureBytes(fixture);
  const result = validateFiles([{ path: fixture, bytes }], await schemaValidator());
  if (result.diagnostics.some((d) => d.severity === 'error')) throw new Error(JSON.stringify(result.diagnostics));
  const state = reconcile(desiredStateOf(result), undefined, new Date().toISOString());
  const gateways = options.gateways ?? new Map<string, RecordingGateway>();
  const gatewayOf = (account: string): RecordingGateway => {
    let g = gateways.get(account);
    if (g === undefined) gateways.set(account, (g = new RecordingGateway(account)));
    return g;
  };
  const registry = new BundleRegistry();
  for (const b of state.bundles.values()) {
    const directory = b.directory !== null ? options.directoryOf?.(b) : undefined;
    registry.put(b.namespace, b.identityStore, {
      bundle: b,
      gateways: b.sms.gateways.map((g) => ({ account: g.name, gateway: gatewayOf(g.name) })),
      ...(directory !== undefined ? { directory } : {}),
      ...(b.events !== undefined && options.eventsSecret !== undefined ? { eventsKey: signingKeyOf(options.eventsSecret) } : {}),
    });
    for (const g of b.sms.gateways) registry.putAccount(b.namespace, g.name, { gateway: gatewayOf(g.name) });
  }
  registry.markLoaded();

  const logs: string[] = [];
  const log = pino(
    { level: 'debug' },
    new Writable({
      write(chunk: Buffer, _e, cb) {
        logs.push(chunk.toString('utf8'));
        logScan.observe('verifier', chunk.toString('utf8'));
        cb();
      },
    }),
  );
  const clock = {
    now: Date.parse('2026-03-01T10:00:00Z'),
    advance(ms: number) {
      this.now += ms;
    },
  };
  const store = options.store ?? new SqliteStore(join(mkdtempSync(join(tmpdir(), 'smsauth-state-')), 'state.sqlite'));
  const metrics = createVerifierMetrics();
  const verifier = new Verifier({
    store,
    bundles: registry,
    hasher: new CodeHasher([{ id: 'k1', secret: options.codeKey ?? randomBytes(32) }]),
    send: simpleSender,
    log,
    metrics,
    config: { ...DEFAULT_VERIFIER_CONFIG, ...options.config },
    // Time stands still unless a test moves it; timers (a decoy's imitated send) are real.
    clock: { now: () => clock.now, setTimeout: (f, ms) => systemClock.setTimeout(f, ms), clearTimeout: (t) => systemClock.clearTimeout(t) },
    decoySecret: options.decoySecret ?? randomBytes(32),
    ...(options.published !== undefined ? { published: options.published } : {}),
  });
  const contract = compileContract(parse(readFileSync(join(ROOT, 'docs', 'openapi.yaml'), 'utf8')) as Record<string, unknown>);
  const server: RunningServer = await createServer(
    { verifier, store, contract, metrics },
    {
      host: options.host ?? '127.0.0.1',
      port: 0,
      log,
      ...(options.token !== undefined ? { token: options.token } : {}),
      ...(options.helpdeskToken !== undefined ? { helpdeskToken: options.helpdeskToken } : {}),
      ...(options.trustedProxies !== undefined ? { trustedProxies: new TrustedProxies(options.trustedProxies) } : {}),
      ...(options.timeouts ? { headersTimeoutMs: options.timeouts.headersMs, requestTimeoutMs: options.timeouts.requestMs } : {}),
    },
  );
  return {
    url: server.url,
    async api(method, path, body, headers = {}) {
      const res = await fetch(server.url + path, {
        method,
        headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
        ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
      });
      const text = await res.text();
      const parsed = res.headers.get('content-type')?.includes('json') === true && text !== '' ? JSON.parse(text) : text;
      checkResponse(method, path, res.status, res.headers, parsed);
      return { status: res.status, body: parsed, headers: res.headers };
    },
    gateways,
    clock,
    store,
    verifier,
    metrics,
    registry,
    logs,
    async close() {
      await server.close(1000);
      await verifier.drain();
      await store.close();
      logScan.assertClean();
    },
  };
}
