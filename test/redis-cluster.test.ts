import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Redis } from 'ioredis';
import { RedisStore } from '../controller/adapters/redis-store.ts';
import { StoreUnavailableError, type SendQuota, type StateStore } from '../controller/verifier/state-store.ts';
import type { HistoryEvent } from '../controller/verifier/types.ts';
import { startRedisCluster, type RedisCluster } from './helpers/redis-cluster.ts';
import { startRedis, type RedisServer } from './helpers/redis-server.ts';
import { record, T0 } from './helpers/verification-record.ts';

const RIGHT = [{ keyId: 'k1', mac: 'ab'.repeat(32) }];
const WRONG = [{ keyId: 'k1', mac: 'cd'.repeat(32) }];
const retention = { maxEvents: 3, maxAgeMs: 60_000 };
const event = (user: string, time: number, store = 'st'): Omit<HistoryEvent, 'seq'> => ({
  namespace: 'ns',
  store,
  user,
  type: 'authenticate',
  result: 'success',
  time,
  clientIp: '10.0.0.1',
  userAgent: 'ua',
});

/** everyScript drives each of the store's scripts at least once, with every optional key given. */
async function everyScript(store: StateStore): Promise<void> {
  const own = (name: string, limit: number): SendQuota => ({ name, kind: 'window', key: `rl:{ns/st}:${name}`, limit, windowMs: 60_000 });
  const account: SendQuota = { name: 'account', kind: 'bucket', key: 'rl:account:{ns/acct}', perSecond: 1, burst: 10 };
  await store.putEnrollment('ns', 'st', { user: 'alice', to: record('x').to, enrolledAt: T0, verificationId: 'VE0' });
  await store.createVerification(record('VA', { purpose: 'authenticate' }), { key: 'idem', fingerprint: 'f', ttlMs: 60_000 }, [own('user', 5), account]);
  const audit = {
    events: { approved: event('alice', T0 + 1), wrong: event('alice', T0 + 1), locked: event('alice', T0 + 1) },
    retention,
    publish: ['approved', 'wrong', 'locked'] as const,
  };
  await store.attempt('ns', 'st', 'VA', T0 + 1, WRONG, audit, 'alice');
  await store.attempt('ns', 'st', 'VA', T0 + 2, RIGHT, audit, 'alice');
  // An enrollment that replaces alice's number, spending VA as its proof.
  await store.createVerification(record('VE', { purpose: 'enroll', to: '+14155550199', replaces: record('x').to }), undefined, [own('user', 5)], {
    id: 'VA',
    maxAgeMs: 60_000,
    now: T0 + 3,
  });
  await store.beginResend('ns', 'st', 'VE', T0 + 40_000, { keyId: 'k1', mac: 'ab'.repeat(32) }, [own('user', 5), account]);
  await store.recordSent({ namespace: 'ns', store: 'st', id: 'VE' }, 'plivo', { status: 'sent', messageId: 'm1', updatedAt: T0 + 40_001 }, T0, 60_000);
  await store.setDelivery('ns', 'st', 'VE', { status: 'delivered', messageId: 'm1', updatedAt: T0 + 40_002 });
  await store.attempt('ns', 'st', 'VE', T0 + 40_003, RIGHT, { events: { approved: event('alice', T0 + 40_003) }, retention, publish: ['approved'] }, 'alice');
  // Enrollments checked against alice's enrollment as they are created: the same number, then another.
  await store.createVerification(record('VG', { to: '+14155550199' }), undefined, [own('user', 5)], undefined, { to: '+14155550199', orNone: false });
  await store.createVerification(record('VH', { to: '+14155550100' }), undefined, [own('user', 5), account], undefined, { to: '+14155550100', orNone: true });
  await store.createVerification(record('VF', { purpose: 'authenticate', to: '+14155550199' }), undefined, []);
  await store.attempt('ns', 'st', 'VF', T0 + 40_004, RIGHT, undefined, 'alice');
  await store.deleteEnrollment(
    'ns',
    'st',
    'alice',
    { event: event('alice', T0 + 40_005), retention, publish: true },
    { id: 'VF', maxAgeMs: 60_000, now: T0 + 40_005 },
  );
  await store.createVerification(record('VC'), undefined, []);
  await store.finish('ns', 'st', 'VC', 'canceled');
  await store.clearLockout('ns', 'st', 'bob', T0 + 40_006, { event: event('bob', T0 + 40_006), retention, publish: true });
  for (let i = 0; i < 5; i++) await store.addHistory(event(`u${i}`, T0 + 40_010 + i), retention);
  const policy = { windowMs: 60_000, minSample: 1, minConversion: 0.5, blockMs: 60_000 };
  await store.fraudStart(['fg:{ns/st}:+1415'], T0, policy, { namespace: 'ns', store: 'st', enforced: true });
  await store.fraudStart(['fg:{ns/st}:+1415'], T0 + 10_000, policy, { namespace: 'ns', store: 'st', enforced: true });
  await store.fraudApproved(['fg:{ns/st}:+1415'], T0 + 10_001, policy);
  const claimed = (await store.outboxClaim('ns', 'st', 'me', T0, 15_000, 10))!;
  await store.outboxSettle('ns', 'st', 'me', [claimed[0]!.seq], [{ seq: claimed[1]!.seq, attempts: 1, nextAt: T0 + 1000 }]);
  await store.outboxRelease('ns', 'st', 'me');
  await store.sweep(T0 + 3_600_000 * 30, { maxEvents: 1, maxAgeMs: 3_600_000 * 40 });
}

const scripts = suite<{ redis: RedisServer }>('Redis scripts declare every key they touch', { redis: undefined as unknown as RedisServer });
scripts.before(async (ctx) => {
  ctx.redis = await startRedis();
});
scripts.after(async (ctx) => {
  await ctx.redis?.stop();
});

scripts('each command a script runs names only keys the script was given (MONITOR, and Redis own COMMAND GETKEYS)', async ({ redis }) => {
  const watcher = new Redis(redis.url);
  const monitor = await watcher.monitor();
  const seen: { source: string; args: string[] }[] = [];
  monitor.on('monitor', (_time: string, args: string[], source: string) => seen.push({ source, args }));
  const store = new RedisStore(redis.url, { keyPrefix: 'keys:' });
  try {
    await store.ready();
    await everyScript(store);
    await store.ping(); // the last command, seen once MONITOR has shown everything before it
    await new Promise<void>((resolve) => {
      const done = (_t: string, args: string[]): void => {
        if (args[0]?.toLowerCase() === 'ping') {
          monitor.off('monitor', done);
          resolve();
        }
      };
      if (seen.some((s) => s.args[0]?.toLowerCase() === 'ping')) resolve();
      else monitor.on('monitor', done);
    });
    let declared: string[] | undefined;
    let scriptsRun = 0;
    let checked = 0;
    const ask = new Redis(redis.url);
    try {
      for (const { source, args } of seen) {
        if (source !== 'lua') {
          const name = args[0]!.toLowerCase();
          declared = name === 'evalsha' || name === 'eval' ? args.slice(3, 3 + Number(args[2])) : undefined;
          if (declared !== undefined) scriptsRun++;
          continue;
        }
        assert.ok(declared !== undefined, `${args[0]} ran in a script`);
        const keys = (await ask.call('COMMAND', 'GETKEYS', ...args).catch(() => [])) as string[];
        for (const key of keys) {
          checked++;
          assert.ok(declared.includes(key), `${args[0]} touches ${key}, not among its script's KEYS (${declared.join(' ')})`);
        }
      }
    } finally {
      ask.disconnect();
    }
    assert.ok(scriptsRun >= 25, `scripts run: ${scriptsRun}`);
    assert.ok(checked >= 100, `keys checked: ${checked}`);
  } finally {
    monitor.disconnect();
    watcher.disconnect();
    await store.close();
  }
});

scripts.run();

const cluster = suite<{ cluster: RedisCluster }>('RedisStore on a Redis Cluster', { cluster: undefined as unknown as RedisCluster });
cluster.before(async (ctx) => {
  ctx.cluster = await startRedisCluster({ masters: 3, replicas: 1 });
});
cluster.after(async (ctx) => {
  await ctx.cluster?.stop();
});

cluster('every script runs on a cluster, where a key outside its slot would be refused', async (ctx) => {
  const store = new RedisStore(ctx.cluster.url, { keyPrefix: 'all:' });
  try {
    await store.ready();
    await everyScript(store);
    assert.equal((await store.listHistory('ns', 'st', { limit: 10 })).events.length, 1, 'the sweep trimmed the history to its bound');
    assert.is(await store.getEnrollment('ns', 'st', 'alice'), undefined, 'the proof-spending unenrollment ran');
  } finally {
    await store.close();
  }
});

cluster("a quota of another slot (an account's rate, shared by two stores) is taken apart, and given back when the store refuses", async (ctx) => {
  const store = new RedisStore(ctx.cluster.url, { keyPrefix: 'acct:' });
  const raw = new Redis(ctx.cluster.nodes[0]!.url);
  try {
    await store.ready();
    const slots = await Promise.all(['{ns/a}', '{ns/b}', '{ns/acct}'].map((k) => raw.call('CLUSTER', 'KEYSLOT', k)));
    assert.is(new Set(slots).size, 3, 'three slots');
    const account: SendQuota = { name: 'account', kind: 'bucket', key: 'rl:account:{ns/acct}', perSecond: 0.001, burst: 3 };
    const perUser = (s: string): SendQuota => ({ name: 'user', kind: 'window', key: `rl:user:{ns/${s}}:alice`, limit: 1, windowMs: 60_000 });
    const start = (s: string, id: string) => store.createVerification(record(id, { store: s }), undefined, [perUser(s), account]);
    assert.is((await start('a', 'VA1')).outcome, 'created');
    const refused = await start('a', 'VA2');
    assert.equal(refused.outcome === 'limited' && refused.quota, 'user', "the store's own quota refuses");
    // The account gave VA2 a token back: two are left, for store b.
    assert.is((await start('b', 'VB1')).outcome, 'created');
    const byAccount = await store.createVerification(record('VB2', { store: 'b', user: 'bob' }), undefined, [
      { ...perUser('b'), key: 'rl:user:{ns/b}:bob' },
      account,
    ]);
    assert.is(byAccount.outcome, 'created', 'the third token');
    const empty = await store.createVerification(record('VB3', { store: 'b', user: 'carol' }), undefined, [
      { ...perUser('b'), key: 'rl:user:{ns/b}:carol' },
      account,
    ]);
    assert.equal(empty.outcome === 'limited' && empty.quota, 'account');
    // Refused by the account, carol's own quota was not taken.
    const carolAgain = await store.createVerification(record('VB4', { store: 'b', user: 'carol' }), undefined, [
      { ...perUser('b'), key: 'rl:user:{ns/b}:carol' },
    ]);
    assert.is(carolAgain.outcome, 'created');
    // A resend in its cooldown is refused for it, before the account is asked (as one script would).
    const cooling = await store.beginResend('ns', 'a', 'VA1', T0 + 1, RIGHT[0]!, [account]);
    assert.equal(cooling !== undefined && !cooling.ok && cooling.reason, 'cooldown');
    // A replayed Idempotency-Key takes nothing, from any slot.
    const idem = { key: 'k', fingerprint: 'f', ttlMs: 60_000 };
    const first = await store.createVerification(record('VD1', { store: 'd' }), idem, []);
    const replay = await store.createVerification(record('VD2', { store: 'd' }), idem, [account]);
    assert.equal([first.outcome, replay.outcome], ['created', 'replayed']);
    // An enrollment found otherwise than expected is answered as such, before the (empty) account is asked.
    await store.putEnrollment('ns', 'd', { user: 'dave', to: '+14155550111', enrolledAt: T0, verificationId: 'VD0' });
    const dave = (id: string, to: string) =>
      store.createVerification(record(id, { store: 'd', user: 'dave', to }), undefined, [account], undefined, { to, orNone: true });
    const differs = await dave('VD3', '+14155550122');
    assert.equal([differs.outcome, differs.outcome === 'enrollment-differs' && differs.enrollment?.to], ['enrollment-differs', '+14155550111']);
    const same = await dave('VD4', '+14155550111');
    assert.equal(same.outcome === 'limited' && same.quota, 'account', 'his own number is asked of the account, which is empty');
  } finally {
    raw.disconnect();
    await store.close();
  }
});

cluster('a master killed under load: unavailable while its slots move, then nothing approved twice and nothing answered lost', async (ctx) => {
  const store = new RedisStore(ctx.cluster.url, { keyPrefix: 'fo:', commandTimeoutMs: 1000 });
  try {
    await store.ready();
    // Twelve stores over the three masters; an enrollment of its own user in each verification.
    const ids = Array.from({ length: 240 }, (_, i) => ({ id: `VF${i}`, store: `s${i % 12}`, user: `u${i}` }));
    for (const v of ids) {
      await store.createVerification(record(v.id, { store: v.store, user: v.user, purpose: 'enroll', replaces: '*' }), undefined, []);
    }
    const victim = await ctx.cluster.masterOf(`{ns/${ids[0]!.store}}`);
    const approvals = new Map<string, number>();
    let unavailable = 0;
    let other: unknown;
    let done = 0;
    let killed: Promise<void> | undefined;
    let recovered!: () => void;
    const back = new Promise<void>((resolve) => (recovered = resolve));
    // Each verification gets two concurrent right codes (two replicas racing), until both have an
    // answer that is not "unavailable"; the victim is killed after a third of them. A check that
    // met the outage waits for the cluster to be back, then tries again (yielding to the event
    // loop, where the client reads the new slots).
    const check = async (v: (typeof ids)[number]): Promise<void> => {
      for (;;) {
        const answer = await store.attempt('ns', v.store, v.id, T0 + 1, RIGHT, undefined, v.user).then(
          (a) => a,
          (err: unknown) => err,
        );
        if (answer instanceof StoreUnavailableError) {
          unavailable++;
          await back;
          await new Promise((resolve) => setImmediate(resolve));
          continue;
        }
        if (!(answer !== null && typeof answer === 'object' && 'approved' in answer)) {
          other = answer instanceof Error ? `${answer.name}: ${answer.message}` : answer;
          return;
        }
        if (answer.approved) approvals.set(v.id, (approvals.get(v.id) ?? 0) + 1);
        return;
      }
    };
    let next = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        for (let i = next++; i < ids.length; i = next++) {
          await Promise.all([check(ids[i]!), check(ids[i]!)]);
          if (++done === ids.length / 3) {
            killed = (async () => {
              try {
                await victim.stop(true);
                // Its replica takes over; the killed node comes back as the new master's replica, so
                // that writes to those slots are replicated (and answered) again.
                await ctx.cluster.settled();
                await victim.start();
                await ctx.cluster.settled();
              } finally {
                recovered();
              }
            })();
          }
        }
      }),
    );
    await killed;
    assert.is(other, undefined, 'every answer was an outcome or unavailable');
    assert.ok(unavailable > 0, 'some checks met the failover');
    for (const v of ids) {
      const r = (await store.getVerification('ns', v.store, v.id))!;
      const answered = approvals.get(v.id) ?? 0;
      assert.ok(answered <= 1, `${v.id} approved ${answered} times`);
      if (answered === 1) {
        assert.is(r.status, 'approved', `${v.id}: its approval was answered, and kept`);
        assert.is((await store.getEnrollment('ns', v.store, v.user))?.verificationId, v.id, `${v.id}: its enrollment was kept`);
      } else {
        // Never answered approved: its right codes all met the outage; one of them may have run.
        assert.ok(['approved', 'pending'].includes(r.status), `${v.id} is ${r.status}`);
      }
    }
    assert.ok(approvals.size > ids.length / 2, `most verifications were answered approved (${approvals.size})`);
  } finally {
    await store.close();
  }
});

cluster.run();
