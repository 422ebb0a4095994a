import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { gatewayError, RecordingGateway } from './helpers/recording-gateway.ts';
import { startStack, type Stack } from './helpers/verifier-stack.ts';

const BASE = '/v1/acme/corp';
const ALICE_NUMBER = '+14155550101';

async function enroll(s: Stack, user: string, to: string, proof?: string): Promise<void> {
  const start = await s.api('POST', `${BASE}/verifications`, { to, purpose: 'enroll', user, ...(proof !== undefined ? { proof } : {}) });
  assert.is(start.status, 201, JSON.stringify(start.body));
  const check = await s.api('POST', `${BASE}/verifications/${start.body.id}/check`, { code: s.gateways.get('primary')!.lastCode() });
  assert.is(check.body.status, 'approved');
}

/** authenticated authenticates a user with the code sent to their enrolled number, and returns the approved verification's id (a proof). */
async function authenticated(s: Stack, user: string, digits: string): Promise<string> {
  const c = await s.api('POST', `${BASE}/users/${user}/challenges`, { type: 'SMS', lastDigits: digits });
  await s.verifier.drain();
  const ok = await s.api('POST', `${BASE}/verifications/${c.body.id}/check`, { code: s.gateways.get('primary')!.lastCode() });
  assert.is(ok.body.status, 'approved');
  return c.body.id as string;
}

function withStack(name: string): { test: ReturnType<typeof suite<{ s: Stack }>> } {
  const test = suite<{ s: Stack }>(name, {} as { s: Stack });
  test.before.each(async (ctx) => {
    ctx.s = await startStack();
  });
  test.after.each(async (ctx) => {
    await ctx.s.close();
  });
  return { test };
}

// ---- enrollment ---------------------------------------------------------------------------------

const { test: enrollment } = withStack('enrollment');

enrollment('sends a code to the number in any common format, and an approved check enrolls it', async ({ s }) => {
  const start = await s.api('POST', `${BASE}/verifications`, { to: '(415) 555-0101'.replace('(', '+1 ('), purpose: 'enroll', user: 'alice', locale: 'fr-CA' });
  assert.is(start.status, 201);
  assert.equal(
    [start.body.status, start.body.purpose, start.body.to, start.body.attemptsLeft, start.body.sendsLeft],
    ['pending', 'enroll', '+1 ••••••••••', 3, 2],
  );
  assert.is(start.body.delivery.status, 'sent');
  const msg = s.gateways.get('primary')!.sent[0]!;
  assert.equal([msg.to, msg.account, msg.reference], [ALICE_NUMBER, 'primary', start.body.id]);
  assert.match(msg.text, /^\d{6} est votre code ACME, valable 5 minutes\.$/, 'the fr text, for locale fr-CA');
  assert.ok(msg.validitySeconds > 290 && msg.validitySeconds <= 300);

  const wrong = await s.api('POST', `${BASE}/verifications/${start.body.id}/check`, {
    code: '000000' === s.gateways.get('primary')!.lastCode() ? '111111' : '000000',
  });
  assert.equal([wrong.status, wrong.body.status, wrong.body.attemptsLeft], [200, 'pending', 2]);
  const right = await s.api('POST', `${BASE}/verifications/${start.body.id}/check`, { code: s.gateways.get('primary')!.lastCode() });
  assert.equal([right.status, right.body.status], [200, 'approved']);

  const list = await s.api('GET', `${BASE}/users/alice/enrollments`);
  assert.equal(
    list.body.enrollments.map((e: any) => [e.type, e.to]),
    [['SMS', '+1 ••••••••••']],
  );
  const history = await s.api('GET', `${BASE}/history?user=alice`);
  assert.equal(
    history.body.events.map((e: any) => [e.type, e.result, e.verificationId]),
    [['enroll', 'success', start.body.id]],
  );
});

enrollment('replaces an earlier number only once the new one is verified', async ({ s }) => {
  await enroll(s, 'alice', ALICE_NUMBER);
  const start = await s.api('POST', `${BASE}/verifications`, {
    to: '+33 6 12 34 56 78',
    purpose: 'enroll',
    user: 'alice',
    proof: await authenticated(s, 'alice', '0101'),
  });
  assert.equal((await s.api('GET', `${BASE}/users/alice/enrollments`)).body.enrollments[0].to, '+1 ••••••••••', 'unchanged while pending');
  await s.api('POST', `${BASE}/verifications/${start.body.id}/check`, { code: '999999' === s.gateways.get('primary')!.lastCode() ? '888888' : '999999' });
  assert.equal((await s.api('GET', `${BASE}/users/alice/enrollments`)).body.enrollments[0].to, '+1 ••••••••••', 'unchanged after a wrong code');
  await s.api('POST', `${BASE}/verifications/${start.body.id}/check`, { code: s.gateways.get('primary')!.lastCode() });
  assert.equal((await s.api('GET', `${BASE}/users/alice/enrollments`)).body.enrollments[0].to, '+33 •••••••••');
});

enrollment('unenroll removes the factor, with proof that the user holds it, and records it', async ({ s }) => {
  await enroll(s, 'alice', ALICE_NUMBER);
  const bare = await s.api('DELETE', `${BASE}/users/alice/enrollments/sms`);
  assert.equal([bare.status, bare.body.error.code, bare.body.error.field], [403, 'reauthentication_required', '/proof']);
  const del = await s.api('DELETE', `${BASE}/users/alice/enrollments/sms`, { proof: await authenticated(s, 'alice', '0101') });
  assert.equal([del.status, del.body], [200, { user: 'alice', removed: true }]);
  assert.equal((await s.api('GET', `${BASE}/users/alice/enrollments`)).body.enrollments, []);
  assert.is((await s.api('DELETE', `${BASE}/users/alice/enrollments/sms`)).status, 404);
  assert.equal(
    (await s.api('GET', `${BASE}/history?user=alice`)).body.events.map((e: any) => e.type),
    ['unenroll', 'authenticate', 'enroll'],
  );
});

enrollment('refuses numbers it must not send to, naming the field', async ({ s }) => {
  const cases: [string, string][] = [
    ['+1 900 555 0100', 'number_refused'],
    ['+49 151 12345678', 'number_refused'],
    ['+33 1 23 45 67 89', 'number_refused'],
    ['not a number', 'invalid_number'],
  ];
  for (const [to, code] of cases) {
    const r = await s.api('POST', `${BASE}/verifications`, { to, purpose: 'enroll', user: 'alice' });
    assert.equal([r.status, r.body.error.code, r.body.error.field], [422, code, '/to'], to);
  }
  assert.equal(s.gateways.get('primary')!.sent, []);
});

enrollment('an Idempotency-Key returns the same verification and sends once; reused with another body it is refused', async ({ s }) => {
  const body = { to: ALICE_NUMBER, purpose: 'enroll', user: 'alice' };
  const a = await s.api('POST', `${BASE}/verifications`, body, { 'idempotency-key': 'k-1' });
  const b = await s.api('POST', `${BASE}/verifications`, body, { 'idempotency-key': 'k-1' });
  assert.equal([a.status, b.status, b.body.id], [201, 201, a.body.id]);
  assert.is(s.gateways.get('primary')!.sent.length, 1);
  const c = await s.api('POST', `${BASE}/verifications`, { ...body, user: 'bob' }, { 'idempotency-key': 'k-1' });
  assert.equal([c.status, c.body.error.code, c.body.error.field], [422, 'idempotency_key_reused', 'Idempotency-Key']);
  // The same request with its fields in another order and its number written another way is the same request.
  const d = await s.api('POST', `${BASE}/verifications`, `{"user":"alice","purpose":"enroll","to":"+1 (415) 555-0101"}`, { 'idempotency-key': 'k-1' });
  assert.equal([d.status, d.body.id], [201, a.body.id]);
  assert.is(s.gateways.get('primary')!.sent.length, 1);
});

enrollment('a send that fails leaves the verification failed, counts no attempt, and fails over on transient errors', async ({ s }) => {
  const primary = s.gateways.get('primary')!;
  primary.failNext = [gatewayError('Transient')];
  const over = await s.api('POST', `${BASE}/verifications`, { to: ALICE_NUMBER, purpose: 'enroll', user: 'alice' });
  assert.equal([over.status, over.body.status], [201, 'pending']);
  assert.is(s.gateways.get('backup')!.sent.length, 1, 'the fallback account sent it');

  primary.failNext = [gatewayError('InvalidNumber')];
  const refused = await s.api('POST', `${BASE}/verifications`, { to: '+14155550102', purpose: 'enroll', user: 'bob' });
  assert.equal([refused.status, refused.body.error.code, refused.body.error.field, refused.body.verification.status], [422, 'invalid_number', '/to', 'failed']);
  assert.equal(refused.body.verification.attemptsLeft, 3);
  assert.is(s.gateways.get('backup')!.sent.length, 1, 'an invalid number is not tried on the fallback');
  const read = await s.api('GET', `${BASE}/verifications/${refused.body.verification.id}`);
  assert.equal([read.body.status, read.body.failure.code, read.body.delivery.status], ['failed', 'gateway_InvalidNumber', 'failed']);
  assert.equal(refused.body.verification.delivery, read.body.delivery, 'the answer shows the delivery as it is stored: failed, with its error code');

  // Every account rate-limited without saying for how long: still a 429 that says when to come back.
  primary.failNext = Array.from({ length: 20 }, () => gatewayError('RateLimited'));
  s.gateways.get('backup')!.failNext = Array.from({ length: 20 }, () => gatewayError('RateLimited'));
  const limited = await s.api('POST', `${BASE}/verifications`, { to: '+14155550103', purpose: 'enroll', user: 'carol' });
  assert.equal([limited.status, limited.body.error.code, limited.headers.get('retry-after')], [429, 'gateway_rate_limited', '1']);
});

enrollment.run();

// ---- the code lifecycle ------------------------------------------------------------------------

const { test: lifecycle } = withStack('code lifecycle');

lifecycle('brute force stops at maxAttempts; the dead verification refuses even the right code', async ({ s }) => {
  const v = (await s.api('POST', `${BASE}/verifications`, { to: ALICE_NUMBER, purpose: 'enroll', user: 'alice' })).body;
  const code = s.gateways.get('primary')!.lastCode();
  const wrong = code === '123456' ? '654321' : '123456';
  const statuses: string[] = [];
  for (let i = 0; i < 3; i++) statuses.push((await s.api('POST', `${BASE}/verifications/${v.id}/check`, { code: wrong })).body.status);
  assert.equal(statuses, ['pending', 'pending', 'max_attempts_reached']);
  const after = await s.api('POST', `${BASE}/verifications/${v.id}/check`, { code });
  assert.equal([after.status, after.body.error.code, after.body.verification.status], [409, 'verification_not_pending', 'max_attempts_reached']);
  assert.equal((await s.api('GET', `${BASE}/users/alice/enrollments`)).body.enrollments, []);
});

lifecycle('a code is single use', async ({ s }) => {
  const v = (await s.api('POST', `${BASE}/verifications`, { to: ALICE_NUMBER, purpose: 'enroll', user: 'alice' })).body;
  const code = s.gateways.get('primary')!.lastCode();
  assert.is((await s.api('POST', `${BASE}/verifications/${v.id}/check`, { code })).body.status, 'approved');
  const again = await s.api('POST', `${BASE}/verifications/${v.id}/check`, { code });
  assert.equal([again.status, again.body.error.code], [409, 'verification_not_pending']);
});

lifecycle('a code is worth nothing for another verification, purpose or number', async ({ s }) => {
  const a = (await s.api('POST', `${BASE}/verifications`, { to: ALICE_NUMBER, purpose: 'enroll', user: 'alice' })).body;
  const codeA = s.gateways.get('primary')!.lastCode();
  const b = (await s.api('POST', `${BASE}/verifications`, { to: '+14155550102', purpose: 'enroll', user: 'bob' })).body;
  const codeB = s.gateways.get('primary')!.lastCode();
  if (codeA !== codeB) {
    const r = await s.api('POST', `${BASE}/verifications/${b.id}/check`, { code: codeA });
    assert.equal([r.body.status, r.body.attemptsLeft], ['pending', 2]);
  }
  assert.is((await s.api('POST', `${BASE}/verifications/${a.id}/check`, { code: codeA })).body.status, 'approved');
});

lifecycle('expires after the code ttl', async ({ s }) => {
  const v = (await s.api('POST', `${BASE}/verifications`, { to: ALICE_NUMBER, purpose: 'enroll', user: 'alice' })).body;
  const code = s.gateways.get('primary')!.lastCode();
  s.clock.advance(5 * 60_000 + 1);
  assert.is((await s.api('GET', `${BASE}/verifications/${v.id}`)).body.status, 'expired');
  const late = await s.api('POST', `${BASE}/verifications/${v.id}/check`, { code });
  assert.equal([late.status, late.body.verification.status], [409, 'expired']);
});

lifecycle('resend waits for the cooldown, stops at maxSends, and the earlier code stops working', async ({ s }) => {
  const v = (await s.api('POST', `${BASE}/verifications`, { to: ALICE_NUMBER, purpose: 'enroll', user: 'alice' })).body;
  const first = s.gateways.get('primary')!.lastCode();
  const soon = await s.api('POST', `${BASE}/verifications/${v.id}/resend`);
  assert.equal([soon.status, soon.body.error.code, soon.headers.get('retry-after')], [429, 'resend_too_soon', '30']);
  s.clock.advance(30_000);
  const again = await s.api('POST', `${BASE}/verifications/${v.id}/resend`);
  assert.equal([again.status, again.body.sendsLeft], [200, 1]);
  const second = s.gateways.get('primary')!.lastCode();
  s.clock.advance(30_000);
  assert.is((await s.api('POST', `${BASE}/verifications/${v.id}/resend`)).body.sendsLeft, 0);
  s.clock.advance(30_000);
  const over = await s.api('POST', `${BASE}/verifications/${v.id}/resend`);
  assert.equal([over.status, over.body.error.code], [429, 'max_sends_reached']);
  assert.is(s.gateways.get('primary')!.sent.length, 3);
  if (first !== s.gateways.get('primary')!.lastCode()) {
    assert.is((await s.api('POST', `${BASE}/verifications/${v.id}/check`, { code: first })).body.status, 'pending');
  }
  void second;
  assert.is((await s.api('POST', `${BASE}/verifications/${v.id}/check`, { code: s.gateways.get('primary')!.lastCode() })).body.status, 'approved');
});

lifecycle('cancel ends a pending verification; one past its expiry is expired, not canceled', async ({ s }) => {
  const v = (await s.api('POST', `${BASE}/verifications`, { to: ALICE_NUMBER, purpose: 'enroll', user: 'alice' })).body;
  assert.is((await s.api('DELETE', `${BASE}/verifications/${v.id}`)).body.status, 'canceled');
  assert.is((await s.api('POST', `${BASE}/verifications/${v.id}/check`, { code: s.gateways.get('primary')!.lastCode() })).status, 409);
  assert.is((await s.api('DELETE', `${BASE}/verifications/${v.id}`)).status, 409);

  const late = (await s.api('POST', `${BASE}/verifications`, { to: '+14155550102', purpose: 'enroll', user: 'bob' })).body;
  s.clock.advance(Date.parse(late.expiresAt) - s.clock.now);
  const cancel = await s.api('DELETE', `${BASE}/verifications/${late.id}`);
  assert.equal([cancel.status, cancel.body.error.code, cancel.body.verification.status], [409, 'verification_not_pending', 'expired']);
  assert.is((await s.api('GET', `${BASE}/verifications/${late.id}`)).body.status, 'expired');
});

lifecycle('200 parallel checks with the right code approve exactly once', async ({ s }) => {
  const v = (await s.api('POST', `${BASE}/verifications`, { to: ALICE_NUMBER, purpose: 'enroll', user: 'alice' })).body;
  const code = s.gateways.get('primary')!.lastCode();
  const answers = await Promise.all(Array.from({ length: 200 }, () => s.api('POST', `${BASE}/verifications/${v.id}/check`, { code })));
  const approved = answers.filter((a) => a.status === 200 && a.body.status === 'approved');
  assert.is(approved.length, 1);
  for (const a of answers) if (a !== approved[0]) assert.ok(a.status === 409 || a.status === 429, `unexpected ${a.status}`);
  assert.is((await s.api('GET', `${BASE}/verifications/${v.id}`)).body.status, 'approved');
});

lifecycle('send limits per number, per user and per prefix answer 429 with Retry-After', async ({ s }) => {
  const statuses: number[] = [];
  for (let i = 0; i < 6; i++) statuses.push((await s.api('POST', `${BASE}/verifications`, { to: ALICE_NUMBER, purpose: 'enroll', user: `user${i}` })).status);
  assert.equal(statuses, [201, 201, 201, 201, 201, 429]);
  const r = await s.api('POST', `${BASE}/verifications`, { to: ALICE_NUMBER, purpose: 'enroll', user: 'user9' });
  assert.equal([r.body.error.code, Number(r.headers.get('retry-after')) > 0], ['rate_limited', true]);
  assert.match(await (await fetch(`${s.url}/metrics`)).text(), /smsauth_rate_limited_total\{scope="number"\} 2/);
});

lifecycle.run();

// ---- authentication -----------------------------------------------------------------------------

const { test: auth } = withStack('authentication');

auth('a challenge with the right last digits sends a code to the enrolled number; approval is recorded', async ({ s }) => {
  await enroll(s, 'alice', ALICE_NUMBER);
  const c = await s.api('POST', `${BASE}/users/alice/challenges`, { type: 'SMS', lastDigits: '0101' });
  assert.equal([c.status, c.body.purpose, c.body.to, c.body.status], [201, 'authenticate', '••••', 'pending']);
  await s.verifier.drain();
  const msg = s.gateways.get('primary')!.sent.at(-1)!;
  assert.equal([msg.to, msg.reference], [ALICE_NUMBER, c.body.id]);
  const ok = await s.api('POST', `${BASE}/verifications/${c.body.id}/check`, { code: s.gateways.get('primary')!.lastCode() });
  assert.is(ok.body.status, 'approved');
  assert.equal(
    (await s.api('GET', `${BASE}/history?user=alice`)).body.events.map((e: any) => `${e.type}:${e.result}`),
    ['authenticate:success', 'enroll:success'],
  );
});

auth('a code sent before the user was unenrolled, or moved to another number, no longer authenticates', async ({ s }) => {
  await enroll(s, 'alice', ALICE_NUMBER);
  const challenge = async (): Promise<{ id: string; code: string }> => {
    const c = await s.api('POST', `${BASE}/users/alice/challenges`, { type: 'SMS', lastDigits: '0101' });
    await s.verifier.drain();
    return { id: c.body.id, code: s.gateways.get('primary')!.lastCode(ALICE_NUMBER) };
  };
  const lost = await challenge();
  assert.is((await s.api('DELETE', `${BASE}/users/alice/enrollments/sms`, { proof: await authenticated(s, 'alice', '0101') })).status, 200);
  const r = await s.api('POST', `${BASE}/verifications/${lost.id}/check`, { code: lost.code });
  assert.equal(
    [r.status, r.body.error.code, r.body.verification.status, r.body.verification.failure.code],
    [409, 'verification_not_pending', 'canceled', 'enrollment_changed'],
  );

  await enroll(s, 'alice', ALICE_NUMBER);
  const old = await challenge();
  const proof = await authenticated(s, 'alice', '0101');
  await enroll(s, 'alice', '+14155550177', proof);
  const moved = await s.api('POST', `${BASE}/verifications/${old.id}/check`, { code: old.code });
  assert.equal([moved.status, moved.body.verification.status], [409, 'canceled']);
  const succeeded = (await s.api('GET', `${BASE}/history?user=alice&type=authenticate`)).body.events.filter((e: any) => e.result === 'success');
  assert.is(succeeded.length, 2, 'only the two proofs authenticated');
  assert.ok(succeeded.every((e: any) => e.verificationId !== lost.id && e.verificationId !== old.id));
});

auth('wrong digits and unknown users get the same answer, nothing is sent, and no code can approve it', async ({ s }) => {
  await enroll(s, 'alice', ALICE_NUMBER);
  const sentBefore = s.gateways.get('primary')!.sent.length;
  const right = await s.api('POST', `${BASE}/users/alice/challenges`, { type: 'SMS', lastDigits: '0101' });
  const wrongDigits = await s.api('POST', `${BASE}/users/alice/challenges`, { type: 'SMS', lastDigits: '9999' });
  const unknown = await s.api('POST', `${BASE}/users/mallory/challenges`, { type: 'SMS', lastDigits: '0101' });
  await s.verifier.drain();
  const shape = (b: any): unknown => ({ ...b, id: 'x', user: 'x', createdAt: 'x', expiresAt: 'x', delivery: { status: b.delivery.status } });
  assert.equal([right.status, wrongDigits.status, unknown.status], [201, 201, 201]);
  assert.equal(shape(wrongDigits.body), shape(right.body));
  assert.equal(shape(unknown.body), shape(right.body));
  assert.equal(Object.keys(unknown.body).sort(), Object.keys(right.body).sort());
  assert.is(s.gateways.get('primary')!.sent.length, sentBefore + 1, 'only the right challenge sent a code');
  const realCode = s.gateways.get('primary')!.lastCode();
  for (const decoy of [wrongDigits.body, unknown.body]) {
    const r = await s.api('POST', `${BASE}/verifications/${decoy.id}/check`, { code: realCode });
    assert.equal([r.status, r.body.status], [200, 'pending']);
    const later = await s.api('GET', `${BASE}/verifications/${decoy.id}`);
    assert.is(later.body.delivery.status, 'sent', 'a decoy reads as sent, like a real one');
  }
});

auth('lastDigits is required where the store asks for it, and not where it does not', async ({ s }) => {
  const missing = await s.api('POST', `${BASE}/users/alice/challenges`, { type: 'SMS' });
  assert.equal([missing.status, missing.body.error.field], [400, '/lastDigits']);
  const bad = await s.api('POST', `${BASE}/users/alice/challenges`, { type: 'SMS', lastDigits: '12' });
  assert.equal([bad.status, bad.body.error.field], [400, '/lastDigits']);
  const v = await s.api('POST', '/v1/acme/nodigits/verifications', { to: ALICE_NUMBER, purpose: 'enroll', user: 'alice' });
  await s.api('POST', `/v1/acme/nodigits/verifications/${v.body.id}/check`, { code: s.gateways.get('primary')!.lastCode() });
  const c = await s.api('POST', '/v1/acme/nodigits/users/alice/challenges', { type: 'SMS' });
  await s.verifier.drain();
  assert.is(
    (await s.api('POST', `/v1/acme/nodigits/verifications/${c.body.id}/check`, { code: s.gateways.get('primary')!.lastCode() })).body.status,
    'approved',
  );
});

auth('authenticate through /verifications needs the enrolled number itself', async ({ s }) => {
  await enroll(s, 'alice', ALICE_NUMBER);
  const other = await s.api('POST', `${BASE}/verifications`, { to: '+14155550199', purpose: 'authenticate', user: 'alice' });
  const same = await s.api('POST', `${BASE}/verifications`, { to: '+1 415 555 0101', purpose: 'authenticate', user: 'alice' });
  await s.verifier.drain();
  assert.equal([other.status, same.status], [201, 201]);
  assert.is(s.gateways.get('primary')!.sent.filter((m) => m.reference === other.body.id).length, 0);
  assert.is((await s.api('POST', `${BASE}/verifications/${same.body.id}/check`, { code: s.gateways.get('primary')!.lastCode() })).body.status, 'approved');
});

auth("consecutive failures across verifications lock the user out for the role's duration", async ({ s }) => {
  await enroll(s, 'alice', ALICE_NUMBER);
  const admins = ['CN=Admins,OU=Groups,DC=acme,DC=example'];
  const challenge = async (): Promise<any> => (await s.api('POST', `${BASE}/users/alice/challenges`, { type: 'SMS', lastDigits: '0101', groups: admins })).body;
  const wrongFor = (): string => (s.gateways.get('primary')!.lastCode() === '000000' ? '111111' : '000000');
  // The admins role locks after 4 consecutive failures, across verifications.
  let v = await challenge();
  await s.verifier.drain();
  for (let i = 0; i < 3; i++) await s.api('POST', `${BASE}/verifications/${v.id}/check`, { code: wrongFor() });
  v = await challenge();
  await s.verifier.drain();
  const fourth = await s.api('POST', `${BASE}/verifications/${v.id}/check`, { code: wrongFor() });
  assert.is(fourth.body.status, 'pending');
  const locked = await s.api('POST', `${BASE}/verifications/${v.id}/check`, { code: s.gateways.get('primary')!.lastCode() });
  assert.equal([locked.status, locked.body.error.code, locked.headers.get('retry-after')], [423, 'locked_out', '600']);
  assert.is((await s.api('POST', `${BASE}/users/alice/challenges`, { type: 'SMS', lastDigits: '0101' })).status, 423);
  const policy = await s.api('POST', `${BASE}/users/alice/policy`, { groups: admins });
  assert.equal([policy.body.lockedOut.locked, policy.body.lockedOut.failedAttempts], [true, 4]);
  const events = (await s.api('GET', `${BASE}/history?user=alice&limit=2`)).body.events.map((e: any) => `${e.type}:${e.result}`);
  assert.equal(events, ['lockout:locked', 'authenticate:failure']);
  // After the lockout, authentication works again.
  s.clock.advance(10 * 60_000);
  v = await challenge();
  await s.verifier.drain();
  assert.is((await s.api('POST', `${BASE}/verifications/${v.id}/check`, { code: s.gateways.get('primary')!.lastCode() })).body.status, 'approved');
});

auth('unknown users are locked out alike, so lockouts reveal nothing', async ({ s }) => {
  for (let i = 0; i < 2; i++) {
    const v = (await s.api('POST', `${BASE}/users/ghost/challenges`, { type: 'SMS', lastDigits: '1234' })).body;
    for (let k = 0; k < 3; k++) await s.api('POST', `${BASE}/verifications/${v.id}/check`, { code: '000000' });
  }
  assert.is((await s.api('POST', `${BASE}/users/ghost/challenges`, { type: 'SMS', lastDigits: '1234' })).status, 423);
});

auth.run();

// ---- policy, stores, history -------------------------------------------------------------------

const { test: policy } = withStack('policy and stores');

policy('the highest-priority matching enabled role decides, and missing enrollments are listed', async ({ s }) => {
  const admin = await s.api('POST', `${BASE}/users/alice/policy`, {
    groups: ['cn=admins, ou=groups, dc=acme, dc=example'],
    containers: ['OU=Staff,DC=acme,DC=example'],
  });
  assert.equal(admin.body.role, { name: 'admins', priority: 1 });
  assert.equal([admin.body.enforced, admin.body.chosenByEndUser, admin.body.secondFactor, admin.body.choices], [['SMS', 'Authenticator'], 1, true, ['Email']]);
  assert.equal(admin.body.missing, { enforced: ['SMS', 'Authenticator'], toChoose: 1 });
  await enroll(s, 'bob', '+14155550102');
  const staff = await s.api('POST', `${BASE}/users/bob/policy`, { containers: ['CN=Bob,OU=Lyon,OU=Staff,DC=acme,DC=example'], enrolledTypes: ['Email'] });
  assert.equal(staff.body.role, { name: 'staff', priority: 50 }, 'below the container counts; the disabled contractors role is skipped');
  assert.equal([staff.body.enrolled, staff.body.missing], [['Email', 'SMS'], { enforced: [], toChoose: 0 }]);
  const nobody = await s.api('POST', `${BASE}/users/carol/policy`, {});
  assert.equal([nobody.body.role, nobody.body.enforced], [null, []]);
});

policy('stores that do not offer SMS, unknown stores and bad names answer clearly', async ({ s }) => {
  const nosms = await s.api('POST', '/v1/acme/nosms/verifications', { to: ALICE_NUMBER, purpose: 'enroll', user: 'alice' });
  assert.equal([nosms.status, nosms.body.error.code], [409, 'sms_not_offered']);
  assert.match(nosms.body.error.message, 'SmsNotEnabled');
  assert.is((await s.api('GET', '/v1/acme/missing/users/alice/enrollments')).body.error.code, 'identity_store_not_found');
  assert.is((await s.api('GET', '/v1/other/corp/users/alice/enrollments')).status, 404);
  const traversal = await s.api('GET', '/v1/acme/..%2Fcorp/users/alice/enrollments');
  assert.equal([traversal.status, traversal.body.error.field], [400, 'store']);
  const badId = await s.api('GET', `${BASE}/verifications/VE123`);
  assert.equal([badId.status, badId.body.error.field], [400, 'id']);
});

policy('history pages newest first with a cursor', async ({ s }) => {
  for (const u of ['u1', 'u2', 'u3']) await enroll(s, u, `+1415555010${u.slice(1)}`);
  const first = await s.api('GET', `${BASE}/history?limit=2`);
  assert.equal(
    first.body.events.map((e: any) => e.user),
    ['u3', 'u2'],
  );
  assert.ok(first.body.next > 0);
  const second = await s.api('GET', `${BASE}/history?limit=2&before=${first.body.next}`);
  assert.equal([second.body.events.map((e: any) => e.user), second.body.next], [['u1'], null]);
  assert.is(first.body.events[0].client.userAgent.length > 0, true);
  const bad = await s.api('GET', `${BASE}/history?limit=5000`);
  assert.equal([bad.status, bad.body.error.field], [400, 'limit']);
});

policy('delivery receipts signed by the account update the delivery; others are refused and counted', async ({ s }) => {
  const v = (await s.api('POST', `${BASE}/verifications`, { to: ALICE_NUMBER, purpose: 'enroll', user: 'alice' })).body;
  const gw = s.gateways.get('primary')!;
  const body = JSON.stringify([{ messageId: 'primary-msg-1', status: 'delivered' }]);
  const good = await fetch(`${s.url}/v1/callbacks/acme/primary`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-test-signature': gw.signReceipt(body) },
    body,
  });
  assert.equal([good.status, await good.json()], [200, { accepted: 1 }]);
  assert.is((await s.api('GET', `${BASE}/verifications/${v.id}`)).body.delivery.status, 'delivered');
  const bad = await s.api('POST', '/v1/callbacks/acme/primary', JSON.stringify([{ messageId: 'primary-msg-1', status: 'failed' }]), {
    'x-test-signature': 'forged',
  });
  assert.equal([bad.status, bad.body.error.code], [401, 'bad_signature']);
  assert.is((await s.api('GET', `${BASE}/verifications/${v.id}`)).body.delivery.status, 'delivered');
  assert.match(await (await fetch(`${s.url}/metrics`)).text(), /smsauth_delivery_callbacks_total\{result="bad_signature"\} 1/);
  // A receipt signed by another namespace's account speaks of nothing here, whatever message id it names.
  const foreign = new RecordingGateway('mine');
  s.registry.putAccount('other-team', 'mine', { gateway: foreign });
  const forged = JSON.stringify([{ messageId: 'primary-msg-1', status: 'failed', errorCode: 'FORGED' }]);
  const cross = await fetch(`${s.url}/v1/callbacks/other-team/mine`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-test-signature': foreign.signReceipt(forged) },
    body: forged,
  });
  assert.equal([cross.status, await cross.json()], [200, { accepted: 0 }]);
  // A late or replayed receipt of an earlier stage does not undo a final status.
  const late = JSON.stringify([{ messageId: 'primary-msg-1', status: 'sent' }]);
  await fetch(`${s.url}/v1/callbacks/acme/primary`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-test-signature': gw.signReceipt(late) },
    body: late,
  });
  assert.is((await s.api('GET', `${BASE}/verifications/${v.id}`)).body.delivery.status, 'delivered');
  // A path both routes match goes to the one with more literal segments: this is the callback of an account named verifications.
  const named = await fetch(`${s.url}/v1/callbacks/acme/verifications`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-test-signature': gw.signReceipt(body) },
    body,
  });
  assert.equal([named.status, ((await named.json()) as any).error.code], [404, 'gateway_not_found']);
});

policy('health, readiness and metrics', async ({ s }) => {
  assert.equal((await s.api('GET', '/healthz')).body, { status: 'ok' });
  assert.equal((await s.api('GET', '/readyz')).body, { status: 'ok', checks: { bundles: 'ok', store: 'ok' } });
  await enroll(s, 'alice', ALICE_NUMBER);
  const text = (await s.api('GET', '/metrics')).body as string;
  assert.match(text, /smsauth_sends_total\{namespace="acme",store="corp",account="primary",result="sent"\} 1/);
  assert.match(text, /smsauth_checks_total\{namespace="acme",store="corp",result="approved"\} 1/);
  assert.match(text, /smsauth_gateway_send_seconds_count\{account="primary"\} 1/);
});

policy.run();

// ---- hostile HTTP -------------------------------------------------------------------------------

const { test: hostile } = withStack('hostile requests');

hostile('malformed bodies, wrong types, oversize bodies, unknown routes and methods get a clear 4xx and change nothing', async ({ s }) => {
  const path = `${BASE}/verifications`;
  const cases: [string | undefined, Record<string, string>, number, string, string?][] = [
    ['{"to": ', { 'content-type': 'application/json' }, 400, 'invalid_json', '/'],
    ['to=1', { 'content-type': 'application/x-www-form-urlencoded' }, 415, 'unsupported_media_type', 'Content-Type'],
    [JSON.stringify({ to: ALICE_NUMBER, purpose: 'login', user: 'a' }), { 'content-type': 'application/json' }, 400, 'invalid_request', '/purpose'],
    [JSON.stringify({ to: ALICE_NUMBER, user: 'a' }), { 'content-type': 'application/json' }, 400, 'invalid_request', '/purpose'],
    [JSON.stringify({ to: ALICE_NUMBER, purpose: 'enroll', user: 'a', admin: true }), { 'content-type': 'application/json' }, 400, 'invalid_request', '/admin'],
    [JSON.stringify({ to: 'x'.repeat(40000), purpose: 'enroll', user: 'a' }), { 'content-type': 'application/json' }, 413, 'body_too_large'],
    [undefined, { 'content-type': 'application/json' }, 400, 'invalid_request', '/'],
  ];
  for (const [body, headers, status, code, field] of cases) {
    const r = await s.api('POST', path, body, headers);
    assert.equal([r.status, r.body.error.code], [status, code], `${body?.slice(0, 40)}`);
    if (field !== undefined) assert.is(r.body.error.field, field);
  }
  // Half of a surrogate pair is valid JSON but no text: refused with its field, on every store alike.
  const lone = await s.api('POST', path, '{"to": "+14155550101", "purpose": "enroll", "user": "x\\ud800y"}', { 'content-type': 'application/json' });
  assert.equal([lone.status, lone.body.error.code, lone.body.error.field], [400, 'invalid_request', '/user']);
  // JSON that does not parse is refused without quoting it: it may hold a number or a code.
  for (const body of ['{"to":+33612345678}', `{"code": '482913'}`, `{"to": "+33612345678", "purpose": "enroll", "user": "a", "code": 482913,}`]) {
    const r = await s.api('POST', path, body, { 'content-type': 'application/json' });
    assert.equal([r.status, r.body.error.code], [400, 'invalid_json']);
    assert.not.match(JSON.stringify(r.body), /612345678|482913/, `the answer quotes nothing of ${body}`);
  }
  const put = await fetch(s.url + path, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{}' });
  assert.equal([put.status, put.headers.get('allow'), ((await put.json()) as any).error.code], [405, 'POST', 'method_not_allowed']);
  const unknown = await fetch(`${s.url}/v2/nothing/+33612345678`);
  assert.is(unknown.status, 404);
  assert.not.match(await unknown.text(), '612345678', 'a 404 does not repeat the path');
  assert.equal(s.gateways.get('primary')!.sent, []);
  assert.equal((await s.api('GET', `${BASE}/history`)).body.events, []);
});

hostile('no code and no full number ever reaches a log line', async ({ s }) => {
  await enroll(s, 'alice', ALICE_NUMBER);
  const c = await s.api('POST', `${BASE}/users/alice/challenges`, { type: 'SMS', lastDigits: '0101' });
  await s.verifier.drain();
  await s.api('POST', `${BASE}/verifications/${c.body.id}/check`, { code: '000000' });
  const codes = s.gateways.get('primary')!.sent.map((m) => /\d{6}/.exec(m.text)![0]);
  const text = s.logs.join('');
  assert.ok(s.logs.length > 3, 'the verifier logs');
  for (const secret of [...codes, ALICE_NUMBER, ALICE_NUMBER.slice(1), '4155550101']) assert.not.match(text, secret);
});

hostile.run();

const guard = suite('bearer token');
guard('off loopback the server refuses to start without a token', async () => {
  try {
    await startStack({ host: '0.0.0.0' });
    assert.unreachable('it started');
  } catch (err) {
    assert.is((err as { code?: string }).code, 'ERR_INSECURE_LISTEN');
  }
});
guard('with a token, every route but health and callbacks needs it, compared in constant time', async () => {
  const s = await startStack({ token: 'a-long-enough-bearer-token' });
  try {
    const none = await s.api('GET', `${BASE}/users/alice/enrollments`);
    assert.equal([none.status, none.body.error.code, none.headers.get('www-authenticate')], [401, 'unauthorized', 'Bearer']);
    assert.is((await s.api('GET', `${BASE}/users/alice/enrollments`, undefined, { authorization: 'Bearer a-long-enough-bearer-toke' })).status, 401);
    assert.is((await s.api('GET', `${BASE}/users/alice/enrollments`, undefined, { authorization: 'Bearer a-long-enough-bearer-token' })).status, 200);
    assert.is((await s.api('GET', '/metrics')).status, 401);
    assert.is((await s.api('GET', '/healthz')).status, 200);
    const wrote = await s.api('POST', `${BASE}/verifications`, { to: ALICE_NUMBER, purpose: 'enroll', user: 'alice' });
    assert.is(wrote.status, 401);
    assert.equal(s.gateways.get('primary')!.sent, []);
  } finally {
    await s.close();
  }
});
guard.run();
