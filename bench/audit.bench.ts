// The audit trail and enrollment compliance at scale:
// - exporting 100,000 history events as NDJSON through the HTTP API, from SQLite and from Redis,
//   beside a bare node:http server streaming the same lines from memory (same run); the heap
//   the export adds, sampled while it runs, beside the export of 10,000: flat memory means alike;
// - the compliance of a role of 50,000 directory members (a container of a real slapd, paged),
//   beside the bare paged LDAP search of the same entries; and the longest the event loop was
//   held meanwhile (monitorEventLoopDelay), beside an idle loop's over the same time.
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Client } from 'ldapts';
import { pino } from 'pino';
import { parse } from 'yaml';
import { readFileSync } from 'node:fs';
import { RedisStore } from '../controller/adapters/redis-store.ts';
import { SqliteStore } from '../controller/adapters/sqlite-store.ts';
import type { RoleBundle } from '../controller/core/bundle.ts';
import { createLdapDirectory } from '../controller/directories/ldap-directory.ts';
import { enrollmentCompliance } from '../controller/verifier/compliance.ts';
import { BundleRegistry } from '../controller/verifier/bundle-registry.ts';
import { CodeHasher } from '../controller/verifier/code-hasher.ts';
import { createVerifierMetrics } from '../controller/verifier/metrics.ts';
import { compileContract } from '../controller/verifier/openapi-contract.ts';
import type { StateStore } from '../controller/verifier/state-store.ts';
import type { HistoryEvent } from '../controller/verifier/types.ts';
import { Verifier } from '../controller/verifier/verifier.ts';
import { createServer as createVerifierServer } from '../controller/runtime/verifier-server.ts';
import { startRedis } from '../test/helpers/redis-server.ts';
import { ldapSettingsOf, startSlapd } from '../test/helpers/slapd.ts';
import { row, type BenchRow } from './harness.ts';

const EVENTS = 100_000;
const MEMBERS = 50_000;
const SUFFIX = 'dc=acme,dc=example';
const RETENTION = { maxEvents: 10_000_000, maxAgeMs: 400 * 24 * 3_600_000 };

function event(i: number, now: number): Omit<HistoryEvent, 'seq'> {
  return {
    namespace: 'bench',
    store: 'corp',
    user: `user${i % 5000}`,
    type: i % 7 === 0 ? 'enroll' : 'authenticate',
    result: i % 9 === 0 ? 'failure' : 'success',
    time: now - (EVENTS - i) * 1000,
    actor: 'user',
    clientIp: '203.0.113.7',
    userAgent: 'Mozilla/5.0 (bench)',
    role: 'staff',
    verificationId: `VE${i.toString(16).padStart(32, '0')}`,
  };
}

async function fill(store: StateStore, n: number, now: number): Promise<void> {
  for (let i = 0; i < n; i += 500) await Promise.all(Array.from({ length: Math.min(500, n - i) }, (_, k) => store.addHistory(event(i + k, now), RETENTION)));
}

/** exportOnce reads an NDJSON export chunk by chunk (keeping nothing), and samples the heap meanwhile. */
async function exportOnce(url: string, headers: Record<string, string>): Promise<{ lines: number; ms: number; peakHeapMb: number }> {
  global.gc?.();
  const base = process.memoryUsage().heapUsed;
  let peak = 0;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().heapUsed - base)), 5);
  const t0 = process.hrtime.bigint();
  const res = await fetch(url, { headers });
  let lines = 0;
  for await (const chunk of res.body!) for (const byte of chunk as Uint8Array) if (byte === 10) lines++;
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  clearInterval(sampler);
  return { lines, ms, peakHeapMb: peak / 1024 / 1024 };
}

/** bareServer streams n lines like the export's from memory, with backpressure: the floor of any export. */
async function bareServer(n: number, sample: string): Promise<{ url: string; close(): void }> {
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    let i = 0;
    const write = (): void => {
      while (i < n) {
        i++;
        if (!res.write(`${sample}\n`)) return void res.once('drain', write);
      }
      res.end();
    };
    write();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, close: () => server.close() };
}

async function benchExport(root: string, name: string, store: StateStore): Promise<BenchRow[]> {
  const now = Date.now();
  await fill(store, EVENTS, now);
  const registry = new BundleRegistry();
  registry.put('bench', 'corp', {
    bundle: { namespace: 'bench', identityStore: 'corp', roles: [], directory: null, sms: { offered: true } } as never,
    gateways: [],
  });
  registry.markLoaded();
  const log = pino({ level: 'silent' });
  const metrics = createVerifierMetrics();
  const verifier = new Verifier({
    store,
    bundles: registry,
    hasher: new CodeHasher([{ id: 'k', secret: randomBytes(32) }]),
    send: () => Promise.reject(new Error('no send')),
    log,
    metrics,
    decoySecret: randomBytes(32),
  });
  const contract = compileContract(parse(readFileSync(join(root, 'docs', 'openapi.yaml'), 'utf8')) as Record<string, unknown>);
  const server = await createVerifierServer({ verifier, store, contract, metrics }, { host: '127.0.0.1', port: 0, log });
  const sample = JSON.stringify({
    seq: 1,
    user: 'user1',
    type: 'authenticate',
    result: 'success',
    time: new Date(now).toISOString(),
    actor: 'user',
    client: { address: '203.0.113.7', userAgent: 'Mozilla/5.0 (bench)' },
    role: 'staff',
    verificationId: `VE${'0'.repeat(32)}`,
  });
  const bare = await bareServer(EVENTS, sample);
  try {
    const ndjson = { accept: 'application/x-ndjson' };
    await exportOnce(bare.url, {});
    const floor = await exportOnce(bare.url, {});
    await exportOnce(`${server.url}/v1/bench/corp/history`, ndjson);
    const all = await exportOnce(`${server.url}/v1/bench/corp/history`, ndjson);
    if (all.lines !== EVENTS) throw new Error(`exported ${all.lines} of ${EVENTS} events`);
    const tenth = await exportOnce(`${server.url}/v1/bench/corp/history?since=${new Date(now - EVENTS * 100).toISOString()}`, ndjson);
    const baseline = { name: 'bare node:http streaming the same lines from memory', value: (EVENTS / floor.ms) * 1000 };
    return [
      row(`NDJSON export of ${EVENTS.toLocaleString('en')} events, ${name}`, (EVENTS / all.ms) * 1000, 'events/s', baseline, `${(all.ms / 1000).toFixed(1)} s`),
      row(
        `heap the export adds, ${name}: ${EVENTS.toLocaleString('en')} events`,
        all.peakHeapMb,
        'MB',
        { name: `the same export of ${tenth.lines.toLocaleString('en')} events`, value: tenth.peakHeapMb },
        'peak while streaming; alike = flat memory',
      ),
    ];
  } finally {
    bare.close();
    await server.close(1000);
    await store.close();
  }
}

async function benchCompliance(): Promise<BenchRow[]> {
  const users = Array.from(
    { length: MEMBERS },
    (_, i) => `dn: uid=m${i},ou=Staff,ou=People,${SUFFIX}\nobjectClass: inetOrgPerson\nuid: m${i}\ncn: M ${i}\nsn: ${i}\n`,
  ).join('\n');
  const ldif = [
    `dn: ${SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: acme\no: Acme`,
    `dn: ou=People,${SUFFIX}\nobjectClass: organizationalUnit\nou: People`,
    `dn: ou=Staff,ou=People,${SUFFIX}\nobjectClass: organizationalUnit\nou: Staff`,
    users,
  ].join('\n\n');
  const slapd = await startSlapd({ suffix: SUFFIX, ldif, sizeLimit: 'unlimited' });
  const state = new SqliteStore(join(mkdtempSync(join(tmpdir(), 'smsauth-bench-')), 'state.sqlite'));
  const settings = ldapSettingsOf(slapd, `ou=People,${SUFFIX}`, { timeoutMs: 30_000 });
  const directory = createLdapDirectory(settings);
  const client = new Client({ url: slapd.ldapsUrl, tlsOptions: { ca: slapd.ca } });
  const role: RoleBundle = {
    name: 'staff',
    priority: 1,
    groups: [],
    containers: [`ou=Staff,ou=People,${SUFFIX}`],
    enforced: ['SMS'],
    chosenByEndUser: 0,
    secondFactor: false,
    lockout: { failedAttemptsThreshold: 5, durationMs: 60_000 },
  };
  try {
    for (let i = 0; i < MEMBERS; i += 2)
      await state.putEnrollment('bench', 'corp', { user: `m${i}`, to: '+14155550100', enrolledAt: 0, verificationId: 'VE0' });
    await client.bind(slapd.bindDN, slapd.bindPassword);
    const t0 = process.hrtime.bigint();
    const { searchEntries } = await client.search(`ou=Staff,ou=People,${SUFFIX}`, {
      scope: 'sub',
      filter: '(uid=*)',
      attributes: ['uid'],
      paged: { pageSize: 500 },
    });
    const bareMs = Number(process.hrtime.bigint() - t0) / 1e6;
    const idle = monitorEventLoopDelay({ resolution: 1 });
    idle.enable();
    await new Promise((resolve) => setTimeout(resolve, Math.max(200, bareMs)));
    idle.disable();
    const busy = monitorEventLoopDelay({ resolution: 1 });
    busy.enable();
    const t1 = process.hrtime.bigint();
    const report = await enrollmentCompliance({ namespace: 'bench', store: 'corp', roles: [role], directory, state }, { now: Date.now() });
    const ms = Number(process.hrtime.bigint() - t1) / 1e6;
    busy.disable();
    const [staff] = report.roles;
    if (staff?.members !== MEMBERS || staff.enrolled !== MEMBERS / 2 || searchEntries.length !== MEMBERS)
      throw new Error(`counted ${JSON.stringify(staff)} of ${searchEntries.length}`);
    return [
      row(
        `compliance of a role of ${MEMBERS.toLocaleString('en')} members (half enrolled), SQLite`,
        ms,
        'ms',
        { name: 'bare paged LDAP search of the same entries (ldapts)', value: bareMs },
        'paged listing, then enrollments in chunks of 500',
      ),
      row('longest the event loop was held meanwhile', busy.max / 1e6, 'ms', {
        name: 'an idle event loop over the same time',
        value: Math.max(1, idle.max / 1e6),
      }),
    ];
  } finally {
    await client.unbind().catch(() => undefined);
    await directory.close();
    await state.close();
    await slapd.stop();
  }
}

/** benchAudit measures the NDJSON export (SQLite, Redis) and the compliance of a large role. */
export async function benchAudit(root: string): Promise<BenchRow[]> {
  const rows = await benchExport(root, 'SQLite', new SqliteStore(join(mkdtempSync(join(tmpdir(), 'smsauth-bench-')), 'state.sqlite')));
  const redis = await startRedis();
  try {
    const store = new RedisStore(redis.url, { commandTimeoutMs: 10_000 });
    await store.ready();
    rows.push(...(await benchExport(root, 'Redis', store)));
  } finally {
    await redis.stop();
  }
  rows.push(...(await benchCompliance()));
  return rows;
}
