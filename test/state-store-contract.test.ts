import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { RedisStore } from '../controller/adapters/redis-store.ts';
import { SqliteStore } from '../controller/adapters/sqlite-store.ts';
import { OUTBOX_KEEP_MS, type SendQuota, type StateStore } from '../controller/verifier/state-store.ts';
import { startRedisCluster, type RedisCluster } from './helpers/redis-cluster.ts';
import { expiries, startRedis, type RedisServer } from './helpers/redis-server.ts';
import { record, T0 } from './helpers/verification-record.ts';
import type { VerificationRecord } from '../controller/verifier/types.ts';

/** The candidates of the right code for record(): its stored key id and MAC; and of a wrong one. */
const RIGHT = [{ keyId: 'k1', mac: 'ab'.repeat(32) }];
const WRONG = [{ keyId: 'k1', mac: 'cd'.repeat(32) }];

// Quota keys carry their store as a hash tag, as the verifier's do (a Redis Cluster keeps them in
// the store's slot, where one script takes them with the verification).
const win = (key: string, limit: number, name = key): SendQuota => ({ name, kind: 'window', key: `rl:{ns/st}:${key}`, limit, windowMs: 60_000 });
const bucket = (key: string, perSecond: number, burst: number): SendQuota => ({ name: key, kind: 'bucket', key: `rl:{ns/st}:${key}`, perSecond, burst });
/** failedAuthentication is a history event of a user's failed authentication in a store, at a time. */
const failedAuthentication = (store: string, user: string, time: number) => ({
  namespace: 'ns',
  store,
  user,
  type: 'authenticate' as const,
  result: 'failure' as const,
  time,
  clientIp: '',
  userAgent: '',
});
let takes = 0;
/** take takes quotas as a new verification does (createVerification is the stores' one way to take them), at `now`. */
async function take(store: StateStore, quotas: readonly SendQuota[], now: number): Promise<{ ok: true } | { ok: false; quota: string; retryAfterMs: number }> {
  const r = await store.createVerification(record(`VQ${takes++}`, { createdAt: now }), undefined, quotas);
  return r.outcome === 'limited' ? { ok: false, quota: r.quota, retryAfterMs: r.retryAfterMs } : { ok: true };
}

interface Backend {
  name: string;
  /** open returns a store on the same data each time (a process restart). */
  open(): StateStore | Promise<StateStore>;
  setup?(): Promise<void>;
  /** expiries, for a store whose entries expire on its server's clock, listens for them. */
  expiries?(): ReturnType<typeof expiries>;
}

let redis: RedisServer | undefined;
let cluster: RedisCluster | undefined;
let redisDb = 0;
const backends: Backend[] = [
  (() => {
    let file = '';
    return {
      name: 'sqlite',
      setup: () => {
        file = join(mkdtempSync(join(tmpdir(), 'smsauth-contract-')), 'state.sqlite');
        return Promise.resolve();
      },
      open: () => new SqliteStore(file),
    };
  })(),
  (() => {
    let prefix = '';
    return {
      name: 'redis',
      async setup() {
        redis ??= await startRedis();
        prefix = `t${redisDb++}:`;
      },
      async open() {
        const s = new RedisStore(redis!.url, { keyPrefix: prefix });
        await s.ready();
        return s;
      },
      expiries: () => expiries([redis!.port]),
    };
  })(),
  (() => {
    // A Redis Cluster of three masters with a replica each: a store's keys (and these tests'
    // quotas, tagged with it) share a slot, so each operation is one script on one master; every
    // deciding write waits for its replica. Quotas of other slots: test/redis-cluster.test.ts.
    let prefix = '';
    return {
      name: 'redis-cluster',
      async setup() {
        cluster ??= await startRedisCluster({ masters: 3, replicas: 1 });
        prefix = `t${redisDb++}:`;
      },
      async open() {
        const s = new RedisStore(cluster!.url, { keyPrefix: prefix });
        await s.ready();
        return s;
      },
      expiries: () => expiries(cluster!.nodes.map((n) => n.port)),
    };
  })(),
];

for (const backend of backends) {
  const test = suite<{ store: StateStore }>(`StateStore contract: ${backend.name}`, {} as { store: StateStore });
  test.before.each(async (ctx) => {
    await backend.setup?.();
    ctx.store = await backend.open();
  });
  test.after.each(async (ctx) => {
    // None when before.each failed: closing it would throw from uvu's own catch and hide that failure.
    await (ctx.store as StateStore | undefined)?.close();
  });

  test('creates, reads, and replays or refuses an idempotency key, taking quota only when it creates', async ({ store }) => {
    const a = await store.createVerification(record('VE1'), { key: 'k', fingerprint: 'f1', ttlMs: 60_000 }, [win('once', 1)]);
    assert.is(a.outcome, 'created');
    assert.equal(await store.getVerification('ns', 'st', 'VE1'), record('VE1'));
    const replay = await store.createVerification(record('VE2'), { key: 'k', fingerprint: 'f1', ttlMs: 60_000 }, [win('once', 1)]);
    assert.equal([replay.outcome, 'record' in replay && replay.record.id], ['replayed', 'VE1'], 'a replay is not refused by the spent quota');
    const conflict = await store.createVerification(record('VE3'), { key: 'k', fingerprint: 'f2', ttlMs: 60_000 }, [win('once', 1)]);
    assert.equal([conflict.outcome, 'record' in conflict && conflict.record.id], ['conflict', 'VE1']);
    assert.is(await store.getVerification('ns', 'st', 'VE2'), undefined);
    assert.is(await store.getVerification('ns', 'other', 'VE1'), undefined);
    const limited = await store.createVerification(record('VE4'), { key: 'k2', fingerprint: 'f1', ttlMs: 60_000 }, [win('once', 1)]);
    assert.equal(limited, { outcome: 'limited', quota: 'once', retryAfterMs: 60_000 });
    assert.is(await store.getVerification('ns', 'st', 'VE4'), undefined, 'a refused verification is not stored');
    const again = await store.createVerification(record('VE5'), { key: 'k2', fingerprint: 'f1', ttlMs: 60_000 }, []);
    assert.equal(again.outcome, 'created', 'nor is the key of a refused one remembered');
  });

  test('counts attempts atomically: 50 concurrent wrong codes count exactly maxAttempts', async ({ store }) => {
    await store.createVerification(record('VE1'), undefined, []);
    const results = await Promise.all(Array.from({ length: 50 }, () => store.attempt('ns', 'st', 'VE1', T0 + 1, WRONG)));
    assert.is(results.filter((r) => r!.counted).length, 3);
    assert.equal(
      [(await store.getVerification('ns', 'st', 'VE1'))!.attempts, (await store.getVerification('ns', 'st', 'VE1'))!.status],
      [3, 'max_attempts_reached'],
    );
    assert.is(await store.attempt('ns', 'st', 'missing', T0, RIGHT), undefined);
  });

  test('attempt: only the stored key id and MAC match; a candidate under another key does not', async ({ store }) => {
    await store.createVerification(record('VE1'), undefined, []);
    const other = await store.attempt('ns', 'st', 'VE1', T0 + 1, [
      { keyId: 'k0', mac: 'ab'.repeat(32) },
      { keyId: 'k1', mac: 'ab'.repeat(31) + 'ac' },
      ...WRONG,
    ]);
    assert.equal([other!.counted, other!.approved], [true, false]);
    const none = await store.attempt('ns', 'st', 'VE1', T0 + 1, []);
    assert.equal([none!.counted, none!.approved], [true, false]);
    const rotated = await store.attempt('ns', 'st', 'VE1', T0 + 1, [{ keyId: 'k2', mac: 'ef'.repeat(32) }, ...RIGHT]);
    assert.equal([rotated!.counted, rotated!.approved, rotated!.record.status], [true, true, 'approved']);
  });

  test('attempt: 20 concurrent right codes approve exactly once, within maxAttempts', async ({ store }) => {
    await store.createVerification(record('VE1'), undefined, []);
    const results = await Promise.all(Array.from({ length: 20 }, () => store.attempt('ns', 'st', 'VE1', T0 + 1, RIGHT)));
    assert.is(results.filter((r) => r!.approved).length, 1);
    assert.ok(results.filter((r) => r!.counted).length <= 3);
    const final = (await store.getVerification('ns', 'st', 'VE1'))!;
    assert.equal([final.status, final.attempts <= 3], ['approved', true]);
    assert.is(await store.attempt('ns', 'st', 'missing', T0, RIGHT), undefined);
  });

  test('attempt: approving an enroll verification enrolls its number in the same step; authenticate and misses enroll nothing', async ({ store }) => {
    await store.createVerification(record('VE1', { user: 'carol', to: '+33612345678' }), undefined, []);
    await store.createVerification(record('VE2', { user: 'dave', purpose: 'authenticate' }), undefined, []);
    await store.createVerification(record('VE3', { user: 'erin' }), undefined, []);
    assert.is(await store.getEnrollment('ns', 'st', 'carol'), undefined);
    await store.attempt('ns', 'st', 'VE1', T0 + 5, RIGHT);
    assert.equal(await store.getEnrollment('ns', 'st', 'carol'), { user: 'carol', to: '+33612345678', enrolledAt: T0 + 5, verificationId: 'VE1' });
    await store.attempt('ns', 'st', 'VE2', T0 + 5, RIGHT);
    await store.attempt('ns', 'st', 'VE3', T0 + 5, WRONG);
    assert.equal([await store.getEnrollment('ns', 'st', 'dave'), await store.getEnrollment('ns', 'st', 'erin')], [undefined, undefined]);
  });

  test('attempt: a miss on the last attempt ends the verification; then nothing counts', async ({ store }) => {
    await store.createVerification(record('VE1'), undefined, []);
    const misses = [];
    for (let i = 0; i < 3; i++) misses.push(await store.attempt('ns', 'st', 'VE1', T0 + 1, WRONG));
    assert.equal(
      misses.map((m) => [m!.counted, m!.approved, m!.record.status]),
      [
        [true, false, 'pending'],
        [true, false, 'pending'],
        [true, false, 'max_attempts_reached'],
      ],
    );
    const after = await store.attempt('ns', 'st', 'VE1', T0 + 2, RIGHT);
    assert.equal([after!.counted, after!.approved, after!.record.status], [false, false, 'max_attempts_reached']);
  });

  test('attempt: with an audit, a counted attempt records the event its outcome names, in the same step; an uncounted one records none', async ({ store }) => {
    const ev = (user: string, result: 'success' | 'failure', verificationId: string) => ({
      namespace: 'ns',
      store: 'st',
      user,
      type: 'enroll' as const,
      result,
      time: T0 + 1,
      clientIp: '10.0.0.9',
      userAgent: 'ua',
      verificationId,
    });
    const audit = (user: string, id: string) => ({
      events: { approved: ev(user, 'success', id), exhausted: ev(user, 'failure', id) },
      retention: { maxEvents: 100, maxAgeMs: 60_000 },
    });
    await store.createVerification(record('VA', { user: 'amy' }), undefined, []);
    await store.createVerification(record('VB', { user: 'bob' }), undefined, []);
    await store.attempt('ns', 'st', 'VA', T0 + 1, WRONG, audit('amy', 'VA')); // wrong, attempts left: no event named for it
    await store.attempt('ns', 'st', 'VA', T0 + 1, RIGHT, audit('amy', 'VA'));
    for (let i = 0; i < 3; i++) await store.attempt('ns', 'st', 'VB', T0 + 1, WRONG, audit('bob', 'VB'));
    await store.attempt('ns', 'st', 'VB', T0 + 1, RIGHT, audit('bob', 'VB')); // not counted: nothing recorded
    const events = (await store.listHistory('ns', 'st', { limit: 10 })).events;
    assert.equal(
      events.map((e) => [e.user, e.type, e.result, e.verificationId, e.clientIp]),
      [
        ['bob', 'enroll', 'failure', 'VB', '10.0.0.9'],
        ['amy', 'enroll', 'success', 'VA', '10.0.0.9'],
      ],
    );
    await store.createVerification(record('VC', { user: 'cy' }), undefined, []);
    await store.attempt('ns', 'st', 'VC', T0 + 1, WRONG, { events: { wrong: ev('cy', 'failure', 'VC') }, retention: { maxEvents: 2, maxAgeMs: 60_000 } });
    assert.equal(
      (await store.listHistory('ns', 'st', { limit: 10 })).events.map((e) => e.user),
      ['cy', 'bob'],
      'the retention applies',
    );
  });

  test('an expired pending verification becomes expired instead of counting', async ({ store }) => {
    await store.createVerification(record('VE1'), undefined, []);
    const r = await store.attempt('ns', 'st', 'VE1', T0 + 300_000, RIGHT);
    assert.equal([r!.counted, r!.record.status, r!.record.attempts], [false, 'expired', 0]);
  });

  test('finish moves a pending verification once: 20 concurrent approvals, one wins', async ({ store }) => {
    await store.createVerification(record('VE1'), undefined, []);
    const results = await Promise.all(Array.from({ length: 20 }, () => store.finish('ns', 'st', 'VE1', 'approved')));
    assert.is(results.filter((r) => r !== undefined).length, 1);
    assert.is(await store.finish('ns', 'st', 'VE1', 'canceled'), undefined);
    const failed = await (async () => {
      await store.createVerification(record('VE2'), undefined, []);
      return store.finish('ns', 'st', 'VE2', 'failed', { code: 'gateway_Rejected', message: 'no' });
    })();
    assert.equal(failed!.failure, { code: 'gateway_Rejected', message: 'no' });
  });

  test('a resend waits for the cooldown, stops at maxSends and installs the new code', async ({ store }) => {
    await store.createVerification(record('VE1'), undefined, []);
    const code = { keyId: 'k1', mac: 'cd'.repeat(32) };
    const early = await store.beginResend('ns', 'st', 'VE1', T0 + 10_000, code, []);
    assert.equal([early!.ok, !early!.ok && early!.reason, !early!.ok && early!.reason === 'cooldown' && early!.retryAfterMs], [false, 'cooldown', 20_000]);
    const ok = await store.beginResend('ns', 'st', 'VE1', T0 + 30_000, code, []);
    assert.ok(ok!.ok);
    assert.equal([ok!.record.sends, ok!.record.code, ok!.record.lastSentAt, ok!.record.delivery.status], [2, code, T0 + 30_000, 'sending']);
    await store.beginResend('ns', 'st', 'VE1', T0 + 60_000, code, []);
    const over = await store.beginResend('ns', 'st', 'VE1', T0 + 90_000, code, []);
    assert.equal(!over!.ok && over!.reason, 'max-sends');
    await store.finish('ns', 'st', 'VE1', 'canceled');
    const ended = await store.beginResend('ns', 'st', 'VE1', T0 + 120_000, code, []);
    assert.equal(!ended!.ok && ended!.reason, 'not-pending');
  });

  test('delivery news never overwrites newer news; messages map back to verifications', async ({ store }) => {
    await store.createVerification(record('VE1'), undefined, []);
    // Receipts come after the send's own record (they are found through the index it writes).
    await store.recordSent({ namespace: 'ns', store: 'st', id: 'VE1' }, 'plivo', { status: 'sent', messageId: 'm1', updatedAt: T0 + 400 }, T0 + 400, 60_000);
    await store.setDelivery('ns', 'st', 'VE1', { status: 'delivered', messageId: 'm1', updatedAt: T0 + 2000 });
    await store.setDelivery('ns', 'st', 'VE1', { status: 'sent', messageId: 'm1', updatedAt: T0 + 1000 });
    assert.is((await store.getVerification('ns', 'st', 'VE1'))!.delivery.status, 'delivered');
    await store.createVerification(record('VE2'), undefined, []);
    await store.recordSent(
      { namespace: 'ns', store: 'st', id: 'VE2' },
      'plivo',
      { status: 'sent', account: 'gw', messageId: 'm2', updatedAt: T0 + 1000 },
      T0 + 1000,
      60_000,
    );
    assert.equal((await store.getVerification('ns', 'st', 'VE2'))!.delivery, { status: 'sent', account: 'gw', messageId: 'm2', updatedAt: T0 + 1000 });
    assert.equal(await store.findMessage('plivo', 'm2', T0 + 1000), { namespace: 'ns', store: 'st', id: 'VE2' });
    assert.is(await store.findMessage('twilio', 'm2', T0 + 1000), undefined);
    // A message recorded sent after newer news keeps the news, and is still found.
    await store.recordSent({ namespace: 'ns', store: 'st', id: 'VE1' }, 'plivo', { status: 'sent', messageId: 'm1', updatedAt: T0 + 500 }, T0 + 500, 60_000);
    assert.is((await store.getVerification('ns', 'st', 'VE1'))!.delivery.status, 'delivered');
    assert.equal(await store.findMessage('plivo', 'm1', T0 + 1000), { namespace: 'ns', store: 'st', id: 'VE1' });
    // An index entry past its time to live is gone, swept or not.
    // Redis expires it on its own clock: the test waits for its expiry event.
    const expired = await backend.expiries?.();
    try {
      await store.recordSent({ namespace: 'ns', store: 'st', id: 'VE1' }, 'plivo', { status: 'sent', messageId: 'm9', updatedAt: T0 + 600 }, T0 + 600, 50);
      await expired?.next((key) => key.endsWith('msg:plivo:m9'));
    } finally {
      expired?.close();
    }
    assert.is(await store.findMessage('plivo', 'm9', T0 + 700), undefined);
    // A late receipt for a message that a resend replaced leaves the new message's delivery, during
    // the resend (the delivery reads sending, with no message yet) and after it.
    await store.setDelivery('ns', 'st', 'VE2', { status: 'sending', updatedAt: T0 + 3000 });
    await store.setDelivery('ns', 'st', 'VE2', { status: 'delivered', account: 'gw', messageId: 'm2', updatedAt: T0 + 3000 });
    assert.is((await store.getVerification('ns', 'st', 'VE2'))!.delivery.status, 'sending');
    await store.recordSent(
      { namespace: 'ns', store: 'st', id: 'VE2' },
      'plivo',
      { status: 'sent', account: 'gw', messageId: 'm3', updatedAt: T0 + 3001 },
      T0 + 3001,
      60_000,
    );
    await store.setDelivery('ns', 'st', 'VE2', { status: 'undelivered', account: 'gw', messageId: 'm2', errorCode: '30', updatedAt: T0 + 4000 });
    assert.equal((await store.getVerification('ns', 'st', 'VE2'))!.delivery, { status: 'sent', account: 'gw', messageId: 'm3', updatedAt: T0 + 3001 });
    await store.setDelivery('ns', 'st', 'VE2', { status: 'delivered', account: 'gw', messageId: 'm3', updatedAt: T0 + 4001 });
    assert.is((await store.getVerification('ns', 'st', 'VE2'))!.delivery.status, 'delivered');
    // A final status is not undone by news of an earlier stage of the same message, however late it arrives.
    await store.setDelivery('ns', 'st', 'VE2', { status: 'sent', account: 'gw', messageId: 'm3', updatedAt: T0 + 5000 });
    assert.is((await store.getVerification('ns', 'st', 'VE2'))!.delivery.status, 'delivered');
  });

  test('sends recorded at once are each recorded, each with its own delivery and message', async ({ store }) => {
    const ids = Array.from({ length: 300 }, (_, i) => `VS${i}`);
    for (const id of ids) await store.createVerification(record(id), undefined, []);
    await Promise.all(
      ids.map((id, i) =>
        store.recordSent(
          { namespace: 'ns', store: 'st', id },
          'plivo',
          { status: 'sent', account: 'gw', messageId: `ms${i}`, updatedAt: T0 + i },
          T0 + i,
          60_000,
        ),
      ),
    );
    for (const [i, id] of ids.entries()) {
      assert.equal((await store.getVerification('ns', 'st', id))!.delivery, { status: 'sent', account: 'gw', messageId: `ms${i}`, updatedAt: T0 + i });
      assert.equal(await store.findMessage('plivo', `ms${i}`, T0 + 1000), { namespace: 'ns', store: 'st', id });
    }
    // A send whose verification is gone still indexes its message, and fails none of the others.
    const [gone, kept] = await Promise.allSettled([
      store.recordSent({ namespace: 'ns', store: 'st', id: 'VNONE' }, 'plivo', { status: 'sent', messageId: 'mx', updatedAt: T0 }, T0, 60_000),
      store.recordSent(
        { namespace: 'ns', store: 'st', id: 'VS0' },
        'plivo',
        { status: 'sent', account: 'gw2', messageId: 'ms0b', updatedAt: T0 + 5000 },
        T0,
        60_000,
      ),
    ]);
    assert.equal([gone.status, kept.status], ['fulfilled', 'fulfilled']);
    assert.is((await store.getVerification('ns', 'st', 'VS0'))!.delivery.messageId, 'ms0b');
    assert.equal(await store.findMessage('plivo', 'mx', T0 + 1000), { namespace: 'ns', store: 'st', id: 'VNONE' });
  });

  test('enrollments are put, read and deleted', async ({ store }) => {
    const e = { user: 'alice', to: '+14155550101', enrolledAt: T0, verificationId: 'VE1' };
    await store.putEnrollment('ns', 'st', e);
    assert.equal(await store.getEnrollment('ns', 'st', 'alice'), e);
    assert.equal(await store.deleteEnrollment('ns', 'st', 'alice'), { outcome: 'deleted', enrollment: e }, 'the removed enrollment');
    assert.equal(await store.deleteEnrollment('ns', 'st', 'alice'), { outcome: 'none' });
    assert.is(await store.getEnrollment('ns', 'st', 'alice'), undefined);
  });

  test('an unenrollment records its event, with the removed number masked, in the same step', async ({ store }) => {
    await store.putEnrollment('ns', 'st', { user: 'alice', to: '+14155550101', enrolledAt: T0, verificationId: 'VE1', masked: '+1 ••••••••01' });
    const event = {
      namespace: 'ns',
      store: 'st',
      user: 'alice',
      type: 'unenroll' as const,
      result: 'success' as const,
      time: T0 + 5,
      actor: 'helpdesk:ann' as const,
      clientIp: '',
      userAgent: '',
      role: 'staff',
      reason: 'lost phone',
    };
    await store.deleteEnrollment('ns', 'st', 'alice', { event, retention: { maxEvents: 10, maxAgeMs: 60_000 } });
    await store.deleteEnrollment('ns', 'st', 'alice', { event, retention: { maxEvents: 10, maxAgeMs: 60_000 } }); // nothing to remove: nothing recorded
    const { events } = await store.listHistory('ns', 'st', { limit: 10 });
    assert.equal(
      events.map(({ seq: _s, ...e }) => e),
      [{ ...event, verificationId: undefined, numbers: { old: '+1 ••••••••01', new: null } }].map(({ verificationId: _v, ...e }) => e),
    );
  });

  test('enrolledAmong tells which users have an SMS enrollment, in chunks however many are asked', async ({ store }) => {
    for (const user of ['u1', 'u600', 'u1199']) await store.putEnrollment('ns', 'st', { user, to: '+14155550101', enrolledAt: T0, verificationId: 'VE1' });
    await store.putEnrollment('ns', 'other', { user: 'u2', to: '+14155550101', enrolledAt: T0, verificationId: 'VE1' });
    const users = Array.from({ length: 1200 }, (_, i) => `u${i}`);
    assert.equal((await store.enrolledAmong('ns', 'st', users)).sort(), ['u1', 'u1199', 'u600']);
    assert.equal(await store.enrolledAmong('ns', 'st', []), []);
  });

  test('an enrollment replaces another number only the one it may: otherwise the right code ends it canceled, uncounted; the event names both numbers', async ({
    store,
  }) => {
    const history = { maxEvents: 100, maxAgeMs: 60_000 };
    const ev = (id: string) => ({
      namespace: 'ns',
      store: 'st',
      user: 'alice',
      type: 'enroll' as const,
      result: 'success' as const,
      time: T0 + 1,
      actor: 'user' as const,
      clientIp: '',
      userAgent: '',
      role: null,
      verificationId: id,
    });
    await store.putEnrollment('ns', 'st', { user: 'alice', to: '+14155550199', enrolledAt: T0, verificationId: 'VE0', masked: '+1 ••••••••99' });
    await store.createVerification(record('VF', { maskedTo: '+1 ••••••••01' }), undefined, []);
    const refused = await store.attempt('ns', 'st', 'VF', T0 + 1, RIGHT, { events: { approved: ev('VF') }, retention: history });
    assert.equal(
      [refused!.counted, refused!.approved, refused!.record.status, refused!.record.failure?.code],
      [false, false, 'canceled', 'reauthentication_required'],
    );
    assert.is((await store.getEnrollment('ns', 'st', 'alice'))!.to, '+14155550199', 'the enrolled number stays');
    // Proof of another number than the current one (the helpdesk changed it meanwhile) replaces nothing.
    await store.createVerification(record('VX', { replaces: '+14155550177', maskedTo: '+1 ••••••••01' }), undefined, []);
    assert.equal((await store.attempt('ns', 'st', 'VX', T0 + 1, RIGHT))!.record.failure?.code, 'reauthentication_required');
    await store.createVerification(record('VR', { replaces: '+14155550199', maskedTo: '+1 ••••••••01' }), undefined, []);
    const replaced = await store.attempt('ns', 'st', 'VR', T0 + 1, RIGHT, { events: { approved: ev('VR') }, retention: history });
    assert.equal([replaced!.approved, replaced!.record.status, replaced!.record.approvedAt], [true, 'approved', T0 + 1]);
    assert.equal(await store.getEnrollment('ns', 'st', 'alice'), {
      user: 'alice',
      to: '+14155550101',
      enrolledAt: T0 + 1,
      verificationId: 'VR',
      masked: '+1 ••••••••01',
    });
    // The same number again needs no leave: nothing is replaced.
    await store.createVerification(record('VS', { maskedTo: '+1 ••••••••01' }), undefined, []);
    assert.is((await store.attempt('ns', 'st', 'VS', T0 + 2, RIGHT))!.approved, true);
    // The helpdesk's replaces whatever number is there.
    await store.createVerification(record('VH', { to: '+14155550133', replaces: '*', maskedTo: '+1 ••••••••33' }), undefined, []);
    assert.is((await store.attempt('ns', 'st', 'VH', T0 + 3, RIGHT))!.approved, true);
    const { events } = await store.listHistory('ns', 'st', { limit: 10 });
    assert.equal(
      events.map((e) => [e.verificationId, e.numbers]),
      [['VR', { old: '+1 ••••••••99', new: '+1 ••••••••01' }]],
    );
  });

  test('a helpdesk verification approves without enrolling or touching the lockout', async ({ store }) => {
    await store.createVerification(record('VA0', { purpose: 'authenticate', user: 'alice' }), undefined, []);
    await store.attempt('ns', 'st', 'VA0', T0 + 1, WRONG);
    await store.createVerification(record('VH', { purpose: 'helpdesk', to: '+14155550177', actor: 'helpdesk:ann' }), undefined, []);
    assert.is((await store.attempt('ns', 'st', 'VH', T0 + 2, WRONG))!.lockedNow, undefined);
    const ok = await store.attempt('ns', 'st', 'VH', T0 + 3, RIGHT);
    assert.equal([ok!.approved, ok!.record.status, ok!.record.actor], [true, 'approved', 'helpdesk:ann']);
    assert.is(await store.getEnrollment('ns', 'st', 'alice'), undefined);
    assert.is((await store.getLockout('ns', 'st', 'alice', T0 + 4)).failures, 1, 'the authentication failure counts, the helpdesk ones do not');
  });

  test('a replacement or a removal spends an approved authentication of the same user, to the current number, fresh, once, atomically', async ({ store }) => {
    const auth = (id: string, over: Partial<VerificationRecord> = {}) =>
      record(id, { purpose: 'authenticate', user: 'alice', expiresAt: T0 + 3_600_000, ...over });
    await store.putEnrollment('ns', 'st', { user: 'alice', to: record('x').to, enrolledAt: T0, verificationId: 'VE0' });
    for (const r of [auth('VP1'), auth('VP2'), auth('VP3'), auth('VB', { user: 'bob' }), auth('VO', { to: '+14155550177', numberFrom: 'directory' })])
      await store.createVerification(r, undefined, []);
    await store.createVerification(record('VEN'), undefined, []);
    const spend = (id: string, now: number) => ({ id, maxAgeMs: 600_000, now });
    let n = 0;
    // A replacement of alice's number (record('x').to) by another, created at `now` with the proof `id`.
    const replace = (id: string, now: number, quotas: SendQuota[] = []) =>
      store.createVerification(record(`VN${n++}`, { to: '+14155550188', createdAt: now, replaces: record('x').to }), undefined, quotas, spend(id, now));
    const why = async (p: Promise<{ outcome: string; reason?: string }>): Promise<string> => {
      const r = await p;
      return r.outcome === 'proof-refused' ? r.reason! : r.outcome;
    };
    assert.is(await why(replace('VP1', T0 + 1)), 'not-approved');
    assert.is(await why(replace('VNONE', T0 + 1)), 'not-found');
    assert.is(await why(replace('VEN', T0 + 1)), 'not-found', 'an enrollment is no proof');
    for (const id of ['VP1', 'VP2', 'VP3', 'VB', 'VO']) await store.attempt('ns', 'st', id, T0 + 10, RIGHT);
    assert.is(await why(replace('VB', T0 + 20)), 'other-user');
    assert.is(await why(replace('VO', T0 + 20)), 'other-number', 'an authentication to another number proves nothing of this one');
    assert.is(await why(replace('VP2', T0 + 10 + 600_001)), 'stale');
    assert.is(await why(replace('VP1', T0 + 20, [win('none', 0)])), 'limited', 'a refused replacement spends nothing');
    assert.is((await store.getVerification('ns', 'st', 'VP1'))!.proofUsed, undefined);
    const raced = await Promise.all(Array.from({ length: 10 }, () => why(replace('VP1', T0 + 20))));
    assert.equal([raced.filter((r) => r === 'created').length, raced.filter((r) => r === 'used').length], [1, 9], 'of concurrent uses one wins');
    assert.is((await store.getVerification('ns', 'st', 'VP1'))!.proofUsed, true);
    // A replayed request spends nothing again: it is the same verification.
    const key = { key: 'k', fingerprint: 'f', ttlMs: 60_000 };
    const first = await store.createVerification(record('VI1', { to: '+14155550188', replaces: record('x').to }), key, [], spend('VP2', T0 + 20));
    const again = await store.createVerification(record('VI2', { to: '+14155550188', replaces: record('x').to }), key, [], spend('VP2', T0 + 20));
    assert.equal([first.outcome, again.outcome, 'record' in again && again.record.id], ['created', 'replayed', 'VI1']);
    // Removing the number: the same rule, in the same step as the removal.
    assert.equal(await store.deleteEnrollment('ns', 'st', 'alice', undefined, spend('VP1', T0 + 30)), { outcome: 'proof-refused', reason: 'used' });
    assert.is((await store.getEnrollment('ns', 'st', 'alice'))?.to, record('x').to, 'nothing removed');
    assert.is((await store.deleteEnrollment('ns', 'st', 'alice', undefined, spend('VP3', T0 + 30))).outcome, 'deleted');
    assert.is((await store.getVerification('ns', 'st', 'VP3'))!.proofUsed, true);
  });

  test("an enrollment's creation checks the user's enrollment in the same step, before anything else: one that differs refuses it, storing and taking nothing", async ({
    store,
  }) => {
    const mine = '+14155550101';
    const other = '+14155550188';
    const carol = (id: string, to = mine) => record(id, { user: 'carol', to });
    // No enrollment: created only where none will do (enrollment open).
    const closed = await store.createVerification(carol('VX1'), undefined, [win('x', 1)], undefined, { to: mine, orNone: false });
    assert.equal([closed.outcome, 'enrollment' in closed ? closed.enrollment : undefined], ['enrollment-differs', undefined]);
    assert.is(await store.getVerification('ns', 'st', 'VX1'), undefined, 'nothing stored');
    assert.is(
      (await store.createVerification(carol('VX2'), undefined, [win('x', 1)], undefined, { to: mine, orNone: true })).outcome,
      'created',
      'nothing taken',
    );
    // Enrolled: the same number is created, another refused with the enrollment found.
    const enrollment = { user: 'carol', to: mine, enrolledAt: T0, verificationId: 'VX2' };
    await store.putEnrollment('ns', 'st', enrollment);
    assert.is((await store.createVerification(carol('VX3'), undefined, [], undefined, { to: mine, orNone: false })).outcome, 'created');
    const differs = await store.createVerification(carol('VX4', other), undefined, [win('y', 1)], undefined, { to: other, orNone: true });
    assert.equal(differs, { outcome: 'enrollment-differs', enrollment });
    assert.is((await take(store, [win('y', 1)], T0)).ok, true, 'the refused one took nothing from its quota');
    // Before an Idempotency-Key: a retry whose number is no longer the enrolled one is refused, not replayed.
    const key = { key: 'kx', fingerprint: 'f', ttlMs: 60_000 };
    assert.is((await store.createVerification(carol('VX5'), key, [], undefined, { to: mine, orNone: true })).outcome, 'created');
    await store.putEnrollment('ns', 'st', { ...enrollment, to: other });
    assert.equal((await store.createVerification(carol('VX6'), key, [], undefined, { to: mine, orNone: true })).outcome, 'enrollment-differs');
  });

  test('clearLockout ends a lockout, forgets the failures and records the unlock', async ({ store }) => {
    await store.putEnrollment('ns', 'st', { user: 'bob', to: record('x').to, enrolledAt: T0, verificationId: 'VE0' });
    await store.createVerification(
      record('VL', { purpose: 'authenticate', user: 'bob', maxAttempts: 5, lockout: { threshold: 2, durationMs: 600_000 } }),
      undefined,
      [],
    );
    await store.attempt('ns', 'st', 'VL', T0 + 1, WRONG);
    await store.attempt('ns', 'st', 'VL', T0 + 2, WRONG);
    assert.is((await store.getLockout('ns', 'st', 'bob', T0 + 3)).lockedUntil, T0 + 2 + 600_000);
    const event = {
      namespace: 'ns',
      store: 'st',
      user: 'bob',
      type: 'unlock' as const,
      result: 'success' as const,
      time: T0 + 3,
      actor: 'helpdesk:ann' as const,
      clientIp: '',
      userAgent: '',
      role: null,
      reason: 'called in',
    };
    assert.is(await store.clearLockout('ns', 'st', 'bob', T0 + 3, { event, retention: { maxEvents: 10, maxAgeMs: 60_000 } }), true);
    assert.equal(await store.getLockout('ns', 'st', 'bob', T0 + 4), { failures: 0, lockedUntil: null });
    assert.is((await store.attempt('ns', 'st', 'VL', T0 + 5, RIGHT))!.approved, true, 'attempts are taken again');
    assert.is(await store.clearLockout('ns', 'st', 'bob', T0 + 6, { event, retention: { maxEvents: 10, maxAgeMs: 60_000 } }), false, 'not locked out');
    const { events } = await store.listHistory('ns', 'st', { type: 'unlock', limit: 10 });
    assert.equal(
      events.map((e) => [e.actor, e.reason, e.result]),
      [
        ['helpdesk:ann', 'called in', 'success'],
        ['helpdesk:ann', 'called in', 'success'],
      ],
    );
  });

  test('finish with an audit records its event, and puts it in the outbox, in the same step; a verification no longer pending records nothing', async ({
    store,
  }) => {
    await store.createVerification(record('VP', { purpose: 'possession' }), undefined, []);
    const audit = {
      event: {
        namespace: 'ns',
        store: 'st',
        user: 'u',
        type: 'verify' as const,
        result: 'success' as const,
        time: T0 + 1,
        clientIp: '',
        userAgent: '',
        verificationId: 'VP',
      },
      retention: { maxEvents: 10, maxAgeMs: 60_000 },
      publish: true,
    };
    const approved = await Promise.all(Array.from({ length: 5 }, () => store.finish('ns', 'st', 'VP', 'approved', undefined, T0 + 1, audit)));
    assert.equal(
      approved.filter((r) => r !== undefined).map((r) => [r.status, r.approvedAt]),
      [['approved', T0 + 1]],
      'one wins',
    );
    const { events } = await store.listHistory('ns', 'st', { type: 'verify', limit: 10 });
    assert.equal(
      events.map((e) => [e.user, e.verificationId, e.result]),
      [['u', 'VP', 'success']],
      'one event, of the one that won',
    );
    const entries = (await store.outboxClaim('ns', 'st', 'me', T0 + 2, 30_000, 100))!;
    assert.equal(
      entries.map((e) => [e.key, e.body.kind === 'history' ? `${e.body.event.type}/${e.body.event.seq === events[0]!.seq}` : '']),
      [['u', 'verify/true']],
    );
  });

  test('a lowered bound is reached in bounded steps: a write trims at most 1000, the sweep the rest', async ({ store }) => {
    const wide = { maxEvents: 100_000, maxAgeMs: 1e12 };
    const ev = (i: number) => ({
      namespace: 'ns',
      store: 'st',
      user: `u${i % 7}`,
      type: 'authenticate' as const,
      result: 'success' as const,
      time: T0 + i,
      clientIp: '',
      userAgent: '',
    });
    for (let i = 0; i < 1200; i += 100) await Promise.all(Array.from({ length: 100 }, (_, k) => store.addHistory(ev(i + k), wide)));
    await store.addHistory(ev(1200), { ...wide, maxEvents: 10 });
    const count = async (): Promise<number> => {
      let n = 0;
      let before: number | undefined;
      for (;;) {
        const page = await store.listHistory('ns', 'st', { limit: 1000, ...(before !== undefined ? { before } : {}) });
        n += page.events.length;
        if (page.next === null) return n;
        before = page.next;
      }
    };
    assert.is(await count(), 1201 - 1000, 'one write trims at most 1000');
    await store.sweep(T0 + 2000, { ...wide, maxEvents: 10 });
    assert.is(await count(), 10, 'the sweep trims the rest, step by step');
    assert.equal(
      (await store.listHistory('ns', 'st', { limit: 20 })).events.map((e) => e.time - T0),
      [1200, 1199, 1198, 1197, 1196, 1195, 1194, 1193, 1192, 1191],
    );
  });

  test('history filters by user, type, actor and time, pages with a cursor, and the sweep applies the retention to every store', async ({ store }) => {
    const retention = { maxEvents: 1000, maxAgeMs: 3_600_000 };
    const types = ['authenticate', 'enroll', 'lockout', 'unlock'] as const;
    for (let i = 0; i < 40; i++) {
      await store.addHistory(
        {
          namespace: 'ns',
          store: i % 5 === 0 ? 'other' : 'st',
          user: `u${i % 3}`,
          type: types[i % 4]!,
          result: 'success',
          time: T0 + i * 60_000,
          actor: i % 4 === 3 ? 'helpdesk:ann' : 'user',
          clientIp: '10.0.0.1',
          userAgent: 'ua',
          role: 'staff',
        },
        retention,
      );
    }
    const all = async (query: Omit<Parameters<StateStore['listHistory']>[2], 'limit'>, limit = 3): Promise<number[]> => {
      const times: number[] = [];
      let before: number | undefined;
      for (;;) {
        const page = await store.listHistory('ns', 'st', { ...query, limit, ...(before !== undefined ? { before } : {}) });
        times.push(...page.events.map((e) => (e.time - T0) / 60_000));
        if (page.next === null) return times;
        before = page.next;
      }
    };
    const expected = (keep: (i: number) => boolean): number[] => Array.from({ length: 40 }, (_, i) => 39 - i).filter((i) => i % 5 !== 0 && keep(i));
    assert.equal(
      await all({}),
      expected(() => true),
    );
    assert.equal(
      await all({ user: 'u1' }),
      expected((i) => i % 3 === 1),
    );
    assert.equal(
      await all({ type: 'unlock' }),
      expected((i) => i % 4 === 3),
    );
    assert.equal(
      await all({ actor: 'helpdesk:ann', user: 'u2' }),
      expected((i) => i % 4 === 3 && i % 3 === 2),
    );
    assert.equal(
      await all({ actor: 'user' }),
      expected((i) => i % 4 !== 3),
      "the users' own events",
    );
    assert.equal(
      await all({ actor: 'helpdesk:ann' }),
      expected((i) => i % 4 === 3),
    );
    assert.equal(
      await all({ since: T0 + 10 * 60_000, until: T0 + 20 * 60_000 }),
      expected((i) => i >= 10 && i < 20),
    );
    const [one] = (await store.listHistory('ns', 'st', { limit: 1 })).events;
    assert.equal([one!.actor, one!.role, one!.clientIp], ['helpdesk:ann', 'staff', '10.0.0.1']);
    // 40 minutes of events; a retention of 15 minutes at the last one's time keeps its 15 minutes, in both stores.
    await store.sweep(T0 + 39 * 60_000, { maxEvents: 1000, maxAgeMs: 15 * 60_000 });
    assert.equal(
      await all({}),
      expected((i) => i >= 24),
    );
    assert.equal(
      await all({ user: 'u0' }),
      expected((i) => i >= 24 && i % 3 === 0),
      "the user's index lost the same events",
    );
    assert.equal(
      (await store.listHistory('ns', 'other', { limit: 50 })).events.map((e) => (e.time - T0) / 60_000),
      [35, 30, 25],
    );
  });

  test('attempt on an authentication: wrong codes lock the user at the threshold across verifications; locked, attempts are refused uncounted; the lockout ends after its duration; a success clears the count', async ({
    store,
  }) => {
    const auth = (id: string, over: Partial<VerificationRecord> = {}): VerificationRecord =>
      record(id, { purpose: 'authenticate', user: 'bob', maxAttempts: 5, expiresAt: T0 + 2_000_000, ...over });
    await store.putEnrollment('ns', 'st', { user: 'bob', to: record('x').to, enrolledAt: T0, verificationId: 'VE0' });
    await store.createVerification(auth('VA1'), undefined, []);
    await store.createVerification(auth('VA2'), undefined, []);
    const seen = [
      await store.attempt('ns', 'st', 'VA1', T0 + 1, WRONG),
      await store.attempt('ns', 'st', 'VA1', T0 + 2, WRONG),
      await store.attempt('ns', 'st', 'VA2', T0 + 3, WRONG),
    ];
    assert.equal(
      seen.map((o) => [o!.counted, o!.lockedNow]),
      [
        [true, false],
        [true, false],
        [true, true],
      ],
    );
    assert.equal(await store.getLockout('ns', 'st', 'bob', T0 + 10), { failures: 3, lockedUntil: T0 + 3 + 600_000 });
    const locked = await store.attempt('ns', 'st', 'VA2', T0 + 10, RIGHT);
    assert.equal([locked!.counted, locked!.approved, locked!.lockedUntil, locked!.record.attempts], [false, false, T0 + 3 + 600_000, 1]);
    const later = T0 + 700_000;
    const again = await store.attempt('ns', 'st', 'VA2', later, WRONG);
    assert.equal([again!.counted, again!.lockedNow], [true, false]);
    assert.equal(await store.getLockout('ns', 'st', 'bob', later), { failures: 1, lockedUntil: null }, 'a new count after the lockout');
    assert.ok((await store.attempt('ns', 'st', 'VA2', later + 1, RIGHT))!.approved);
    assert.equal(await store.getLockout('ns', 'st', 'bob', later + 1), { failures: 0, lockedUntil: null }, 'a success clears the count');
    await store.createVerification(record('VE9', { user: 'bob', expiresAt: T0 + 2_000_000 }), undefined, []);
    for (let i = 0; i < 3; i++) await store.attempt('ns', 'st', 'VE9', later + 2, WRONG);
    assert.equal(await store.getLockout('ns', 'st', 'bob', later + 2), { failures: 0, lockedUntil: null }, 'enrollments never count towards the lockout');
  });

  test("attempt on an authentication sent to the directory's number (second-way): approved with no enrollment to match, and none made", async ({ store }) => {
    await store.createVerification(record('VD1', { purpose: 'authenticate', user: 'gus', expiresAt: T0 + 2_000_000, numberFrom: 'directory' }), undefined, []);
    const approved = await store.attempt('ns', 'st', 'VD1', T0 + 1, RIGHT);
    assert.equal([approved!.counted, approved!.approved, approved!.record.status], [true, true, 'approved']);
    assert.is(await store.getEnrollment('ns', 'st', 'gus'), undefined, 'authenticating is not enrolling');
    await store.createVerification(record('VD2', { purpose: 'authenticate', user: 'gus', expiresAt: T0 + 2_000_000 }), undefined, []);
    const enrolledOnly = await store.attempt('ns', 'st', 'VD2', T0 + 2, RIGHT);
    assert.equal([enrolledOnly!.approved, enrolledOnly!.record.failure?.code], [false, 'enrollment_changed'], 'without numberFrom, the enrollment must match');
  });

  test('attempt on an authentication: the right code after its number was unenrolled or replaced ends the verification canceled, uncounted', async ({
    store,
  }) => {
    const auth = (id: string): VerificationRecord => record(id, { purpose: 'authenticate', user: 'fay', expiresAt: T0 + 2_000_000 });
    const enrolled = { user: 'fay', to: record('x').to, enrolledAt: T0, verificationId: 'VE0' };
    await store.putEnrollment('ns', 'st', enrolled);
    for (const id of ['VU1', 'VU2', 'VU3']) await store.createVerification(auth(id), undefined, []);
    const wrong = await store.attempt('ns', 'st', 'VU1', T0 + 1, WRONG);
    assert.equal([wrong!.counted, wrong!.record.status], [true, 'pending']);
    assert.is((await store.deleteEnrollment('ns', 'st', 'fay')).outcome, 'deleted');
    const unenrolled = await store.attempt('ns', 'st', 'VU1', T0 + 2, RIGHT);
    assert.equal(
      [unenrolled!.counted, unenrolled!.approved, unenrolled!.record.status, unenrolled!.record.failure?.code, unenrolled!.record.attempts],
      [false, false, 'canceled', 'enrollment_changed', 1],
    );
    assert.is((await store.getVerification('ns', 'st', 'VU1'))!.status, 'canceled');
    await store.putEnrollment('ns', 'st', { ...enrolled, to: '+14155550199' });
    const replaced = await store.attempt('ns', 'st', 'VU2', T0 + 3, RIGHT);
    assert.equal([replaced!.approved, replaced!.record.status], [false, 'canceled']);
    await store.putEnrollment('ns', 'st', enrolled);
    const back = await store.attempt('ns', 'st', 'VU3', T0 + 4, RIGHT);
    assert.equal([back!.approved, back!.record.status], [true, 'approved']);
    assert.equal(await store.getLockout('ns', 'st', 'fay', T0 + 5), { failures: 0, lockedUntil: null });
  });

  test('attempt on an authentication: 20 concurrent wrong codes lock the user once, at the threshold, with one lockout event', async ({ store }) => {
    await store.createVerification(record('VA', { purpose: 'authenticate', user: 'cy', maxAttempts: 20 }), undefined, []);
    const ev = (type: 'authenticate' | 'lockout', result: 'failure' | 'locked') => ({
      namespace: 'ns',
      store: 'st',
      user: 'cy',
      type,
      result,
      time: T0 + 1,
      clientIp: '',
      userAgent: '',
      verificationId: 'VA',
    });
    const audit = { events: { wrong: ev('authenticate', 'failure'), locked: ev('lockout', 'locked') }, retention: { maxEvents: 100, maxAgeMs: 60_000 } };
    const outcomes = await Promise.all(Array.from({ length: 20 }, () => store.attempt('ns', 'st', 'VA', T0 + 1, WRONG, audit)));
    assert.is(outcomes.filter((o) => o!.counted).length, 3, 'the threshold (3), then refused');
    assert.is(outcomes.filter((o) => o!.lockedNow === true).length, 1);
    assert.is(outcomes.filter((o) => o!.lockedUntil === T0 + 1 + 600_000).length, 17);
    const history = (await store.listHistory('ns', 'st', { limit: 50 })).events;
    assert.equal(history.map((e) => e.type).sort(), ['authenticate', 'authenticate', 'authenticate', 'lockout']);
  });

  test('fixed windows admit exactly the limit, even under 100 concurrent takes', async ({ store }) => {
    const takes = await Promise.all(Array.from({ length: 100 }, () => take(store, [win('k1', 10)], T0 + 5000)));
    assert.is(takes.filter((h) => h.ok).length, 10);
    const refused = takes.find((h) => !h.ok)!;
    assert.equal(!refused.ok && [refused.quota, refused.retryAfterMs], ['k1', 55_000]);
    assert.ok((await take(store, [win('k1', 10)], T0 + 60_000)).ok, 'the next window admits again');
    // A take stamped in the previous window (its request read the clock earlier) never resets the current one.
    const w = T0 + 120_000;
    for (let i = 0; i < 3; i++) assert.ok((await take(store, [win('edge', 3)], w + 10)).ok);
    await take(store, [win('edge', 3)], w - 1);
    const later = await Promise.all(Array.from({ length: 3 }, () => take(store, [win('edge', 3)], w + 20)));
    assert.equal(
      later.map((t) => t.ok),
      [false, false, false],
    );
  });

  test('token buckets allow the burst then the rate', async ({ store }) => {
    const burst = [];
    for (let i = 0; i < 4; i++) burst.push(await take(store, [bucket('acct', 2, 3)], T0));
    assert.equal(
      burst.map((b) => b.ok),
      [true, true, true, false],
    );
    assert.is(!burst[3]!.ok && burst[3]!.retryAfterMs, 500);
    assert.ok((await take(store, [bucket('acct', 2, 3)], T0 + 500)).ok);
    assert.not.ok((await take(store, [bucket('acct', 2, 3)], T0 + 500)).ok);
  });

  test('quotas are taken all together or not at all, even under 100 concurrent takes', async ({ store }) => {
    // 'narrow' admits 3, 'wide' 50: the 97 refused by narrow must leave wide untouched.
    const takes = await Promise.all(Array.from({ length: 100 }, (_, i) => take(store, [win('wide', 50), win(`narrow`, 3), bucket(`b${i}`, 1, 1)], T0)));
    assert.is(takes.filter((t) => t.ok).length, 3);
    assert.ok(takes.every((t) => t.ok || t.quota === 'narrow'));
    const rest = await Promise.all(Array.from({ length: 60 }, () => take(store, [win('wide', 50)], T0)));
    assert.is(rest.filter((t) => t.ok).length, 47, 'wide gave exactly 3 to the admitted sends');
    // A bucket refused after a window admitted: the window keeps its count.
    await take(store, [bucket('empty', 1, 1)], T0);
    const blocked = await take(store, [win('w2', 1), bucket('empty', 1, 1)], T0);
    assert.equal(!blocked.ok && blocked.quota, 'empty');
    assert.ok((await take(store, [win('w2', 1)], T0)).ok, 'w2 was not taken by the refused send');
  });

  test('a resend that a quota refuses installs nothing and takes nothing', async ({ store }) => {
    await store.createVerification(record('VE1'), undefined, []);
    const code = { keyId: 'k1', mac: 'cd'.repeat(32) };
    await take(store, [win('n', 1)], T0 + 30_000);
    const refused = await store.beginResend('ns', 'st', 'VE1', T0 + 30_000, code, [win('u', 5), win('n', 1)]);
    assert.equal(!refused!.ok && refused!.reason === 'quota' && [refused!.quota, refused!.retryAfterMs], ['n', 30_000]);
    const after = (await store.getVerification('ns', 'st', 'VE1'))!;
    assert.equal([after.sends, after.code, after.lastSentAt], [1, record('VE1').code, T0]);
    const races = await Promise.all(Array.from({ length: 50 }, () => store.beginResend('ns', 'st', 'VE1', T0 + 31_000, code, [win('u', 5)])));
    assert.is(races.filter((r) => r!.ok).length, 1);
    assert.ok(
      races.every((r) => r!.ok || r!.reason === 'cooldown'),
      'losers lose at the cooldown',
    );
    const u = await Promise.all(Array.from({ length: 10 }, () => take(store, [win('u', 5)], T0 + 31_000)));
    assert.is(u.filter((t) => t.ok).length, 4, 'only the winner took from u');
  });

  test('history lists newest first, by user, with a cursor, and keeps to its bounds', async ({ store }) => {
    const retention = { maxEvents: 5, maxAgeMs: 60_000 };
    const users = ['a', 'b', 'a', 'c', 'a', 'b', 'a'];
    for (const [i, user] of users.entries()) {
      await store.addHistory(
        {
          namespace: 'ns',
          store: 'st',
          user,
          type: 'authenticate',
          result: i % 2 === 0 ? 'success' : 'failure',
          time: T0 + i * 1000,
          clientIp: '10.0.0.1',
          userAgent: 'ua',
        },
        retention,
      );
    }
    const all = (await store.listHistory('ns', 'st', { limit: 10 })).events;
    assert.equal(
      all.map((e) => e.user),
      ['a', 'b', 'a', 'c', 'a'],
      'bounded to 5 events',
    );
    assert.ok(all[0]!.seq > all[1]!.seq);
    const byUser = (await store.listHistory('ns', 'st', { user: 'a', limit: 2 })).events;
    assert.equal(
      byUser.map((e) => e.time),
      [T0 + 6000, T0 + 4000],
    );
    const next = (await store.listHistory('ns', 'st', { user: 'a', limit: 2, before: byUser[1]!.seq })).events;
    assert.equal(
      next.map((e) => e.time),
      [T0 + 2000],
    );
    await store.addHistory(
      { namespace: 'ns', store: 'st', user: 'z', type: 'lockout', result: 'locked', time: T0 + 200_000, clientIp: '', userAgent: '' },
      retention,
    );
    assert.equal(
      (await store.listHistory('ns', 'st', { limit: 10 })).events.map((e) => e.user),
      ['z'],
      'events older than maxAge are gone',
    );
  });

  test("a store's seqs only grow, even after its newest events are swept (page cursors and event ids never name two events)", async ({ store }) => {
    const retention = { maxEvents: 1000, maxAgeMs: 60_000 };
    const ev = failedAuthentication;
    const seqs = async (st: string): Promise<number[]> => (await store.listHistory('ns', st, { limit: 50 })).events.map((e) => e.seq);
    await store.addHistory(ev('other', 'x', T0 + 120_000), retention);
    for (const user of ['a', 'b', 'c']) await store.addHistory(ev('st', user, T0), retention);
    const before = await seqs('st');
    // Every event of st ages out, the newest of all among them; other keeps its own.
    await store.sweep(T0 + 150_000, retention);
    assert.equal(await seqs('st'), []);
    await store.addHistory(ev('st', 'd', T0 + 150_000), retention);
    const [after] = await seqs('st');
    assert.ok(after! > Math.max(...before), `seq ${after} after ${before.join(', ')}`);
    // And when every store's newest event is gone too.
    await store.sweep(T0 + 1_000_000, retention);
    await store.addHistory(ev('st', 'e', T0 + 1_000_000), retention);
    const [last] = await seqs('st');
    assert.ok(last! > after!, `seq ${last} after ${after}`);
  });

  test('history keeps exactly the events within its bounds, whatever the order of their times', async ({ store }) => {
    const retention = { maxEvents: 1000, maxAgeMs: 60_000 };
    const ev = (user: string, time: number) => failedAuthentication('st', user, time);
    const users = async (): Promise<string[]> => (await store.listHistory('ns', 'st', { limit: 50 })).events.map((e) => e.user);
    // Events of one attempt share a time (a wrong code and the lockout it starts), here across seqs 9 and 10.
    for (let i = 1; i <= 8; i++) await store.addHistory(ev(`u${i}`, T0 + i), retention);
    await store.addHistory(ev('nine', T0 + 100), retention);
    await store.addHistory(ev('ten', T0 + 100), retention);
    await store.addHistory(ev('late', T0 + 1_000_000), retention);
    assert.equal(await users(), ['late']);
    // Times out of seq order (two replicas): only what is older than maxAge goes.
    await store.addHistory(ev('A', T0 + 2_000_100), retention);
    await store.addHistory(ev('B', T0 + 2_070_000), retention);
    await store.addHistory(ev('C', T0 + 2_005_000), retention);
    await store.addHistory(ev('D', T0 + 2_065_500), retention);
    assert.equal(await users(), ['D', 'B']);
    // By count: the oldest by seq go, and what remains still ages out.
    for (const u of ['E', 'F', 'G']) await store.addHistory(ev(u, T0 + 2_066_000), { ...retention, maxEvents: 3 });
    assert.equal(await users(), ['G', 'F', 'E']);
    await store.addHistory(ev('H', T0 + 2_200_000), retention);
    assert.equal(await users(), ['H']);
  });

  test('everything survives a restart of the process', async ({ store }) => {
    await store.createVerification(record('VE1'), undefined, []);
    await store.attempt('ns', 'st', 'VE1', T0 + 1, WRONG);
    await store.putEnrollment('ns', 'st', { user: 'alice', to: '+14155550101', enrolledAt: T0, verificationId: 'VE0' });
    await store.createVerification(record('VL', { purpose: 'authenticate' }), undefined, []);
    await store.attempt('ns', 'st', 'VL', T0 + 1, WRONG);
    await take(store, [win('k', 1)], T0);
    await store.addHistory(
      { namespace: 'ns', store: 'st', user: 'alice', type: 'enroll', result: 'success', time: T0, clientIp: '', userAgent: '' },
      { maxEvents: 10, maxAgeMs: 1e9 },
    );
    await store.close();
    const again = await backend.open();
    try {
      assert.is((await again.getVerification('ns', 'st', 'VE1'))!.attempts, 1);
      assert.is((await again.getEnrollment('ns', 'st', 'alice'))!.verificationId, 'VE0');
      assert.is((await again.getLockout('ns', 'st', 'alice', T0 + 1)).failures, 1);
      assert.not.ok((await take(again, [win('k', 1)], T0)).ok);
      assert.is((await again.listHistory('ns', 'st', { limit: 5 })).events.length, 1);
    } finally {
      await again.close();
    }
    // The suite's after.each closes `store` again: closing twice must be harmless.
  });

  test('fraud guard: starts and approvals per counter over a sliding window; a counter whose conversion falls is blocked once, atomically', async ({
    store,
  }) => {
    const policy = { windowMs: 3_600_000, minSample: 10, minConversion: 0.3, blockMs: 600_000 };
    const bucket = policy.windowMs / 12;
    const t = Math.floor(T0 / bucket) * bucket; // the start of a bucket
    const [pumped, country, healthy] = ['fg:{ns/st}:+44770', 'fg:{ns/st}:+44', 'fg:{ns/st}:+1415'];
    // One bucket: healthy gets 10 starts and 3 approvals so far; pumped 10 starts, none approved.
    for (let i = 0; i < 10; i++) assert.equal(await store.fraudStart([healthy], t + i, policy), []);
    for (let i = 0; i < 3; i++) await store.fraudApproved([healthy], t + 20 + i, policy);
    for (let i = 0; i < 10; i++) assert.equal(await store.fraudStart([pumped, country], t + i, policy), [], 'starts of the current bucket are not judged yet');
    // The country converts through another prefix of its own.
    for (let i = 0; i < 4; i++) await store.fraudApproved([country], t + 30 + i, policy);
    // The next bucket: concurrent starts judge the settled one together; the block is made once.
    const next = t + bucket;
    const racing = await Promise.all(Array.from({ length: 5 }, (_, i) => store.fraudStart([pumped, country], next + i, policy)));
    const newly = racing.flat().filter((b) => b.newly);
    assert.equal(
      newly.map((b) => [b.key, b.until >= next + policy.blockMs]),
      [[pumped, true]],
    );
    assert.ok(
      racing.every((r) => r.every((b) => b.key === pumped)),
      'the converting country is not blocked',
    );
    assert.equal(
      (await store.fraudBlocks([pumped, country, healthy], next + 200)).map((b) => [b.key, b.newly]),
      [[pumped, false]],
    );
    assert.equal(await store.fraudStart([healthy], next + 300, policy), [], 'a prefix converting 30 % is not blocked');
    // The block ends on its own; a window later the old starts count no more.
    assert.equal(await store.fraudBlocks([pumped], next + policy.blockMs + 10_000), []);
    assert.equal(await store.fraudStart([pumped], t + policy.windowMs + 2 * bucket, policy), [], 'the window slid past the pumped starts');
  });

  test('outbox: with publish, the changes a check, an unenrollment, an unlock and a fraud block make go to the outbox in their own step, in order', async ({
    store,
  }) => {
    const retention = { maxEvents: 100, maxAgeMs: 3_600_000 };
    const ev = (user: string, type: 'enroll' | 'authenticate' | 'lockout' | 'unenroll' | 'unlock', result: 'success' | 'failure' | 'locked', id?: string) => ({
      namespace: 'ns',
      store: 'st',
      user,
      type,
      result,
      time: T0 + 1,
      clientIp: '',
      userAgent: '',
      ...(id !== undefined ? { verificationId: id } : {}),
    });
    await store.createVerification(record('VA', { user: 'amy', maskedTo: '+1 ***55' }), undefined, []);
    await store.attempt('ns', 'st', 'VA', T0 + 1, RIGHT, {
      events: { approved: ev('amy', 'enroll', 'success', 'VA'), exhausted: ev('amy', 'enroll', 'failure', 'VA') },
      retention,
      publish: ['approved', 'exhausted'],
    });
    const auth = (id: string): VerificationRecord => record(id, { purpose: 'authenticate', user: 'amy', maxAttempts: 5, expiresAt: T0 + 2_000_000 });
    await store.createVerification(auth('VB'), undefined, []);
    const authAudit = {
      events: {
        approved: ev('amy', 'authenticate', 'success', 'VB'),
        wrong: ev('amy', 'authenticate', 'failure', 'VB'),
        exhausted: ev('amy', 'authenticate', 'failure', 'VB'),
        locked: ev('amy', 'lockout', 'locked', 'VB'),
      },
      retention,
      publish: ['approved', 'exhausted', 'locked'] as const,
    };
    for (let i = 0; i < 3; i++) await store.attempt('ns', 'st', 'VB', T0 + 1, WRONG, authAudit); // the third locks amy out
    await store.clearLockout('ns', 'st', 'amy', T0 + 2, { event: ev('amy', 'unlock', 'success'), retention, publish: true });
    await store.deleteEnrollment('ns', 'st', 'amy', { event: ev('amy', 'unenroll', 'success'), retention, publish: true });
    await store.deleteEnrollment('ns', 'st', 'amy', { event: ev('amy', 'unenroll', 'success'), retention, publish: true }); // none: nothing
    const policy = { windowMs: 3_600_000, minSample: 2, minConversion: 0.5, blockMs: 600_000 };
    const t = Math.floor(T0 / 300_000) * 300_000;
    await store.fraudStart(['fg:{ns/st}:+44770'], t, policy, { namespace: 'ns', store: 'st', enforced: true });
    await store.fraudStart(['fg:{ns/st}:+44770'], t + 1, policy, { namespace: 'ns', store: 'st', enforced: true });
    const racing = await Promise.all(
      Array.from({ length: 5 }, () => store.fraudStart(['fg:{ns/st}:+44770'], t + 300_000, policy, { namespace: 'ns', store: 'st', enforced: true })),
    );
    assert.is(racing.flat().filter((b) => b.newly).length, 1);

    const entries = (await store.outboxClaim('ns', 'st', 'me', T0 + 3, 30_000, 100))!;
    assert.equal(
      entries.map((e) => [
        e.key,
        e.body.kind === 'history' ? `${e.body.event.type}/${e.body.event.result}/${e.body.outcome ?? ''}` : `fraud/${e.body.enforced}`,
      ]),
      [
        ['amy', 'enroll/success/approved'],
        ['amy', 'lockout/locked/locked'],
        ['amy', 'unlock/success/'],
        ['amy', 'unenroll/success/'],
        ['fg:{ns/st}:+44770', 'fraud/true'],
      ],
      'wrong codes with attempts left are not published; each change once, in order',
    );
    assert.ok(entries.every((e, i) => i === 0 || e.seq > entries[i - 1]!.seq));
    const [enrolled, locked, , unenrolled, fraud] = entries;
    const history = (await store.listHistory('ns', 'st', { limit: 10 })).events;
    assert.equal(
      enrolled!.body.kind === 'history' && enrolled!.body.event,
      { ...history.find((e) => e.type === 'enroll')! },
      'the event as history has it, with its seq',
    );
    assert.equal(enrolled!.body.kind === 'history' && enrolled!.body.event.numbers, { old: null, new: '+1 ***55' });
    assert.equal(unenrolled!.body.kind === 'history' && unenrolled!.body.event.numbers, { old: '+1 ***55', new: null });
    assert.equal(locked!.body.kind === 'history' && locked!.body.lockedUntil, T0 + 1 + 600_000);
    assert.equal(fraud!.body.kind === 'fraud' && [fraud!.body.key, fraud!.body.until], ['fg:{ns/st}:+44770', t + 300_000 + policy.blockMs]);
    assert.equal(
      entries.map((e) => [e.attempts, e.nextAt, e.namespace, e.store]),
      entries.map(() => [0, 0, 'ns', 'st']),
    );
    assert.equal(await store.outboxClaim('ns', 'other', 'me', T0 + 3, 30_000, 100), [], "another store's outbox is its own");
  });

  test('outbox: one holder at a time; settled entries go, retries are kept; the outbox survives a restart and the sweep empties it past its keep', async ({
    store,
  }) => {
    const retention = { maxEvents: 100, maxAgeMs: 100 * 3_600_000 };
    for (const user of ['a', 'b', 'c']) {
      await store.putEnrollment('ns', 'st', { user, to: '+15550001', enrolledAt: T0, verificationId: 'V' });
      const event = { namespace: 'ns', store: 'st', user, type: 'unenroll' as const, result: 'success' as const, time: T0, clientIp: '', userAgent: '' };
      await store.deleteEnrollment('ns', 'st', user, { event, retention, publish: true });
    }
    const first = (await store.outboxClaim('ns', 'st', 'one', T0, 30_000, 2))!;
    assert.equal(
      first.map((e) => e.key),
      ['a', 'b'],
      'the oldest, at most the limit',
    );
    assert.is(await store.outboxClaim('ns', 'st', 'two', T0 + 1, 30_000, 10), undefined, 'the lease is held');
    assert.is(await store.outboxSettle('ns', 'st', 'two', [first[0]!.seq], []), false, 'not the holder: nothing settled');
    assert.is(await store.outboxSettle('ns', 'st', 'one', [first[0]!.seq], [{ seq: first[1]!.seq, attempts: 1, nextAt: T0 + 5000 }]), true);
    assert.equal(
      (await store.outboxClaim('ns', 'st', 'one', T0 + 1, 30_000, 10, first[1]!.seq))!.map((e) => e.key),
      ['c'],
      'a page after a seq',
    );
    assert.equal(await store.outboxClaim('ns', 'st', 'one', T0 + 1, 30_000, 0), [], 'a renewal claims nothing');
    const again = (await store.outboxClaim('ns', 'st', 'one', T0 + 2, 30_000, 10))!;
    assert.equal(
      again.map((e) => [e.key, e.attempts, e.nextAt]),
      [
        ['b', 1, T0 + 5000],
        ['c', 0, 0],
      ],
    );
    await store.outboxRelease('ns', 'st', 'two'); // not its lease: nothing
    assert.is(await store.outboxClaim('ns', 'st', 'two', T0 + 3, 30_000, 10), undefined);
    await store.outboxRelease('ns', 'st', 'one');
    await store.close();
    const reopened = await backend.open();
    try {
      assert.equal(
        (await reopened.outboxClaim('ns', 'st', 'two', T0 + 4, 30_000, 10))!.map((e) => [e.key, e.attempts]),
        [
          ['b', 1],
          ['c', 0],
        ],
      );
      await reopened.sweep(T0 + OUTBOX_KEEP_MS - 1, retention);
      assert.is((await reopened.outboxClaim('ns', 'st', 'two', T0 + 5, 30_000, 10))!.length, 2, 'kept until its keep');
      await reopened.sweep(T0 + OUTBOX_KEEP_MS + 1, retention);
      assert.equal(await reopened.outboxClaim('ns', 'st', 'two', T0 + 6, 30_000, 10), []);
    } finally {
      await reopened.close();
    }
  });

  test('aliases name a verification by another key until they expire; a later put replaces one', async ({ store }) => {
    assert.is(await store.getAlias('ns', 'st', 'twilio:abc', T0), undefined);
    await store.putAlias('ns', 'st', 'twilio:abc', 'VE1', T0, 600_000);
    assert.is(await store.getAlias('ns', 'st', 'twilio:abc', T0 + 1), 'VE1');
    assert.is(await store.getAlias('ns', 'other', 'twilio:abc', T0 + 1), undefined, "another store's are its own");
    await store.putAlias('ns', 'st', 'twilio:abc', 'VE2', T0 + 2, 600_000);
    assert.is(await store.getAlias('ns', 'st', 'twilio:abc', T0 + 3), 'VE2');
  });

  test.run();
}

const down = suite('RedisStore when Redis is down');
down('fails fast with StoreUnavailableError, then works again once Redis is back', async () => {
  const server = await startRedis();
  const store = new RedisStore(server.url, { keyPrefix: 'down:' });
  await store.ready();
  await store.putEnrollment('ns', 'st', { user: 'a', to: '+1', enrolledAt: T0, verificationId: 'VE' });
  await server.stop();
  // Refused while Redis is still down: the call is not queued until it comes back.
  try {
    await store.getEnrollment('ns', 'st', 'a');
    assert.unreachable('Redis is down');
  } catch (err) {
    assert.is((err as { code?: string }).code, 'ERR_STORE_UNAVAILABLE');
  }
  await server.start();
  await store.ready(10_000);
  assert.is((await store.getEnrollment('ns', 'st', 'a'))!.user, 'a', 'the data came back with Redis (append-only file)');
  await store.close();
  await server.stop();
});
down.after(async () => {
  await redis?.stop();
  await cluster?.stop();
});
down.run();
