import { RedisStore } from '../adapters/redis-store.ts';
import { SqliteStore } from '../adapters/sqlite-store.ts';
import type { StateStore } from '../verifier/state-store.ts';

/** openStateStore opens the verifier's state: the shared Redis when a URL is given (waiting up to 10 s for it), else the SQLite file. */
export async function openStateStore(options: { redisUrl: string | undefined; sqlitePath: string }): Promise<StateStore> {
  if (options.redisUrl === undefined) return new SqliteStore(options.sqlitePath);
  const redis = new RedisStore(options.redisUrl);
  await redis.ready(10_000);
  return redis;
}
