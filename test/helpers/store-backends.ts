import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RedisStore } from '../../controller/adapters/redis-store.ts';
import { SqliteStore } from '../../controller/adapters/sqlite-store.ts';
import type { StateStore } from '../../controller/verifier/state-store.ts';
import type { RedisServer } from './redis-server.ts';

/**
 * storeBackends are the two state stores a suite runs on, each opened fresh: a new SQLite file, or
 * a new key prefix in the suite's Redis (started by the suite, and given through redis()).
 */
export function storeBackends(label: string, redis: () => RedisServer | undefined): [string, () => Promise<StateStore>][] {
  let prefixes = 0;
  return [
    ['SQLite', () => Promise.resolve(new SqliteStore(join(mkdtempSync(join(tmpdir(), `smsauth-${label}-`)), 'state.sqlite')))],
    [
      'Redis',
      async () => {
        const s = new RedisStore(redis()!.url, { keyPrefix: `${label}${prefixes++}:` });
        await s.ready();
        return s;
      },
    ],
  ];
}
