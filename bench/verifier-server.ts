// Child process for the verifier benchmark: serves either a bare node:http baseline or the real
// verifier (on SQLite, on Redis, or on a store in memory that answers at once), prepares
// verifications to check, and prints one JSON line to stdout.
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { RedisStore } from '../controller/adapters/redis-store.ts';
import { SqliteStore } from '../controller/adapters/sqlite-store.ts';
import { createServer as createVerifierServer } from '../controller/runtime/verifier-server.ts';
import { compileContract } from '../controller/verifier/openapi-contract.ts';
import { BundleRegistry } from '../controller/verifier/bundle-registry.ts';
import { CodeHasher, macMatches } from '../controller/verifier/code-hasher.ts';
import type { StateStore } from '../controller/verifier/state-store.ts';
import type { VerificationRecord } from '../controller/verifier/types.ts';
import { createVerifierMetrics } from '../controller/verifier/metrics.ts';
import { DEFAULT_VERIFIER_CONFIG, Verifier } from '../controller/verifier/verifier.ts';
import { reconcile } from '../controller/core/reconciler.ts';
import { desiredStateOf } from '../controller/validate/desired-state.ts';
import { validateFiles } from '../controller/validate/validate-files.ts';
import { createSchemaValidator } from '../controller/validate/schema-validator.ts';
import { packageRoot, readSchemaSet } from '../controller/adapters/files.ts';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import type { OutboundMessage, SendResult, SmsGateway } from '../controller/gateways/gateway.ts';
import { simpleSender } from '../test/helpers/verifier-stack.ts';

const STORES = `
apiVersion: smsauth.io/v1alpha1
kind: SmsGatewayAccount
metadata: {name: gw, namespace: bench}
spec: {provider: console, default: true}
---
apiVersion: smsauth.io/v1alpha1
kind: IdentityStore
metadata: {name: corp, namespace: bench}
spec:
  type: ActiveDirectory
  authenticationTypes: [SMS]
  sms: {textMessage: "[Code] is your code.", code: {maxAttempts: 10, maxSends: 10}}
`;

/** BenchGateway answers at once and keeps the messages of the preparation (the test suite's RecordingGateway also feeds the log scan). */
class BenchGateway implements SmsGateway {
  readonly provider = 'console' as const;
  readonly sent: OutboundMessage[] = [];
  /** Messages sent since the start, the preparation's included (sent is emptied every second). */
  count = 0;
  send(message: OutboundMessage): Promise<SendResult> {
    this.sent.push(message);
    this.count++;
    // Provider message ids are random (Plivo's are UUIDs), as they land in the store's message index.
    return Promise.resolve({ provider: this.provider, messageId: randomUUID(), segments: 1 });
  }
  testCredentials(): Promise<void> {
    return Promise.resolve();
  }
  readReceipt(): undefined {
    return undefined;
  }
}

async function main(): Promise<void> {
  // The parent asks for this process's CPU time (all threads) and the messages sent so far around each measured load.
  let sends = (): number => 0;
  process.on('message', () => process.send?.({ ...process.cpuUsage(), sends: sends() }));
  // --state, --redis-prefix and --code-key let a second server share the first one's store and code key (another replica).
  const { values } = parseArgs({
    options: {
      mode: { type: 'string' },
      store: { type: 'string', default: 'sqlite' },
      redis: { type: 'string' },
      prepare: { type: 'string', default: '0' },
      profile: { type: 'string' },
      state: { type: 'string' },
      'redis-prefix': { type: 'string' },
      'code-key': { type: 'string' },
      bindings: { type: 'string' },
    },
  });
  if (values.mode === 'baseline') {
    // The same work a framework-free JSON endpoint does: read the body, parse it, answer JSON.
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = chunks.length > 0 ? (JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown) : {};
        const payload = JSON.stringify({ ok: true, echo: typeof body });
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) });
        res.end(payload);
      });
    });
    server.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ url: `http://127.0.0.1:${(server.address() as { port: number }).port}` })));
    return;
  }
  const root = packageRoot();
  const result = validateFiles(
    [{ path: 'bench.yaml', bytes: new TextEncoder().encode(STORES) }],
    createSchemaValidator(await readSchemaSet(join(root, 'schemas'))),
  );
  const state = reconcile(desiredStateOf(result), undefined, new Date().toISOString());
  const gateway = new BenchGateway();
  sends = () => gateway.count;
  const registry = new BundleRegistry();
  for (const b of state.bundles.values()) registry.put(b.namespace, b.identityStore, { bundle: b, gateways: [{ account: 'gw', gateway }] });
  registry.markLoaded();
  const store =
    values.store === 'memory'
      ? memoryStore()
      : values.store === 'redis'
        ? new RedisStore(values.redis!, { keyPrefix: values['redis-prefix'] ?? `bench${Date.now()}:` })
        : new SqliteStore(values.state ?? join(mkdtempSync(join(tmpdir(), 'smsauth-bench-')), 'state.sqlite'));
  if (store instanceof RedisStore) await store.ready();
  // Logging on, as in production, into a sink.
  const log = pino({ level: 'info' }, new Writable({ write: (_c, _e, cb) => cb() }));
  const metrics = createVerifierMetrics();
  const unlimited = { limit: 1e9, windowMs: 60_000 };
  const verifier = new Verifier({
    store,
    bundles: registry,
    hasher: new CodeHasher([{ id: 'k', secret: values['code-key'] !== undefined ? Buffer.from(values['code-key'], 'hex') : randomBytes(32) }]),
    send: simpleSender,
    log,
    metrics,
    config: {
      ...DEFAULT_VERIFIER_CONFIG,
      limits: { perNumber: unlimited, perUser: unlimited, perPrefix: unlimited, perClient: null, global: unlimited },
      ...(values.bindings !== undefined ? { rememberedBindings: Number(values.bindings) } : {}),
    },
    decoySecret: randomBytes(32),
  });
  const contract = compileContract(parse(readFileSync(join(root, 'docs', 'openapi.yaml'), 'utf8')) as Record<string, unknown>);
  const server = await createVerifierServer({ verifier, store, contract, metrics }, { host: '127.0.0.1', port: 0, log });
  const prepared: { id: string; code: string; to: string; user: string }[] = [];
  const users = new Map<string, string>();
  // Verifications to check, prepared in parallel batches; each message's reference names its verification.
  const total = Number(values.prepare);
  for (let i = 0; i < total; i += 200) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(200, total - i) }, (_, k) => {
        const to = `+3361${String(i + k).padStart(7, '0')}`;
        const user = `prep${i + k}`;
        users.set(to, user);
        return verifier.startVerification({ ip: '127.0.0.1', userAgent: 'bench', actor: 'user' }, 'bench', 'corp', { to, purpose: 'enroll', user });
      }),
    );
    for (const r of batch) if (!r.ok) throw new Error(JSON.stringify(r.error));
  }
  for (const m of gateway.sent) prepared.push({ id: m.reference, code: /\d{6}/.exec(m.text)![0], to: m.to, user: users.get(m.to)! });
  gateway.sent.length = 0;
  if (values.profile !== undefined) await startProfile(values.profile);
  console.log(JSON.stringify({ url: server.url, prepared }));
  setInterval(() => {
    gateway.sent.length = 0;
  }, 1000).unref();
  // Exit cleanly on a signal, so that --cpu-prof can write its profile.
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => void stopProfile().then(() => process.exit(0)));
}

/**
 * memoryStore is a StateStore of start's and check's operations alone, answering at once from a
 * Map, with none of a store's guarantees: served with it, the verifier's figures are its own work
 * on the event loop (HTTP, validation, HMAC, logging, metrics), with no store round trip. A check
 * changes nothing it holds (a right code approves each time it is checked), so that however long a
 * load runs, its figure counts approvals alone, never the cheaper refusals of codes already used.
 */
function memoryStore(): StateStore {
  const records = new Map<string, VerificationRecord>();
  const known = { getEnrollment: () => Promise.resolve(undefined), ping: () => Promise.resolve(), close: () => Promise.resolve() };
  const store: Partial<StateStore> = {
    ...known,
    createVerification: (r) => {
      records.set(r.id, r);
      return Promise.resolve({ outcome: 'created', record: r });
    },
    recordSent: () => Promise.resolve(),
    getVerification: (_ns, _st, id) => Promise.resolve(records.get(id)),
    attempt: (_ns, _st, id, now, candidates) => {
      const r = records.get(id);
      if (r === undefined) return Promise.resolve(undefined);
      if (r.status !== 'pending') return Promise.resolve({ counted: false, approved: false, record: r });
      const approved = macMatches(r.code, candidates);
      const next: VerificationRecord = { ...r, attempts: r.attempts + 1, ...(approved ? { status: 'approved' as const, approvedAt: now } : {}) };
      return Promise.resolve({ counted: true, approved, record: next });
    },
  };
  // Any other operation fails, so that a figure never counts work the memory store skipped.
  return new Proxy(store as StateStore, {
    get: (target, name): unknown =>
      Reflect.get(target, name) ??
      (typeof name === 'symbol' || name === 'then' ? undefined : () => Promise.reject(new Error(`the memory store has no ${name}`))),
  });
}

// --profile FILE: a CPU profile of the measured phase only (not of the preparation).
let stopProfile = (): Promise<void> => Promise.resolve();
async function startProfile(file: string): Promise<void> {
  const { Session } = await import('node:inspector/promises');
  const { writeFile } = await import('node:fs/promises');
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  stopProfile = async () => {
    const { profile } = await session.post('Profiler.stop');
    await writeFile(file, JSON.stringify(profile));
  };
}

await main();
