import { createServer, connect, type Server, type Socket } from 'node:net';
import { Redis } from 'ioredis';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { RedisStore } from '../controller/adapters/redis-store.ts';
import { StoreUnavailableError, type SendQuota } from '../controller/verifier/state-store.ts';
import { freePort, startRedis, type RedisServer } from './helpers/redis-server.ts';
import { record, T0 } from './helpers/verification-record.ts';

const WRONG = [{ keyId: 'k1', mac: 'cd'.repeat(32) }];
const RIGHT = [{ keyId: 'k1', mac: 'ab'.repeat(32) }];

/** ReplyDropper is a TCP proxy in front of Redis that can drop the next reply and cut the connection, as a network fault does. */
interface ReplyDropper {
  url: string;
  dropNextReply(): void;
  close(): Promise<void>;
}

async function replyDropper(redis: RedisServer): Promise<ReplyDropper> {
  const port = await freePort();
  let drop = false;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const up = connect(redis.port, '127.0.0.1');
    for (const s of [client, up]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => sockets.delete(s));
    }
    client.on('data', (d) => up.write(d));
    up.on('data', (d) => {
      if (drop) {
        // Redis ran the command; its answer never arrives.
        drop = false;
        client.destroy();
        up.destroy();
        return;
      }
      client.write(d);
    });
    client.on('close', () => up.destroy());
    up.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', () => resolve()));
  return {
    url: `redis://127.0.0.1:${port}`,
    dropNextReply: () => void (drop = true),
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

const test = suite<{ redis: RedisServer }>('RedisStore on a faulty network', { redis: undefined as unknown as RedisServer });
test.before(async (ctx) => {
  ctx.redis = await startRedis();
});
test.after(async (ctx) => {
  await ctx.redis?.stop();
});

/** withStore runs `use` with a store on the suite's Redis under its own key prefix (ready), and a plain client beside it; both are closed after. */
async function withStore(redis: RedisServer, keyPrefix: string, use: (store: RedisStore, raw: Redis) => Promise<void>): Promise<void> {
  const store = new RedisStore(redis.url, { keyPrefix });
  const raw = new Redis(redis.url);
  try {
    await store.ready();
    await use(store, raw);
  } finally {
    raw.disconnect();
    await store.close();
  }
}

test('a script whose reply is lost fails as unavailable and is never run a second time', async ({ redis }) => {
  // The attempts name their user, as the verifier's do: the script is the one step whose reply is lost.
  const proxy = await replyDropper(redis);
  const store = new RedisStore(proxy.url, { keyPrefix: 'lost:' });
  const raw = new Redis(redis.url);
  try {
    await store.ready();
    await store.createVerification(record('VE1', { maxAttempts: 5 }), undefined, []);
    proxy.dropNextReply();
    const lost = await store.attempt('ns', 'st', 'VE1', T0 + 1, WRONG, undefined, 'alice').then(
      () => 'answered',
      (err: unknown) => err,
    );
    assert.instance(lost, StoreUnavailableError);
    await store.ready(5000);
    // Commands on the connection run in order: had the attempt been sent again on reconnecting, it would have run before this read.
    assert.is((await store.getVerification('ns', 'st', 'VE1'))!.attempts, 1, 'the attempt ran once');

    const quota = [{ name: 'w', kind: 'window' as const, key: 'w', limit: 10, windowMs: 60_000 }];
    proxy.dropNextReply();
    assert.instance(
      await store.createVerification(record('VE2'), undefined, quota).then(
        () => 'answered',
        (err: unknown) => err,
      ),
      StoreUnavailableError,
    );
    await store.ready(5000);
    await store.ping();
    assert.is(await raw.get(`lost:rw:w:${Math.floor(T0 / 60_000) * 60_000}`), '1', 'the quota was taken once');

    // The right code, its answer lost: the verification is approved once, and a retry says it is no longer pending.
    proxy.dropNextReply();
    assert.instance(
      await store.attempt('ns', 'st', 'VE1', T0 + 2, RIGHT, undefined, 'alice').then(
        () => 'answered',
        (err: unknown) => err,
      ),
      StoreUnavailableError,
    );
    await store.ready(5000);
    const after = await store.getVerification('ns', 'st', 'VE1');
    assert.equal([after!.status, after!.attempts], ['approved', 2]);
  } finally {
    raw.disconnect();
    await store.close();
    await proxy.close();
  }
});

test('keys live as long as what they hold: a bucket until it would have refilled, a lockout at least until it ends', async ({ redis }) => {
  await withStore(redis, 'ttl:', async (store, raw) => {
    await store.createVerification(record('VB'), undefined, [{ name: 'b', kind: 'bucket', key: 'slow', perSecond: 1, burst: 100_000 }]);
    assert.ok((await raw.pttl('ttl:rb:slow')) > 100_000 * 1000, 'a bucket that refills in 28 hours is kept as long');
    const days60 = 60 * 24 * 3_600_000;
    await store.putEnrollment('ns', 'st', { user: 'alice', to: record('x').to, enrolledAt: T0, verificationId: 'VE0' });
    await store.createVerification(record('VL', { purpose: 'authenticate', lockout: { threshold: 1, durationMs: days60 } }), undefined, []);
    const locked = await store.attempt('ns', 'st', 'VL', T0 + 1, WRONG);
    assert.is(locked!.lockedNow, true);
    assert.ok((await raw.pttl('ttl:lock:ns/st/alice')) >= days60 - 60_000, 'a 60-day lockout outlives the 30-day counter');
  });
});

test("a user's history index holds exactly the user's events, through trims by age and by count and the sweep", async ({ redis }) => {
  await withStore(redis, 'idx:', async (store, raw) => {
    const ev = (user: string, time: number) => ({
      namespace: 'ns',
      store: 'st',
      user,
      type: 'authenticate' as const,
      result: 'success' as const,
      time,
      clientIp: '',
      userAgent: '',
    });
    const indexed = async (user: string): Promise<number> => raw.zcard(`idx:h:ns/st:u:${user}`);
    const retention = { maxEvents: 1000, maxAgeMs: 60_000 };
    for (let i = 0; i < 30; i++) await store.addHistory(ev(`u${i % 3}`, T0 + i * 1000), retention);
    assert.equal([await indexed('u0'), await indexed('u1'), await indexed('u2')], [10, 10, 10]);
    // By count: the 30 → 12 newest (18 trimmed in one write, within its batch).
    await store.addHistory(ev('u0', T0 + 30_000), { ...retention, maxEvents: 12 });
    const kept = (await store.listHistory('ns', 'st', { limit: 100 })).events;
    for (const u of ['u0', 'u1', 'u2']) assert.is(await indexed(u), kept.filter((e) => e.user === u).length, u);
    // By age, through the sweep: events before T0 + 25 s go.
    await store.sweep(T0 + 85_000, retention);
    const left = (await store.listHistory('ns', 'st', { limit: 100 })).events;
    assert.ok(left.length > 0 && left.every((e) => e.time >= T0 + 25_000));
    for (const u of ['u0', 'u1', 'u2']) assert.is(await indexed(u), left.filter((e) => e.user === u).length, u);
  });
});

test('history written before the per-user indexes is indexed once, by the first sweep', async ({ redis }) => {
  const raw = new Redis(redis.url);
  try {
    // As a Redis of the version before holds it: the events and the time index, no user index, no set of stores.
    for (let seq = 1; seq <= 5; seq++) {
      await raw.zadd(
        'old:h:ns/st',
        seq,
        JSON.stringify({
          seq,
          namespace: 'ns',
          store: 'st',
          user: seq % 2 === 0 ? 'amy' : 'bob',
          type: 'authenticate',
          result: 'success',
          time: T0 + seq,
          clientIp: '',
          userAgent: '',
        }),
      );
      await raw.zadd('old:h:ns/st:t', T0 + seq, seq);
    }
    await raw.set('old:h:ns/st:seq', 5);
    const store = new RedisStore(redis.url, { keyPrefix: 'old:' });
    try {
      await store.ready();
      assert.equal((await store.listHistory('ns', 'st', { user: 'amy', limit: 10 })).events, [], 'not indexed yet');
      await store.sweep(T0 + 10, { maxEvents: 100, maxAgeMs: 1e12 });
      assert.equal(
        (await store.listHistory('ns', 'st', { user: 'amy', limit: 10 })).events.map((e) => e.seq),
        [4, 2],
      );
      assert.equal(await raw.smembers('old:h:stores'), ['old:h:ns/st']);
      // Swept from now on like any store.
      await store.sweep(T0 + 4 + 1e6, { maxEvents: 100, maxAgeMs: 1e6 });
      assert.equal(
        (await store.listHistory('ns', 'st', { limit: 10 })).events.map((e) => e.seq),
        [5, 4],
      );
    } finally {
      await store.close();
    }
  } finally {
    raw.disconnect();
  }
});

/** scriptCalls counts the script calls Redis ran so far (EVALSHA and EVAL; a reply with an error in it counts as failed, and is counted). */
async function scriptCalls(raw: Redis): Promise<number> {
  let n = 0;
  for (const m of (await raw.info('commandstats')).matchAll(/^cmdstat_(?:evalsha|eval):calls=(\d+),/gm)) n += Number(m[1]);
  return n;
}

test('the script runs of one turn go to Redis as one call, and each is answered as if alone: one failing fails alone', async ({ redis }) => {
  await withStore(redis, 'batch:', async (store, raw) => {
    const ids = Array.from({ length: 8 }, (_, i) => `VE${i}`);
    // Created in one turn too, each taking a quota of its own: a script whose number of keys varies, in one call.
    const window = (id: string): SendQuota => ({ name: 'w', kind: 'window', key: `w${id}`, limit: 1, windowMs: 60_000 });
    await Promise.all(ids.map((id) => store.createVerification(record(id, { user: `u${id}` }), undefined, [window(id)])));
    const bucket = Math.floor(T0 / 60_000) * 60_000;
    assert.equal(
      await raw.mget(ids.map((id) => `batch:rw:w${id}:${bucket}`)),
      ids.map(() => '1'),
      "each took its own quota, and none another's",
    );
    // Once first, on other verifications, so that Redis has the script (a call it does not have yet is made again with its text).
    await Promise.all(['VW1', 'VW2'].map((id) => store.createVerification(record(id), undefined, [])));
    await Promise.all(['VW1', 'VW2'].map((id) => store.attempt('ns', 'st', id, T0 + 1, WRONG, undefined, 'alice')));
    // VE6's user has an enrollment key of the wrong type: its script fails with an error raised by Redis, not one it answers.
    await raw.lpush('batch:enr:ns/st/uVE6', 'not an enrollment');
    const before = await scriptCalls(raw);
    // In one turn: a wrong code (VE3), an attempt naming another user than the verification's (VE5: refused by the script), VE6, the right code for the others.
    const answers = await Promise.all(
      ids.map((id, i) =>
        store.attempt('ns', 'st', id, T0 + 1, i === 3 ? WRONG : RIGHT, undefined, i === 5 ? 'mallory' : `u${id}`).then(
          (r) => r,
          (err: unknown) => err as Error,
        ),
      ),
    );
    assert.is((await scriptCalls(raw)) - before, 1, 'one call for the eight attempts');
    assert.match((answers[5] as Error).message, /not the named user/);
    assert.match((answers[6] as Error).message, /WRONGTYPE/);
    assert.equal(
      answers.map((a) => (a instanceof Error ? 'failed' : [a!.counted, a!.approved])),
      ids.map((_, i) => (i === 5 || i === 6 ? 'failed' : [true, i !== 3])),
    );
    const stored = await Promise.all(ids.map((id) => store.getVerification('ns', 'st', id)));
    assert.equal(
      stored.map((r) => [r!.status, r!.attempts]),
      ids.map((_, i) => (i === 3 ? ['pending', 1] : i === 5 || i === 6 ? ['pending', 0] : ['approved', 1])),
    );
  });
});

test('runs of different scripts asked in one turn go as one call too, in order', async ({ redis }) => {
  await withStore(redis, 'mixed:', async (store, raw) => {
    await Promise.all(['VM', 'VN'].map((id) => store.createVerification(record(id), undefined, [])));
    // Once first, so that Redis has the script (a call it does not have yet is made again with its text).
    await Promise.all([store.attempt('ns', 'st', 'VN', T0 + 1, WRONG, undefined, 'alice'), store.attempt('ns', 'st', 'VN', T0 + 1, WRONG, undefined, 'alice')]);
    const before = await scriptCalls(raw);
    const delivery = { status: 'sent' as const, account: 'gw', messageId: 'm-1', updatedAt: T0 + 2 };
    // Asked at once, in this order: the right code, the message's record, and a cancel, which
    // finds the verification approved already (had it run first, the code would find it canceled).
    const [approved, , canceled] = await Promise.all([
      store.attempt('ns', 'st', 'VM', T0 + 1, RIGHT, undefined, 'alice'),
      store.recordSent({ namespace: 'ns', store: 'st', id: 'VM' }, 'plivo', delivery, T0 + 2, 60_000),
      store.finish('ns', 'st', 'VM', 'canceled'),
    ]);
    assert.is((await scriptCalls(raw)) - before, 1, 'one call for the three');
    assert.is(approved!.approved, true);
    assert.is(canceled, undefined, 'the cancel found nothing pending');
    const after = await store.getVerification('ns', 'st', 'VM');
    assert.equal([after!.status, after!.delivery.status], ['approved', 'sent']);
    assert.equal(await store.findMessage('plivo', 'm-1', T0 + 3), { namespace: 'ns', store: 'st', id: 'VM' });
  });
});

test('a command sent at once never overtakes a script run asked before it, still waiting for the end of the turn', async ({ redis }) => {
  await withStore(redis, 'order:', async (store) => {
    await store.createVerification(record('VO'), undefined, []);
    // The attempt names its user and keeps no audit: its run is asked at once, and waits for the end of the turn.
    const approving = store.attempt('ns', 'st', 'VO', T0 + 1, RIGHT, undefined, 'alice');
    const read = await store.getVerification('ns', 'st', 'VO');
    assert.is(read!.status, 'approved', 'the read, asked after the attempt, found it done');
    assert.is((await approving)!.approved, true);
  });
});

test('a Redis that refuses writes (out of memory) is unavailable, not a defect', async ({ redis }) => {
  const store = new RedisStore(redis.url, { keyPrefix: 'oom:' });
  const raw = new Redis(redis.url);
  try {
    await store.ready();
    await raw.config('SET', 'maxmemory-policy', 'noeviction');
    await raw.config('SET', 'maxmemory', '1');
    const refused = await store.createVerification(record('VE1'), undefined, []).then(
      () => 'answered',
      (err: unknown) => err,
    );
    assert.instance(refused, StoreUnavailableError);
    assert.match((refused as Error).message, 'OOM');
  } finally {
    await raw.config('SET', 'maxmemory', '0');
    raw.disconnect();
    await store.close();
  }
});

test.run();
