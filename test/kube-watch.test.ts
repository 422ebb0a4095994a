import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { connectCluster, loadKubeConfig, type Cluster } from '../controller/adapters/kubernetes.ts';
import { ManualClock } from '../controller/core/clock.ts';
import { startApiServer, type ApiServer } from './kube/api-server.ts';
import { waitUntil } from './helpers/wait.ts';

// The Kubernetes adapter's watches (client-node informers) against the in-process API server:
// what counts as synced, how failures are retried, and the watchdog of quiet watches.

/** errorsOf collects a watch's errors and lets a test await the next one. */
function errorsOf(): { errors: unknown[]; onError: (err: unknown) => void; next: (n: number) => Promise<void> } {
  const errors: unknown[] = [];
  const waiters: (() => void)[] = [];
  return {
    errors,
    onError: (err) => {
      errors.push(err);
      for (const w of waiters.splice(0)) w();
    },
    next: async (n) => {
      while (errors.length < n) await new Promise<void>((resolve) => waiters.push(resolve));
    },
  };
}

const test = suite<{ server: ApiServer; cluster: Cluster; clock: ManualClock }>(
  'Kubernetes watches',
  {} as { server: ApiServer; cluster: Cluster; clock: ManualClock },
);
test.before.each(async (ctx) => {
  ctx.server = await startApiServer({ namespaces: ['identity'] });
  const kubeconfig = join(mkdtempSync(join(tmpdir(), 'smsauth-watch-')), 'kubeconfig');
  await ctx.server.writeKubeconfig(kubeconfig);
  ctx.clock = new ManualClock(Date.parse('2026-01-01T00:00:00Z'));
  ctx.cluster = connectCluster(loadKubeConfig(kubeconfig), { requestTimeoutMs: 5000, clock: ctx.clock });
});
test.after.each(async (ctx) => {
  await ctx.server.close();
});

test('a LIST that fails is not synced: it is retried with a growing backoff, and synced once one succeeds', async ({ server, cluster, clock }) => {
  server.faults.failNext({ method: 'GET', pathPrefix: '/api/v1/secrets', watch: false, status: 403, count: 5 });
  const seen = errorsOf();
  const w = cluster.watch('Secret', undefined, { onChange: () => undefined, onError: seen.onError });
  try {
    // Each refused LIST reports its error and waits out a backoff twice as long as the last, on the
    // watch's clock; nothing is retried before its time.
    for (let k = 1; k <= 5; k++) {
      await seen.next(k);
      assert.is(w.isSynced(), false, 'an empty cache from a failed LIST is not a synced one');
      assert.is(clock.nextDue()! - clock.now(), 200 * 2 ** (k - 1), `backoff ${k}`);
      await clock.advance(200 * 2 ** (k - 1) - 1);
      assert.is(server.faults.requestsMatching({ method: 'GET', pathPrefix: '/api/v1/secrets', watch: false }).length, k, 'not retried early');
      await clock.advance(1);
    }
    await w.synced;
    assert.is(server.faults.requestsMatching({ method: 'GET', pathPrefix: '/api/v1/secrets', watch: false }).length, 6, 'five refused, one served');
    assert.is(seen.errors.length, 5);
  } finally {
    await w.stop();
  }
});

test('the watchdog restarts a quiet watch once per period, never in a loop, and reports no error for its own restarts', async ({ server, cluster, clock }) => {
  const seen = errorsOf();
  const w = cluster.watch('Secret', 'identity', { onChange: () => undefined, onError: seen.onError }, { watchdogMs: 500 });
  const watches = (): number => server.faults.requestsMatching({ method: 'GET', pathPrefix: '/api/v1/namespaces/identity/secrets', watch: true }).length;
  try {
    await w.synced;
    await waitUntil(
      'the first watch',
      () => watches() === 1,
      () => server.changed(),
    );
    server.faults.clearRequests();
    for (let period = 1; period <= 3; period++) {
      await clock.advance(499);
      assert.is(watches(), period - 1, 'a watch quiet for less than the period is left alone');
      await clock.advance(1);
      await waitUntil(
        `restart ${period}`,
        () => watches() === period,
        () => server.changed(),
      );
    }
    assert.is(watches(), 3, 'one restart per quiet period');
    assert.equal(seen.errors, [], 'the watchdog aborting its own watch is no error');
  } finally {
    await w.stop();
  }
});

test.run();
