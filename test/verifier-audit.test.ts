import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { RedisStore } from '../controller/adapters/redis-store.ts';
import type { StateStore } from '../controller/verifier/state-store.ts';
import { startRedis, type RedisServer } from './helpers/redis-server.ts';
import { startStack, type Stack } from './helpers/verifier-stack.ts';

// Enrollment integrity (NIST SP 800-63B §6.1), the helpdesk's routes and token, and the audit
// trail, through the HTTP API, on SQLite and on Redis.

const BASE = '/v1/acme/corp';
const ALICE = '+14155550101';
const HELPDESK_TOKEN = 'helpdesk-token-0123456789abcdef';
const APP_TOKEN = 'application-token-0123456789abcdef';
const asApp = { authorization: `Bearer ${APP_TOKEN}` };
const asHelpdesk = { authorization: `Bearer ${HELPDESK_TOKEN}` };

let redis: RedisServer | undefined;
let db = 0;
/** The backends: the default SQLite file, and a Redis (a prefix of its own per test). */
const backends: { name: string; open: () => Promise<StateStore | undefined>; done?: () => Promise<void> }[] = [
  { name: 'SQLite', open: () => Promise.resolve(undefined) },
  {
    name: 'Redis',
    async open() {
      redis ??= await startRedis();
      const store = new RedisStore(redis.url, { keyPrefix: `audit${db++}:` });
      await store.ready();
      return store;
    },
    done: async () => {
      await redis?.stop();
    },
  },
];

const code = (s: Stack): string => s.gateways.get('primary')!.lastCode();

async function enroll(s: Stack, user: string, to: string, extra: Record<string, unknown> = {}): Promise<string> {
  const start = await s.api('POST', `${BASE}/verifications`, { to, purpose: 'enroll', user, ...extra }, asApp);
  assert.is(start.status, 201, JSON.stringify(start.body));
  // The end user's client comes with each request: the check's is the one history records.
  const check = await s.api(
    'POST',
    `${BASE}/verifications/${start.body.id}/check`,
    { code: code(s), ...(extra.client !== undefined ? { client: extra.client } : {}) },
    asApp,
  );
  assert.is(check.body.status, 'approved');
  return start.body.id as string;
}

async function authenticated(s: Stack, user: string, digits: string): Promise<string> {
  const c = await s.api('POST', `${BASE}/users/${user}/challenges`, { type: 'SMS', lastDigits: digits }, asApp);
  await s.verifier.drain();
  assert.is((await s.api('POST', `${BASE}/verifications/${c.body.id}/check`, { code: code(s) }, asApp)).body.status, 'approved');
  return c.body.id as string;
}

const enrolledTo = async (s: Stack, user: string): Promise<string | undefined> => (await s.store.getEnrollment('acme', 'corp', user))?.to;
/** A mask as history shows a number: the calling code, a dot per digit, a keyed fingerprint, no digit of the number. */
const MASK = /^\+1 •{10} #[0-9a-f]{6}$/;

/** defineSuite registers the tests on one backend. */
function defineSuite({ name, open, done }: (typeof backends)[number]): void {
  const test = suite<{ s: Stack }>(`integrity, helpdesk and audit (${name})`, { s: undefined as unknown as Stack });
  test.before.each(async (ctx) => {
    const store = await open();
    ctx.s = await startStack({ token: APP_TOKEN, helpdeskToken: HELPDESK_TOKEN, trustedProxies: ['127.0.0.0/8'], ...(store !== undefined ? { store } : {}) });
  });
  if (done !== undefined) test.after(done);
  test.after.each(async (ctx) => {
    await ctx.s.close();
  });

  test('replacing a number needs a fresh authentication of the same user as proof, once', async ({ s }) => {
    await enroll(s, 'alice', ALICE);
    await enroll(s, 'bob', '+14155550102');
    const bare = await s.api('POST', `${BASE}/verifications`, { to: '+14155550177', purpose: 'enroll', user: 'alice' }, asApp);
    assert.equal([bare.status, bare.body.error.code, bare.body.error.field], [403, 'reauthentication_required', '/proof']);
    assert.is(s.gateways.get('primary')!.sent.filter((m) => m.to === '+14155550177').length, 0, 'nothing sent to the new number');
    // The same number again is no replacement.
    assert.is((await s.api('POST', `${BASE}/verifications`, { to: ALICE, purpose: 'enroll', user: 'alice' }, asApp)).status, 201);

    const bobs = await authenticated(s, 'bob', '0102');
    const other = await s.api('POST', `${BASE}/verifications`, { to: '+14155550177', purpose: 'enroll', user: 'alice', proof: bobs }, asApp);
    assert.equal([other.status, other.body.error.code], [403, 'reauthentication_required'], "another user's authentication proves nothing");
    assert.match(other.body.error.message, 'another user');

    const proof = await authenticated(s, 'alice', '0101');
    await enroll(s, 'alice', '+14155550177', { proof });
    assert.is(await enrolledTo(s, 'alice'), '+14155550177');
    const again = await s.api('POST', `${BASE}/verifications`, { to: '+14155550188', purpose: 'enroll', user: 'alice', proof }, asApp);
    assert.equal([again.status, again.body.error.code], [403, 'reauthentication_required'], 'single use');
    assert.match(again.body.error.message, 'already used');

    const stale = await authenticated(s, 'bob', '0102');
    s.clock.advance(10 * 60_000 + 1);
    const late = await s.api('POST', `${BASE}/verifications`, { to: '+14155550199', purpose: 'enroll', user: 'bob', proof: stale }, asApp);
    assert.match([late.status, late.body.error.message].join(' '), /^403 .*more than 10 minutes ago/);

    const [replaced, first] = (await s.api('GET', `${BASE}/history?user=alice&type=enroll`, undefined, asApp)).body.events;
    assert.is(first.numbers.old, null);
    for (const mask of [first.numbers.new, replaced.numbers.old, replaced.numbers.new]) assert.match(mask, MASK);
    assert.is(replaced.numbers.old, first.numbers.new, 'one number, one mask');
    assert.is.not(replaced.numbers.new, replaced.numbers.old, 'two numbers told apart');
  });

  test('a retry of a replacement with the same Idempotency-Key replays it; a refused one spends no proof', async ({ s }) => {
    await enroll(s, 'alice', ALICE);
    const proof = await authenticated(s, 'alice', '0101');
    // The new number's send limit (5 codes in 10 minutes) used up by others: the replacement is
    // refused by the store, in the step that would spend the proof, and spends nothing.
    for (let i = 0; i < 5; i++) await s.api('POST', `${BASE}/verifications`, { to: '+14155550166', purpose: 'enroll', user: `other${i}` }, asApp);
    const limited = await s.api('POST', `${BASE}/verifications`, { to: '+14155550166', purpose: 'enroll', user: 'alice', proof }, asApp);
    assert.equal([limited.status, limited.body.error.code], [429, 'rate_limited']);
    const body = { to: '+14155550177', purpose: 'enroll', user: 'alice', proof };
    const first = await s.api('POST', `${BASE}/verifications`, body, { ...asApp, 'idempotency-key': 'replace-1' });
    const again = await s.api('POST', `${BASE}/verifications`, body, { ...asApp, 'idempotency-key': 'replace-1' });
    assert.equal([first.status, again.status, again.body.id], [201, 201, first.body.id]);
    const other = await s.api('POST', `${BASE}/verifications`, body, { ...asApp, 'idempotency-key': 'replace-2' });
    assert.equal([other.status, other.body.error.code], [403, 'reauthentication_required'], 'a new request cannot spend it again');
  });

  test('a replacement proved with the old number is refused once the helpdesk has changed the number', async ({ s }) => {
    await enroll(s, 'alice', ALICE);
    const proof = await authenticated(s, 'alice', '0101');
    const pending = await s.api('POST', `${BASE}/verifications`, { to: '+14155550188', purpose: 'enroll', user: 'alice', proof }, asApp);
    const thiefCode = code(s);
    const byHelpdesk = await s.api(
      'POST',
      `${BASE}/users/alice/helpdesk/enrollments`,
      { actor: 'ann', reason: 'stolen phone', to: '+14155550177' },
      asHelpdesk,
    );
    assert.is(
      (await s.api('POST', `${BASE}/helpdesk/verifications/${byHelpdesk.body.id}/check`, { actor: 'ann', code: code(s) }, asHelpdesk)).body.status,
      'approved',
    );
    const late = await s.api('POST', `${BASE}/verifications/${pending.body.id}/check`, { code: thiefCode }, asApp);
    assert.equal([late.status, late.body.verification.failure.code], [409, 'reauthentication_required']);
    assert.is(await enrolledTo(s, 'alice'), '+14155550177');
    // Nor does its proof start another replacement.
    const again = await s.api('POST', `${BASE}/verifications`, { to: '+14155550188', purpose: 'enroll', user: 'alice', proof }, asApp);
    assert.equal([again.status, again.body.error.code], [403, 'reauthentication_required']);
  });

  test('removing a number takes proof too, so that unenrolling and enrolling another replaces nothing without it', async ({ s }) => {
    await enroll(s, 'alice', ALICE);
    const bare = await s.api('DELETE', `${BASE}/users/alice/enrollments/sms`, undefined, asApp);
    assert.equal([bare.status, bare.body.error.code], [403, 'reauthentication_required']);
    assert.is(await enrolledTo(s, 'alice'), ALICE);
    await enroll(s, 'bob', '+14155550102');
    const bobs = await authenticated(s, 'bob', '0102');
    const proof = await authenticated(s, 'alice', '0101');
    for (const [other, why] of [
      [bobs, 'authenticated another user'],
      ['VE' + '0'.repeat(32), 'is not an authentication'],
    ] as const) {
      const refused = await s.api('DELETE', `${BASE}/users/alice/enrollments/sms`, { proof: other }, asApp);
      assert.equal([refused.status, refused.body.error.code], [403, 'reauthentication_required']);
      assert.match(refused.body.error.message, why);
    }
    assert.is(await enrolledTo(s, 'alice'), ALICE, 'nothing removed');
    const removed = await s.api('DELETE', `${BASE}/users/alice/enrollments/sms`, { proof, client: { address: '203.0.113.9' } }, asApp);
    assert.is(removed.status, 200);
    assert.is((await s.store.getVerification('acme', 'corp', proof))!.proofUsed, true, 'the proof is spent');
    await enroll(s, 'alice', ALICE);
    const reused = await s.api('DELETE', `${BASE}/users/alice/enrollments/sms`, { proof }, asApp);
    assert.match([reused.status, reused.body.error.message].join(' '), /^403 .*already used/);
    const [event] = (await s.api('GET', `${BASE}/history?type=unenroll`, undefined, asApp)).body.events;
    assert.equal([event.actor, event.client.address], ['user', '203.0.113.9']);
    assert.match(event.numbers.old, MASK);
  });

  test('two first enrollments racing: the second approval would replace the first number, and is refused', async ({ s }) => {
    const a = await s.api('POST', `${BASE}/verifications`, { to: ALICE, purpose: 'enroll', user: 'dan' }, asApp);
    const codeA = code(s);
    const b = await s.api('POST', `${BASE}/verifications`, { to: '+14155550177', purpose: 'enroll', user: 'dan' }, asApp);
    const codeB = code(s);
    assert.is((await s.api('POST', `${BASE}/verifications/${a.body.id}/check`, { code: codeA }, asApp)).body.status, 'approved');
    const refused = await s.api('POST', `${BASE}/verifications/${b.body.id}/check`, { code: codeB }, asApp);
    assert.equal([refused.status, refused.body.verification.status, refused.body.verification.failure.code], [409, 'canceled', 'reauthentication_required']);
    assert.is((await s.verifier.enrollments('acme', 'corp', 'dan')).ok, true);
  });

  test('each token opens its own routes only', async ({ s }) => {
    await enroll(s, 'alice', ALICE);
    const helpdeskCall = { actor: 'ann', reason: 'ticket 42' };
    const byApp = await s.api('DELETE', `${BASE}/users/alice/lockout`, helpdeskCall, asApp);
    assert.equal([byApp.status, byApp.body.error.code], [401, 'unauthorized']);
    assert.is((await s.api('DELETE', `${BASE}/users/alice/lockout`, helpdeskCall)).status, 401, 'no token');
    const byHelpdesk = await s.api('GET', `${BASE}/users/alice/enrollments`, undefined, asHelpdesk);
    assert.equal([byHelpdesk.status, byHelpdesk.body.error.message], [401, 'the helpdesk token does not open application routes']);
    assert.is((await s.api('DELETE', `${BASE}/users/alice/lockout`, helpdeskCall, asHelpdesk)).status, 200);
    const noActor = await s.api('DELETE', `${BASE}/users/alice/lockout`, { reason: 'x' }, asHelpdesk);
    assert.equal([noActor.status, noActor.body.error.field], [400, '/actor']);
  });

  test('without a helpdesk token the helpdesk routes are not served', async () => {
    const s = await startStack();
    try {
      const r = await fetch(`${s.url}/v1/acme/corp/users/alice/helpdesk/verifications`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ actor: 'ann', reason: 'x' }),
      });
      assert.equal([r.status, ((await r.json()) as { error: { code: string } }).error.code], [404, 'not_found']);
    } finally {
      await s.close();
    }
  });

  test('the helpdesk verifies a caller, unlocks them and replaces their number, each with its actor and reason', async ({ s }) => {
    await enroll(s, 'alice', ALICE);
    // alice locks herself out (the corp store's default lockout: 5 failures).
    for (let i = 0; i < 5; i++) {
      const c = await s.api('POST', `${BASE}/users/alice/challenges`, { type: 'SMS', lastDigits: '0101' }, asApp);
      await s.verifier.drain();
      await s.api('POST', `${BASE}/verifications/${c.body.id}/check`, { code: code(s) === '000000' ? '111111' : '000000' }, asApp);
    }
    assert.is((await s.api('POST', `${BASE}/users/alice/challenges`, { type: 'SMS', lastDigits: '0101' }, asApp)).status, 423);

    // The caller on the phone: a code to her number, no last digits, whatever the lockout.
    const v = await s.api('POST', `${BASE}/users/alice/helpdesk/verifications`, { actor: 'ann', reason: 'caller locked out' }, asHelpdesk);
    assert.equal([v.status, v.body.purpose, v.body.delivery.status], [201, 'helpdesk', 'sent']);
    assert.is(s.gateways.get('primary')!.sent.at(-1)!.to, ALICE);
    const spoken = code(s);
    assert.is((await s.api('POST', `${BASE}/verifications/${v.body.id}/check`, { code: spoken }, asApp)).status, 404, 'the application does not check it');
    for (const [method, path] of [
      ['GET', ''],
      ['POST', '/resend'],
      ['DELETE', ''],
    ] as const) {
      assert.is((await s.api(method, `${BASE}/verifications/${v.body.id}${path}`, undefined, asApp)).status, 404, `nor ${method} ${path}`);
    }
    assert.is((await s.api('GET', `${BASE}/helpdesk/verifications/${v.body.id}`, undefined, asHelpdesk)).body.status, 'pending');
    assert.is((await s.api('POST', `${BASE}/helpdesk/verifications/${v.body.id}/check`, { actor: 'ann', code: spoken }, asHelpdesk)).body.status, 'approved');

    const unlocked = await s.api('DELETE', `${BASE}/users/alice/lockout`, { actor: 'ann', reason: 'identity verified by SMS' }, asHelpdesk);
    assert.equal(unlocked.body, { user: 'alice', wasLockedOut: true });
    s.clock.advance(10 * 60_000); // past the per-number send limit's window, which the failed attempts used up
    assert.is((await s.api('POST', `${BASE}/users/alice/challenges`, { type: 'SMS', lastDigits: '0101' }, asApp)).status, 201);

    // A new phone: the helpdesk replaces the number without proof; the user types the code in the
    // application, and the change is still the helpdesk's, with its reason.
    const enrollNew = await s.api('POST', `${BASE}/users/alice/helpdesk/enrollments`, { actor: 'ann', reason: 'new phone', to: '+1 415 555 0177' }, asHelpdesk);
    assert.equal([enrollNew.status, enrollNew.body.purpose], [201, 'enroll']);
    assert.is((await s.api('POST', `${BASE}/verifications/${enrollNew.body.id}/check`, { code: code(s) }, asApp)).body.status, 'approved');
    assert.equal((await s.store.getEnrollment('acme', 'corp', 'alice'))!.to, '+14155550177');
    // The helpdesk cannot reach what the application started.
    const own = await s.api('POST', `${BASE}/users/alice/challenges`, { type: 'SMS', lastDigits: '0177' }, asApp);
    assert.is((await s.api('GET', `${BASE}/helpdesk/verifications/${own.body.id}`, undefined, asHelpdesk)).status, 404);

    const removed = await s.api('DELETE', `${BASE}/users/alice/helpdesk/enrollments/sms`, { actor: 'ann', reason: 'left the company' }, asHelpdesk);
    assert.equal(removed.body, { user: 'alice', removed: true });

    const events = (await s.api('GET', `${BASE}/history?actor=helpdesk:ann`, undefined, asApp)).body.events;
    assert.equal(
      events.map((e: any) => [e.type, e.result, e.reason ?? null]),
      [
        ['unenroll', 'success', 'left the company'],
        ['enroll', 'success', 'new phone'],
        ['unlock', 'success', 'identity verified by SMS'],
        ['helpdesk_verify', 'success', 'caller locked out'],
      ],
    );
    assert.is(events[0].numbers.old, events[1].numbers.new, 'the number removed is the one the helpdesk enrolled');
    assert.is.not(events[1].numbers.old, events[1].numbers.new);
    const lockout = (await s.api('GET', `${BASE}/history?type=lockout`, undefined, asApp)).body.events;
    assert.equal(
      lockout.map((e: any) => e.actor),
      ['system'],
    );
  });

  test("history records the end user's client: from the body, from a trusted proxy's X-Forwarded-For, never from an untrusted one", async ({ s }) => {
    await enroll(s, 'alice', ALICE, { client: { address: '203.0.113.7', userAgent: 'Mozilla/5.0 (portal)' } });
    const c = await s.api(
      'POST',
      `${BASE}/users/alice/challenges`,
      { type: 'SMS', lastDigits: '0101' },
      { ...asApp, 'x-forwarded-for': '198.51.100.9, 127.0.0.2', 'user-agent': 'Browser/1' },
    );
    await s.verifier.drain();
    await s.api(
      'POST',
      `${BASE}/verifications/${c.body.id}/check`,
      { code: code(s) },
      { ...asApp, 'x-forwarded-for': '6.6.6.6, 198.51.100.9', 'user-agent': 'Browser/1' },
    );
    const [auth, enrolled] = (await s.api('GET', `${BASE}/history?user=alice`, undefined, asApp)).body.events;
    assert.equal(enrolled.client, { address: '203.0.113.7', userAgent: 'Mozilla/5.0 (portal)' });
    assert.equal(auth.client, { address: '198.51.100.9', userAgent: 'Browser/1' }, 'the nearest untrusted hop; what the client wrote on the left is ignored');
    assert.equal([auth.actor, auth.role], ['user', null]);

    // A peer outside the trusted ranges (the stack's caller is 127.0.0.1; trust only 10.0.0.0/8) is the client.
    const untrusted = await startStack({ token: APP_TOKEN, trustedProxies: ['10.0.0.0/8'] });
    try {
      const v = await untrusted.api(
        'POST',
        `${BASE}/verifications`,
        { to: ALICE, purpose: 'enroll', user: 'alice' },
        { ...asApp, 'x-forwarded-for': '6.6.6.6' },
      );
      await untrusted.api(
        'POST',
        `${BASE}/verifications/${v.body.id}/check`,
        { code: untrusted.gateways.get('primary')!.lastCode() },
        { ...asApp, 'x-forwarded-for': '6.6.6.6' },
      );
      const [e] = (await untrusted.api('GET', `${BASE}/history`, undefined, asApp)).body.events;
      assert.is(e.client.address, '127.0.0.1', 'a peer that is not a trusted proxy is the client');
    } finally {
      await untrusted.close();
    }
  });

  test('history records the role that decided, filters by time, and exports NDJSON as a stream', async ({ s }) => {
    const start = await s.api(
      'POST',
      `${BASE}/verifications`,
      { to: ALICE, purpose: 'enroll', user: 'alice', groups: ['CN=Admins,OU=Groups,DC=acme,DC=example'] },
      asApp,
    );
    await s.api('POST', `${BASE}/verifications/${start.body.id}/check`, { code: code(s) }, asApp);
    s.clock.advance(60_000);
    for (const user of ['u1', 'u2', 'u3']) await enroll(s, user, `+1415555010${user.slice(1)}`);
    const [first] = (await s.api('GET', `${BASE}/history?user=alice`, undefined, asApp)).body.events;
    assert.is(first.role, 'admins');
    const since = new Date(s.clock.now - 30_000).toISOString();
    assert.equal(
      (await s.api('GET', `${BASE}/history?since=${since}`, undefined, asApp)).body.events.map((e: any) => e.user),
      ['u3', 'u2', 'u1'],
    );
    assert.equal(
      (await s.api('GET', `${BASE}/history?until=${since}`, undefined, asApp)).body.events.map((e: any) => e.user),
      ['alice'],
    );

    const res = await fetch(`${s.url}${BASE}/history?type=enroll`, { headers: { ...asApp, accept: 'application/x-ndjson' } });
    assert.equal([res.status, res.headers.get('content-type'), res.headers.get('content-length')], [200, 'application/x-ndjson', null]);
    const lines = (await res.text())
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.equal(
      lines.map((e) => e.user),
      ['u3', 'u2', 'u1', 'alice'],
    );
    const missing = await fetch(`${s.url}/v1/acme/nowhere/history`, { headers: { ...asApp, accept: 'application/x-ndjson' } });
    assert.is(missing.status, 404);
  });

  test('a history filter misspelt, given twice or unreadable is refused, naming it, never answered unfiltered', async ({ s }) => {
    await enroll(s, 'alice', ALICE);
    const refused = async (query: string, ndjson = false): Promise<[number, string, string]> => {
      const res = await fetch(`${s.url}${BASE}/history?${query}`, { headers: { ...asApp, ...(ndjson ? { accept: 'application/x-ndjson' } : {}) } });
      const body = (await res.json()) as { error: { code: string; field: string; message: string } };
      return [res.status, body.error.code, body.error.field];
    };
    assert.equal(await refused('users=bob'), [400, 'invalid_request', 'users']);
    assert.equal(await refused('Since=2099-01-01T00:00:00Z', true), [400, 'invalid_request', 'Since'], 'the export too');
    assert.equal(await refused('user=bob&user=alice'), [400, 'invalid_request', 'user']);
    assert.equal(await refused('until=2030-12-31T23:59:60Z'), [400, 'invalid_request', 'until']);
    assert.equal(await refused('since=2030-12-31T23:59:60Z', true), [400, 'invalid_request', 'since']);
    const message = (await s.api('GET', `${BASE}/history?users=bob`, undefined, asApp)).body.error.message;
    assert.match(message, /^query parameter users is not known: this route takes .*\buser\b/);
    // Well spelt, it filters.
    assert.equal((await s.api('GET', `${BASE}/history?user=bob`, undefined, asApp)).body.events, []);
  });

  test('an export whose store cannot answer says so with 503, before any line', async ({ s }) => {
    await enroll(s, 'alice', ALICE);
    await s.store.close();
    const res = await fetch(`${s.url}${BASE}/history`, { headers: { ...asApp, accept: 'application/x-ndjson' } });
    assert.equal([res.status, res.headers.get('retry-after'), ((await res.json()) as { error: { code: string } }).error.code], [503, '1', 'store_unavailable']);
  });

  test('a store that takes no new enrollments keeps its enrolled users authenticating', async ({ s }) => {
    await enroll(s, 'alice', ALICE);
    const b = s.registry.get('acme', 'corp')!;
    s.registry.put('acme', 'corp', { ...b, bundle: { ...b.bundle, enrollmentEnabled: false } });
    const closed = await s.api('POST', `${BASE}/verifications`, { to: '+14155550102', purpose: 'enroll', user: 'bob' }, asApp);
    assert.equal([closed.status, closed.body.error.code], [409, 'enrollment_disabled']);
    // An enrolled user may still verify their own number again; another number takes proof, as always.
    assert.is((await s.api('POST', `${BASE}/verifications`, { to: ALICE, purpose: 'enroll', user: 'alice' }, asApp)).status, 201);
    const other = await s.api('POST', `${BASE}/verifications`, { to: '+14155550102', purpose: 'enroll', user: 'alice' }, asApp);
    assert.equal([other.status, other.body.error.code], [403, 'reauthentication_required']);
    await s.verifier.drain();
    const c = await s.api('POST', `${BASE}/users/alice/challenges`, { type: 'SMS', lastDigits: '0101' }, asApp);
    await s.verifier.drain();
    assert.is((await s.api('POST', `${BASE}/verifications/${c.body.id}/check`, { code: code(s) }, asApp)).body.status, 'approved');
  });
  test.run();
}

for (const backend of backends) defineSuite(backend);
