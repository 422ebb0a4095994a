import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { DEFAULT_VERIFIER_CONFIG } from '../controller/verifier/verifier.ts';
import { startRedis, type RedisServer } from './helpers/redis-server.ts';
import { storeBackends } from './helpers/store-backends.ts';
import { SqliteStore } from '../controller/adapters/sqlite-store.ts';
import type { StateStore } from '../controller/verifier/state-store.ts';
import { startStack, type Stack } from './helpers/verifier-stack.ts';

const BASE = '/v1/acme/corp';
const ALICE_NUMBER = '+14155550101';
const CLIENTS = 50;

let redis: RedisServer | undefined;
const backends = storeBackends('attack', () => redis);

async function enroll(s: Stack, user: string, to: string): Promise<void> {
  const start = await s.api('POST', `${BASE}/verifications`, { to, purpose: 'enroll', user });
  assert.is(start.status, 201, JSON.stringify(start.body));
  assert.is((await s.api('POST', `${BASE}/verifications/${start.body.id}/check`, { code: s.gateways.get('primary')!.lastCode(to) })).body.status, 'approved');
}

/** parallel fires n requests at once and counts the answers by status and error code. */
async function parallel(n: number, request: (i: number) => Promise<{ status: number; body: any }>): Promise<Record<string, number>> {
  const answers = await Promise.all(Array.from({ length: n }, (_, i) => request(i)));
  const counts: Record<string, number> = {};
  for (const a of answers) {
    const key = a.status < 300 ? String(a.status) : `${a.status} ${a.body.error.code}`;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

const concurrent = suite(`limits under ${CLIENTS} concurrent clients`);
concurrent.before(async () => {
  redis = await startRedis();
});
concurrent.after(async () => {
  await redis?.stop();
});

for (const [backend, open] of backends) {
  concurrent(`${backend}: the per-number limit admits exactly its count`, async () => {
    const s = await startStack({ store: await open() });
    try {
      const counts = await parallel(CLIENTS, (i) => s.api('POST', `${BASE}/verifications`, { to: ALICE_NUMBER, purpose: 'enroll', user: `u${i}` }));
      assert.equal(counts, { 201: 5, '429 rate_limited': CLIENTS - 5 });
      assert.is(s.gateways.get('primary')!.sent.length, 5);
    } finally {
      await s.close();
    }
  });

  concurrent(`${backend}: limits declared in spec.sms.limits: per number, and per client address behind a trusted proxy`, async () => {
    const s = await startStack({ store: await open(), fixture: 'verifier/limits.yaml', trustedProxies: ['127.0.0.1'] });
    const LIMITED = '/v1/acme/limited';
    try {
      const counts = await parallel(CLIENTS, (i) =>
        s.api('POST', `${LIMITED}/verifications`, { to: ALICE_NUMBER, purpose: 'enroll', user: `n${i}` }, { 'x-forwarded-for': `198.51.100.${i}` }),
      );
      assert.equal(counts, { 201: 2, '429 rate_limited': CLIENTS - 2 }, 'perNumber: 2 per 10m, declared');
      // One end user behind the proxy, many numbers and users: perClient (3 per 10m) holds.
      const fromOne = await parallel(CLIENTS, (i) =>
        s.api(
          'POST',
          `${LIMITED}/verifications`,
          { to: `+1415555${String(300 + i).padStart(4, '0')}`, purpose: 'enroll', user: `c${i}` },
          { 'x-forwarded-for': '203.0.113.7' },
        ),
      );
      assert.equal(fromOne, { 201: 3, '429 rate_limited': CLIENTS - 3 });
      const refused = await s.api(
        'POST',
        `${LIMITED}/verifications`,
        { to: '+14155550999', purpose: 'enroll', user: 'late' },
        { 'x-forwarded-for': '203.0.113.7' },
      );
      assert.is(refused.status, 429);
      assert.ok(Number(refused.headers.get('retry-after')) > 0, 'Retry-After');
      const other = await s.api(
        'POST',
        `${LIMITED}/verifications`,
        { to: '+14155550998', purpose: 'enroll', user: 'other' },
        { 'x-forwarded-for': '203.0.113.8' },
      );
      assert.is(other.status, 201, 'another end user is not held up');
    } finally {
      await s.close();
    }
  });

  concurrent(`${backend}: the per-prefix limit admits exactly its count across different numbers`, async () => {
    const limits = { ...DEFAULT_VERIFIER_CONFIG.limits, perPrefix: { limit: 12, windowMs: 600_000 } };
    const s = await startStack({ store: await open(), config: { limits } });
    try {
      // +1 415 555 02xx: fifty numbers, one prefix (+1415).
      const counts = await parallel(CLIENTS, (i) =>
        s.api('POST', `${BASE}/verifications`, { to: `+1415555${String(200 + i).padStart(4, '0')}`, purpose: 'enroll', user: `u${i}` }),
      );
      assert.equal(counts, { 201: 12, '429 rate_limited': CLIENTS - 12 });
      // Another prefix is not held up.
      assert.is((await s.api('POST', `${BASE}/verifications`, { to: '+33612345678', purpose: 'enroll', user: 'other' })).status, 201);
    } finally {
      await s.close();
    }
  });

  concurrent(`${backend}: the per-user limit admits exactly its count across numbers`, async () => {
    const s = await startStack({ store: await open() });
    try {
      const counts = await parallel(CLIENTS, (i) =>
        s.api('POST', `${BASE}/verifications`, { to: `+3361234${String(1000 + i)}`, purpose: 'enroll', user: 'mallory' }),
      );
      assert.equal(counts, { 201: 10, '429 rate_limited': CLIENTS - 10 });
    } finally {
      await s.close();
    }
  });

  concurrent(`${backend}: concurrent resends send once per cooldown and never past maxSends`, async () => {
    const s = await startStack({ store: await open() });
    try {
      const v = (await s.api('POST', `${BASE}/verifications`, { to: ALICE_NUMBER, purpose: 'enroll', user: 'alice' })).body;
      const resend = (): Promise<Record<string, number>> => parallel(CLIENTS, () => s.api('POST', `${BASE}/verifications/${v.id}/resend`));
      // Too early: refused from the record, without touching the number's send quota.
      assert.equal(await resend(), { '429 resend_too_soon': CLIENTS });
      // After the cooldown exactly one wins; the others lose the race at the cooldown (or at
      // maxSends, once the winner's send was the last), and take none of the number's quota.
      for (const lost of ['429 resend_too_soon', '429 max_sends_reached']) {
        s.clock.advance(30_000);
        assert.equal(await resend(), { 200: 1, [lost]: CLIENTS - 1 });
      }
      s.clock.advance(30_000);
      assert.equal(await resend(), { '429 max_sends_reached': CLIENTS });
      await s.verifier.drain();
      assert.is(s.gateways.get('primary')!.sent.length, 3, 'maxSends is 3: the first send and two resends');
      // The number's quota (5 in 10 minutes) paid for three sends only: two more are admitted.
      const more = await parallel(3, (i) => s.api('POST', `${BASE}/verifications`, { to: ALICE_NUMBER, purpose: 'enroll', user: `later${i}` }));
      assert.equal(more, { 201: 2, '429 rate_limited': 1 });
    } finally {
      await s.close();
    }
  });

  concurrent(`${backend}: ${CLIENTS} concurrent guesses on one verification count every attempt, and the right code after them is refused`, async () => {
    const s = await startStack({ store: await open() });
    try {
      const v = (await s.api('POST', `${BASE}/verifications`, { to: ALICE_NUMBER, purpose: 'enroll', user: 'alice' })).body;
      const code = s.gateways.get('primary')!.lastCode();
      const guesses = Array.from({ length: CLIENTS }, (_, i) => String(100_000 + i)).filter((g) => g !== code);
      const answers = await Promise.all(guesses.map((g) => s.api('POST', `${BASE}/verifications/${v.id}/check`, { code: g })));
      const counted = answers.filter((a) => a.status === 200).length;
      assert.ok(counted <= 3, `at most maxAttempts (3) guesses are judged, got ${counted}`);
      assert.ok(
        answers.every((a) => a.status === 200 || a.status === 409 || a.status === 429),
        'every other guess is refused',
      );
      const after = await s.api('POST', `${BASE}/verifications/${v.id}/check`, { code });
      assert.equal([after.status, after.body.error.code, after.body.verification.status], [409, 'verification_not_pending', 'max_attempts_reached']);
      assert.equal((await s.api('GET', `${BASE}/users/alice/enrollments`)).body.enrollments, []);
    } finally {
      await s.close();
    }
  });
}
concurrent.run();

// ---- what an attacker can observe ---------------------------------------------------------------

/** recording wraps a store so that the operations of a request can be listed, in order. */
function recording(inner: StateStore): { store: StateStore; ops: string[] } {
  const ops: string[] = [];
  const store = new Proxy(inner, {
    get(target, name, receiver) {
      const value = Reflect.get(target, name, receiver) as unknown;
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        ops.push(String(name));
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { store, ops };
}

const observe = suite('real and decoy verifications look alike');

observe('a real challenge, wrong digits and an unknown user make the same store operations in the same order, and so does checking them', async () => {
  const { store, ops } = recording(new SqliteStore(join(mkdtempSync(join(tmpdir(), 'smsauth-ops-')), 'state.sqlite')));
  const s = await startStack({ store });
  try {
    await enroll(s, 'alice', ALICE_NUMBER);
    await enroll(s, 'bob', '+14155550102');
    // Sends are held, as a slow gateway holds them, so that what happens before the answer is the request's own work.
    const gateway = s.gateways.get('primary')!;
    const trace = async (path: string, body: unknown): Promise<{ ops: string[]; answer: any }> => {
      await s.verifier.drain();
      ops.length = 0;
      const release = gateway.hold();
      try {
        const answer = await s.api('POST', path, body);
        return { ops: [...ops], answer };
      } finally {
        release();
      }
    };
    const real = await trace(`${BASE}/users/alice/challenges`, { type: 'SMS', lastDigits: '0101' });
    const wrongDigits = await trace(`${BASE}/users/bob/challenges`, { type: 'SMS', lastDigits: '9999' });
    const unknown = await trace(`${BASE}/users/mallory/challenges`, { type: 'SMS', lastDigits: '0101' });
    assert.ok(real.ops.includes('createVerification'), `the trace covers the request: ${real.ops.join(', ')}`);
    assert.equal(wrongDigits.ops, real.ops);
    assert.equal(unknown.ops, real.ops);
    assert.equal([real.answer.status, wrongDigits.answer.status, unknown.answer.status], [201, 201, 201]);

    // One after another, as the challenges: each trace is then one check's operations alone.
    const checks: { ops: string[]; answer: any }[] = [];
    for (const t of [real, wrongDigits, unknown]) checks.push(await trace(`${BASE}/verifications/${t.answer.body.id}/check`, { code: '000001' }));
    assert.ok(checks[0]!.ops.includes('attempt'), `the trace covers the check: ${checks[0]!.ops.join(', ')}`);
    assert.equal(checks[1]!.ops, checks[0]!.ops);
    assert.equal(checks[2]!.ops, checks[0]!.ops);
    assert.equal(
      checks.map((c) => [c.answer.status, c.answer.body.status, c.answer.body.attemptsLeft]),
      [
        [200, 'pending', 2],
        [200, 'pending', 2],
        [200, 'pending', 2],
      ],
    );
  } finally {
    await s.close();
  }
});

observe('unknown users meet the same limits as real ones: 60 challenges for 60 unknown users are all admitted, as for 60 real users', async () => {
  const s = await startStack();
  try {
    // The per-prefix limit is 50 in 10 minutes; real users' numbers fall under many prefixes, and so must unknown users' stand-ins.
    const unknown = await parallel(60, (i) => s.api('POST', `${BASE}/users/ghost${i}/challenges`, { type: 'SMS', lastDigits: '1234' }));
    assert.equal(unknown, { 201: 60 });
  } finally {
    await s.close();
  }
});

observe('send limits tell nothing: once wrong guesses reach the per-number limit, the right digits and the right number are refused alike', async () => {
  const s = await startStack();
  try {
    await enroll(s, 'alice', ALICE_NUMBER);
    await enroll(s, 'bob', '+14155550102');
    const limit = DEFAULT_VERIFIER_CONFIG.limits.perNumber.limit;
    const answers = async (guess: () => Promise<{ status: number; body: any }>, n: number): Promise<string[]> => {
      const out: string[] = [];
      for (let i = 0; i < n; i++) {
        const r = await guess();
        out.push(r.status < 300 ? String(r.status) : `${r.status} ${r.body.error.code}`);
      }
      return out;
    };
    const filled = [...Array(limit).fill('201'), '429 rate_limited'];
    // Last four digits: wrong guesses until the limit, then the right ones.
    assert.equal(await answers(() => s.api('POST', `${BASE}/users/alice/challenges`, { type: 'SMS', lastDigits: '9999' }), limit + 1), filled);
    assert.equal(
      await answers(() => s.api('POST', `${BASE}/users/alice/challenges`, { type: 'SMS', lastDigits: '0101' }), 1),
      ['429 rate_limited'],
      'the right digits meet the same limit',
    );
    // A full number, through an authentication start: wrong numbers until the limit, then the enrolled one.
    assert.equal(await answers(() => s.api('POST', `${BASE}/verifications`, { to: '+14155550188', purpose: 'authenticate', user: 'bob' }), limit + 1), filled);
    assert.equal(
      await answers(() => s.api('POST', `${BASE}/verifications`, { to: '+14155550102', purpose: 'authenticate', user: 'bob' }), 1),
      ['429 rate_limited'],
      'the enrolled number meets the same limit',
    );
    // A user who does not exist meets it at the same count.
    assert.equal(await answers(() => s.api('POST', `${BASE}/users/mallory/challenges`, { type: 'SMS', lastDigits: '0101' }), limit + 1), filled);
    // Enrollment sends still count under the number itself: another user enrolling alice's number is not held back by her authentications.
    assert.is((await s.api('POST', `${BASE}/verifications`, { to: ALICE_NUMBER, purpose: 'enroll', user: 'carol' })).status, 201);
  } finally {
    await s.close();
  }
});

observe('a code is bound to its verification, purpose and number: the right digits elsewhere approve nothing', async () => {
  const s = await startStack();
  try {
    await enroll(s, 'alice', ALICE_NUMBER);
    const a = (await s.api('POST', `${BASE}/users/alice/challenges`, { type: 'SMS', lastDigits: '0101' })).body;
    await s.verifier.drain();
    const codeA = s.gateways.get('primary')!.lastCode();
    // The same user's other pending verification; another purpose and another number (a first
    // enrollment: alice's own replacement would need proof); another store.
    const b = (await s.api('POST', `${BASE}/users/alice/challenges`, { type: 'SMS', lastDigits: '0101' })).body;
    const enrollOther = (await s.api('POST', `${BASE}/verifications`, { to: '+14155550177', purpose: 'enroll', user: 'amy' })).body;
    const otherStore = (await s.api('POST', '/v1/acme/nodigits/verifications', { to: ALICE_NUMBER, purpose: 'enroll', user: 'alice' })).body;
    await s.verifier.drain();
    const sent = s.gateways.get('primary')!.sent;
    const codeOf = (id: string): string => /\b(\d{6})\b/.exec(sent.find((m) => m.reference === id)!.text)![1]!;
    for (const [id, path] of [
      [b.id, BASE],
      [enrollOther.id, BASE],
      [otherStore.id, '/v1/acme/nodigits'],
    ] as const) {
      if (codeOf(id) === codeA) continue; // one chance in a million: the same digits drawn twice
      const r = await s.api('POST', `${path}/verifications/${id}/check`, { code: codeA });
      assert.is(r.body.status, 'pending', `${id} refuses another verification's code`);
    }
    assert.is((await s.api('POST', `${BASE}/verifications/${a.id}/check`, { code: codeA })).body.status, 'approved');
    assert.equal((await s.api('POST', `${BASE}/verifications/${a.id}/check`, { code: codeA })).status, 409, 'single use');
  } finally {
    await s.close();
  }
});

observe.run();
