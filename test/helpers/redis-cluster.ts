import { watch } from 'node:fs';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';
import { runCommand } from './child-process.ts';
import { freePort, startRedis, type RedisServer } from './redis-server.ts';
import { Signal, waitUntil } from './wait.ts';

/** RedisCluster is a real Redis Cluster of Debian's redis-server processes on loopback ports, owned by one test. */
export interface RedisCluster {
  /** The store's URL: redis+cluster:// with every node as a seed. */
  url: string;
  nodes: RedisServer[];
  /** masterOf is the node that serves a key's slot now. */
  masterOf(key: string): Promise<RedisServer>;
  /** settled resolves once every slot is served, and every node that runs is a master or a replica whose link is up. */
  settled(): Promise<void>;
  stop(): Promise<void>;
}

/** A port the cluster bus can have too (a node's bus listens on its port + 10000). */
async function clusterPort(): Promise<number> {
  for (;;) {
    const port = await freePort();
    if (port + 10000 > 65535) continue;
    const busFree = await new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(false));
      s.listen(port + 10000, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (busFree) return port;
  }
}

async function ask<T>(port: number, fn: (r: Redis) => Promise<T>): Promise<T | undefined> {
  // A node that is down, loading or syncing answers nothing useful: never waited on for long.
  const r = new Redis({
    port,
    host: '127.0.0.1',
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableReadyCheck: false,
    connectTimeout: 1000,
    commandTimeout: 1000,
  });
  r.on('error', () => undefined);
  try {
    await r.connect();
    return await fn(r);
  } catch {
    return undefined;
  } finally {
    r.disconnect();
  }
}

/**
 * until waits for a condition on the nodes' state, checked again each time a node records a
 * change of it (its cluster config file, rewritten on every change of the cluster's state, or its
 * log, which names each replication step); it gives up after 30 s.
 */
async function until(what: string, nodes: readonly RedisServer[], ok: () => Promise<boolean>): Promise<void> {
  const changed = new Signal();
  const watchers = nodes.map((n) =>
    watch(n.dir, (_event, file) => {
      if (file === `nodes-${n.port}.conf` || file === `redis-${n.port}.log`) changed.fire();
    }),
  );
  try {
    await waitUntil(
      `the Redis Cluster to settle: ${what}`,
      async () => (await ok()) || undefined,
      () => changed.next(),
      30_000,
    );
  } finally {
    for (const w of watchers) w.close();
  }
}

/**
 * startRedisCluster starts masters × (1 + replicas) nodes and joins them: `redis-cli --cluster
 * create` for three masters or more (its own minimum); a single master gets every slot, and its
 * replicas join through `redis-cli --cluster add-node`.
 * A node is failed after 1 s unreachable, and its replica takes over however far behind it is.
 */
export async function startRedisCluster(options: { masters: number; replicas: number }): Promise<RedisCluster> {
  const count = options.masters * (1 + options.replicas);
  const ports: number[] = [];
  while (ports.length < count) {
    const p = await clusterPort();
    if (!ports.includes(p)) ports.push(p);
  }
  const args = ['--cluster-enabled', 'yes', '--cluster-node-timeout', '1000', '--cluster-replica-validity-factor', '0', '--repl-diskless-sync-delay', '0'];
  const nodes = await Promise.all(
    ports.map((port) => startRedis({ port, args: [...args, '--cluster-config-file', `nodes-${port}.conf`, '--logfile', `redis-${port}.log`] })),
  );
  if (options.masters >= 3) {
    await runCommand(
      'redis-cli',
      ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', String(options.replicas), '--cluster-yes'],
      '/',
    );
  } else {
    const [master, ...replicas] = ports;
    await ask(master!, (r) => r.call('CLUSTER', 'ADDSLOTSRANGE', '0', '16383'));
    const masterId = (await ask(master!, (r) => r.call('CLUSTER', 'MYID'))) as string;
    for (const p of replicas) {
      await runCommand(
        'redis-cli',
        ['--cluster', 'add-node', `127.0.0.1:${p}`, `127.0.0.1:${master}`, '--cluster-slave', '--cluster-master-id', masterId],
        '/',
      );
    }
  }
  const cluster: RedisCluster = {
    url: `redis+cluster://${ports.map((p) => `127.0.0.1:${p}`).join(',')}`,
    nodes,
    async masterOf(key) {
      // Any node that answers knows the slot map.
      for (const n of nodes) {
        const answer = await ask(n.port, async (r) => ({
          slot: (await r.call('CLUSTER', 'KEYSLOT', key)) as number,
          shards: (await r.call('CLUSTER', 'SLOTS')) as [number, number, [string, number]][],
        }));
        const shard = answer?.shards.find(([from, to]) => answer.slot >= from && answer.slot <= to);
        if (shard !== undefined) return nodes.find((m) => m.port === shard[2][1])!;
      }
      throw new Error(`no node serves the slot of ${key}`);
    },
    async settled() {
      await until('every slot served and every replica linked', nodes, async () => {
        for (const n of nodes) {
          const info = await ask(n.port, async (r) => `${(await r.call('CLUSTER', 'INFO')) as string}${await r.info('replication')}`);
          if (info === undefined) continue; // a node that is down
          if (!/cluster_state:ok/.test(info) || !/cluster_slots_ok:16384/.test(info)) return false;
          if (/role:slave/.test(info) && !/master_link_status:up/.test(info)) return false;
        }
        return true;
      });
    },
    async stop() {
      await Promise.all(nodes.map((n) => n.stop(true)));
    },
  };
  await cluster.settled();
  return cluster;
}
