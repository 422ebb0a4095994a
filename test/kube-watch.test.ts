import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { connectCluster, loadKubeConfig, type Cluster } from '../controller/adapters/kubernetes.ts';
import { startApiServer, type ApiServer } from './kube/api-server.ts';

// The Kubernetes adapter's watches (client-node informers) against the in-process API server:
// what counts as synced, how failures are retried, and the watchdog of quiet watches.

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const test = suite<{ server: ApiServer; cluster: Cluster }>('Kubernetes watches', {} as { server: ApiServer; cluster: Cluster });
test.before.each(async (ctx) => {
  ctx.server = await startApiServer({ namespaces: ['identity'] });
  const kubeconfig = join(mkdtempSync(join(tmpdir(), 'smsauth-watch-')), 'kubeconfig');
  await ctx.server.writeKubeconfig(kubeconfig);
  ctx.cluster = connectCluster(loadKubeConfig(kubeconfig), { requestTimeoutMs: 5000 });
});
test.after.each(async (ctx) => {
  await ctx.server.close();
});

test('a LIST that fails is not synced: it is retried with a growing backoff, and synced once one succeeds', async ({ server, cluster }) => {
  server.faults.failNext({ method: 'GET', pathPrefix: '/api/v1/secrets', watch: false, status: 403, count: 5 });
  const errors: unknown[] = [];
  const w = cluster.watch('Secret', undefined, { onChange: () => undefined, onError: (err) => errors.push(err) });
  try {
    await sleep(1000);
    assert.is(w.isSynced(), false, 'an empty cache from a failed LIST is not a synced one');
    await w.synced;
    const lists = server.faults.requestsMatching({ method: 'GET', pathPrefix: '/api/v1/secrets', watch: false });
    assert.is(lists.length, 6, 'five refused, one served');
    const gaps = lists.slice(1).map((r, i) => r.at - lists[i]!.at);
    assert.ok(
      gaps.every((g, i) => i === 0 || g >= gaps[i - 1]! * 1.5),
      `the backoff grows: ${gaps.join(', ')} ms`,
    );
    assert.ok(errors.length >= 5);
  } finally {
    await w.stop();
  }
});

test('the watchdog restarts a quiet watch once per period, never in a loop, and reports no error for its own restarts', async ({ server, cluster }) => {
  const errors: unknown[] = [];
  const w = cluster.watch('Secret', 'identity', { onChange: () => undefined, onError: (err) => errors.push(err) }, { watchdogMs: 500 });
  try {
    await w.synced;
    server.faults.clearRequests();
    await sleep(4000);
    const watches = server.faults.requestsMatching({ method: 'GET', pathPrefix: '/api/v1/namespaces/identity/secrets', watch: true });
    assert.ok(watches.length >= 2 && watches.length <= 10, `${watches.length} watches in 4 s with a 0.5 s watchdog`);
    assert.equal(errors, [], 'the watchdog aborting its own watch is no error');
  } finally {
    await w.stop();
  }
});

test.run();
