import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  CachedDirectory,
  DirectoryUnavailableError,
  unavailableDirectory,
  type Directory,
  type DirectoryUser,
  type MemberList,
} from '../controller/directories/directory.ts';

// CachedDirectory with a directory of our own making and a clock the test moves.

function fakeDirectory(
  clock: { now: number },
  users: Record<string, { user: DirectoryUser; tookMs: number }>,
  missMs: number,
): Directory & { asked: string[]; listed: number; down: boolean } {
  const d = {
    asked: [] as string[],
    listed: 0,
    down: false,
    lookup(name: string): Promise<DirectoryUser | undefined> {
      d.asked.push(name);
      if (d.down) return Promise.reject(new DirectoryUnavailableError('Unreachable', 'down'));
      const found = users[name];
      clock.now += found?.tookMs ?? missMs;
      return Promise.resolve(found?.user);
    },
    members(_scope: unknown, options: { limit: number }): Promise<MemberList> {
      d.listed++;
      if (d.down) return Promise.reject(new DirectoryUnavailableError('Unreachable', 'down'));
      const names = Object.keys(users);
      return Promise.resolve({ users: names.slice(0, options.limit), truncated: names.length > options.limit });
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
  const dir = new CachedDirectory(inner, {
    ttlMs: 60_000,
    now: () => clock.now,
    sleep: (ms) => {
      slept.push(ms);
      clock.now += ms;
      return Promise.resolve();
    },
  });
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

cache('members: asked of the directory every time, its failures passed on', async () => {
  const clock = { now: 0 };
  const inner = fakeDirectory(clock, { alice: { user: user('a'), tookMs: 1 }, bob: { user: user('b'), tookMs: 1 } }, 1);
  const dir = new CachedDirectory(inner, { ttlMs: 60_000, now: () => clock.now });
  const scope = { groups: ['cn=admins'], containers: [] };
  assert.equal(await dir.members(scope, { limit: 1 }), { users: ['alice'], truncated: true });
  assert.equal(await dir.members(scope, { limit: 5 }), { users: ['alice', 'bob'], truncated: false });
  assert.is(inner.listed, 2, 'not cached');
  inner.down = true;
  assert.instance(await dir.members(scope, { limit: 5 }).catch((e: unknown) => e), DirectoryUnavailableError);
  assert.instance(
    await unavailableDirectory('no directory')
      .members(scope, { limit: 5 })
      .catch((e: unknown) => e),
    DirectoryUnavailableError,
    'an unavailable directory lists no one',
  );
});

cache('members: not cut by the lookup deadline (a listing takes many pages)', async () => {
  let answer: (list: MemberList) => void = () => undefined;
  const inner: Directory = {
    lookup: () => new Promise(() => undefined),
    members: () => new Promise((resolve) => (answer = resolve)),
    check: () => Promise.resolve({ ok: true }),
    close: () => Promise.resolve(),
  };
  const dir = new CachedDirectory(inner, { ttlMs: 0, deadlineMs: 0 });
  const listing = dir.members({ groups: [], containers: ['/'] }, { limit: 10 }).catch((e: unknown) => e);
  // The lookup deadline passes (a lookup begun after the listing gives up)…
  assert.instance(await dir.lookup('alice').catch((e: unknown) => e), DirectoryUnavailableError);
  // …and the listing still answers.
  answer({ users: ['alice'], truncated: false });
  assert.equal(await listing, { users: ['alice'], truncated: false });
});

cache.run();
