import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { startRedis, type RedisServer } from './helpers/redis-server.ts';
import { storeBackends } from './helpers/store-backends.ts';
import { startStack, type ApiAnswer, type Stack } from './helpers/verifier-stack.ts';

// A simulated SMS pumping run against the verifier over HTTP, on each store: starts to one range of
// numbers (the attacked prefix) that nobody approves, mixed with normal traffic to other prefixes
// that approves. The guard counts per prefix and per country in buckets of a twelfth of its
// window (5 minutes here) and judges the buckets that are over.

const BUCKET_MS = 5 * 60_000;
let redis: RedisServer | undefined;
const backends = storeBackends('fraud', () => redis);

/** pumped is the n-th number of the attacked range (+44 7911 123xxx, one prefix, +44791). */
const pumped = (n: number): string => `+447911123${String(200 + n).padStart(3, '0')}`;
/** normal is the n-th number of the normal traffic (+1 415 555 0xxx). */
const normal = (n: number): string => `+1415555${String(1000 + n).padStart(4, '0')}`;

async function start(s: Stack, store: string, to: string, user: string): Promise<ApiAnswer> {
  return s.api('POST', `/v1/acme/${store}/verifications`, { to, purpose: 'enroll', user });
}

/** converting sends normal traffic that approves: start, read the code, check it. */
async function converting(s: Stack, store: string, from: number, count: number): Promise<void> {
  for (let i = from; i < from + count; i++) {
    const started = await start(s, store, normal(i), `user${i}`);
    assert.is(started.status, 201, JSON.stringify(started.body));
    const code = s.gateways.get('primary')!.lastCode(normal(i));
    assert.is((await s.api('POST', `/v1/acme/${store}/verifications/${started.body.id}/check`, { code })).body.status, 'approved');
  }
}

async function fraudMetric(s: Stack, store: string, action: string): Promise<number> {
  const found = (await s.metrics.registry.getSingleMetric('smsauth_fraud_guard_total')?.get())?.values.find(
    (v) => v.labels['store'] === store && v.labels['action'] === action,
  );
  return found?.value ?? 0;
}

const pumping = suite('fraud guard: a pumping run');
pumping.before(async () => {
  redis = await startRedis();
});
pumping.after(async () => {
  await redis?.stop();
});

for (const [backend, open] of backends) {
  pumping(
    `${backend}, Enforce: the attacked prefix is blocked within its sample, normal prefixes and safe-listed numbers are not, the kill switch refuses at once`,
    async () => {
      const s = await startStack({ store: await open(), fixture: 'verifier/fraud-guard.yaml' });
      try {
        // The kill switch: +33 is refused from the first start, like a rate limit.
        const killed = await start(s, 'enforced', '+33612345678', 'fr');
        assert.is(killed.status, 429);
        assert.is(killed.body.error.code, 'rate_limited');
        assert.ok(Number(killed.headers.get('retry-after')) > 0);
        // One start to the attacked range with an Idempotency-Key, retried after the block below.
        const earlyBody = { to: pumped(50), purpose: 'enroll', user: 'early' };
        const first = await s.api('POST', '/v1/acme/enforced/verifications', earlyBody, { 'idempotency-key': 'early-1' });
        assert.is(first.status, 201);
        const early = { id: first.body.id as string, body: earlyBody };
        // A bucket of traffic: 12 more starts to the attacked range, none approved; 8 normal ones, all approved.
        const ids: string[] = [];
        for (let i = 0; i < 12; i++) {
          const started = await start(s, 'enforced', pumped(i), `bot${i}`);
          assert.is(started.status, 201, 'not judged before its bucket is over');
          ids.push(started.body.id as string);
        }
        await converting(s, 'enforced', 0, 8);
        s.clock.advance(BUCKET_MS);
        // The next start judges the bucket that is over: the attacked prefix (and its country) is blocked.
        await start(s, 'enforced', pumped(12), 'bot12');
        assert.is(await fraudMetric(s, 'enforced', 'prefix_blocked'), 2, 'the prefix +44791 and the country +44');
        let refused = 0;
        for (let i = 13; i < 40; i++) if ((await start(s, 'enforced', pumped(i), `bot${i}`)).status === 429) refused++;
        assert.is(refused, 27, 'every later start to the attacked range is refused');
        const answer = await start(s, 'enforced', pumped(41), 'bot41');
        assert.equal([answer.status, answer.body.error.code], [429, 'rate_limited'], 'answered like a rate limit');
        assert.not.match(JSON.stringify(answer.body), /fraud/i, 'no hint that fraud detection fired');
        // The refused enrollment is in history, nothing sent.
        const history = await s.api('GET', '/v1/acme/enforced/history?user=bot13');
        assert.equal(
          history.body.events.map((e: { type: string; result: string }) => [e.type, e.result]),
          [['enroll', 'refused']],
        );
        // A retry of the start made before the block, with its Idempotency-Key, is answered with its verification.
        const retried = await s.api('POST', '/v1/acme/enforced/verifications', early.body, { 'idempotency-key': 'early-1' });
        assert.equal([retried.status, retried.body.id], [201, early.id]);
        // A resend to the blocked range is refused too (after its cooldown, which would admit it).
        s.clock.advance(60_000);
        const resend = await s.api('POST', `/v1/acme/enforced/verifications/${ids[0]!}/resend`);
        assert.equal([resend.status, resend.body.error?.code], [429, 'rate_limited']);
        // The safe-listed number of the same range is never refused; normal traffic goes on.
        assert.is((await start(s, 'enforced', '+447911123999', 'safe')).status, 201);
        await converting(s, 'enforced', 100, 5);
        assert.is(await fraudMetric(s, 'enforced', 'blocked'), 30, 'the 28 starts, the retry and the resend');
        assert.is(
          s.gateways.get('primary')!.sent.filter((m) => m.to.startsWith('+44791')).length,
          15,
          'the 13 of the bucket, the judging start and the safe one',
        );
        assert.ok(
          s.logs.every((l) => !l.includes('+447911123')),
          'no number in the log',
        );
      } finally {
        await s.close();
      }
    },
  );

  pumping(`${backend}, Monitor: the same run is only reported`, async () => {
    const s = await startStack({ store: await open(), fixture: 'verifier/fraud-guard.yaml' });
    try {
      for (let i = 0; i < 12; i++) assert.is((await start(s, 'watched', pumped(i), `bot${i}`)).status, 201);
      await converting(s, 'watched', 0, 8);
      s.clock.advance(BUCKET_MS);
      for (let i = 12; i < 30; i++) assert.is((await start(s, 'watched', pumped(i), `bot${i}`)).status, 201, 'Monitor refuses nothing');
      assert.is(await fraudMetric(s, 'watched', 'prefix_blocked'), 2);
      assert.is(await fraudMetric(s, 'watched', 'monitored'), 17, 'each start after the block, reported');
      assert.is(await fraudMetric(s, 'watched', 'blocked'), 0);
    } finally {
      await s.close();
    }
  });

  pumping(`${backend}: a start the enrollment refuses (another number, no proof) is not the guard's to judge`, async () => {
    const s = await startStack({ store: await open(), fixture: 'verifier/fraud-guard.yaml' });
    try {
      await converting(s, 'enforced', 0, 1); // user0 enrolls normal(0)
      const other = await start(s, 'enforced', '+33612345678', 'user0');
      assert.equal([other.status, other.body.error.code], [403, 'reauthentication_required'], 'the proof it lacks, not the blocked prefix');
      assert.is(await fraudMetric(s, 'enforced', 'kill_switch'), 0, 'not counted as the kill switch refusing it');
      const fresh = await start(s, 'enforced', '+33612345678', 'newcomer');
      assert.is(fresh.status, 429, 'a start the enrollment allows is judged');
      assert.is(await fraudMetric(s, 'enforced', 'kill_switch'), 1);
    } finally {
      await s.close();
    }
  });
}

pumping.run();
