import { randomBytes } from 'node:crypto';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { RedisStore } from '../controller/adapters/redis-store.ts';
import { SqliteStore } from '../controller/adapters/sqlite-store.ts';
import type { VerificationRecord } from '../controller/verifier/types.ts';
import { startRedis } from '../test/helpers/redis-server.ts';
import { row, type BenchRow } from './harness.ts';

// What state costs at scale: Redis memory for a million pending verifications (INFO memory, after
// creating them through the store's own script), beside the same records stored as plain strings
// in the same Redis (the floor of keeping that data there); and the SQLite file's bytes per
// verification and per enrollment.

/** SMSAUTH_BENCH_MEMORY_N overrides how many verifications Redis holds (default a million). */
const N = Number(process.env.SMSAUTH_BENCH_MEMORY_N ?? 1_000_000);
const SQLITE_N = 100_000;
const CONCURRENCY = 256;

/** pending is the i-th pending verification as the verifier stores one: an enrollment of its own user and number. */
function pending(i: number, now: number): VerificationRecord {
  const number = `+1415${String(5_000_000 + (i % 5_000_000)).padStart(7, '0')}`;
  return {
    id: `VE${randomBytes(16).toString('hex')}`,
    namespace: 'bench',
    store: 'corp',
    purpose: 'enroll',
    user: `user${i}`,
    to: number,
    locale: null,
    status: 'pending',
    createdAt: now,
    expiresAt: now + 600_000,
    code: { keyId: 'k1', mac: randomBytes(32).toString('hex') },
    attempts: 0,
    maxAttempts: 5,
    sends: 1,
    maxSends: 5,
    lastSentAt: now,
    resendCooldownMs: 30_000,
    lockout: { threshold: 5, durationMs: 900_000 },
    delivery: { status: 'sent', updatedAt: now },
    client: { ip: '203.0.113.7', userAgent: 'Mozilla/5.0 (bench)' },
    actor: 'user',
    role: null,
    maskedTo: '+1 •••••••••• #abcdef',
  };
}

/** usedMemory reads used_memory from INFO memory. */
async function usedMemory(client: Redis): Promise<number> {
  return Number(/^used_memory:(\d+)/m.exec(await client.info('memory'))![1]);
}

/** inParallel runs fn(i) for i < n, CONCURRENCY at a time. */
async function inParallel(n: number, fn: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      for (let i = next++; i < n; i = next++) await fn(i);
    }),
  );
}

/** benchMemory measures Redis memory per pending verification and the SQLite file per verification and enrollment. */
export async function benchMemory(): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const redis = await startRedis();
  const client = new Redis(redis.url);
  const store = new RedisStore(redis.url, { keyPrefix: 'smsauth:' });
  try {
    await store.ready();
    const now = Date.now();
    const empty = await usedMemory(client);
    await inParallel(N, (i) => store.createVerification(pending(i, now), undefined, []));
    const withVerifications = await usedMemory(client);
    // The floor: the same records, as JSON strings under keys of the same length, pipelined.
    await client.flushdb();
    const floorStart = await usedMemory(client);
    for (let i = 0; i < N; i += 10_000) {
      const p = client.pipeline();
      for (let j = i; j < Math.min(N, i + 10_000); j++) {
        const r = pending(j, now);
        p.set(`smsauth:vr:bench/corp/${r.id}`, JSON.stringify(r), 'PX', 660_000);
      }
      await p.exec();
    }
    const floor = (await usedMemory(client)) - floorStart;
    const used = withVerifications - empty;
    const mib = (b: number): number => b / 2 ** 20;
    rows.push(
      row(
        `Redis: ${N.toLocaleString('en')} pending verifications`,
        mib(used),
        'MiB',
        { name: 'the same records as plain strings', value: mib(floor) },
        `${Math.round(used / N)} B each; within 1 GiB: ${used < 2 ** 30 ? 'yes' : 'no'}`,
      ),
    );
  } finally {
    client.disconnect();
    await store.close();
    await redis.stop();
  }

  // SQLite: the file's growth per verification and per enrollment (the WAL checkpointed by closing).
  const file = join(mkdtempSync(join(tmpdir(), 'smsauth-bench-memory-')), 'state.sqlite');
  const size = (): number => statSync(file).size;
  let sqlite = new SqliteStore(file);
  await sqlite.ping();
  await sqlite.close();
  const emptyFile = size();
  sqlite = new SqliteStore(file);
  const now = Date.now();
  await inParallel(SQLITE_N, (i) => sqlite.createVerification(pending(i, now), undefined, []));
  await sqlite.close();
  const withVerifications = size();
  sqlite = new SqliteStore(file);
  await inParallel(SQLITE_N, (i) =>
    sqlite.putEnrollment('bench', 'corp', {
      user: `user${i}`,
      to: pending(i, now).to,
      enrolledAt: now,
      verificationId: `VE${i}`,
      masked: '+1 •••••••••• #abcdef',
    }),
  );
  await sqlite.close();
  const withEnrollments = size();
  rows.push(
    row(`SQLite: bytes per verification (${SQLITE_N.toLocaleString('en')})`, (withVerifications - emptyFile) / SQLITE_N, 'B'),
    row(`SQLite: bytes per enrollment (${SQLITE_N.toLocaleString('en')})`, (withEnrollments - withVerifications) / SQLITE_N, 'B'),
  );
  return rows;
}
