import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { CachedDirectory, DirectoryUnavailableError, type Directory, type DirectoryUser } from '../controller/directories/directory.ts';

// CachedDirectory with a directory of our own making and a clock the test moves.

function fakeDirectory(clock: { now: number }, users: Record<string, { user: DirectoryUser; tookMs: number }>, missMs: number): Directory & { asked: string[]; down: boolean } {
  const d = {
    asked: [] as string[],
    down: false,
    lookup(name: string): Promise<DirectoryUser | undefined> {
      d.asked.push(name);
      if (d.down) return Promise.reject(new DirectoryUnavailableError('Unreachable', 'down'));
      const found = users[name];
      clock.now += found?.tookMs ?? missMs;
      return Promise.resolve(found?.user);
    },
    check: () => Promise.resolve({ ok: true as const }),
    close: () => Promise.resolve(),
  };
  return d;
}

const user = (id: string): DirectoryUser => ({ id, groups: [], container: null, mobile: null });
const cache = suite('CachedDirectory');

cache('"no such user" is answered no sooner than users typically are', async () => {
  const clock = { now: 0 };
  const slept: number[] = [];
  const inner = fakeDirectory(clock, { alice: { user: user('a'), tookMs: 30 }, bob: { user: user('b'), tookMs: 30 } }, 5);
  const dir = new CachedDirectory(inner, { ttlMs: 60_000, now: () => clock.now, sleep: (ms) => { slept.push(ms); clock.now += ms; return Promise.resolve(); } });
  await dir.lookup('alice');
  await dir.lookup('bob');
  const before = clock.now;
  assert.is(await dir.lookup('nobody'), undefined);
  assert.equal([clock.now - before, slept], [30, [25]], 'padded to the typical 30 ms');
});

cache('answers and misses alike are kept for the TTL, one lookup in flight per name, the oldest evicted', async () => {
  const clock = { now: 0 };
  const inner = fakeDirectory(clock, { alice: { user: user('a'), tookMs: 1 } }, 1);
  const dir = new CachedDirectory(inner, { ttlMs: 1000, maxEntries: 2, now: () => clock.now, sleep: () => Promise.resolve() });
  await Promise.all([dir.lookup('alice'), dir.lookup('ALICE'), dir.lookup('alice')]);
  await dir.lookup('nobody');
  await dir.lookup('nobody');
  assert.equal(inner.asked, ['alice', 'nobody'], 'one lookup per name (case-insensitive), a miss cached too');
  await dir.lookup('carol');
  await dir.lookup('alice');
  assert.equal(inner.asked, ['alice', 'nobody', 'carol', 'alice'], 'at most 2 entries: alice went first');
  clock.now += 1001;
  inner.down = true;
  assert.instance(await dir.lookup('carol').catch((e: unknown) => e), DirectoryUnavailableError, 'expired and down: unavailable, never a guess');
});

cache.run();
