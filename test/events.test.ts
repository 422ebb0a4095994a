import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { postEvent, type PostResult } from '../controller/adapters/event-sink.ts';
import { ManualClock } from '../controller/core/clock.ts';
import { EventDelivery, type EventDeliveryOptions } from '../controller/runtime/event-delivery.ts';
import { DELIVERY_HORIZON_MS, RETRY_DELAYS_MS, cloudEventsOf, dueRuns, parseSigningSecret, retryOf, webhookHeaders } from '../controller/verifier/events.ts';
import type { StateStore } from '../controller/verifier/state-store.ts';
import { startRedis, type RedisServer } from './helpers/redis-server.ts';
import { storeBackends } from './helpers/store-backends.ts';
import { startStack, type Stack } from './helpers/verifier-stack.ts';
import { Signal, waitUntil } from './helpers/wait.ts';
import { startReceiver, verifyStandardWebhook, type Received, type Receiver } from './helpers/webhook-receiver.ts';

// Signed outbound events (spec.events) through the verifier's HTTP API and the deliverer, to a
// receiver that verifies each delivery as the Standard Webhooks specification says, on each state
// store. The deliverer runs on a manual clock (the receiver checks timestamps against it), so
// that "down for a minute" is a minute of that clock, however fast the machine.

const SECRET = `whsec_${randomBytes(32).toString('base64')}`;
const ALICE = '+14155550101';
const BOB = '+14155550102';
const BASE = '/v1/acme/corp';

function fixture(url: string): string {
  return `apiVersion: smsauth.io/v1alpha1
kind: SmsGatewayAccount
metadata: {name: primary, namespace: acme}
spec: {provider: console, default: true}
---
apiVersion: v1
kind: Secret
metadata: {name: events, namespace: acme}
stringData: {secret: "${SECRET}"}
---
apiVersion: smsauth.io/v1alpha1
kind: IdentityStore
metadata: {name: corp, namespace: acme}
spec:
  type: ActiveDirectory
  authenticationTypes: [SMS]
  sms:
    textMessage: "Code: [Code]"
    code: {length: 6, ttl: 5m, maxAttempts: 3, maxSends: 3, resendCooldown: 30s}
    fraudGuard: {mode: Enforce, minSample: 5, minConversion: 0.5}
  events:
    url: "${url}"
    signingSecret: {secretRef: {name: events, key: secret}}
---
apiVersion: smsauth.io/v1alpha1
kind: SecurityRole
metadata: {name: staff, namespace: acme}
spec:
  identityStoreRef: {name: corp}
  priority: 1
  enabled: true
  members: {groups: ["CN=Staff,DC=acme,DC=example"]}
  authenticationPolicy: {enforced: [SMS], chosenByEndUser: 0, secondFactor: false}
  lockout: {failedAttemptsThreshold: 3, duration: 10m}
`;
}

let redis: RedisServer | undefined;
const backends = storeBackends('events', () => redis);

/** Harness is a verifier whose outbox a deliverer on a manual clock sends to a receiver. */
interface Harness {
  s: Stack;
  receiver: Receiver;
  clock: ManualClock;
  delivery: EventDelivery;
  logs: string[];
  /** What the receivers answered to each delivery, in order. */
  posted: PostResult[];
  /** start starts a deferred deliverer and waits for its first passes. */
  start(): Promise<void>;
  /** tick moves the deliverer's clock and waits until the passes it started are over. */
  tick(ms: number): Promise<void>;
  close(): Promise<void>;
}

/** otherStore is a second identity store of the namespace, whose events go to another receiver. */
function otherStore(url: string): string {
  return `---
apiVersion: smsauth.io/v1alpha1
kind: IdentityStore
metadata: {name: other, namespace: acme}
spec:
  type: ActiveDirectory
  authenticationTypes: [SMS]
  sms: {textMessage: "Code: [Code]"}
  events:
    url: "${url}"
    signingSecret: {secretRef: {name: events, key: secret}}
`;
}

interface HarnessOptions {
  delivery?: EventDeliveryOptions;
  /** More YAML beside the fixture's. */
  yaml?: string;
  /** The deliverer starts when the test says (start()), with what was written meanwhile waiting in the outbox. */
  deferred?: boolean;
}

async function harness(open: () => Promise<StateStore>, options: HarnessOptions = {}): Promise<Harness> {
  // The receiver and the verifier are made before the clock and the deliverer they call.
  const late: { clock?: ManualClock; delivery?: EventDelivery } = {};
  const posted: PostResult[] = [];
  let started = options.deferred !== true;
  const receiver = await startReceiver(SECRET, { clock: () => late.clock!.now() });
  const s = await startStack({
    store: await open(),
    fixture: 'events.yaml',
    yaml: fixture(receiver.url) + (options.yaml ?? ''),
    eventsSecret: SECRET,
    published: () => (started ? late.delivery?.wake() : undefined),
  });
  const clock = new ManualClock(s.clock.now);
  late.clock = clock;
  const logs: string[] = [];
  const log = pino(
    { level: 'debug' },
    new Writable({
      write(chunk: Buffer, _e, cb) {
        logs.push(chunk.toString('utf8'));
        cb();
      },
    }),
  );
  const delivery = new EventDelivery(
    {
      store: s.store,
      endpoints: () => s.registry.eventEndpoints(),
      post: async (url, headers, body, stop) => {
        const result = await postEvent(url, headers, body, stop);
        posted.push(result);
        return result;
      },
      clock,
      log,
      metrics: s.metrics,
      holder: 'test',
      random: () => 0,
    },
    // Pages of two entries: a key that waits (alice's first event, refused once) must not hold up
    // the keys behind it in later pages.
    { batch: 2, ...options.delivery },
  );
  late.delivery = delivery;
  if (started) delivery.start();
  const d = delivery;
  return {
    s,
    receiver,
    clock,
    delivery: d,
    logs,
    posted,
    async start() {
      started = true;
      d.start();
      await d.idle();
    },
    async tick(ms) {
      await clock.advance(ms);
      await d.idle();
    },
    async close() {
      await d.stop();
      await receiver.close();
      await s.close();
    },
  };
}

const code = (s: Stack, to?: string): string => s.gateways.get('primary')!.lastCode(to);

/** Silent is a receiver that takes each delivery and never answers. */
interface Silent {
  url: string;
  /** Deliveries it holds (not answered, not abandoned by the sender). */
  held(): number;
  /** until waits for a condition on it, re-read at each delivery taken or abandoned. */
  until(what: string, ok: () => boolean): Promise<void>;
  close(): Promise<void>;
}

async function startSilent(): Promise<Silent> {
  let held = 0;
  const changed = new Signal();
  const server = createServer((req, res) => {
    held += 1;
    changed.fire();
    req.resume();
    res.on('close', () => {
      held -= 1;
      changed.fire();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    held: () => held,
    until: async (what, ok) => {
      await waitUntil(
        what,
        () => ok() || undefined,
        () => changed.next(),
      );
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** enrollIn enrolls a user of a store with no roles (no groups). */
async function enrollIn(s: Stack, store: string, user: string, to: string): Promise<void> {
  const start = await s.api('POST', `/v1/acme/${store}/verifications`, { to, purpose: 'enroll', user });
  assert.is(start.status, 201, JSON.stringify(start.body));
  assert.is((await s.api('POST', `/v1/acme/${store}/verifications/${start.body.id}/check`, { code: code(s, to) })).body.status, 'approved');
}

/** attempts lists, per user, how often each of their entries waiting in a store's outbox was tried. */
async function attempts(s: Stack, store: string, holder: string, now: number): Promise<Record<string, number[]>> {
  const out: Record<string, number[]> = {};
  for (const e of (await s.store.outboxClaim('acme', store, holder, now, 15_000, 1000)) ?? []) (out[e.key] ??= []).push(e.attempts);
  return out;
}
const STAFF = ['CN=Staff,DC=acme,DC=example'];

async function enroll(s: Stack, user: string, to: string): Promise<void> {
  const start = await s.api('POST', `${BASE}/verifications`, { to, purpose: 'enroll', user, groups: STAFF });
  assert.is(start.status, 201, JSON.stringify(start.body));
  assert.is((await s.api('POST', `${BASE}/verifications/${start.body.id}/check`, { code: code(s, to) })).body.status, 'approved');
}

async function challenge(s: Stack, user: string, digits: string): Promise<string> {
  const c = await s.api('POST', `${BASE}/users/${user}/challenges`, { type: 'SMS', lastDigits: digits, groups: STAFF });
  assert.is(c.status, 201, JSON.stringify(c.body));
  await s.verifier.drain();
  return c.body.id as string;
}

/** wrongCode is a code that is not this verification's. */
const wrong = (s: Stack, to: string): string => (code(s, to) === '000000' ? '111111' : '000000');

/** activity makes, for two users, every kind of user event: approvals, a change of number, a failed verification, a lockout, an unenrollment. */
async function activity(s: Stack): Promise<void> {
  await enroll(s, 'alice', ALICE);
  await enroll(s, 'bob', BOB);
  // alice fails one verification (3 wrong codes: max_attempts_reached), which locks her out (threshold 3).
  const failing = await challenge(s, 'alice', '0101');
  for (let i = 0; i < 3; i++) await s.api('POST', `${BASE}/verifications/${failing}/check`, { code: wrong(s, ALICE) });
  // bob authenticates, then unenrolls with that proof.
  const proof = await challenge(s, 'bob', '0102');
  assert.is((await s.api('POST', `${BASE}/verifications/${proof}/check`, { code: code(s, BOB) })).body.status, 'approved');
  assert.is((await s.api('DELETE', `${BASE}/users/bob/enrollments/sms`, { proof })).status, 200);
}

/** EXPECTED is what activity() sends, per user, in order. */
const EXPECTED: Record<string, string[]> = {
  alice: ['verification.approved', 'enrollment.changed', 'verification.failed', 'user.locked_out'],
  bob: ['verification.approved', 'enrollment.changed', 'verification.approved', 'enrollment.changed'],
};
const EXPECTED_COUNT = Object.values(EXPECTED).flat().length;

/** perUser lists the short types received for each user, in the order they arrived. */
function perUser(received: readonly Received[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const r of received) {
    if (r.event.type.startsWith('io.smsauth.fraud.')) continue;
    (out[r.event.subject] ??= []).push(r.event.type.slice('io.smsauth.'.length));
  }
  return out;
}

const events = suite('signed outbound events');
events.before(async () => {
  redis = await startRedis();
});
events.after(async () => {
  await redis?.stop();
});

for (const [backend, open] of backends) {
  events(`${backend}: each change arrives once as a CloudEvent signed per Standard Webhooks, in order per user, with no code and no whole number`, async () => {
    const h = await harness(open);
    try {
      // alice's first event is answered 503 once: her later events wait for it; bob's do not.
      h.receiver.refuseOnce((e) => e.subject === 'alice');
      await activity(h.s);
      await h.delivery.idle();
      assert.equal(
        h.receiver.unavailable.map((e) => e.type),
        ['io.smsauth.verification.approved'],
      );
      assert.not.ok(
        h.receiver.received.some((r) => r.event.subject === 'alice'),
        'nothing of alice overtakes her first event',
      );
      assert.is(h.receiver.received.filter((r) => r.event.subject === 'bob').length, EXPECTED.bob!.length, 'bob is not held up by alice');
      await h.tick(1_000); // the receiver's Retry-After
      const got = await h.receiver.waitFor(EXPECTED_COUNT);
      await h.delivery.idle();
      assert.equal(h.receiver.refused, [], 'every signature verifies');
      assert.equal(perUser(got), EXPECTED);
      assert.is(new Set(got.map((r) => r.event.id)).size, got.length, 'one id per event');
      for (const r of got) {
        assert.is(r.id, r.event.id, 'webhook-id is the event id');
        assert.is(r.contentType, 'application/cloudevents+json; charset=utf-8');
        assert.equal(
          [r.event.specversion, r.event.source, r.event.datacontenttype],
          ['1.0', '/apis/smsauth.io/v1alpha1/namespaces/acme/identitystores/corp', 'application/json'],
        );
        assert.equal([r.event.data.namespace, r.event.data.identityStore, r.event.data.user], ['acme', 'corp', r.event.subject]);
        assert.ok(Number.isFinite(Date.parse(r.event.time)));
      }
      // What each event says.
      const of = (user: string, type: string) => got.filter((r) => r.event.subject === user && r.event.type === `io.smsauth.${type}`).map((r) => r.event.data);
      assert.equal(
        of('alice', 'verification.approved').map((d) => [d.purpose, d.status]),
        [['enroll', 'approved']],
      );
      assert.equal(of('alice', 'enrollment.changed')[0].change, 'enrolled');
      assert.equal(of('alice', 'enrollment.changed')[0].numbers.old, null);
      assert.match(of('alice', 'enrollment.changed')[0].numbers.new, /^\+1 •+ #[0-9a-f]{6}$/);
      assert.equal(
        of('alice', 'verification.failed').map((d) => [d.purpose, d.status, d.role]),
        [['authenticate', 'max_attempts_reached', 'staff']],
      );
      assert.is(Date.parse(of('alice', 'user.locked_out')[0].lockedUntil) - h.s.clock.now, 600_000);
      assert.equal(
        of('bob', 'enrollment.changed').map((d) => d.change),
        ['enrolled', 'removed'],
      );
      // No code sent and no whole number appears in any event.
      const raw = got.map((r) => r.raw).join('\n');
      for (const m of h.s.gateways.get('primary')!.sent) assert.not.ok(raw.includes(/\d{6}/.exec(m.text)![0]), 'no code');
      for (const n of [ALICE, BOB]) assert.not.ok(raw.includes(n.slice(2)), 'no whole number');
      // Delivered entries leave the outbox.
      assert.equal(await h.s.store.outboxClaim('acme', 'corp', 'test', h.clock.now(), 15_000, 100), []);
      // History alone makes the same events, with the same ids: what a replay sends.
      const history = (await h.s.store.listHistory('acme', 'corp', { limit: 100 })).events.reverse();
      const replayed = history.flatMap((e) => cloudEventsOf('acme', 'corp', { kind: 'history', event: e }));
      assert.equal(replayed.map((c) => `${c.subject} ${c.type} ${c.id}`).sort(), got.map((r) => `${r.event.subject} ${r.event.type} ${r.id}`).sort());
      assert.equal(perUser(replayed.map((event) => ({ event }) as unknown as Received)), EXPECTED, 'in the same order per user');
    } finally {
      await h.close();
    }
  });

  events(`${backend}: a receiver down for a minute loses nothing, and gets every user's events in order once it is back`, async () => {
    const h = await harness(open);
    try {
      await h.receiver.down();
      await activity(h.s);
      await h.delivery.idle();
      // A minute of the deliverer's clock, with the receiver down: every attempt fails, nothing is lost.
      for (let t = 0; t < 60_000; t += 5_000) await h.tick(5_000);
      assert.is(h.receiver.received.length, 0);
      const failed = (await h.s.metrics.registry.getSingleMetric('smsauth_events_total')!.get()).values.filter((v) => v.labels['result'] === 'failed');
      assert.ok(failed.reduce((n, v) => n + v.value, 0) >= 2, 'the attempts failed and were counted');
      assert.match(h.logs.join(''), /events: not accepted; retried later/);
      // Back: within the retry schedule (2 minutes after the third failure) each user's events arrive, in order.
      await h.receiver.up();
      while (h.receiver.received.length < EXPECTED_COUNT) await h.tick(10_000);
      assert.equal(perUser(h.receiver.received), EXPECTED);
      assert.equal(h.receiver.refused, []);
      assert.is(new Set(h.receiver.received.map((r) => r.event.id)).size, h.receiver.received.length, 'each once');
      assert.ok(h.clock.now() - h.s.clock.now < 10 * 60_000, 'within minutes of its return');
      assert.equal(await h.s.store.outboxClaim('acme', 'corp', 'test', h.clock.now(), 15_000, 100), []);
    } finally {
      await h.close();
    }
  });

  events(`${backend}: a prefix the fraud guard blocks is an event; the types an endpoint asks for are the only ones it gets`, async () => {
    const h = await harness(open);
    try {
      // Five enrollments to one range, none approved, then the next bucket judges them: +44791 and +44 are blocked.
      for (let i = 0; i < 5; i++) {
        assert.is((await h.s.api('POST', `${BASE}/verifications`, { to: `+44791112300${i}`, purpose: 'enroll', user: `bot${i}` })).status, 201);
      }
      h.s.clock.advance(5 * 60_000);
      await h.s.api('POST', `${BASE}/verifications`, { to: '+447911123009', purpose: 'enroll', user: 'bot9' });
      const got = await h.receiver.waitFor(2);
      assert.equal(got.map((r) => [r.event.type, r.event.subject, r.event.data.prefix, r.event.data.enforced]).sort(), [
        ['io.smsauth.fraud.prefix_blocked', '+44', '+44', true],
        ['io.smsauth.fraud.prefix_blocked', '+44791', '+44791', true],
      ]);
      assert.is(Date.parse(got[0]!.event.data.blockedUntil) - h.s.clock.now, 3_600_000);
      // An endpoint that asks only for lockouts gets nothing of an enrollment.
      const stored = h.s.registry.get('acme', 'corp')!;
      h.s.registry.put('acme', 'corp', { ...stored, bundle: { ...stored.bundle, events: { ...stored.bundle.events!, types: ['user.locked_out'] } } });
      await enroll(h.s, 'carol', '+14155550103');
      await h.delivery.idle();
      assert.is(h.receiver.received.length, 2);
      assert.equal(await h.s.store.outboxClaim('acme', 'corp', 'test', h.clock.now(), 15_000, 100), [], 'nor does it wait in the outbox');
    } finally {
      await h.close();
    }
  });

  events(`${backend}: a possession approved without a code (Twilio's Status=approved) is an event, as one approved by its code`, async () => {
    const h = await harness(open);
    try {
      const ctx = { ip: '127.0.0.1', userAgent: 'test', actor: 'user' as const };
      const started = await h.s.verifier.startPossession(ctx, 'acme', 'corp', { to: '+14155550111' });
      assert.ok(started.ok);
      const approved = await h.s.verifier.approvePossession(ctx, 'acme', 'corp', started.value.id);
      assert.is(approved.ok && approved.value.status, 'approved');
      const [got] = await h.receiver.waitFor(1);
      assert.equal(
        [got!.event.type, got!.event.data.purpose, got!.event.data.verificationId],
        ['io.smsauth.verification.approved', 'possession', started.value.id],
      );
      // A second approval finds it approved: no second event.
      assert.is((await h.s.verifier.approvePossession(ctx, 'acme', 'corp', started.value.id)).ok, false);
      await h.delivery.idle();
      assert.is(h.receiver.received.length, 1);
    } finally {
      await h.close();
    }
  });

  events(`${backend}: a receiver that does not answer holds up its own store only; stopping abandons its deliveries to the next holder`, async () => {
    const silent = await startSilent();
    const h = await harness(open, { yaml: otherStore(silent.url) });
    try {
      await enrollIn(h.s, 'other', 'carol', '+14155550103');
      await silent.until("carol's first event held", () => silent.held() === 1);
      // The namespace's other store delivers meanwhile.
      await enroll(h.s, 'alice', ALICE);
      await h.receiver.waitFor(2);
      assert.equal(perUser(h.receiver.received), { alice: ['verification.approved', 'enrollment.changed'] });
      assert.is(silent.held(), 1, "alice's events arrived while carol's first was held");
      // Stopping abandons the deliveries held: they stay in the outbox, untried, for whoever holds it next.
      await h.delivery.stop();
      assert.equal(h.posted.at(-1), { ok: false, problem: 'abandoned: the deliverer stops' }, 'stopping ended the delivery held');
      await silent.until('the held deliveries abandoned', () => silent.held() === 0);
      const left = await attempts(h.s, 'other', 'next', h.clock.now());
      assert.equal(Object.keys(left), ['carol']);
      assert.ok(
        Object.values(left)
          .flat()
          .every((n) => n === 0),
        `nothing counted as tried: ${JSON.stringify(left)}`,
      );
    } finally {
      await h.close();
      await silent.close();
    }
  });

  events(`${backend}: a receiver that cannot be reached ends the pass at its first failure, instead of each user in turn failing`, async () => {
    const h = await harness(open, { delivery: { concurrency: 1 }, deferred: true });
    try {
      await h.receiver.down();
      await activity(h.s);
      await h.start();
      const tried = await attempts(h.s, 'corp', 'test', h.clock.now());
      assert.equal(Object.keys(tried).sort(), ['alice', 'bob']);
      assert.equal(
        Object.values(tried)
          .flat()
          .filter((n) => n > 0),
        [1],
        `one entry tried: ${JSON.stringify(tried)}`,
      );
      // Back: the next passes deliver everything, in order.
      await h.receiver.up();
      while (h.receiver.received.length < EXPECTED_COUNT) await h.tick(10_000);
      assert.equal(perUser(h.receiver.received), EXPECTED);
    } finally {
      await h.close();
    }
  });

  events(`${backend}: entries behind a backlog longer than a pass reads are reached by the next passes, long before the backlog's retries`, async () => {
    // Passes read 2 pages of 2 entries: five users' events, refused for an hour, fill more than one.
    const h = await harness(open, { delivery: { pages: 2 } });
    try {
      const users = ['u0', 'u1', 'u2', 'u3', 'u4'];
      for (const [i, user] of users.entries()) {
        h.receiver.refuseOnce((e) => e.subject === user, 3600);
        await enrollIn(h.s, 'corp', user, `+1415555020${i}`);
        await h.delivery.idle();
      }
      assert.is(h.receiver.unavailable.length, users.length, 'each user refused for an hour');
      await enrollIn(h.s, 'corp', 'late', '+14155550299');
      await h.delivery.idle();
      for (let i = 0; i < 5 && !h.receiver.received.some((r) => r.event.subject === 'late'); i++) await h.tick(1000);
      assert.equal(perUser(h.receiver.received), { late: ['verification.approved', 'enrollment.changed'] }, 'late arrives; nothing of the users refused');
      assert.ok(h.clock.now() - h.s.clock.now < 60_000, 'within seconds of its change');
    } finally {
      await h.close();
    }
  });
}

events.run();

const rules = suite('events: the rules');

rules('a signing secret is whsec_ and 24 to 64 bytes of base64; the error never quotes it', () => {
  const ok = (bytes: number): string => `whsec_${Buffer.alloc(bytes, 7).toString('base64')}`;
  assert.ok(parseSigningSecret(ok(24)).ok);
  assert.ok(parseSigningSecret(ok(64)).ok);
  for (const bad of [ok(23), ok(65), 'whsec_not base64!', Buffer.alloc(32).toString('base64'), 'whsec_']) {
    const r = parseSigningSecret(bad);
    assert.not.ok(r.ok, bad);
    if (!r.ok) assert.not.ok(bad.length > 8 && r.error.includes(bad.slice(6)), 'the value is not in the error');
  }
});

rules('the headers verify with a verifier written from the specification, and a change to the body, id or timestamp fails it', () => {
  const key = parseSigningSecret(SECRET);
  assert.ok(key.ok);
  if (!key.ok) return;
  const body = '{"specversion":"1.0","id":"evt_x"}';
  const headers = webhookHeaders(key.key, 'evt_x', 1_700_000_000, body);
  assert.equal(verifyStandardWebhook(SECRET, headers, body, 1_700_000_010), { specversion: '1.0', id: 'evt_x' });
  assert.match(headers['webhook-signature']!, /^v1,[A-Za-z0-9+/]{43}=$/);
  assert.throws(() => verifyStandardWebhook(SECRET, headers, body.replace('evt_x', 'evt_y'), 1_700_000_010), /no signature matches/);
  assert.throws(() => verifyStandardWebhook(SECRET, { ...headers, 'webhook-id': 'evt_y' }, body, 1_700_000_010), /no signature matches/);
  assert.throws(() => verifyStandardWebhook(SECRET, { ...headers, 'webhook-timestamp': '1700000001' }, body, 1_700_000_010), /no signature matches/);
  assert.throws(() => verifyStandardWebhook(SECRET, headers, body, 1_700_000_000 + 301), /tolerance/, 'an old delivery replayed is refused');
  const other = `whsec_${randomBytes(32).toString('base64')}`;
  assert.throws(() => verifyStandardWebhook(other, headers, body, 1_700_000_010), /no signature matches/);
});

rules('a failed delivery is retried on the schedule (or after Retry-After), never past a day from the change, then given up', () => {
  const t = 1_000_000;
  const at = (attempts: number, now = t, retryAfter?: number) => retryOf({ seq: 1, time: t, attempts }, now, 0, retryAfter);
  assert.equal(
    RETRY_DELAYS_MS.map((_, i) => at(i)!.nextAt - t),
    [...RETRY_DELAYS_MS],
  );
  assert.is(at(20)!.nextAt - t, RETRY_DELAYS_MS.at(-1)!, 'the last delay repeats');
  assert.is(retryOf({ seq: 1, time: t, attempts: 0 }, t, 1)!.nextAt - t, 6_000, 'a fifth more at most, at random');
  assert.is(at(5, t, 1000)!.nextAt - t, 1000, "the receiver's Retry-After");
  assert.is(at(0, t, 1e12)!.nextAt - t, RETRY_DELAYS_MS.at(-1)!, 'within the longest delay');
  const late = t + DELIVERY_HORIZON_MS - 60_000;
  assert.is(at(7, late)!.nextAt, t + DELIVERY_HORIZON_MS, 'the last try is at the horizon');
  assert.is(at(8, t + DELIVERY_HORIZON_MS), undefined, 'then it is given up');
  assert.equal(at(3), { seq: 1, attempts: 4, nextAt: t + RETRY_DELAYS_MS[3] });
});

rules("due entries come in runs per key, each up to its first entry not due: a key's later events wait, other keys do not", () => {
  const e = (seq: number, key: string, nextAt = 0) => ({
    seq,
    key,
    nextAt,
    namespace: 'n',
    store: 's',
    time: 0,
    attempts: 0,
    body: { kind: 'fraud' as const, key, until: 0, enforced: true },
  });
  const runs = dueRuns([e(1, 'a'), e(2, 'b', 500), e(3, 'a'), e(4, 'b'), e(5, 'c'), e(6, 'a', 500), e(7, 'a')], 100);
  assert.equal(
    runs.map((r) => r.map((x) => x.seq)),
    [[1, 3], [5]],
  );
});

rules('the same change makes the same event id however often it is sent; another store or change, another', () => {
  const body = (seq: number) => ({
    kind: 'history' as const,
    event: {
      seq,
      namespace: 'acme',
      store: 'corp',
      user: 'u',
      type: 'unenroll' as const,
      result: 'success' as const,
      time: 5,
      clientIp: '',
      userAgent: '',
      numbers: { old: '+1 ••• #abcdef', new: null },
    },
  });
  const id = (ns: string, store: string, seq: number) => cloudEventsOf(ns, store, body(seq)).map((c) => c.id);
  assert.equal(id('acme', 'corp', 1), id('acme', 'corp', 1));
  assert.is(new Set([...id('acme', 'corp', 1), ...id('acme', 'corp', 2), ...id('acme', 'other', 1), ...id('beta', 'corp', 1)]).size, 4);
  assert.match(id('acme', 'corp', 1)[0]!, /^evt_[A-Za-z0-9_-]{27}$/);
  const [changed] = cloudEventsOf('acme', 'corp', body(1));
  assert.equal([changed!.type, changed!.subject, changed!.data.change], ['io.smsauth.enrollment.changed', 'u', 'removed']);
  assert.equal(cloudEventsOf('acme', 'corp', { kind: 'history', event: { ...body(1).event, type: 'unlock' } }), [], 'an unlock is no event');
});

rules.run();
