import { createHash, createHmac, createSecretKey, type KeyObject } from 'node:crypto';
import type { Logger } from 'pino';
import { canonicalJson, type Bundle } from '../core/bundle.ts';
import { systemClock, type Clock } from '../core/clock.ts';
import { errorKind } from '../core/error-fields.ts';
import { isoTime } from '../core/iso-time.ts';
import { lastDigits, maskNumber, normalizeNumber, numberPrefix } from '../core/phone.ts';
import { DEFAULT_SEND_LIMITS, type SendLimits } from '../core/send-limits.ts';
import { judgeNumber, prefixOfKey } from '../core/fraud-guard.ts';
import { keyTag } from '../core/redis-target.ts';
import { renderText } from '../core/sms-text.ts';
import type { AuthenticationType } from '../generated/kinds.ts';
import type { CallbackRequest, GatewayError, OutboundMessage, SendResult, SmsGateway } from '../gateways/gateway.ts';
import { generateCode, type CodeHasher } from './code-hasher.ts';
import { Bindings, bindingOf, type Binding } from './bindings.ts';
import { verificationId } from './ids.ts';
import { decidePolicy, decideRole, lockoutFor, type Membership, type PolicyDecision } from './policy.ts';
import {
  PROOF_MAX_AGE_MS,
  isEnrollmentAsExpected,
  resendRefusal,
  type AttemptAudit,
  type AuditWrite,
  type EnrollmentExpected,
  type HistoryRetention,
  type ProofResult,
  type ProofSpend,
  type ResendRefusal,
  type SendQuota,
  type StateStore,
} from './state-store.ts';
import type { Actor, Delivery, Enrollment, HistoryEvent, HistoryQuery, LockoutState, Purpose, VerificationRecord } from './types.ts';
import type { VerifierMetrics } from './metrics.ts';
import { DirectoryUnavailableError, type Directory, type DirectoryUser } from '../directories/directory.ts';
import { enrollmentCompliance, type ComplianceReport } from './compliance.ts';

/** ResolvedStore is an identity store as the verifier serves it: its bundle and the gateways of its chain, ready to send. */
export interface ResolvedStore {
  bundle: Bundle;
  /** The chain: the linked account first, then its fallbacks; budgetMs is each account's own timeout. */
  gateways: readonly { account: string; gateway: SmsGateway; budgetMs?: number }[];
  /** The store's directory, when its bundle names one: who users are, their groups and numbers. */
  directory?: Directory;
  /** The events endpoint's signing key, when the bundle names an endpoint, or why it is unusable. */
  eventsKey?: { ok: true; value: Buffer } | { ok: false; problem: string };
  /**
   * The digest (tokenDigest) of the Twilio-compatible API's auth token, taken once as the store is
   * resolved, when the bundle names the store there (undefined when it does not resolve: every
   * request is refused).
   */
  twilioTokenDigest?: Buffer;
}

/** BundleSource gives the verifier the stores it serves; swapping bundles never drops a request or a verification. */
export interface BundleSource {
  get(namespace: string, store: string): ResolvedStore | undefined;
  /** gatewayForCallbacks returns an account's gateway and the callback URL it was given, to check a delivery receipt's signature. */
  gatewayForCallbacks(namespace: string, account: string): { gateway: SmsGateway; statusCallbackUrl?: string } | undefined;
  /** ready is true once bundles have been loaded. */
  ready(): boolean;
}

/** SendOutcome is what sending through a store's gateway chain gave. */
export type SendOutcome = { ok: true; account: string; result: SendResult } | { ok: false; error: GatewayError; account?: string };

/** Sender sends one message through a chain of accounts (retries, failover) within a deadline. */
export type Sender = (chain: ResolvedStore['gateways'], message: Omit<OutboundMessage, 'account'>, deadlineMs: number) => Promise<SendOutcome>;

/** VerifierConfig holds the limits the resources do not declare. */
export interface VerifierConfig {
  /** The send limits of a store that declares none (spec.sms.limits). */
  limits: SendLimits;
  history: HistoryRetention;
  idempotencyTtlMs: number;
  /** Deadline of one send, retries and failover included. */
  sendDeadlineMs: number;
  /** How many recent verifications' bindings a replica remembers, so that their checks skip a read (see Bindings). */
  rememberedBindings: number;
}

/** DEFAULT_VERIFIER_CONFIG follows Twilio Verify's defaults where it has them. */
export const DEFAULT_VERIFIER_CONFIG: VerifierConfig = {
  limits: DEFAULT_SEND_LIMITS,
  // The audit trail: 400 days (13 months, a year's audits and their follow-up), a million events per store at most.
  history: { maxEvents: 1_000_000, maxAgeMs: 400 * 24 * 3_600_000 },
  idempotencyTtlMs: 24 * 3_600_000,
  sendDeadlineMs: 15_000,
  rememberedBindings: 50_000,
};

/** VerifierDeps are the verifier's ports and its clock. */
export interface VerifierDeps {
  store: StateStore;
  bundles: BundleSource;
  hasher: CodeHasher;
  send: Sender;
  log: Logger;
  metrics: VerifierMetrics;
  config?: VerifierConfig;
  /** Time and timers (the decoy's imitated send delay); default the system clock. */
  clock?: Clock;
  /** Secret for decoys (answers for unknown users), so that they look alike across requests and replicas. */
  decoySecret: Buffer;
  /** Told after a change that may have put events in a store's outbox (spec.events), to deliver them at once. */
  published?: (namespace: string, store: string) => void;
}

/**
 * RequestContext is who acts, for history: the actor (the user through the application, or a
 * helpdesk operator) and the end user's client as the HTTP edge resolved it.
 */
export interface RequestContext {
  ip: string;
  userAgent: string;
  actor: Actor;
  /** The helpdesk's stated reason, for its actions. */
  reason?: string;
}

/**
 * ErrorCode names every expected failure of the verifier: a domain outcome, stable, which callers
 * branch on. The verifier knows nothing of HTTP; the HTTP edge (http-api.ts) maps each code to its
 * status, and other edges (the Twilio-compatible API, the console) may map them otherwise.
 */
export const ERROR_CODES = [
  'invalid_request',
  'membership_required',
  'membership_from_directory',
  'bad_signature',
  'reauthentication_required',
  'enrollment_not_found',
  'gateway_not_found',
  'identity_store_not_found',
  'user_not_found',
  'verification_not_found',
  'directory_required',
  'enforced_by_role',
  'enrollment_disabled',
  'sms_not_offered',
  'verification_not_pending',
  'invalid_number',
  'number_refused',
  'idempotency_key_reused',
  'locked_out',
  'max_sends_reached',
  'rate_limited',
  'resend_too_soon',
  'gateway_rate_limited',
  'gateway_failed',
  'directory_unavailable',
  'not_ready',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

/** DomainError is an expected failure: its code, what happened, the field at fault, when to come back. */
export interface DomainError {
  code: ErrorCode;
  message: string;
  field?: string;
  retryAfterMs?: number;
  /** The verification concerned, when there is one. */
  verification?: VerificationView;
}

/** Outcome is a verifier answer: a value (created: a new resource), or a DomainError. */
export type Outcome<T> = { ok: true; created?: true; value: T } | { ok: false; error: DomainError };

/** VerificationView is a verification as the API shows it: the number masked, times in ISO 8601. */
export interface VerificationView {
  id: string;
  status: VerificationRecord['status'];
  purpose: Purpose;
  user: string;
  to: string;
  locale: string | null;
  createdAt: string;
  expiresAt: string;
  attemptsLeft: number;
  sendsLeft: number;
  delivery: { status: string; updatedAt: string; errorCode?: string };
  failure?: { code: string; message: string };
}

const fail = (code: ErrorCode, message: string, extra: Partial<DomainError> = {}): { ok: false; error: DomainError } => ({
  ok: false,
  error: { code, message, ...extra },
});

/**
 * BeginRequest is what starting a verification needs, once the caller's request is checked; an
 * authentication's comes with the user's lockout, read with the enrollment (authenticationState).
 */
type BeginRequest = BeginFields & ({ purpose: 'authenticate'; lockout: LockoutState } | { purpose: Exclude<Purpose, 'authenticate'> });

/** BeginFields are what every start's BeginRequest carries, whatever its purpose. */
interface BeginFields {
  user: string;
  /** The number to send to; '' for a decoy (an unknown user, answered alike). */
  to: string;
  fromDirectory?: boolean;
  /** A replacement: the number it replaces ('*': any, for the helpdesk), and the proof it spends. */
  proof?: { replaces: string; spend?: ProofSpend };
  locale: string | null;
  membership: Membership | undefined;
  idempotency: { key: string; body: unknown } | undefined;
  /** What the user's enrollment must be, checked by the store as it creates (see EnrollmentExpected). */
  enrolled?: EnrollmentExpected;
}

/**
 * Verifier runs the code lifecycle for the stores its bundles declare: codes from crypto.randomInt,
 * stored only as a keyed hash bound to verification, purpose and number; attempts counted
 * atomically before comparing; single use; resend cooldown and send limits; role lockout; and
 * answers for authentication that look the same whether the user or the digits are wrong.
 */
export class Verifier {
  private readonly config: VerifierConfig;
  private readonly clock: Clock;
  /** Sends in flight (authentication sends answer before sending), awaited on shutdown. */
  private readonly inFlight = new Set<Promise<void>>();
  /** A moving average of send latency, for decoys to imitate. */
  private typicalSendMs = 200;
  private readonly bindings: Bindings;
  /** The last compliance report of each store (by its bundle's hash), and the ones being made. */
  private readonly complianceCache = new Map<string, { hash: string; report: ComplianceReport }>();
  private readonly complianceInFlight = new Map<string, Promise<ComplianceReport>>();
  /** The roles each store's compliance gauges were last set for, to drop the series of roles gone. */
  private readonly complianceRoles = new Map<string, string[]>();

  private readonly deps: VerifierDeps;
  /** The decoy secret as a key object: an HMAC keyed by one is several times cheaper than by its bytes. */
  private decoyKey: KeyObject;

  constructor(deps: VerifierDeps) {
    this.deps = deps;
    this.decoyKey = createSecretKey(deps.decoySecret);
    this.config = deps.config ?? DEFAULT_VERIFIER_CONFIG;
    this.bindings = new Bindings(this.config.rememberedBindings);
    this.clock = deps.clock ?? systemClock;
  }

  private now(): number {
    return this.clock.now();
  }

  /** ready tells whether bundles are loaded. */
  ready(): boolean {
    return this.deps.bundles.ready();
  }

  /** drain waits for the sends in flight. */
  async drain(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  // ---- verifications -------------------------------------------------------------------------

  /**
   * startVerification sends a code for enrollment (to the given number) or authentication (to the
   * enrolled number, which must match). Replacing a user's enrolled number with another takes
   * proof: an authentication of the same user approved within the last ten minutes, spent here
   * (NIST SP 800-63B §6.1: authenticate before binding a new authenticator).
   */
  async startVerification(
    ctx: RequestContext,
    ns: string,
    storeName: string,
    body: { to: string; purpose: 'enroll' | 'authenticate'; user: string; locale?: string; groups?: string[]; containers?: string[]; proof?: string },
    idempotencyKey?: string,
  ): Promise<Outcome<VerificationView>> {
    const store = this.storeOf(ns, storeName);
    if (!store.ok) return store;
    const { bundle } = store.value;
    const number = numberOf(bundle, body.to);
    if (!number.ok) return number;
    const user = userKey(store.value, body.user);
    const who = await this.whoIs(store.value, user, body);
    if (!who.ok) return who;
    const membership = who.value.membership;
    // A retry is the same request whatever the order of its fields or the way its number is written.
    const { client: _client, ...rest } = body as typeof body & { client?: unknown };
    const request = { ...rest, user, to: number.value.e164 };
    const idempotency = idempotencyKey === undefined ? undefined : { key: idempotencyKey, body: request };
    if (body.purpose === 'enroll') {
      // The application enrolls a user who has just signed in: one the directory does not know is refused.
      if (who.value.known === false)
        return fail('user_not_found', `the directory of identity store ${ns}/${storeName} has no user ${body.user}`, { field: '/user' });
      const begin = { purpose: 'enroll' as const, user, to: number.value.e164, locale: body.locale ?? null, membership, idempotency };
      if (body.proof === undefined) {
        // Without a proof, this number must be the user's already, or (where enrollment is open)
        // the user have none: the store checks it as it creates, in the same step.
        const enrolled = { to: number.value.e164, orNone: bundle.enrollmentEnabled };
        // With a fraud guard it is read first too, so that the guard judges (counts, logs) only
        // the starts that the enrollment does not refuse.
        if (bundle.sms.fraudGuard !== undefined) {
          const found = await this.deps.store.getEnrollment(ns, storeName, user);
          if (!isEnrollmentAsExpected(found, enrolled)) return this.enrollmentRefused(ns, storeName, user, found);
        }
        return this.begin(ctx, store.value, { ...begin, enrolled });
      }
      const current = await this.deps.store.getEnrollment(ns, storeName, user);
      if (current === undefined && !bundle.enrollmentEnabled) return this.enrollmentClosed(ns, storeName);
      // Replacing the number takes proof of it: spent when the replacement is created, atomically.
      const replacing = current !== undefined && current.to !== number.value.e164;
      if (!replacing) return this.begin(ctx, store.value, begin);
      return this.begin(ctx, store.value, {
        ...begin,
        proof: { replaces: current.to, spend: { id: body.proof, maxAgeMs: PROOF_MAX_AGE_MS, now: this.now() } },
      });
    }
    // Read for known and unknown users alike: the same store operations, whatever the name.
    const { stored, lockout } = await this.authenticationState(ns, storeName, user);
    const enrollment = who.value.known === false ? undefined : stored;
    const fromDirectory = enrollment === undefined ? this.secondWayNumber(bundle, who.value.mobile) : undefined;
    const matches = (enrollment?.to ?? fromDirectory) === number.value.e164;
    return this.begin(ctx, store.value, {
      purpose: 'authenticate',
      user,
      to: matches ? number.value.e164 : '',
      fromDirectory: matches && fromDirectory !== undefined,
      locale: body.locale ?? null,
      membership,
      idempotency,
      lockout,
    });
  }

  /**
   * setDecoySecret replaces the decoy secret (the code keys Secret made again): from now on this
   * replica names decoys, stand-ins and number aliases as replicas started with the new one do.
   */
  setDecoySecret(secret: Buffer): void {
    this.decoyKey = createSecretKey(secret);
  }

  /** decoyDigest is `hexChars` hex digits of an HMAC of text under the decoy secret: a stable name that tells nothing of what it names. */
  private decoyDigest(text: string, hexChars: number): string {
    return createHmac('sha256', this.decoyKey).update(text).digest('hex').slice(0, hexChars);
  }

  /** enrollmentRefused answers an enrollment its user's enrollment refuses: another number enrolled (replacing it takes proof), or none where enrollment is closed. */
  private enrollmentRefused(ns: string, storeName: string, user: string, found: Enrollment | undefined): { ok: false; error: DomainError } {
    return found === undefined ? this.enrollmentClosed(ns, storeName) : this.proofRequired(user);
  }

  private proofRequired(user: string): { ok: false; error: DomainError } {
    return fail(
      'reauthentication_required',
      `user ${user} has a number enrolled: authenticate them with it first, and pass that verification's id as proof (or ask the helpdesk)`,
      { field: '/proof' },
    );
  }

  private proofRefused(proof: string, reason: Exclude<ProofResult, 'ok'>): { ok: false; error: DomainError } {
    const why: Record<Exclude<ProofResult, 'ok'>, string> = {
      'not-found': 'is not an authentication of this identity store',
      'other-user': 'authenticated another user',
      'not-approved': 'is not approved',
      stale: `was approved more than ${PROOF_MAX_AGE_MS / 60_000} minutes ago`,
      used: 'was already used as proof',
      'other-number': "was sent to a number that is not the user's enrolled one",
    };
    return fail('reauthentication_required', `the proof ${proof} ${why[reason]}: authenticate the user again with their current number`, {
      field: '/proof',
    });
  }

  private enrollmentClosed(ns: string, storeName: string): { ok: false; error: DomainError } {
    return fail(
      'enrollment_disabled',
      `identity store ${ns}/${storeName} takes no new enrollments (spec.enrollment.enabled is false); enrolled users keep authenticating`,
      { field: '/purpose' },
    );
  }

  /** challenge starts an authentication to the user's enrolled number, after the last four digits when the store asks for them. */
  async challenge(
    ctx: RequestContext,
    ns: string,
    storeName: string,
    name: string,
    body: { type: 'SMS'; lastDigits?: string; locale?: string; groups?: string[]; containers?: string[] },
  ): Promise<Outcome<VerificationView>> {
    const store = this.storeOf(ns, storeName);
    if (!store.ok) return store;
    const { bundle } = store.value;
    const user = userKey(store.value, name);
    if (bundle.sms.lastDigitsChallenge && (body.lastDigits === undefined || !/^\d{4}$/.test(body.lastDigits))) {
      return fail('invalid_request', 'lastDigits must be the last 4 digits of the enrolled number', { field: '/lastDigits' });
    }
    const who = await this.whoIs(store.value, user, body);
    if (!who.ok) return who;
    // The enrolled number; else, with second-way authentication, the directory's. A user the
    // directory does not know, wrong digits, no number at all: the same answer, a decoy.
    const { stored, lockout } = await this.authenticationState(ns, storeName, user);
    const enrollment = who.value.known === false ? undefined : stored;
    const number = enrollment?.to ?? this.secondWayNumber(bundle, who.value.mobile);
    const digitsOk = !bundle.sms.lastDigitsChallenge || (number !== undefined && lastDigits(number) === body.lastDigits);
    const to = number !== undefined && digitsOk ? number : '';
    return this.begin(ctx, store.value, {
      purpose: 'authenticate',
      user,
      to,
      fromDirectory: to !== '' && enrollment === undefined,
      locale: body.locale ?? null,
      membership: who.value.membership,
      idempotency: undefined,
      lockout,
    });
  }

  /**
   * authenticationState reads what an authentication start needs of the user, both at once (one
   * step on stores that batch what a turn asks): the enrollment and the lockout.
   */
  private async authenticationState(ns: string, storeName: string, user: string): Promise<{ stored: Enrollment | undefined; lockout: LockoutState }> {
    const [stored, lockout] = await Promise.all([
      this.deps.store.getEnrollment(ns, storeName, user),
      this.deps.store.getLockout(ns, storeName, user, this.now()),
    ]);
    return { stored, lockout };
  }

  // ---- helpdesk ------------------------------------------------------------------------------

  /**
   * helpdeskVerification sends a code to the user's enrolled number (or, with second-way
   * authentication, the directory's) for an operator to check while the user is on the phone: no
   * last digits, no lockout (the operator may be about to lift it), its own purpose in history.
   */
  async helpdeskVerification(ctx: RequestContext, ns: string, storeName: string, name: string, body: { locale?: string }): Promise<Outcome<VerificationView>> {
    const found = await this.userOf(ns, storeName, name, true);
    if (!found.ok) return found;
    const { store, user, who } = found.value;
    if (who.known === false) return fail('user_not_found', `the directory of identity store ${ns}/${storeName} has no user ${name}`, { field: 'user' });
    const enrollment = await this.deps.store.getEnrollment(ns, storeName, user);
    const to = enrollment?.to ?? this.secondWayNumber(store.bundle, who.mobile);
    if (to === undefined)
      return fail(
        'enrollment_not_found',
        `user ${user} has no SMS enrollment${store.bundle.sms.secondWayAuthentication ? ' and no usable mobile number in the directory' : ''}`,
        { field: 'user' },
      );
    return this.begin(ctx, store, {
      purpose: 'helpdesk',
      user,
      to,
      fromDirectory: enrollment === undefined,
      locale: body.locale ?? null,
      membership: who.membership,
      idempotency: undefined,
    });
  }

  /** helpdeskEnroll sends a code to a new number for the user; approved, it replaces any number the user has (the helpdesk acts for the user). */
  async helpdeskEnroll(
    ctx: RequestContext,
    ns: string,
    storeName: string,
    name: string,
    body: { to: string; locale?: string },
  ): Promise<Outcome<VerificationView>> {
    const store = this.storeOf(ns, storeName);
    if (!store.ok) return store;
    const { bundle } = store.value;
    const number = numberOf(bundle, body.to);
    if (!number.ok) return number;
    const user = userKey(store.value, name);
    const who = await this.whoIs(store.value, user, {});
    if (!who.ok) return who;
    if (who.value.known === false) return fail('user_not_found', `the directory of identity store ${ns}/${storeName} has no user ${name}`, { field: 'user' });
    if (!bundle.enrollmentEnabled && (await this.deps.store.getEnrollment(ns, storeName, user)) === undefined) return this.enrollmentClosed(ns, storeName);
    return this.begin(ctx, store.value, {
      purpose: 'enroll',
      user,
      to: number.value.e164,
      proof: { replaces: '*' },
      locale: body.locale ?? null,
      membership: who.value.membership,
      idempotency: undefined,
    });
  }

  /**
   * startPossession sends a code to confirm that the caller holds a number (the Twilio-compatible
   * API's verifications): no user, no enrollment made or changed. It counts under a stand-in user
   * derived from the number (so the per-user limit is per number), the fraud guard judges it as an
   * enrollment's (the number is the caller's word), and history records it as `verify`.
   */
  async startPossession(ctx: RequestContext, ns: string, storeName: string, body: { to: string; locale?: string }): Promise<Outcome<VerificationView>> {
    const store = this.storeOf(ns, storeName);
    if (!store.ok) return store;
    const number = numberOf(store.value.bundle, body.to);
    if (!number.ok) return number;
    return this.begin(ctx, store.value, {
      purpose: 'possession',
      user: this.possessionUser(ns, storeName, number.value.e164),
      to: number.value.e164,
      locale: body.locale ?? null,
      membership: undefined,
      idempotency: undefined,
    });
  }

  /**
   * approvePossession approves a pending possession verification without a code (Twilio's
   * Status=approved: the application confirmed the holder another way), recorded in history.
   */
  async approvePossession(ctx: RequestContext, ns: string, storeName: string, id: string): Promise<Outcome<VerificationView>> {
    const store = this.storeOf(ns, storeName, false);
    if (!store.ok) return store;
    const current = await this.deps.store.getVerification(ns, storeName, id);
    if (current === undefined || current.purpose !== 'possession') return fail('verification_not_found', `verification ${id} not found`);
    const now = this.now();
    // Its history event (and, with an events endpoint, verification.approved) in the same step, as a code's approval.
    const audit = this.auditWrite(ctx, store.value, current.user, 'verify', 'success', undefined, now);
    audit.event = { ...audit.event, verificationId: id };
    // Past its expiry a pending verification is expired: approving it would revive it.
    const ended = now >= current.expiresAt ? undefined : await this.deps.store.finish(ns, storeName, id, 'approved', undefined, now, audit);
    if (ended === undefined)
      return fail('verification_not_pending', `the verification is ${this.view(current).status}; start a new one`, { verification: this.view(current) });
    if (audit.publish === true) this.deps.published?.(ns, storeName);
    return { ok: true, value: this.view(ended) };
  }

  /**
   * possessionAlias is the key a number's pending possession verification is found by (keyed, so
   * that the key names no number even to who reads the state store's keys).
   */
  possessionAlias(ns: string, store: string, to: string): string {
    const digits = to.replace(/[^\d+]/g, '');
    return `twilio:${this.decoyDigest(`alias:${ns}/${store}/${digits}`, 32)}`;
  }

  /** possessionUser is the stand-in user of a number's possession verifications: keyed, stable across replicas, no digit of the number. */
  private possessionUser(ns: string, store: string, e164: string): string {
    return `number:${this.decoyDigest(`possession:${ns}/${store}/${e164}`, 16)}`;
  }

  /** unlock ends the user's lockout and forgets their failures, recorded with the operator and the reason. */
  async unlock(ctx: RequestContext, ns: string, storeName: string, name: string): Promise<Outcome<{ user: string; wasLockedOut: boolean }>> {
    const found = await this.userOf(ns, storeName, name, false);
    if (!found.ok) return found;
    const { store, user, who } = found.value;
    const now = this.now();
    const was = await this.deps.store.clearLockout(ns, storeName, user, now, this.auditWrite(ctx, store, user, 'unlock', 'success', who.membership, now));
    return { ok: true, value: { user, wasLockedOut: was } };
  }

  /**
   * whoIs says who a user is for a store: with a directory, the directory says (groups claimed in
   * the request are refused, and a directory that cannot answer is 503, never "no groups");
   * without one, the caller vouches for the groups and containers it sends.
   */
  private async whoIs(resolved: ResolvedStore, user: string, claimed: { groups?: string[]; containers?: string[] }): Promise<Outcome<Who>> {
    const dir = resolved.directory;
    if (dir === undefined) {
      const membership =
        claimed.groups !== undefined || claimed.containers !== undefined ? { groups: claimed.groups ?? [], containers: claimed.containers ?? [] } : undefined;
      return { ok: true, value: { membership, known: undefined, mobile: null } };
    }
    if (claimed.groups !== undefined || claimed.containers !== undefined) {
      return fail(
        'membership_from_directory',
        `identity store ${resolved.bundle.namespace}/${resolved.bundle.identityStore} reads groups and containers from its directory; do not send them`,
        { field: claimed.groups !== undefined ? '/groups' : '/containers' },
      );
    }
    let found: DirectoryUser | undefined;
    try {
      found = await dir.lookup(user);
    } catch (err) {
      if (!(err instanceof DirectoryUnavailableError)) throw err;
      this.deps.log.warn(
        { namespace: resolved.bundle.namespace, store: resolved.bundle.identityStore, problem: err.problem, server: err.server, code: err.detail },
        'directory unavailable',
      );
      // A directory that throttles says when to come back (bounded to a minute); else a second.
      return fail('directory_unavailable', "the identity store's directory cannot be reached; try again shortly", {
        retryAfterMs: Math.min(60_000, Math.max(1000, err.retryAfterMs ?? 1000)),
      });
    }
    // A name the directory does not know has no membership: its lockout is the strictest of the
    // store's roles, as any user's may be, so that counting failures tells no names apart.
    const membership = found === undefined ? undefined : { groups: found.groups, containers: found.container === null ? [] : [found.container] };
    return { ok: true, value: { membership, known: found !== undefined, mobile: found?.mobile ?? null } };
  }

  /** userOf resolves a request about a user, with no membership claimed: the store served, the user's key, and who the directory says they are. */
  private async userOf(ns: string, storeName: string, name: string, needSms: boolean): Promise<Outcome<{ store: ResolvedStore; user: string; who: Who }>> {
    const store = this.storeOf(ns, storeName, needSms);
    if (!store.ok) return store;
    const user = userKey(store.value, name);
    const who = await this.whoIs(store.value, user, {});
    if (!who.ok) return who;
    return { ok: true, value: { store: store.value, user, who: who.value } };
  }

  /** secondWayNumber is the directory's number for an unenrolled user, when the store allows it and it is a number the store accepts. */
  private secondWayNumber(bundle: Bundle, mobile: string | null): string | undefined {
    if (!bundle.sms.secondWayAuthentication || mobile === null) return undefined;
    const number = normalizeNumber(mobile, bundle.sms.allowedCountries, undefined);
    return number.ok ? number.value.e164 : undefined;
  }

  private async begin(ctx: RequestContext, resolved: ResolvedStore, req: BeginRequest): Promise<Outcome<VerificationView>> {
    const { bundle } = resolved;
    const ns = bundle.namespace;
    const storeName = bundle.identityStore;
    const now = this.now();
    if (req.purpose === 'authenticate') {
      const until = req.lockout.lockedUntil;
      if (until !== null) return this.lockedOut(until - now);
    }
    const decoy = req.to === '';
    // The guard judges enrollments and possession checks only: their number is the caller's word.
    // An authentication goes to a number verified at enrollment, and judging it would tell real
    // users from decoys.
    const guard = (req.purpose === 'enroll' || req.purpose === 'possession') && !decoy ? await this.guardStart(resolved, req.to, now) : undefined;
    const code = generateCode(bundle.sms.code.length);
    const record = this.newRecord(ctx, bundle, req, now, decoy ? generateCode(bundle.sms.code.length) : code);
    const id = record.id;
    const idem =
      req.idempotency === undefined
        ? undefined
        : { key: req.idempotency.key, fingerprint: fingerprint(req.idempotency.body), ttlMs: this.config.idempotencyTtlMs };
    // The send limits are taken with the creation, in one step: a replayed Idempotency-Key takes none.
    const quotas = this.sendQuotas(resolved, req.user, this.numberKey(ns, storeName, req.purpose, req.user, req.to), ctx.ip, guard?.refuse === true);
    // The proof is judged at the verification's own time, on every store alike.
    const spend = req.proof?.spend === undefined ? undefined : { ...req.proof.spend, now };
    const created = await this.deps.store.createVerification(record, idem, quotas, spend, req.enrolled);
    if (created.outcome === 'proof-refused') return this.proofRefused(req.proof!.spend!.id, created.reason);
    if (created.outcome === 'enrollment-differs') return this.enrollmentRefused(ns, storeName, req.user, created.enrollment);
    if (created.outcome === 'limited') {
      // An enrollment the guard stopped is in history (the helpdesk's), with no hint to the caller.
      if (guard?.refuse === true && created.quota === 'prefix') {
        const { event, retention } = this.auditWrite(ctx, resolved, req.user, 'enroll', 'refused', req.membership, now);
        await this.deps.store
          .addHistory(event, retention)
          .catch((err: unknown) => this.deps.log.warn({ namespace: ns, store: storeName, err: errorKind(err) }, 'history not written'));
      }
      return this.rateLimited(created.quota, created.retryAfterMs);
    }
    if (created.outcome === 'conflict')
      return fail('idempotency_key_reused', 'this Idempotency-Key was used for another request; use a new key', { field: 'Idempotency-Key' });
    if (created.outcome === 'replayed') return { ok: true, created: true, value: this.view(created.record) };
    this.bindings.remember(record);
    this.deps.metrics.started.inc({ namespace: ns, store: storeName, purpose: req.purpose });
    if (guard?.keys !== undefined) await this.countStart(bundle, guard.keys, now);

    if (req.purpose !== 'authenticate') {
      // Enrollment answers after the send: the caller typed the number and wants to know it
      // worked; so does the helpdesk, whose caller waits on the phone.
      const sent = await this.deliver(resolved, record, code);
      return sent.ok
        ? { ok: true, created: true, value: this.view(sent.record) }
        : { ok: false, error: { ...sent.error, verification: this.view(sent.record) } };
    }
    // Authentication answers before sending, real or decoy alike, so that neither the answer nor its timing tells them apart.
    this.background(decoy ? this.pretendDelivery(resolved, record) : this.deliver(resolved, record, code).then(() => undefined));
    this.deps.log.info({ namespace: ns, store: storeName, verification: id, purpose: req.purpose }, 'verification started');
    return { ok: true, created: true, value: this.view(record) };
  }

  /** newRecord is a pending verification as begin stores it; its hash is of `hashed`, the code sent (a decoy's: a code nobody was sent, which can never be approved). */
  private newRecord(ctx: RequestContext, bundle: Bundle, req: BeginRequest, now: number, hashed: string): VerificationRecord {
    const id = verificationId(now);
    const lockout = lockoutFor(bundle, req.membership);
    return {
      id,
      namespace: bundle.namespace,
      store: bundle.identityStore,
      purpose: req.purpose,
      user: req.user,
      to: req.to,
      locale: req.locale,
      status: 'pending',
      createdAt: now,
      expiresAt: now + bundle.sms.code.ttlMs,
      code: this.deps.hasher.mac(id, req.purpose, req.to, hashed),
      attempts: 0,
      maxAttempts: bundle.sms.code.maxAttempts,
      sends: 1,
      maxSends: bundle.sms.code.maxSends,
      lastSentAt: now,
      resendCooldownMs: bundle.sms.code.resendCooldownMs,
      lockout: { threshold: lockout.failedAttemptsThreshold, durationMs: lockout.durationMs },
      delivery: { status: 'sending', updatedAt: now },
      client: { ip: ctx.ip, userAgent: ctx.userAgent },
      actor: ctx.actor,
      role: roleOf(bundle, req.membership),
      ...(req.fromDirectory === true ? { numberFrom: 'directory' as const } : {}),
      ...(req.proof !== undefined ? { replaces: req.proof.replaces } : {}),
      ...(ctx.reason !== undefined ? { reason: ctx.reason } : {}),
      ...(req.purpose === 'enroll' || req.purpose === 'possession' ? { maskedTo: this.auditMask(req.to) } : {}),
    };
  }

  private async deliver(
    resolved: ResolvedStore,
    record: VerificationRecord,
    code: string,
  ): Promise<{ ok: true; record: VerificationRecord } | { ok: false; error: DomainError; record: VerificationRecord }> {
    const { bundle } = resolved;
    const text = pickText(bundle, record.locale);
    const message = {
      to: record.to,
      text: renderText(text, { code, user: record.user, minutes: bundle.sms.minutes }, bundle.sms.originBoundDomain ?? undefined),
      namespace: record.namespace,
      store: record.store,
      reference: record.id,
      validitySeconds: Math.max(1, Math.floor((record.expiresAt - this.now()) / 1000)),
    };
    const started = this.now();
    const outcome = await this.deps.send(resolved.gateways, message, this.config.sendDeadlineMs);
    // One reading of the clock for everything the send's answer sets: its latency, the delivery's
    // time and the message index's life are of the same moment.
    const answered = this.now();
    this.typicalSendMs = this.typicalSendMs * 0.9 + (answered - started) * 0.1;
    const labels = { namespace: record.namespace, store: record.store, account: outcome.account ?? resolved.gateways[0]?.account ?? 'none' };
    this.deps.metrics.gatewayLatency.observe({ account: labels.account }, (answered - started) / 1000);
    if (outcome.ok) {
      this.deps.metrics.sends.inc({ ...labels, result: 'sent' });
      const delivery = { status: 'sent' as const, account: outcome.account, messageId: outcome.result.messageId, updatedAt: answered };
      await this.deps.store.recordSent(
        { namespace: record.namespace, store: record.store, id: record.id },
        outcome.result.provider,
        delivery,
        answered,
        record.expiresAt - answered + 24 * 3_600_000,
      );
      this.deps.log.info(
        { namespace: record.namespace, store: record.store, verification: record.id, account: outcome.account, segments: outcome.result.segments },
        'code sent',
      );
      return { ok: true, record: { ...record, delivery } };
    }
    const err = outcome.error;
    this.deps.metrics.sends.inc({ ...labels, result: err.code });
    this.deps.log.warn(
      {
        namespace: record.namespace,
        store: record.store,
        verification: record.id,
        account: outcome.account,
        error: err.code,
        providerCode: err.details.providerCode,
      },
      'send failed',
    );
    const failure = { code: `gateway_${err.code}`, message: err.message };
    // The send failed: the verification ends failed, and counts no attempt against the user.
    const ended = (await this.deps.store.finish(record.namespace, record.store, record.id, 'failed', failure)) ?? {
      ...record,
      status: 'failed' as const,
      failure,
    };
    const delivery: Delivery = {
      status: 'failed',
      ...(outcome.account !== undefined ? { account: outcome.account } : {}),
      errorCode: err.details.providerCode ?? err.code,
      updatedAt: answered,
    };
    await this.deps.store.setDelivery(record.namespace, record.store, record.id, delivery);
    const failed: ErrorCode = err.code === 'InvalidNumber' ? 'invalid_number' : err.code === 'RateLimited' ? 'gateway_rate_limited' : 'gateway_failed';
    // A provider's rate limit always says when to come back: its own Retry-After, else a second.
    const retryAfterMs = err.details.retryAfterMs ?? (failed === 'gateway_rate_limited' ? 1000 : undefined);
    return {
      ok: false,
      record: { ...ended, delivery },
      error: {
        code: failed,
        message: `the code could not be sent: ${err.message}`,
        // The number is the caller's field where the caller gave it (an enrollment, a possession).
        ...(err.code === 'InvalidNumber' && (record.purpose === 'enroll' || record.purpose === 'possession') ? { field: '/to' } : {}),
        ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
      },
    };
  }

  /**
   * pretendDelivery makes a decoy's delivery read like a real one: 'sent', after about as long as
   * real sends take. (Receipts can still differ later: callers must not show delivery details to
   * an end user who has not authenticated.)
   */
  private async pretendDelivery(resolved: ResolvedStore, record: VerificationRecord): Promise<void> {
    await new Promise<void>((resolve) => this.clock.setTimeout(resolve, this.typicalSendMs * (0.75 + Math.random() / 2)));
    await this.deps.store.setDelivery(record.namespace, record.store, record.id, {
      status: 'sent',
      account: resolved.gateways[0]?.account ?? 'none',
      updatedAt: this.now(),
    });
  }

  private background(p: Promise<void>): void {
    const tracked = p
      .catch((err: unknown) => this.deps.log.error({ err: errorKind(err) }, 'background send failed'))
      .finally(() => this.inFlight.delete(tracked));
    this.inFlight.add(tracked);
  }

  /**
   * sendQuotas are the limits a send must fit in: per number, per user, per number prefix, per
   * client address when the store declares it, and per store (fixed windows, the store's
   * spec.sms.limits or the defaults), and the first account's own rate (a token bucket). They are
   * taken together or not at all, so that a send refused by one limit costs nothing in the others.
   * A send the fraud guard refuses (guarded) gets one more, last, that admits nothing: named and
   * windowed as the per-prefix limit, so that its answer is that limit's, and the store refuses it
   * after answering a replayed Idempotency-Key with its verification.
   */
  private sendQuotas(resolved: ResolvedStore, user: string, numberKey: string, client: string, guarded = false): SendQuota[] {
    const { bundle } = resolved;
    // The store's hash tag, so that a Redis Cluster keeps a store's counters in one slot with its
    // verifications; an account's rate, shared by stores, is tagged by the account.
    const tag = keyTag(bundle.namespace, bundle.identityStore);
    const { perNumber, perUser, perPrefix, perClient, global } = bundle.sms.limits ?? this.config.limits;
    // An authentication's stand-in number (auth:<16 hex>) falls in one of 256 prefix buckets, as
    // real numbers fall under many prefixes.
    const prefix = numberKey.startsWith('+') ? numberPrefix(numberKey) : numberKey.slice(0, 'auth:'.length + 2);
    const quotas: SendQuota[] = [
      { name: 'number', kind: 'window', key: `rl:number:${tag}:${numberKey}`, limit: perNumber.limit, windowMs: perNumber.windowMs },
      { name: 'user', kind: 'window', key: `rl:user:${tag}:${user}`, limit: perUser.limit, windowMs: perUser.windowMs },
      { name: 'prefix', kind: 'window', key: `rl:prefix:${tag}:${prefix}`, limit: perPrefix.limit, windowMs: perPrefix.windowMs },
      // No address (the helpdesk's own actions): no per-client limit, rather than one shared by all.
      ...(perClient !== null && client !== ''
        ? [{ name: 'client', kind: 'window', key: `rl:client:${tag}:${client}`, limit: perClient.limit, windowMs: perClient.windowMs } as const]
        : []),
      { name: 'global', kind: 'window', key: `rl:global:${tag}`, limit: global.limit, windowMs: global.windowMs },
    ];
    const account = bundle.sms.gateways[0];
    if (account?.sendRateLimit !== undefined) {
      quotas.push({
        name: 'account',
        kind: 'bucket',
        key: `rl:account:${keyTag(bundle.namespace, account.name)}`,
        perSecond: account.sendRateLimit.messagesPerSecond,
        burst: account.sendRateLimit.burst,
      });
    }
    if (guarded) quotas.push({ name: 'prefix', kind: 'window', key: `rl:guard:${tag}`, limit: 0, windowMs: perPrefix.windowMs });
    return quotas;
  }

  /**
   * guardStart is the fraud guard's word on a start to a number, before anything is stored:
   * refuse (a blocked prefix, the kill switch, or a block in Enforce), or the counters the start
   * will count under once it is stored.
   */
  private async guardStart(resolved: ResolvedStore, to: string, now: number): Promise<{ refuse?: true; keys?: string[] } | undefined> {
    const { bundle } = resolved;
    const guard = bundle.sms.fraudGuard;
    if (guard === undefined || !to.startsWith('+')) return undefined;
    const labels = { namespace: bundle.namespace, store: bundle.identityStore };
    const verdict = judgeNumber(guard, keyTag(bundle.namespace, bundle.identityStore), to);
    if (verdict.action === 'skip') return undefined;
    if (verdict.action === 'kill-switch') {
      this.deps.metrics.fraudGuard.inc({ ...labels, action: 'kill_switch' });
      this.deps.log.warn({ ...labels, prefix: verdict.prefix }, 'fraud guard: start to a blocked prefix refused');
      return { refuse: true };
    }
    const blocks = await this.deps.store.fraudBlocks(verdict.keys, now);
    if (blocks.length > 0) {
      const prefixes = blocks.map((b) => prefixOfKey(b.key));
      if (guard.mode === 'Enforce') {
        this.deps.metrics.fraudGuard.inc({ ...labels, action: 'blocked' });
        this.deps.log.warn({ ...labels, prefixes }, 'fraud guard: start refused, its prefix converts too little');
        return { refuse: true };
      }
      this.deps.metrics.fraudGuard.inc({ ...labels, action: 'monitored' });
      this.deps.log.warn({ ...labels, prefixes }, 'fraud guard (Monitor): a start Enforce would refuse');
    }
    return { keys: verdict.keys };
  }

  /** countStart counts a stored start under its counters; a prefix or country it blocks is told (metrics, log), once. */
  private async countStart(bundle: Bundle, keys: readonly string[], now: number): Promise<void> {
    const guard = bundle.sms.fraudGuard!;
    const labels = { namespace: bundle.namespace, store: bundle.identityStore };
    try {
      const publish =
        bundle.events !== undefined ? { namespace: bundle.namespace, store: bundle.identityStore, enforced: guard.mode === 'Enforce' } : undefined;
      for (const b of await this.deps.store.fraudStart(keys, now, guard, publish)) {
        if (!b.newly) continue;
        if (publish !== undefined) this.deps.published?.(bundle.namespace, bundle.identityStore);
        this.deps.metrics.fraudGuard.inc({ ...labels, action: 'prefix_blocked' });
        this.deps.log.warn(
          { ...labels, prefix: prefixOfKey(b.key), until: isoTime(b.until), mode: guard.mode },
          guard.mode === 'Enforce' ? 'fraud guard: prefix blocked, its conversion fell' : 'fraud guard (Monitor): prefix would be blocked, its conversion fell',
        );
      }
    } catch (err) {
      // The start is stored and sends: a guard that cannot count fails open, and says so.
      this.deps.log.warn({ ...labels, err: errorKind(err) }, 'fraud guard: start not counted');
    }
  }

  private rateLimited(quota: string, retryAfterMs: number): { ok: false; error: DomainError } {
    this.deps.metrics.rateLimited.inc({ scope: quota });
    return fail('rate_limited', `too many codes sent (${quota} limit); try again later`, { retryAfterMs: Math.max(1000, retryAfterMs) });
  }

  /**
   * check compares a code with the verification's; the attempt is counted before comparing. The
   * application checks its users' codes, never a helpdesk identity check; the helpdesk checks
   * only the verifications it started.
   */
  async check(ctx: RequestContext, ns: string, storeName: string, id: string, code: string): Promise<Outcome<VerificationView>> {
    const store = this.storeOf(ns, storeName, false);
    if (!store.ok) return store;
    const now = this.now();
    // What the code is bound to (purpose, number) and whose it is never change: known from this
    // replica's own start, the check goes straight to the attempt.
    let binding = this.bindings.get(ns, storeName, id);
    if (binding === undefined) {
      const current = await this.deps.store.getVerification(ns, storeName, id);
      if (current === undefined) return fail('verification_not_found', `verification ${id} not found`);
      this.bindings.remember(current);
      binding = bindingOf(current);
    }
    if (!visibleTo(ctx.actor, binding)) return fail('verification_not_found', `verification ${id} not found`);
    // The candidates are signed for the verification's binding; its id, purpose and number never
    // change. The store counts, compares, applies the lockout, enrolls and records the history in
    // one step.
    const candidates = this.deps.hasher.candidates(id, binding.purpose, binding.to, code);
    const attempt = await this.deps.store.attempt(
      ns,
      storeName,
      id,
      now,
      /^\d{4,10}$/.test(code) ? candidates : [],
      this.checkAudit(ctx, store.value.bundle, id, binding, now),
      binding.user,
    );
    if (attempt === undefined) return fail('verification_not_found', `verification ${id} not found`);
    if (attempt.counted && store.value.bundle.events !== undefined) this.deps.published?.(ns, storeName);
    if (attempt.lockedUntil !== undefined) return this.lockedOut(attempt.lockedUntil - now);
    const r = attempt.record;
    if (!attempt.counted) {
      this.deps.metrics.checks.inc({ namespace: ns, store: storeName, result: 'refused' });
      // The stores end a verification at its last attempt (max_attempts_reached), so an uncounted one is no longer pending.
      return fail('verification_not_pending', `the verification is ${r.status}; start a new one`, { verification: this.view(r) });
    }
    if (attempt.approved) {
      this.deps.metrics.checks.inc({ namespace: ns, store: storeName, result: 'approved' });
      const guard = store.value.bundle.sms.fraudGuard;
      // Counted as its start was: enrollments and possession checks, not safe-listed numbers.
      const judged =
        guard !== undefined && (r.purpose === 'enroll' || r.purpose === 'possession') && r.to.startsWith('+')
          ? judgeNumber(guard, keyTag(ns, storeName), r.to)
          : undefined;
      if (guard !== undefined && judged?.action === 'track') {
        await this.deps.store
          .fraudApproved(judged.keys, now, guard)
          .catch((err: unknown) => this.deps.log.warn({ namespace: ns, store: storeName, err: errorKind(err) }, 'fraud guard: approval not counted'));
      }
      this.deps.log.info({ namespace: ns, store: storeName, verification: id, purpose: r.purpose }, 'verification approved');
      return { ok: true, value: this.view(r) };
    }
    this.deps.metrics.checks.inc({ namespace: ns, store: storeName, result: 'wrong_code' });
    if (attempt.lockedNow === true) this.deps.log.warn({ namespace: ns, store: storeName, user: r.user }, 'user locked out after consecutive failures');
    return { ok: true, value: this.view(r) };
  }

  /**
   * checkAudit names the history event of each outcome of a check: an enrollment records its
   * success and its last failed attempt; an authentication records every success and failure,
   * and the lockout a failure starts.
   */
  private checkAudit(ctx: RequestContext, bundle: Bundle, id: string, binding: Binding, now: number): AttemptAudit {
    const { namespace: ns, identityStore: storeName } = bundle;
    // What the helpdesk started is the helpdesk's act, with its reason: the operator who types the
    // code, or the one who started it when the user types it through the application.
    const starter = ctx.actor.startsWith('helpdesk:') || !binding.actor.startsWith('helpdesk:') ? ctx.actor : binding.actor;
    const reason = binding.reason ?? ctx.reason;
    const event = (type: HistoryEvent['type'], result: HistoryEvent['result'], actor: Actor = starter): Omit<HistoryEvent, 'seq'> => ({
      namespace: ns,
      store: storeName,
      user: binding.user,
      type,
      result,
      time: now,
      actor,
      clientIp: ctx.ip,
      userAgent: ctx.userAgent,
      role: binding.role,
      verificationId: id,
      ...(reason !== undefined ? { reason } : {}),
    });
    const exhausted = (type: HistoryEvent['type']): Omit<HistoryEvent, 'seq'> => ({ ...event(type, 'failure'), exhausted: true });
    const events =
      binding.purpose === 'enroll'
        ? { approved: event('enroll', 'success'), exhausted: exhausted('enroll') }
        : binding.purpose === 'possession'
          ? { approved: event('verify', 'success'), exhausted: exhausted('verify') }
          : binding.purpose === 'helpdesk'
            ? { approved: event('helpdesk_verify', 'success'), wrong: event('helpdesk_verify', 'failure'), exhausted: exhausted('helpdesk_verify') }
            : {
                approved: event('authenticate', 'success'),
                wrong: event('authenticate', 'failure'),
                exhausted: exhausted('authenticate'),
                locked: event('lockout', 'locked', 'system'),
              };
    // With an events endpoint, the outcomes that make events go to the outbox in the same step.
    const publish = bundle.events !== undefined ? (['approved', 'exhausted', 'locked'] as const) : undefined;
    return { events, retention: this.config.history, ...(publish !== undefined ? { publish } : {}) };
  }

  /** auditWrite is a history event of an action on a user, with the role that decides for them. */
  private auditWrite(
    ctx: RequestContext,
    resolved: ResolvedStore,
    user: string,
    type: HistoryEvent['type'],
    result: HistoryEvent['result'],
    membership: Membership | undefined,
    now: number,
  ): AuditWrite {
    const event: Omit<HistoryEvent, 'seq'> = {
      namespace: resolved.bundle.namespace,
      store: resolved.bundle.identityStore,
      user,
      type,
      result,
      time: now,
      actor: ctx.actor,
      clientIp: ctx.ip,
      userAgent: ctx.userAgent,
      role: roleOf(resolved.bundle, membership),
      ...(ctx.reason !== undefined ? { reason: ctx.reason } : {}),
    };
    // An unenrollment (enrollment.changed) and a possession approved without a code
    // (verification.approved) are events, for a store with an events endpoint.
    const publish = (type === 'unenroll' || (type === 'verify' && result === 'success')) && resolved.bundle.events !== undefined;
    return { event, retention: this.config.history, ...(publish ? { publish } : {}) };
  }

  /** resend sends a new code (the previous one stops working) after the cooldown, within maxSends and the send limits. */
  async resend(ctx: RequestContext, ns: string, storeName: string, id: string): Promise<Outcome<VerificationView>> {
    const store = this.storeOf(ns, storeName);
    if (!store.ok) return store;
    const now = this.now();
    const current = await this.deps.store.getVerification(ns, storeName, id);
    if (current === undefined || !visibleTo(ctx.actor, bindingOf(current))) return fail('verification_not_found', `verification ${id} not found`);
    // What the record already says refuses the resend before the send limits are touched, so that
    // asking too early, too often or too late costs the number none of its quota. beginResend
    // decides again, atomically, for requests that race past this read.
    const early = resendRefusal(current, now);
    if (early !== undefined) return this.refuseResend(early, current, now);
    const decoy = current.to === '';
    // A resend to a prefix the guard blocks is refused as a start is (it is not counted: it is no new start).
    const guard =
      (current.purpose === 'enroll' || current.purpose === 'possession') && !decoy ? await this.guardStart(store.value, current.to, now) : undefined;
    const code = generateCode(store.value.bundle.sms.code.length);
    // The end user's address is the start's: a resend comes from the application, with no client of its own.
    const quotas = this.sendQuotas(
      store.value,
      current.user,
      this.numberKey(ns, storeName, current.purpose, current.user, current.to),
      current.client.ip,
      guard?.refuse === true,
    );
    const admitted = await this.deps.store.beginResend(
      ns,
      storeName,
      id,
      now,
      this.deps.hasher.mac(id, current.purpose, current.to, decoy ? generateCode(code.length) : code),
      quotas,
    );
    if (admitted === undefined) return fail('verification_not_found', `verification ${id} not found`);
    if (!admitted.ok && admitted.reason === 'quota') return this.rateLimited(admitted.quota, admitted.retryAfterMs);
    if (!admitted.ok)
      return this.refuseResend(
        admitted.reason === 'cooldown' ? { reason: 'cooldown', retryAfterMs: admitted.retryAfterMs } : { reason: admitted.reason, retryAfterMs: 0 },
        admitted.record,
        now,
      );
    if (admitted.record.purpose !== 'authenticate') {
      const sent = await this.deliver(store.value, admitted.record, code);
      return sent.ok ? { ok: true, value: this.view(sent.record) } : { ok: false, error: { ...sent.error, verification: this.view(sent.record) } };
    }
    this.background(decoy ? this.pretendDelivery(store.value, admitted.record) : this.deliver(store.value, admitted.record, code).then(() => undefined));
    return { ok: true, value: this.view(admitted.record) };
  }

  private refuseResend(refusal: ResendRefusal, record: VerificationRecord, now: number): Outcome<VerificationView> {
    if (refusal.reason === 'cooldown')
      return fail('resend_too_soon', 'wait before asking for another code', { retryAfterMs: refusal.retryAfterMs, verification: this.view(record) });
    if (refusal.reason === 'max-sends')
      return fail('max_sends_reached', 'no more codes can be sent for this verification; start a new one', {
        retryAfterMs: Math.max(1000, record.expiresAt - now),
        verification: this.view(record),
      });
    const status = record.status === 'pending' && now >= record.expiresAt ? 'expired' : record.status;
    return fail('verification_not_pending', `the verification is ${status}; start a new one`, { verification: this.view(record) });
  }

  /** getVerification reads a verification; a pending one past its expiry reads as expired (and is recorded so). */
  async getVerification(actor: Actor, ns: string, storeName: string, id: string): Promise<Outcome<VerificationView>> {
    const store = this.storeOf(ns, storeName, false);
    if (!store.ok) return store;
    let r = await this.deps.store.getVerification(ns, storeName, id);
    if (r === undefined || !visibleTo(actor, bindingOf(r))) return fail('verification_not_found', `verification ${id} not found`);
    if (r.status === 'pending' && this.now() >= r.expiresAt)
      r = (await this.deps.store.finish(ns, storeName, id, 'expired')) ?? (await this.deps.store.getVerification(ns, storeName, id)) ?? r;
    return { ok: true, value: this.view(r) };
  }

  /** cancelVerification ends a pending verification; its code stops working. */
  async cancelVerification(actor: Actor, ns: string, storeName: string, id: string): Promise<Outcome<VerificationView>> {
    const store = this.storeOf(ns, storeName, false);
    if (!store.ok) return store;
    // A verification past its expiry is expired, not canceled (as check and resend answer).
    const current = await this.deps.store.getVerification(ns, storeName, id);
    if (current === undefined || !visibleTo(actor, bindingOf(current))) return fail('verification_not_found', `verification ${id} not found`);
    if (current.status === 'pending' && this.now() >= current.expiresAt) {
      const expired = (await this.deps.store.finish(ns, storeName, id, 'expired')) ?? (await this.deps.store.getVerification(ns, storeName, id)) ?? current;
      return fail('verification_not_pending', `the verification is ${expired.status}`, { verification: this.view(expired) });
    }
    const ended = current.status === 'pending' ? await this.deps.store.finish(ns, storeName, id, 'canceled') : undefined;
    const r = ended ?? (await this.deps.store.getVerification(ns, storeName, id));
    if (r === undefined) return fail('verification_not_found', `verification ${id} not found`);
    if (ended === undefined) return fail('verification_not_pending', `the verification is ${r.status}`, { verification: this.view(r) });
    return { ok: true, value: this.view(r) };
  }

  // ---- enrollments, policy, history ----------------------------------------------------------

  /** enrollments lists a user's enrolled types with the number masked. */
  async enrollments(
    ns: string,
    storeName: string,
    name: string,
  ): Promise<Outcome<{ user: string; enrollments: { type: 'SMS'; to: string; enrolledAt: string }[] }>> {
    const store = this.storeOf(ns, storeName, false);
    if (!store.ok) return store;
    const user = userKey(store.value, name);
    const e = await this.deps.store.getEnrollment(ns, storeName, user);
    return {
      ok: true,
      value: { user, enrollments: e === undefined ? [] : [{ type: 'SMS', to: maskNumber(e.to), enrolledAt: isoTime(e.enrolledAt) }] },
    };
  }

  /**
   * unenroll removes the user's SMS factor. The application must show that the user holds the
   * number (`proof`, as for replacing it: else removing and enrolling another would replace it
   * without any), and cannot when the role that decides for the user enforces SMS (409
   * enforced_by_role; the role is the directory's word). The helpdesk may always.
   */
  async unenroll(
    ctx: RequestContext,
    ns: string,
    storeName: string,
    name: string,
    body: { proof?: string } = {},
  ): Promise<Outcome<{ user: string; removed: boolean }>> {
    const found = await this.userOf(ns, storeName, name, false);
    if (!found.ok) return found;
    const { store, user, who } = found.value;
    const helpdesk = ctx.actor.startsWith('helpdesk:');
    if (!helpdesk) {
      if ((await this.deps.store.getEnrollment(ns, storeName, user)) === undefined) return fail('enrollment_not_found', `user ${user} has no SMS enrollment`);
      const role = who.membership === undefined ? undefined : decideRole(store.bundle.roles, who.membership);
      if (role?.enforced.includes('SMS') === true)
        return fail('enforced_by_role', `security role ${role.name} enforces SMS for user ${user}: it cannot be unenrolled (the helpdesk can)`, {
          field: 'user',
        });
      if (body.proof === undefined) return this.proofRequired(user);
    }
    const now = this.now();
    const spend = helpdesk ? undefined : { id: body.proof!, maxAgeMs: PROOF_MAX_AGE_MS, now };
    const removed = await this.deps.store.deleteEnrollment(
      ns,
      storeName,
      user,
      this.auditWrite(ctx, store, user, 'unenroll', 'success', who.membership, now),
      spend,
    );
    if (removed.outcome === 'none') return fail('enrollment_not_found', `user ${user} has no SMS enrollment`);
    if (removed.outcome === 'proof-refused') return this.proofRefused(body.proof!, removed.reason);
    if (store.bundle.events !== undefined) this.deps.published?.(ns, storeName);
    return { ok: true, value: { user, removed: true } };
  }

  /**
   * policy decides a user's role and what is still to enroll; types enrolled outside smsauth are
   * passed in. With a directory the membership comes from it (GET; groups and containers in a
   * body are refused); without one, the caller POSTs it (omitted: no group). A user the directory
   * does not know gets the answer of a user in no group.
   */
  async policy(
    ns: string,
    storeName: string,
    name: string,
    request:
      | { method: 'GET'; enrolledTypes?: AuthenticationType[] }
      | { method: 'POST'; groups?: string[]; containers?: string[]; enrolledTypes?: AuthenticationType[] },
  ): Promise<
    Outcome<
      PolicyDecision & {
        user: string;
        mustEnroll: 'SMS'[];
        enrolled: AuthenticationType[];
        lockedOut: { locked: boolean; until: string | null; failedAttempts: number };
      }
    >
  > {
    const store = this.storeOf(ns, storeName, false);
    if (!store.ok) return store;
    const user = userKey(store.value, name);
    if (store.value.directory === undefined && request.method === 'GET') {
      return fail('membership_required', `identity store ${ns}/${storeName} has no directory: POST the user's groups and containers`);
    }
    const claimed: { groups?: string[]; containers?: string[] } = request.method === 'POST' ? request : {};
    const who = await this.whoIs(
      store.value,
      user,
      store.value.directory === undefined ? { groups: claimed.groups ?? [], containers: claimed.containers ?? [] } : claimed,
    );
    if (!who.ok) return who;
    const body = request;
    const enrolled = new Set<AuthenticationType>((body.enrolledTypes ?? []).filter((t) => t !== 'SMS'));
    if ((await this.deps.store.getEnrollment(ns, storeName, user)) !== undefined) enrolled.add('SMS');
    const decision = decidePolicy(store.value.bundle, who.value.membership ?? { groups: [], containers: [] }, enrolled);
    const lock = await this.deps.store.getLockout(ns, storeName, user, this.now());
    return {
      ok: true,
      // mustEnroll is what smsauth itself enforces (SMS); the rest is data for the portal.
      value: {
        user,
        mustEnroll: decision.missing.enforced.includes('SMS') ? ['SMS'] : [],
        ...decision,
        enrolled: [...enrolled].sort(),
        lockedOut: {
          locked: lock.lockedUntil !== null,
          until: lock.lockedUntil === null ? null : isoTime(lock.lockedUntil),
          failedAttempts: lock.failures,
        },
      },
    };
  }

  /** listHistory returns a page of events newest first; `next` is the cursor (`before`) of the next page. */
  async listHistory(ns: string, storeName: string, query: HistoryQuery): Promise<Outcome<{ events: HistoryEventView[]; next: number | null }>> {
    const store = this.storeOf(ns, storeName, false);
    if (!store.ok) return store;
    const page = await this.deps.store.listHistory(ns, storeName, query.user === undefined ? query : { ...query, user: userKey(store.value, query.user) });
    return { ok: true, value: { events: page.events.map(historyView), next: page.next } };
  }

  /** exportHistory yields every matching event, newest first, a page at a time (flat memory however long the history). */
  async *exportHistory(ns: string, storeName: string, query: Omit<HistoryQuery, 'limit' | 'before'>): AsyncGenerator<HistoryEventView> {
    const store = this.storeOf(ns, storeName, false);
    if (!store.ok) return;
    const q: HistoryQuery = { ...query, ...(query.user !== undefined ? { user: userKey(store.value, query.user) } : {}), limit: 1000 };
    for (;;) {
      const page = await this.deps.store.listHistory(ns, storeName, q);
      for (const e of page.events) yield historyView(e);
      if (page.next === null) return;
      q.before = page.next;
    }
  }

  /** storeExists tells whether a store is served here (a streamed answer checks before it starts). */
  storeError(ns: string, storeName: string): DomainError | undefined {
    const store = this.storeOf(ns, storeName, false);
    return store.ok ? undefined : store.error;
  }

  /**
   * compliance tells, for each role of a store that enforces SMS, how many directory users it
   * decides for and how many have enrolled (see compliance.ts), and sets the gauges. A report
   * younger than COMPLIANCE_MAX_AGE_MS for the same configuration is answered again, and
   * concurrent requests share one; `unenrolled` (the names, for notifying them) is always fresh.
   */
  async compliance(ns: string, storeName: string, options: { unenrolled?: boolean; fresh?: boolean } = {}): Promise<Outcome<ComplianceView>> {
    const store = this.storeOf(ns, storeName, false);
    if (!store.ok) return store;
    const { directory, bundle } = store.value;
    if (directory === undefined)
      return fail('directory_required', `identity store ${ns}/${storeName} has no directory (spec.directory): smsauth does not know its roles' members`);
    const key = `${ns}/${storeName}`;
    // A report belongs to the configuration it was made for: one made under an older bundle is
    // neither shared with nor cached for a newer one.
    const flight = `${key}@${bundle.hash}`;
    const cached = this.complianceCache.get(key);
    const make = (): Promise<ComplianceReport> =>
      enrollmentCompliance(
        { namespace: ns, store: storeName, roles: bundle.roles, directory, state: this.deps.store },
        { now: this.now(), unenrolled: options.unenrolled === true },
      );
    let report: ComplianceReport;
    try {
      if (options.unenrolled === true) report = await make();
      else if (options.fresh !== true && cached?.hash === bundle.hash && this.now() - cached.report.generatedAt < COMPLIANCE_MAX_AGE_MS) report = cached.report;
      else {
        let pending = this.complianceInFlight.get(flight);
        if (pending === undefined) {
          pending = make().finally(() => this.complianceInFlight.delete(flight));
          this.complianceInFlight.set(flight, pending);
        }
        report = await pending;
      }
    } catch (err) {
      if (!(err instanceof DirectoryUnavailableError)) throw err;
      this.deps.log.warn({ namespace: ns, store: storeName, problem: err.problem, server: err.server, code: err.detail }, 'directory unavailable');
      return fail('directory_unavailable', "the identity store's directory cannot be reached; try again shortly", {
        retryAfterMs: Math.min(60_000, Math.max(1000, err.retryAfterMs ?? 1000)),
      });
    }
    // A report made for a configuration replaced meanwhile is answered, but neither kept nor shown.
    if (this.deps.bundles.get(ns, storeName)?.bundle.hash === bundle.hash) {
      this.complianceCache.set(key, { hash: bundle.hash, report: { ...report, roles: report.roles.map(({ unenrolled: _u, ...r }) => r) } });
      this.setComplianceGauges(key, report);
    }
    return {
      ok: true,
      value: {
        namespace: ns,
        store: storeName,
        generatedAt: isoTime(report.generatedAt),
        roles: report.roles.map((r) => ({ ...r, notEnrolled: r.members - r.enrolled })),
      },
    };
  }

  /**
   * forgetCompliance drops the cached reports and the gauges of every store but those counted
   * (removed stores, stores whose roles stopped enforcing SMS or that lost their directory).
   */
  forgetCompliance(counted: ReadonlySet<string>): void {
    for (const [key, roles] of this.complianceRoles) {
      if (counted.has(key)) continue;
      const [namespace, store] = key.split('/') as [string, string];
      for (const role of roles) {
        this.deps.metrics.roleMembers.remove({ namespace, store, role });
        this.deps.metrics.roleEnrolled.remove({ namespace, store, role });
      }
      this.complianceRoles.delete(key);
      this.complianceCache.delete(key);
    }
  }

  private setComplianceGauges(key: string, report: ComplianceReport): void {
    const labels = (role: string): { namespace: string; store: string; role: string } => ({ namespace: report.namespace, store: report.store, role });
    for (const gone of (this.complianceRoles.get(key) ?? []).filter((r) => !report.roles.some((x) => x.role === r))) {
      this.deps.metrics.roleMembers.remove(labels(gone));
      this.deps.metrics.roleEnrolled.remove(labels(gone));
    }
    for (const r of report.roles) {
      this.deps.metrics.roleMembers.set(labels(r.role), r.members);
      this.deps.metrics.roleEnrolled.set(labels(r.role), r.enrolled);
    }
    this.complianceRoles.set(
      key,
      report.roles.map((r) => r.role),
    );
  }

  /** receipt reads a signed delivery callback for an account and attaches the status to its verification. */
  async receipt(ns: string, account: string, request: CallbackRequest): Promise<Outcome<{ accepted: number }>> {
    const found = this.deps.bundles.gatewayForCallbacks(ns, account);
    if (found === undefined) return fail('gateway_not_found', `no gateway account ${account} in namespace ${ns}`);
    const { gateway } = found;
    // Providers sign the URL they were told to call; behind a proxy that is the configured one.
    const query = request.url.includes('?') ? request.url.slice(request.url.indexOf('?')) : '';
    const url = found.statusCallbackUrl !== undefined ? found.statusCallbackUrl.split('?')[0]! + query : request.url;
    const receipts = gateway.readReceipt({ ...request, url });
    if (receipts === undefined) {
      this.deps.metrics.callbacks.inc({ result: 'bad_signature' });
      return fail('bad_signature', 'the callback is not signed, or not signed by this account');
    }
    let accepted = 0;
    for (const rc of receipts) {
      const ref = await this.deps.store.findMessage(gateway.provider, rc.messageId, this.now());
      // Signed by this namespace's account: it speaks of this namespace's messages only.
      if (ref === undefined || ref.namespace !== ns) continue;
      await this.deps.store.setDelivery(ref.namespace, ref.store, ref.id, {
        status: rc.status,
        account,
        messageId: rc.messageId,
        ...(rc.errorCode !== undefined ? { errorCode: rc.errorCode } : {}),
        updatedAt: this.now(),
      });
      accepted++;
    }
    this.deps.metrics.callbacks.inc({ result: 'accepted' });
    return { ok: true, value: { accepted } };
  }

  // ---- helpers -------------------------------------------------------------------------------

  private storeOf(ns: string, name: string, needSms = true): { ok: true; value: ResolvedStore } | { ok: false; error: DomainError } {
    if (!this.deps.bundles.ready()) return fail('not_ready', 'the verifier has not loaded its configuration yet', { retryAfterMs: 1000 });
    const store = this.deps.bundles.get(ns, name);
    if (store === undefined) return fail('identity_store_not_found', `identity store ${ns}/${name} is not served here`);
    if (needSms && !store.bundle.sms.offered)
      return fail('sms_not_offered', `SMS is not offered by identity store ${ns}/${name} (${store.bundle.sms.reason}); see its status`);
    return { ok: true, value: store };
  }

  private lockedOut(retryAfterMs: number): { ok: false; error: DomainError } {
    return fail('locked_out', 'too many failed authentications: the user is locked out for now', { retryAfterMs: Math.max(1000, retryAfterMs) });
  }

  /**
   * numberKey is what the per-number and per-prefix send limits count a send under. An enrollment's
   * is its number. An authentication's is a stand-in derived from the user with a secret, stable
   * across requests and replicas, whether the user exists and the digits were right or not: were
   * it the enrolled number when the digits match, a limit reached by wrong guesses would answer
   * 429 to them and 201 to the right digits, and so tell the digits (or confirm a guessed number).
   */
  private numberKey(ns: string, store: string, purpose: Purpose, user: string, to: string): string {
    if (purpose === 'enroll' || purpose === 'possession') return to;
    return `auth:${this.decoyDigest(`${ns}/${store}/${user}`, 16)}`;
  }

  /**
   * auditMask shows a number as history does: masked (the calling code, a dot per digit) with a
   * short keyed fingerprint, so that an auditor tells an old number from a new one without any of
   * its digits (two of them would halve a last-digits challenge's secret).
   */
  private auditMask(e164: string): string {
    return `${maskNumber(e164)} #${this.decoyDigest(`audit:${e164}`, 6)}`;
  }

  /** view shows a verification without its secrets: authentication numbers fully masked, real or decoy alike. */
  view(r: VerificationRecord): VerificationView {
    const out: VerificationView = {
      id: r.id,
      status: r.status === 'pending' && this.now() >= r.expiresAt ? 'expired' : r.status,
      purpose: r.purpose,
      user: r.user,
      to: r.purpose === 'enroll' || r.purpose === 'possession' ? maskNumber(r.to) : '••••',
      locale: r.locale,
      createdAt: isoTime(r.createdAt),
      expiresAt: isoTime(r.expiresAt),
      attemptsLeft: Math.max(0, r.maxAttempts - r.attempts),
      sendsLeft: Math.max(0, r.maxSends - r.sends),
      delivery: {
        status: r.delivery.status,
        updatedAt: isoTime(r.delivery.updatedAt),
        ...(r.delivery.errorCode !== undefined && r.to !== '' ? { errorCode: r.delivery.errorCode } : {}),
      },
    };
    if (r.failure !== undefined) out.failure = r.failure;
    return out;
  }
}

/** Who is what whoIs says of a user: their membership (undefined: unknown), whether the directory knows them (undefined: no directory), their directory number. */
interface Who {
  membership: Membership | undefined;
  known: boolean | undefined;
  mobile: string | null;
}

/** COMPLIANCE_MAX_AGE_MS is how long a compliance report is answered again before the directory is listed anew. */
export const COMPLIANCE_MAX_AGE_MS = 5 * 60_000;

/** ComplianceView is a compliance report as the API shows it. */
export interface ComplianceView {
  namespace: string;
  store: string;
  generatedAt: string;
  roles: { role: string; priority: number; members: number; enrolled: number; notEnrolled: number; truncated: boolean; unenrolled?: string[] }[];
}

/** HistoryEventView is a history event as the API shows it: times in ISO 8601, the end user's client as an object. */
export interface HistoryEventView {
  seq: number;
  user: string;
  type: HistoryEvent['type'];
  result: HistoryEvent['result'];
  time: string;
  actor: Actor;
  client: { address: string; userAgent: string };
  role: string | null;
  verificationId?: string;
  reason?: string;
  numbers?: { old: string | null; new: string | null };
}

function historyView(e: HistoryEvent): HistoryEventView {
  return {
    seq: e.seq,
    user: e.user,
    type: e.type,
    result: e.result,
    time: isoTime(e.time),
    actor: e.actor ?? 'user',
    client: { address: e.clientIp, userAgent: e.userAgent },
    role: e.role ?? null,
    ...(e.verificationId !== undefined ? { verificationId: e.verificationId } : {}),
    ...(e.reason !== undefined ? { reason: e.reason } : {}),
    ...(e.numbers !== undefined ? { numbers: e.numbers } : {}),
  };
}

/**
 * visibleTo tells whether a verification is the caller's to read, check, resend or cancel: the
 * helpdesk's token reaches only what the helpdesk started; the application's reaches everything
 * but the helpdesk's identity checks (a helpdesk enrollment the user confirms through it included).
 */
function visibleTo(actor: Actor, b: Binding): boolean {
  return actor.startsWith('helpdesk:') ? b.actor.startsWith('helpdesk:') : b.purpose !== 'helpdesk';
}

/** numberOf reads a number sent to enroll as the store accepts it (E.164, an allowed country, a mobile): the field `to` at fault otherwise. */
function numberOf(bundle: Bundle, to: string): { ok: true; value: { e164: string } } | { ok: false; error: DomainError } {
  const number = normalizeNumber(to, bundle.sms.allowedCountries, undefined);
  return number.ok
    ? { ok: true, value: { e164: number.value.e164 } }
    : fail(number.reason === 'invalid-number' ? 'invalid_number' : 'number_refused', number.message, { field: '/to' });
}

/** roleOf names the role that decides for a membership (null: none, or no membership known). */
function roleOf(bundle: Bundle, membership: Membership | undefined): string | null {
  return membership === undefined ? null : (decideRole(bundle.roles, membership)?.name ?? null);
}

function pickText(bundle: Bundle, locale: string | null): string {
  const texts = bundle.sms.texts;
  if (locale !== null) {
    if (texts[locale] !== undefined) return texts[locale];
    const language = locale.split('-')[0]!;
    if (texts[language] !== undefined) return texts[language];
  }
  return texts.default ?? '[Code]';
}

function fingerprint(body: unknown): string {
  return createHash('sha256').update(canonicalJson(body)).digest('hex');
}

/**
 * userKey is the name a store keeps a user's state under (enrollment, lockout, limits, history):
 * with a directory, which matches user names without case, the name in lower case, so that
 * `Alice` and `alice` are one user; without one, the name as the caller writes it.
 */
function userKey(store: ResolvedStore, name: string): string {
  return store.directory === undefined ? name : name.toLowerCase();
}
