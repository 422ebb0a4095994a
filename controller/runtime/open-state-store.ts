import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { RedisStore } from '../adapters/redis-store.ts';
import { SqliteStore } from '../adapters/sqlite-store.ts';
import type { StateStore } from '../verifier/state-store.ts';

/** OpenedStore is the verifier's state store, and how to learn when it first answers. */
export interface OpenedStore {
  store: StateStore;
  /** reachable resolves true once the store answers (at once for SQLite), false if it has not within timeoutMs. */
  reachable(timeoutMs: number): Promise<boolean>;
  /**
   * refusal waits, at most timeoutMs, for the store's first contact and answers how it refused who
   * connects (Redis: WRONGPASS, NOAUTH), which no wait mends; undefined otherwise (SQLite: at once).
   */
  refusal(timeoutMs: number): Promise<string | undefined>;
  /** answered resolves once the store answers, however long it takes and whatever it refused before (at once for SQLite). */
  answered(): Promise<void>;
}

/** StoreOpenError is a SQLite file that cannot be opened or created. */
export class StoreOpenError extends Error {
  override readonly name = 'StoreOpenError';
  readonly code = 'ERR_STORE_OPEN';
}

/**
 * openStateStore opens the verifier's state: the shared Redis when a URL is given, else the SQLite
 * file. Redis is not waited for: while it does not answer, the verifier answers 503 and /readyz says
 * so, and it recovers by itself once Redis is there. A SQLite file that cannot be opened throws
 * StoreOpenError.
 */
export function openStateStore(options: { redisUrl: string | undefined; sqlitePath: string }): OpenedStore {
  if (options.redisUrl !== undefined) {
    const redis = new RedisStore(options.redisUrl);
    return {
      store: redis,
      reachable: (timeoutMs) =>
        redis.ready(timeoutMs).then(
          () => true,
          () => false,
        ),
      refusal: (timeoutMs) => redis.firstContact(timeoutMs),
      answered: () => redis.answered(),
    };
  }
  if (!existsSync(dirname(options.sqlitePath))) throw new StoreOpenError(`its folder ${dirname(options.sqlitePath)} does not exist`);
  let sqlite: SqliteStore;
  try {
    sqlite = new SqliteStore(options.sqlitePath);
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    throw new StoreOpenError(typeof code === 'string' ? code : 'it cannot be opened', { cause: err });
  }
  return { store: sqlite, reachable: () => Promise.resolve(true), refusal: () => Promise.resolve(undefined), answered: () => Promise.resolve() };
}
