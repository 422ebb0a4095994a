import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createGateway } from '../controller/gateways/create-gateway.ts';
import { GatewayError, GatewayErrorCode, type OutboundMessage, type SendResult, type SmsGateway } from '../controller/gateways/gateway.ts';
import { failoverStep, sendWithFailover, type FailoverOptions } from '../controller/gateways/send-with-failover.ts';
import { bundle, message, TO } from './gateways/fixtures.ts';
import { assertNoLeak, captureLogs, errorText, messageSecrets } from './gateways/leak-check.ts';
import { startPlivoServer } from './gateways/plivo-server.ts';
import { startTwilioServer } from './gateways/twilio-server.ts';

const step = suite('failoverStep');
const policy: [GatewayErrorCode, string][] = [
  ['Transient', 'retry'],
  ['RateLimited', 'retry'],
  ['AuthFailed', 'next-account'],
  ['Forbidden', 'next-account'],
  ['InsufficientFunds', 'next-account'],
  ['Rejected', 'next-account'],
  ['InvalidNumber', 'stop'],
];
for (const [code, want] of policy) step(`${code} → ${want}`, () => assert.is(failoverStep(code), want));
step('covers every GatewayErrorCode', () => assert.equal(policy.map(([c]) => c).sort(), Object.values(GatewayErrorCode).sort()));
step.run();

// A hand-written fake of our own port: each send takes the next planned outcome.
type Outcome = 'ok' | GatewayErrorCode | { code: GatewayErrorCode; retryAfterMs?: number; takesMs?: number } | Error;
class ScriptedGateway implements SmsGateway {
  readonly provider = 'webhook' as const;
  readonly calls: { message: OutboundMessage; at: number }[] = [];
  private readonly clock: FakeClock;
  private readonly plan: Outcome[];

  constructor(clock: FakeClock, plan: Outcome[]) {
    this.clock = clock;
    this.plan = plan;
  }
  send(message: OutboundMessage): Promise<SendResult> {
    this.calls.push({ message, at: this.clock.now() });
    const next = this.plan.shift() ?? 'ok';
    if (next === 'ok') return Promise.resolve({ provider: 'webhook', messageId: `m${this.calls.length}`, segments: 1 });
    if (next instanceof Error) return Promise.reject(next);
    const { code, retryAfterMs, takesMs } = typeof next === 'string' ? { code: next, retryAfterMs: undefined, takesMs: undefined } : next;
    if (takesMs !== undefined) this.clock.advance(takesMs);
    const details: GatewayError['details'] = { provider: 'webhook' };
    if (retryAfterMs !== undefined) details.retryAfterMs = retryAfterMs;
    return Promise.reject(new GatewayError(code, `webhook: ${code}`, details));
  }
  testCredentials(): Promise<void> {
    return Promise.resolve();
  }
  readReceipt(): undefined {
    return undefined;
  }
}

class FakeClock {
  t = 1_000_000;
  readonly sleeps: number[] = [];
  now = (): number => this.t;
  advance(ms: number): void {
    this.t += ms;
  }
  sleep = (ms: number): Promise<void> => {
    this.sleeps.push(Math.round(ms));
    this.t += ms;
    return Promise.resolve();
  };
  options(extra: Partial<FailoverOptions> = {}): FailoverOptions {
    return { deadline: this.t + 10_000, now: this.now, sleep: this.sleep, random: () => 0.5, ...extra };
  }
}

interface Ctx {
  clock: FakeClock;
}

const failover = suite<Ctx>('sendWithFailover');
failover.before.each((ctx) => {
  ctx.clock = new FakeClock();
});

failover('sends through the linked account when it works', async ({ clock }) => {
  const primary = new ScriptedGateway(clock, ['ok']);
  const out = await sendWithFailover([{ account: 'primary', gateway: primary }], message().msg, clock.options());
  assert.ok(out.ok);
  if (!out.ok) return;
  assert.is(out.account, 'primary');
  assert.is(out.attempts.length, 1);
  assert.is(primary.calls[0]!.message.account, 'primary');
});

failover('retries Transient errors with jittered exponential backoff', async ({ clock }) => {
  const primary = new ScriptedGateway(clock, ['Transient', 'Transient', 'ok']);
  const out = await sendWithFailover([{ account: 'primary', gateway: primary }], message().msg, clock.options({ baseDelayMs: 200, random: () => 0.5 }));
  assert.ok(out.ok);
  assert.equal(clock.sleeps, [100, 200]);
  assert.equal(
    out.attempts.map((a) => a.outcome),
    ['Transient', 'Transient', 'sent'],
  );
});

failover('jitter spreads the waits between 0 and the ceiling', async ({ clock }) => {
  const draws = [0, 0.999];
  const primary = new ScriptedGateway(clock, ['Transient', 'Transient', 'ok']);
  await sendWithFailover([{ account: 'primary', gateway: primary }], message().msg, clock.options({ baseDelayMs: 1000, random: () => draws.shift()! }));
  assert.equal(clock.sleeps, [0, 1998]);
});

failover('moves to the fallback when the linked account keeps failing transiently', async ({ clock }) => {
  const primary = new ScriptedGateway(clock, ['Transient', 'Transient', 'Transient']);
  const fallback = new ScriptedGateway(clock, ['ok']);
  const out = await sendWithFailover(
    [
      { account: 'primary', gateway: primary },
      { account: 'fallback', gateway: fallback },
    ],
    message().msg,
    clock.options(),
  );
  assert.ok(out.ok);
  if (!out.ok) return;
  assert.is(out.account, 'fallback');
  assert.equal(
    out.attempts.map((a) => `${a.account}:${a.outcome}`),
    ['primary:Transient', 'primary:Transient', 'primary:Transient', 'fallback:sent'],
  );
  assert.is(fallback.calls[0]!.message.account, 'fallback');
});

failover('waits at least Retry-After before retrying a RateLimited account', async ({ clock }) => {
  const primary = new ScriptedGateway(clock, [{ code: 'RateLimited', retryAfterMs: 1500 }, 'ok']);
  const out = await sendWithFailover([{ account: 'primary', gateway: primary }], message().msg, clock.options());
  assert.ok(out.ok);
  assert.equal(clock.sleeps, [1500]);
});

failover('fails over at once when Retry-After would outlast the deadline', async ({ clock }) => {
  const primary = new ScriptedGateway(clock, [{ code: 'RateLimited', retryAfterMs: 60_000 }]);
  const fallback = new ScriptedGateway(clock, ['ok']);
  const out = await sendWithFailover(
    [
      { account: 'primary', gateway: primary },
      { account: 'fallback', gateway: fallback },
    ],
    message().msg,
    clock.options(),
  );
  assert.ok(out.ok && out.account === 'fallback');
  assert.equal(clock.sleeps, []);
});

for (const code of ['AuthFailed', 'Forbidden', 'InsufficientFunds', 'Rejected'] as const) {
  failover(`${code} is not retried but fails over`, async ({ clock }) => {
    const primary = new ScriptedGateway(clock, [code]);
    const fallback = new ScriptedGateway(clock, ['ok']);
    const out = await sendWithFailover(
      [
        { account: 'primary', gateway: primary },
        { account: 'fallback', gateway: fallback },
      ],
      message().msg,
      clock.options(),
    );
    assert.ok(out.ok && out.account === 'fallback');
    assert.is(primary.calls.length, 1);
    assert.equal(clock.sleeps, []);
  });
}

failover('InvalidNumber stops the send: no retry, no fallback', async ({ clock }) => {
  const primary = new ScriptedGateway(clock, ['InvalidNumber']);
  const fallback = new ScriptedGateway(clock, ['ok']);
  const out = await sendWithFailover(
    [
      { account: 'primary', gateway: primary },
      { account: 'fallback', gateway: fallback },
    ],
    message().msg,
    clock.options(),
  );
  assert.not.ok(out.ok);
  if (out.ok) return;
  assert.is(out.error.code, 'InvalidNumber');
  assert.is(fallback.calls.length, 0);
  assert.is(out.attempts.length, 1);
});

failover('returns the last error when every account fails', async ({ clock }) => {
  const primary = new ScriptedGateway(clock, ['AuthFailed']);
  const fallback = new ScriptedGateway(clock, ['InsufficientFunds']);
  const out = await sendWithFailover(
    [
      { account: 'primary', gateway: primary },
      { account: 'fallback', gateway: fallback },
    ],
    message().msg,
    clock.options(),
  );
  assert.not.ok(out.ok);
  if (!out.ok) assert.is(out.error.code, 'InsufficientFunds');
});

failover('stops at the deadline', async ({ clock }) => {
  const primary = new ScriptedGateway(clock, [
    { code: 'Transient', takesMs: 6000 },
    { code: 'Transient', takesMs: 6000 },
  ]);
  const fallback = new ScriptedGateway(clock, ['ok']);
  const out = await sendWithFailover(
    [
      { account: 'primary', gateway: primary },
      { account: 'fallback', gateway: fallback },
    ],
    message().msg,
    clock.options({ deadline: clock.t + 5000 }),
  );
  assert.not.ok(out.ok);
  assert.is(primary.calls.length, 1);
  assert.is(fallback.calls.length, 0);
});

failover("an account's budget ends its retries and leaves time for the fallback", async ({ clock }) => {
  const primary = new ScriptedGateway(clock, [
    { code: 'Transient', takesMs: 3000 },
    { code: 'Transient', takesMs: 3000 },
  ]);
  const fallback = new ScriptedGateway(clock, ['ok']);
  const out = await sendWithFailover(
    [
      { account: 'primary', gateway: primary, budgetMs: 3000 },
      { account: 'fallback', gateway: fallback },
    ],
    message().msg,
    clock.options({ deadline: clock.t + 10_000 }),
  );
  assert.ok(out.ok && out.account === 'fallback');
  assert.is(primary.calls.length, 1);
});

failover("later attempts carry the code's remaining lifetime", async ({ clock }) => {
  const primary = new ScriptedGateway(clock, [{ code: 'AuthFailed', takesMs: 30_000 }]);
  const fallback = new ScriptedGateway(clock, ['ok']);
  await sendWithFailover(
    [
      { account: 'primary', gateway: primary },
      { account: 'fallback', gateway: fallback },
    ],
    message({ validitySeconds: 600 }).msg,
    clock.options({ deadline: clock.t + 60_000 }),
  );
  assert.is(fallback.calls[0]!.message.validitySeconds, 570);
});

failover('an adapter that throws something else is reported as Transient without its message', async ({ clock }) => {
  const { msg, code } = message();
  const primary = new ScriptedGateway(clock, [new TypeError(`boom ${code} ${TO}`)]);
  const out = await sendWithFailover([{ account: 'primary', gateway: primary }], msg, clock.options({ maxAttemptsPerAccount: 1 }));
  assert.not.ok(out.ok);
  if (out.ok) return;
  assert.is(out.error.code, 'Transient');
  assertNoLeak(errorText(out.error), messageSecrets(code, TO), 'the error');
});

failover("the caller's signal stops the send", async ({ clock }) => {
  const controller = new AbortController();
  controller.abort();
  const primary = new ScriptedGateway(clock, ['ok']);
  const out = await sendWithFailover([{ account: 'primary', gateway: primary }], message().msg, clock.options({ signal: controller.signal }));
  assert.not.ok(out.ok);
  assert.is(primary.calls.length, 0);
});

failover('an empty chain is a failed send', async ({ clock }) => {
  const out = await sendWithFailover([], message().msg, clock.options());
  assert.not.ok(out.ok);
});

failover.run();

const real = suite('sendWithFailover (real adapters and fake providers)');

real("retries Plivo's 503s through the SDK, then fails over from a Plivo account with bad credentials to Twilio", async () => {
  const plivo = await startPlivoServer({ authId: 'MAID', authToken: 'plivo-secret-1' });
  const twilio = await startTwilioServer({ accountSid: 'AC1', authToken: 'twilio-secret-1' });
  const logs = captureLogs();
  try {
    const good = createGateway(
      bundle('plivo', { source: 'S', baseUrl: plivo.baseUrl }),
      { authId: 'MAID', authToken: 'plivo-secret-1' },
      { logger: logs.logger },
    );
    plivo.behaviours.then('server-error', 'server-error');
    const first = message();
    const retried = await sendWithFailover([{ account: 'plivo-main', gateway: good }], first.msg, {
      deadline: Date.now() + 5000,
      baseDelayMs: 10,
      logger: logs.logger,
    });
    assert.ok(retried.ok);
    assert.equal(
      retried.attempts.map((a) => a.outcome),
      ['Transient', 'Transient', 'sent'],
    );

    const broken = createGateway(
      bundle('plivo', { source: 'S', baseUrl: plivo.baseUrl }),
      { authId: 'MAID', authToken: 'revoked-secret' },
      { logger: logs.logger },
    );
    const backup = createGateway(
      bundle('twilio', { from: 'F', baseUrl: twilio.baseUrl }),
      { accountSid: 'AC1', authToken: 'twilio-secret-1' },
      { logger: logs.logger },
    );
    const second = message();
    const out = await sendWithFailover(
      [
        { account: 'plivo-main', gateway: broken },
        { account: 'twilio-backup', gateway: backup },
      ],
      second.msg,
      { deadline: Date.now() + 5000, logger: logs.logger },
    );
    assert.ok(out.ok);
    if (!out.ok) return;
    assert.is(out.account, 'twilio-backup');
    assert.equal(
      out.attempts.map((a) => `${a.account}:${a.outcome}`),
      ['plivo-main:AuthFailed', 'twilio-backup:sent'],
    );
    assert.is(twilio.messages.length, 1);
    assert.ok(logs.text().includes('failing over'));
    for (const m of [first, second])
      assertNoLeak(logs.text(), { ...messageSecrets(m.code, TO), s1: 'plivo-secret-1', s2: 'revoked-secret', s3: 'twilio-secret-1' }, 'the log');
  } finally {
    await plivo.close();
    await twilio.close();
  }
});

real('a hanging account gives way to the fallback within its budget', async () => {
  const plivo = await startPlivoServer({ authId: 'MAID', authToken: 'tok' });
  const twilio = await startTwilioServer({ accountSid: 'AC1', authToken: 'tok2' });
  try {
    plivo.behaviours.then('hang');
    const slow = createGateway(bundle('plivo', { source: 'S', baseUrl: plivo.baseUrl }, { timeoutMs: 5000 }), { authId: 'MAID', authToken: 'tok' });
    const backup = createGateway(bundle('twilio', { from: 'F', baseUrl: twilio.baseUrl }), { accountSid: 'AC1', authToken: 'tok2' });
    const out = await sendWithFailover(
      [
        { account: 'plivo-main', gateway: slow, budgetMs: 300 },
        { account: 'twilio-backup', gateway: backup },
      ],
      message().msg,
      { deadline: Date.now() + 3000 },
    );
    // Without the budget the hang would hold the attempt to the 3 s deadline, leaving the fallback no time.
    assert.ok(out.ok && out.account === 'twilio-backup');
    assert.equal(
      out.attempts.map((a) => `${a.account} ${a.outcome}`),
      ['plivo-main Transient', 'twilio-backup sent'],
    );
  } finally {
    await plivo.close();
    await twilio.close();
  }
});

real.run();
