import { RedisStore } from '../controller/adapters/redis-store.ts';
import { keyTag } from '../controller/core/redis-target.ts';
import type { SendQuota } from '../controller/verifier/state-store.ts';
import { runCommand } from '../test/helpers/child-process.ts';
import { startRedisCluster } from '../test/helpers/redis-cluster.ts';
import { record, T0 } from '../test/helpers/verification-record.ts';
import { row, type BenchRow } from './harness.ts';

// The Redis store's throughput on a Redis Cluster of 1 and of 3 masters (a replica each, every
// deciding write waiting for it), beside redis-benchmark's SET on the same cluster in the same run:
// an operation is a start (the verification and five quotas of its store, one script) or a check
// (the attempt, one script), over twelve stores spread on the masters.

const OPS = Number(process.env.SMSAUTH_BENCH_CLUSTER_OPS ?? 20_000);
const CONCURRENCY = 64;
const RIGHT = [{ keyId: 'k1', mac: 'ab'.repeat(32) }];

/**
 * redisBenchmark runs redis-benchmark against a cluster's node and answers SET's requests per
 * second: with --cluster on three masters or more (its own minimum), else on the one master, which
 * serves every slot.
 */
async function redisBenchmark(port: number, masters: number): Promise<number> {
  const out = await runCommand(
    'redis-benchmark',
    [...(masters >= 3 ? ['--cluster'] : []), '-h', '127.0.0.1', '-p', String(port), '-t', 'set', '-n', String(OPS * 5), '-c', String(CONCURRENCY), '-q'],
    '/',
  );
  const m = /SET: ([\d.]+) requests per second/.exec(out);
  if (m === null) throw new Error(`redis-benchmark: ${out.slice(-300)}`);
  return Number(m[1]);
}

async function storeThroughput(url: string): Promise<number> {
  const store = new RedisStore(url, { keyPrefix: 'bench:' });
  await store.ready();
  try {
    const quotas = (s: string, i: number): SendQuota[] =>
      ['number', 'user', 'prefix', 'client', 'global'].map((q) => ({
        name: q,
        kind: 'window',
        key: `rl:${q}:${keyTag('ns', s)}:${q === 'global' ? '' : i}`,
        limit: 1e9,
        windowMs: 3_600_000,
      }));
    let next = 0;
    const started = process.hrtime.bigint();
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        for (let i = next++; i < OPS / 2; i = next++) {
          const s = `s${i % 12}`;
          await store.createVerification(record(`VB${i}`, { store: s, user: `u${i}` }), undefined, quotas(s, i));
          await store.attempt('ns', s, `VB${i}`, T0 + 1, RIGHT, undefined, `u${i}`);
        }
      }),
    );
    return OPS / (Number(process.hrtime.bigint() - started) / 1e9);
  } finally {
    await store.close();
  }
}

/** benchRedisCluster measures the store's operations per second on 1 and 3 masters beside redis-benchmark on the same cluster. */
export async function benchRedisCluster(): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  for (const masters of [1, 3]) {
    const cluster = await startRedisCluster({ masters, replicas: 1 });
    try {
      const ops = await storeThroughput(cluster.url);
      const set = await redisBenchmark(cluster.nodes[0]!.port, masters);
      rows.push(
        row(
          `Redis Cluster, ${masters} master${masters > 1 ? 's' : ''} (+1 replica each): starts and checks`,
          ops,
          'req/s',
          { name: 'redis-benchmark SET', value: set },
          'every write WAITs for its replica',
        ),
      );
    } finally {
      await cluster.stop();
    }
  }
  return rows;
}
