// A Twilio Verify v2-compatible API (/twilio/v2/…) over the verifier, so that an application's
// Twilio client only changes where it points. A service SID names an identity store
// (spec.twilioCompat); requests authenticate with HTTP Basic AccountSid:AuthToken, as Twilio's do;
// bodies are form-encoded, answers JSON in Twilio's shapes, errors Twilio's codes. Verifications
// here confirm that the caller holds a number (purpose possession): no user, no enrollment.
// docs/twilio-compat.md says what is served and how it differs.
import { digestsEqual, tokenDigest, type HttpRequest, type HttpResponse, type Route } from '../core/http-route.ts';
import { isoTime } from '../core/iso-time.ts';
import type { StateStore } from './state-store.ts';
import { storeUnavailable } from './http-api.ts';
import type { DomainError, RequestContext, ResolvedStore, Verifier } from './verifier.ts';
import type { VerificationRecord } from './types.ts';

/** TwilioStores finds the store a service SID names. */
export interface TwilioStores {
  byServiceSid(serviceSid: string): ResolvedStore | undefined;
  /** Every store served, to authenticate a request whose service is unknown. */
  storeKeys(): string[];
  get(namespace: string, store: string): ResolvedStore | undefined;
}

export interface TwilioDeps {
  verifier: Verifier;
  store: StateStore;
  stores: TwilioStores;
  /** The URL clients reach this API at (for `url` in answers); default http://localhost. */
  publicBase?: string;
}

/** TwilioError is Twilio's error shape. */
interface TwilioError {
  code: number;
  message: string;
  more_info: string;
  status: number;
}

/** The Twilio error codes smsauth answers with (https://www.twilio.com/docs/api/errors). */
const ERRORS = {
  authenticate: { code: 20003, status: 401, message: 'Authenticate' },
  notFound: { code: 20404, status: 404, message: 'The requested resource was not found' },
  invalidParameter: { code: 60200, status: 400, message: 'Invalid parameter' },
  maxCheckAttempts: { code: 60202, status: 429, message: 'Max check attempts reached' },
  maxSendAttempts: { code: 60203, status: 429, message: 'Max send attempts reached' },
  tooManyConcurrent: { code: 60212, status: 429, message: 'Too many concurrent requests for phone number' },
  unavailable: { code: 20503, status: 503, message: 'Service unavailable' },
} as const;

type ErrorName = keyof typeof ERRORS;

function twilioError(name: ErrorName, detail?: string, retryAfterMs?: number): HttpResponse {
  const e = ERRORS[name];
  const body: TwilioError = {
    code: e.code,
    message: detail === undefined ? e.message : `${e.message}: ${detail}`,
    more_info: `https://www.twilio.com/docs/errors/${e.code}`,
    status: e.status,
  };
  return { status: e.status, body, ...(retryAfterMs !== undefined ? { headers: { 'retry-after': String(Math.max(1, Math.ceil(retryAfterMs / 1000))) } } : {}) };
}

/** How long a number's pending verification is found by the number (VerificationCheck with To): the code's lifetime at most. */
const ALIAS_TTL_MS = 10 * 60_000;

/** twilioRoutes are the Twilio-compatible routes, under /twilio. */
export function twilioRoutes(deps: TwilioDeps): Route[] {
  const base = (deps.publicBase ?? 'http://localhost').replace(/\/$/, '');
  const route = (
    method: Route['method'],
    pattern: string,
    name: string,
    handler: (req: HttpRequest, store: ResolvedStore, p: Readonly<Record<string, string>>) => Promise<HttpResponse>,
  ): Route => ({
    method,
    pattern: `/twilio${pattern}`,
    name,
    auth: false,
    handler: async (req, params) => {
      const store = authenticate(deps.stores, req, params.serviceSid!);
      if ('status' in store) return store;
      try {
        return await handler(req, store, params);
      } catch (err) {
        if (storeUnavailable(err) !== undefined) return twilioError('unavailable', 'the state store is unavailable; try again shortly', 1000);
        throw err;
      }
    },
  });

  const ctx = (req: HttpRequest): RequestContext => ({ ip: req.ip, userAgent: req.userAgent, actor: 'user' });

  return [
    route('POST', '/v2/Services/:serviceSid/Verifications', 'twilio_verification_create', async (req, store) => {
      const form = formOf(req);
      const to = form.get('To') ?? '';
      const channel = form.get('Channel') ?? '';
      if (to === '') return twilioError('invalidParameter', 'To is required');
      if (channel !== 'sms') return twilioError('invalidParameter', `Channel ${channel === '' ? 'is required' : `${channel} is not served`}: only sms`);
      const { namespace, identityStore } = store.bundle;
      const locale = form.get('Locale') ?? undefined;
      // A verification pending for the number gets a new code, as Twilio does, instead of a second verification.
      const alias = deps.verifier.possessionAlias(namespace, identityStore, to);
      const pendingId = await deps.store.getAlias(namespace, identityStore, alias, Date.now());
      const pending = pendingId === undefined ? undefined : await deps.store.getVerification(namespace, identityStore, pendingId);
      if (pending !== undefined && pending.purpose === 'possession' && pending.status === 'pending' && Date.now() < pending.expiresAt) {
        const resent = await deps.verifier.resend(ctx(req), namespace, identityStore, pending.id);
        if (!resent.ok) return errorOf(resent.error);
        return { status: 201, body: verificationBody(store, await reread(deps.store, pending), base) };
      }
      const started = await deps.verifier.startPossession(ctx(req), namespace, identityStore, { to, ...(locale !== undefined ? { locale } : {}) });
      if (!started.ok) return errorOf(started.error);
      const record = (await deps.store.getVerification(namespace, identityStore, started.value.id))!;
      await deps.store.putAlias(namespace, identityStore, alias, record.id, Date.now(), Math.min(ALIAS_TTL_MS, record.expiresAt - Date.now()));
      return { status: 201, body: verificationBody(store, record, base) };
    }),
    route('GET', '/v2/Services/:serviceSid/Verifications/:sid', 'twilio_verification_fetch', async (_req, store, p) => {
      const record = await possession(deps.store, store, p.sid!);
      return record === undefined ? twilioError('notFound') : { status: 200, body: verificationBody(store, record, base) };
    }),
    route('POST', '/v2/Services/:serviceSid/Verifications/:sid', 'twilio_verification_update', async (req, store, p) => {
      const status = formOf(req).get('Status');
      const record = await possession(deps.store, store, p.sid!);
      if (record === undefined) return twilioError('notFound');
      if (status !== 'canceled' && status !== 'approved') return twilioError('invalidParameter', 'Status is canceled or approved');
      const { namespace, identityStore } = store.bundle;
      const done =
        status === 'canceled'
          ? await deps.verifier.cancelVerification('user', namespace, identityStore, record.id)
          : await deps.verifier.approvePossession(ctx(req), namespace, identityStore, record.id);
      if (!done.ok) return done.error.code === 'verification_not_pending' ? twilioError('notFound') : errorOf(done.error);
      return { status: 200, body: verificationBody(store, await reread(deps.store, record), base) };
    }),
    route('POST', '/v2/Services/:serviceSid/VerificationCheck', 'twilio_verification_check', async (req, store) => {
      const form = formOf(req);
      const code = form.get('Code') ?? '';
      const sid = form.get('VerificationSid');
      const to = form.get('To');
      if (code === '') return twilioError('invalidParameter', 'Code is required');
      if ((sid === null) === (to === null)) return twilioError('invalidParameter', 'give To or VerificationSid');
      const { namespace, identityStore } = store.bundle;
      const id = sid ?? (await deps.store.getAlias(namespace, identityStore, deps.verifier.possessionAlias(namespace, identityStore, to!), Date.now()));
      const record = id === undefined ? undefined : await possession(deps.store, store, id);
      if (record === undefined) return twilioError('notFound');
      if (record.status === 'max_attempts_reached') return twilioError('maxCheckAttempts');
      // Twilio answers 404 for a verification that is no longer pending (approved, expired, canceled).
      if (record.status !== 'pending' || Date.now() >= record.expiresAt) return twilioError('notFound');
      const checked = await deps.verifier.check(ctx(req), namespace, identityStore, record.id, code);
      if (!checked.ok) return checked.error.code === 'verification_not_pending' ? twilioError('notFound') : errorOf(checked.error);
      const after = await reread(deps.store, record);
      return { status: 200, body: checkBody(store, after) };
    }),
  ];
}

/** authenticate finds the store the path's service SID names and checks HTTP Basic AccountSid:AuthToken against it, in constant time. */
function authenticate(stores: TwilioStores, req: HttpRequest, serviceSid: string): ResolvedStore | HttpResponse {
  const basic = /^Basic ([A-Za-z0-9+/=]+)$/i.exec(req.headers.authorization ?? '')?.[1];
  const [account, token] = basic === undefined ? [] : Buffer.from(basic, 'base64').toString('utf8').split(/:(.*)/s, 2);
  if (account === undefined || token === undefined) return { ...twilioError('authenticate'), headers: { 'www-authenticate': 'Basic realm="Twilio API"' } };
  const store = stores.byServiceSid(serviceSid);
  // The presented token digested once, against each store's digest taken when it was resolved.
  const presented = tokenDigest(token);
  const matches = (s: ResolvedStore | undefined): boolean =>
    s?.bundle.twilioCompat !== undefined &&
    s.twilioTokenDigest !== undefined &&
    s.bundle.twilioCompat.accountSid === account &&
    digestsEqual(presented, s.twilioTokenDigest);
  if (matches(store)) return store!;
  // An unknown service is 404 to a caller who holds an account's credentials, and 401 to others: nothing to probe.
  const known = stores.storeKeys().some((k) => matches(stores.get(...(k.split('/') as [string, string]))));
  return known
    ? twilioError('notFound', `no Service ${serviceSid}`)
    : { ...twilioError('authenticate'), headers: { 'www-authenticate': 'Basic realm="Twilio API"' } };
}

/** errorOf maps a verifier outcome's error to Twilio's. */
function errorOf(e: DomainError): HttpResponse {
  switch (e.code) {
    case 'invalid_number':
    case 'number_refused':
      return twilioError('invalidParameter', `To: ${e.message}`);
    case 'rate_limited':
      return twilioError('maxSendAttempts', e.message, e.retryAfterMs);
    case 'max_sends_reached':
      return twilioError('maxSendAttempts', e.message);
    case 'resend_too_soon':
      return twilioError('tooManyConcurrent', e.message, e.retryAfterMs);
    case 'verification_not_found':
    case 'identity_store_not_found':
      return twilioError('notFound');
    case 'gateway_rate_limited':
      return twilioError('tooManyConcurrent', e.message, e.retryAfterMs);
    case 'directory_unavailable':
    case 'not_ready':
    case 'gateway_failed':
      return twilioError('unavailable', e.message, 1000);
    default:
      return twilioError('invalidParameter', e.message);
  }
}

/** possession reads a verification of the store's Twilio-compatible API (another purpose's is not found). */
async function possession(store: StateStore, resolved: ResolvedStore, id: string): Promise<VerificationRecord | undefined> {
  if (!/^VE[0-9a-f]{32}$/.test(id)) return undefined;
  const r = await store.getVerification(resolved.bundle.namespace, resolved.bundle.identityStore, id);
  return r?.purpose === 'possession' ? r : undefined;
}

async function reread(store: StateStore, r: VerificationRecord): Promise<VerificationRecord> {
  return (await store.getVerification(r.namespace, r.store, r.id)) ?? r;
}

function formOf(req: HttpRequest): URLSearchParams {
  return new URLSearchParams(req.body.toString('utf8'));
}

function statusOf(r: VerificationRecord): string {
  return r.status === 'pending' && Date.now() >= r.expiresAt ? 'expired' : r.status;
}

/** common is what both of Twilio's verification shapes carry. */
function common(store: ResolvedStore, r: VerificationRecord): Record<string, unknown> {
  const twilio = store.bundle.twilioCompat!;
  const status = statusOf(r);
  return {
    sid: r.id,
    service_sid: twilio.serviceSid,
    account_sid: twilio.accountSid,
    to: r.to,
    channel: 'sms',
    status,
    valid: status === 'approved',
    amount: null,
    payee: null,
    date_created: isoTime(r.createdAt),
    date_updated: isoTime(Math.max(r.lastSentAt, r.approvedAt ?? 0, r.delivery.updatedAt)),
  };
}

/** verificationBody is a Verification resource (verify.v2.service.verification). */
function verificationBody(store: ResolvedStore, r: VerificationRecord, base: string): Record<string, unknown> {
  return {
    ...common(store, r),
    lookup: { carrier: null },
    send_code_attempts: Array.from({ length: r.sends }, (_, i) => ({
      attempt_sid: `${r.id}-${i + 1}`,
      channel: 'sms',
      time: isoTime(i === r.sends - 1 ? r.lastSentAt : r.createdAt),
    })),
    sna: null,
    url: `${base}/v2/Services/${store.bundle.twilioCompat!.serviceSid}/Verifications/${r.id}`,
  };
}

/** checkBody is a VerificationCheck resource (verify.v2.service.verification_check). */
function checkBody(store: ResolvedStore, r: VerificationRecord): Record<string, unknown> {
  return { ...common(store, r), sna_attempts_error_codes: [] };
}
