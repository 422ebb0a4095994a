// Outbound events (IdentityStore.spec.events): what the outbox holds, as CloudEvents 1.0 in
// structured JSON mode, signed as the Standard Webhooks specification describes. Pure decisions:
// which events an outbox entry (or a history event, for a replay) makes, how they are signed,
// which entries are due and when a failed one is tried again. The deliverer does the I/O.
import { createHash, createHmac } from 'node:crypto';
import type { EventType } from '../core/bundle.ts';
import { prefixOfKey } from '../core/fraud-guard.ts';
import { isoTime } from '../core/iso-time.ts';
import type { OutboxBody, OutboxEntry, OutboxRetry } from './state-store.ts';
import type { HistoryEvent } from './types.ts';

/** CLOUD_EVENT_TYPE_PREFIX makes a short type (verification.approved) a CloudEvents type, reverse-DNS as CloudEvents recommends. */
export const CLOUD_EVENT_TYPE_PREFIX = 'io.smsauth.';

/** EventEndpoint is a store's events endpoint as the deliverer uses it: the signing key, or why there is none. */
export interface EventEndpoint {
  namespace: string;
  store: string;
  url: string;
  types: readonly EventType[];
  key: { ok: true; value: Buffer } | { ok: false; problem: string };
}

/** CloudEvent is one event in CloudEvents 1.0 structured mode (JSON format). */
export interface CloudEvent {
  specversion: '1.0';
  /** The same for every delivery of one event (and its replays): the receiver's idempotency key, and webhook-id. */
  id: string;
  source: string;
  type: string;
  subject: string;
  time: string;
  datacontenttype: 'application/json';
  data: Record<string, unknown>;
}

/** shortTypeOf is an event's type as spec.events.types names it. */
export function shortTypeOf(event: CloudEvent): EventType {
  return event.type.slice(CLOUD_EVENT_TYPE_PREFIX.length) as EventType;
}

/** sourceOf is the CloudEvents source of a store's events: the store, as a Kubernetes API path names it. */
export function sourceOf(namespace: string, store: string): string {
  return `/apis/smsauth.io/v1alpha1/namespaces/${namespace}/identitystores/${store}`;
}

const PURPOSES: Partial<Record<HistoryEvent['type'], string>> = {
  enroll: 'enroll',
  authenticate: 'authenticate',
  helpdesk_verify: 'helpdesk',
  verify: 'possession',
};

/**
 * cloudEventsOf is the events an outbox entry's body makes, of every type (the caller keeps the
 * types the endpoint asked for): an approved verification (and, for an enrollment, the change of
 * number), a verification whose last attempt failed, a lockout, an unenrollment, a blocked prefix.
 * Nothing else in history makes an event. Numbers appear only masked; codes never.
 */
export function cloudEventsOf(namespace: string, store: string, body: OutboxBody): CloudEvent[] {
  const source = sourceOf(namespace, store);
  const scope = { namespace, identityStore: store };
  if (body.kind === 'fraud') {
    const prefix = prefixOfKey(body.key);
    const data = { ...scope, prefix, blockedUntil: isoTime(body.until), enforced: body.enforced };
    return [cloudEvent(source, 'fraud.prefix_blocked', `f/${body.key}/${body.until}`, prefix, body.until, data)];
  }
  const e = body.event;
  const at = `h/${e.seq}/${e.time}`;
  const who = {
    ...scope,
    user: e.user,
    actor: e.actor ?? 'user',
    role: e.role ?? null,
    ...(e.verificationId !== undefined ? { verificationId: e.verificationId } : {}),
    ...(e.clientIp !== '' || e.userAgent !== '' ? { client: { address: e.clientIp, userAgent: e.userAgent } } : {}),
    ...(e.reason !== undefined ? { reason: e.reason } : {}),
  };
  const make = (type: EventType, data: Record<string, unknown>): CloudEvent => cloudEvent(source, type, `${at}/${type}`, e.user, e.time, data);
  const purpose = PURPOSES[e.type];
  const out: CloudEvent[] = [];
  if (purpose !== undefined && e.result === 'success') out.push(make('verification.approved', { ...who, purpose, status: 'approved' }));
  if (purpose !== undefined && e.result === 'failure' && (e.exhausted === true || body.outcome === 'exhausted')) {
    out.push(make('verification.failed', { ...who, purpose, status: 'max_attempts_reached' }));
  }
  if ((e.type === 'enroll' && e.result === 'success') || (e.type === 'unenroll' && e.result === 'success')) {
    const numbers = e.numbers ?? { old: null, new: null };
    const change = e.type === 'unenroll' ? 'removed' : numbers.old === null ? 'enrolled' : 'replaced';
    out.push(make('enrollment.changed', { ...who, change, numbers }));
  }
  if (e.type === 'lockout' && e.result === 'locked') {
    out.push(make('user.locked_out', { ...who, ...(body.lockedUntil !== undefined ? { lockedUntil: isoTime(body.lockedUntil) } : {}) }));
  }
  return out;
}

function cloudEvent(source: string, type: EventType, at: string, subject: string, time: number, data: Record<string, unknown>): CloudEvent {
  // A digest of where the change is: the same event gets the same id however often it is sent
  // or replayed, and different stores or changes never share one.
  const id = `evt_${createHash('sha256').update(`${source}\n${at}`).digest('base64url').slice(0, 27)}`;
  return {
    specversion: '1.0',
    id,
    source,
    type: `${CLOUD_EVENT_TYPE_PREFIX}${type}`,
    subject,
    time: isoTime(time),
    datacontenttype: 'application/json',
    data,
  };
}

/** SIGNING_SECRET_PREFIX marks a Standard Webhooks symmetric secret. */
const SIGNING_SECRET_PREFIX = 'whsec_';

/**
 * parseSigningSecret reads a Standard Webhooks signing secret: whsec_ and 24 to 64 bytes in
 * base64. The error sentence never quotes the value.
 */
export function parseSigningSecret(value: string): { ok: true; key: Buffer } | { ok: false; error: string } {
  const text = value.trim();
  if (!text.startsWith(SIGNING_SECRET_PREFIX)) return { ok: false, error: 'is not a Standard Webhooks secret (whsec_ followed by base64)' };
  const b64 = text.slice(SIGNING_SECRET_PREFIX.length);
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) return { ok: false, error: 'is not base64 after whsec_' };
  const key = Buffer.from(b64, 'base64');
  if (key.length < 24 || key.length > 64) return { ok: false, error: `holds ${key.length} bytes; a signing secret holds 24 to 64` };
  return { ok: true, key };
}

/** signingKeyOf is a signing secret's key for the deliverer, or why it is unusable (prefixed with where it comes from). */
export function signingKeyOf(value: string, where = ''): { ok: true; value: Buffer } | { ok: false; problem: string } {
  const parsed = parseSigningSecret(value);
  return parsed.ok ? { ok: true, value: parsed.key } : { ok: false, problem: `${where}${parsed.error}` };
}

/**
 * webhookHeaders are a delivery's Standard Webhooks headers: its id, the attempt's time (whole
 * seconds) and the HMAC-SHA-256 of "id.timestamp.payload" with the secret's bytes, as v1,base64.
 */
export function webhookHeaders(key: Buffer, id: string, timestampSec: number, payload: string): Record<string, string> {
  const signature = createHmac('sha256', key).update(`${id}.${timestampSec}.${payload}`).digest('base64');
  return { 'webhook-id': id, 'webhook-timestamp': String(timestampSec), 'webhook-signature': `v1,${signature}` };
}

/** DELIVERY_HORIZON_MS is how long a change's events are retried: a day from the change. */
export const DELIVERY_HORIZON_MS = 24 * 3_600_000;

/**
 * RETRY_DELAYS_MS is the wait after each failed delivery (the last repeats), denser at first than
 * the Standard Webhooks example schedule, so that a receiver down for a minute gets its events
 * within the next minutes; a fifth more at random spreads the retries of many events.
 */
export const RETRY_DELAYS_MS = [5_000, 30_000, 120_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000] as const;

/**
 * retryOf is a failed delivery's next try: after the schedule's delay (or the receiver's
 * Retry-After, within the schedule's longest), never past the horizon; undefined when the horizon
 * is over (the entry is given up).
 */
export function retryOf(entry: Pick<OutboxEntry, 'seq' | 'time' | 'attempts'>, now: number, random: number, retryAfterMs?: number): OutboxRetry | undefined {
  const horizon = entry.time + DELIVERY_HORIZON_MS;
  if (now >= horizon) return undefined;
  const scheduled = RETRY_DELAYS_MS[Math.min(entry.attempts, RETRY_DELAYS_MS.length - 1)]!;
  const wait = retryAfterMs !== undefined && retryAfterMs > 0 ? Math.min(retryAfterMs, RETRY_DELAYS_MS.at(-1)!) : scheduled * (1 + 0.2 * random);
  return { seq: entry.seq, attempts: entry.attempts + 1, nextAt: Math.min(horizon, now + Math.ceil(wait)) };
}

/**
 * dueRuns groups the entries (in seq order) by ordering key, keeping of each key the run of
 * entries from its oldest up to the first that is not due yet: a key's later events wait for its
 * earlier ones, other keys do not. waiting holds the keys already waiting (from earlier pages),
 * and gets those found here.
 */
export function dueRuns(entries: readonly OutboxEntry[], now: number, waiting: Set<string> = new Set()): OutboxEntry[][] {
  const runs = new Map<string, OutboxEntry[]>();
  for (const e of entries) {
    if (waiting.has(e.key)) continue;
    if (e.nextAt > now) {
      waiting.add(e.key);
      continue;
    }
    const run = runs.get(e.key);
    if (run === undefined) runs.set(e.key, [e]);
    else run.push(e);
  }
  return [...runs.values()];
}
