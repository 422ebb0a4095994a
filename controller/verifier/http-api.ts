import type { Registry } from 'prom-client';
import { errorBody, UP, type HttpRequest, type HttpResponse, type Route } from '../core/http-route.ts';
import type { ContractOperation, OpenApiContract } from './openapi-contract.ts';
import type { StateStore } from './state-store.ts';
import type { AuthenticationType } from '../generated/kinds.ts';
import { resolveClient, TrustedProxies } from './client-address.ts';
import type { HistoryEventType, HistoryQuery } from './types.ts';
import type { DomainError, ErrorCode, Outcome, RequestContext, Verifier } from './verifier.ts';

/** ApiDeps are what the routes call. */
export interface ApiDeps {
  verifier: Verifier;
  store: StateStore;
  /** docs/openapi.yaml, compiled: every route's method, path, security, body and validators come from it. */
  contract: OpenApiContract;
  registry: Registry;
  /** Proxies whose X-Forwarded-For names the end user's address (none: the peer is the client). */
  trustedProxies?: TrustedProxies;
  /** Whether the helpdesk routes are served (a helpdesk token is configured). */
  helpdesk?: boolean;
}

type Handler = (
  req: HttpRequest,
  params: Readonly<Record<string, string>>,
  body: unknown,
  query: Record<string, unknown>,
) => Promise<Outcome<unknown> | HttpResponse>;

/** HelpdeskBody is what every helpdesk action states: who acts, and why. */
interface HelpdeskBody {
  actor: string;
  reason: string;
}

/** Operations whose bodies may be larger than the server's default: a provider's batch of receipts. */
const MAX_BODY_BYTES: Readonly<Record<string, number>> = { deliveryCallback: 64 * 1024 };

/**
 * verifierRoutes are the operations of docs/openapi.yaml, each with its handler here: the
 * document gives each route its method, path, security and body, and validates its path
 * parameters, query, headers and body before the verifier sees them; results map to statuses
 * here (expected failures carry a stable code and the field at fault; an unreachable store
 * answers 503). An operation without a handler, or a handler without an operation, fails at
 * start: the document and the server cannot drift apart.
 */
export function verifierRoutes(deps: ApiDeps): Route[] {
  const handlers = handlersOf(deps);
  const routes: Route[] = [];
  for (const op of deps.contract.operations.values()) {
    const handler = handlers[op.operationId];
    if (handler === undefined) throw new Error(`operation ${op.operationId} of docs/openapi.yaml has no handler`);
    if (op.security === 'helpdesk' && deps.helpdesk !== true) continue;
    routes.push(routeOf(op, handler));
  }
  for (const id of Object.keys(handlers)) if (!deps.contract.operations.has(id)) throw new Error(`handler ${id} is not an operation of docs/openapi.yaml`);
  return routes;
}

/** routeOf is an operation's route: the document's checks, then the handler, its outcome mapped to HTTP. */
function routeOf(op: ContractOperation, handler: Handler): Route {
  const { validator } = op;
  const json = op.body === 'required' || op.body === 'optional';
  return {
    method: op.method,
    pattern: op.pattern,
    name: op.operationId,
    auth: op.security !== 'none',
    ...(op.security === 'helpdesk' ? { scope: 'helpdesk' as const } : {}),
    json,
    ...(MAX_BODY_BYTES[op.operationId] !== undefined ? { maxBodyBytes: MAX_BODY_BYTES[op.operationId] } : {}),
    async handler(req, params) {
      const bad = validator.params(params) ?? validator.headers(req.headers);
      if (bad !== undefined) return { status: 400, body: errorBody('invalid_request', bad.message, bad.field) };
      const query = validator.query(req.query);
      if (!query.ok) return { status: 400, body: errorBody('invalid_request', query.failure.message, query.failure.field) };
      let body: unknown = undefined;
      if (json) {
        if (req.body.length === 0 && op.body === 'required') return { status: 400, body: errorBody('invalid_request', 'a JSON body is required', '/') };
        try {
          body = req.body.length === 0 ? {} : JSON.parse(req.body.toString('utf8'));
        } catch (err) {
          // The parser's message quotes the text around the fault (a number, a code): only its position is kept.
          const at = /at position (\d+)/.exec((err as Error).message)?.[1];
          return { status: 400, body: errorBody('invalid_json', `the body is not valid JSON${at !== undefined ? ` (at byte ${at})` : ''}`, '/') };
        }
        const invalid = validator.body(body);
        if (invalid !== undefined) return { status: 400, body: errorBody('invalid_request', invalid.message, invalid.field) };
        const broken = illFormedString(body, '');
        if (broken !== undefined) {
          return { status: 400, body: errorBody('invalid_request', 'a text holds half of a UTF-16 surrogate pair (an escape such as \\ud800 alone)', broken) };
        }
      }
      try {
        const result = await handler(req, params, body, query.value);
        return 'ok' in result ? answer(result) : result;
      } catch (err) {
        const answer = storeUnavailable(err);
        if (answer === undefined) throw err;
        return answer;
      }
    },
  };
}

/** readiness is /readyz's answer: 200 once a configuration is loaded and the state store answers, else 503 saying which is missing. */
export async function readiness(verifier: Verifier, store: StateStore): Promise<HttpResponse> {
  const checks: Record<string, string> = { bundles: verifier.ready() ? 'ok' : 'no configuration loaded yet' };
  try {
    await store.ping();
    checks.store = 'ok';
  } catch {
    checks.store = 'unreachable';
  }
  const ok = Object.values(checks).every((c) => c === 'ok');
  return { status: ok ? 200 : 503, body: { status: ok ? 'ok' : 'unavailable', checks } };
}

/** storeUnavailable is the 503 for a state store that does not answer, or undefined for any other error. */
export function storeUnavailable(err: unknown): HttpResponse | undefined {
  // StoreUnavailableError, by its code (whatever its class).
  if ((err as { code?: unknown } | null | undefined)?.code !== 'ERR_STORE_UNAVAILABLE') return undefined;
  return { status: 503, headers: { 'retry-after': '1' }, body: errorBody('store_unavailable', 'the state store is unavailable; try again shortly') };
}

/** handlersOf maps every operationId of docs/openapi.yaml to what serves it. */
function handlersOf(deps: ApiDeps): Record<string, Handler> {
  const { verifier } = deps;
  const trusted = deps.trustedProxies ?? new TrustedProxies([]);
  /** The application acting for its end user, whose client comes from the body's `client` or a trusted proxy. */
  const userCtx = (req: HttpRequest, body?: unknown): RequestContext => {
    const client = resolveClient(req.ip, req.headers, (body as { client?: { address?: string; userAgent?: string } } | undefined)?.client, trusted);
    return { ...client, actor: 'user' };
  };
  /** A helpdesk operator, named in the body, with their reason; the end user is not the client. */
  const helpdeskCtx = (body: unknown): RequestContext => {
    const b = body as HelpdeskBody;
    return { ip: '', userAgent: '', actor: `helpdesk:${b.actor}`, ...(b.reason !== undefined ? { reason: b.reason } : {}) };
  };
  const helpdesk: RequestContext = { ip: '', userAgent: '', actor: 'helpdesk:' };
  return {
    startVerification: (req, p, b) =>
      verifier.startVerification(userCtx(req, b), p.ns!, p.store!, b as Parameters<Verifier['startVerification']>[3], req.headers['idempotency-key']),
    getVerification: (_r, p) => verifier.getVerification('user', p.ns!, p.store!, p.id!),
    cancelVerification: (_r, p) => verifier.cancelVerification('user', p.ns!, p.store!, p.id!),
    checkVerification: (req, p, b) => verifier.check(userCtx(req, b), p.ns!, p.store!, p.id!, (b as { code: string }).code),
    resendVerification: (req, p) => verifier.resend(userCtx(req), p.ns!, p.store!, p.id!),
    listEnrollments: (_r, p) => verifier.enrollments(p.ns!, p.store!, p.user!),
    unenrollSms: (req, p, b) => verifier.unenroll(userCtx(req, b), p.ns!, p.store!, p.user!, b as { proof?: string }),
    startChallenge: (req, p, b) => verifier.challenge(userCtx(req, b), p.ns!, p.store!, p.user!, b as Parameters<Verifier['challenge']>[4]),
    decidePolicy: (_r, p, b) =>
      verifier.policy(p.ns!, p.store!, p.user!, {
        method: 'POST',
        ...(b as { groups?: string[]; containers?: string[]; enrolledTypes?: AuthenticationType[] }),
      }),
    getPolicy: (_r, p, _b, q) =>
      verifier.policy(p.ns!, p.store!, p.user!, {
        method: 'GET',
        ...(typeof q.enrolledTypes === 'string' ? { enrolledTypes: q.enrolledTypes.split(',') as AuthenticationType[] } : {}),
      }),
    getCompliance: (_r, p) => verifier.compliance(p.ns!, p.store!),
    listHistory: async (req, p, _b, q) => {
      const query = historyQuery(q);
      if (!/\bapplication\/x-ndjson\b/i.test(req.headers.accept ?? '')) return verifier.listHistory(p.ns!, p.store!, query);
      const refused = verifier.storeError(p.ns!, p.store!);
      if (refused !== undefined) return { ok: false, error: refused };
      // Every matching event, one JSON object per line, read and sent a page at a time.
      const { limit: _l, before: _b2, ...filters } = query;
      const lines = async function* (): AsyncGenerator<string> {
        for await (const e of verifier.exportHistory(p.ns!, p.store!, filters)) yield `${JSON.stringify(e)}\n`;
      };
      return { status: 200, contentType: 'application/x-ndjson', stream: lines(), streamError: storeUnavailable };
    },
    helpdeskVerification: (_r, p, b) => verifier.helpdeskVerification(helpdeskCtx(b), p.ns!, p.store!, p.user!, b as { locale?: string }),
    helpdeskEnroll: (_r, p, b) => verifier.helpdeskEnroll(helpdeskCtx(b), p.ns!, p.store!, p.user!, b as { to: string; locale?: string }),
    helpdeskCheck: (_r, p, b) => verifier.check(helpdeskCtx(b), p.ns!, p.store!, p.id!, (b as { code: string }).code),
    helpdeskResend: (_r, p) => verifier.resend(helpdesk, p.ns!, p.store!, p.id!),
    helpdeskGetVerification: (_r, p) => verifier.getVerification(helpdesk.actor, p.ns!, p.store!, p.id!),
    helpdeskCancel: (_r, p) => verifier.cancelVerification(helpdesk.actor, p.ns!, p.store!, p.id!),
    helpdeskUnenroll: (_r, p, b) => verifier.unenroll(helpdeskCtx(b), p.ns!, p.store!, p.user!),
    helpdeskUnlock: (_r, p, b) => verifier.unlock(helpdeskCtx(b), p.ns!, p.store!, p.user!),
    deliveryCallback: (req, p) => {
      const proto = req.headers['x-forwarded-proto'] ?? 'http';
      const host = req.headers['x-forwarded-host'] ?? req.headers.host ?? 'localhost';
      return verifier.receipt(p.ns!, p.account!, { url: `${proto}://${host}${req.url}`, method: req.method, headers: req.headers, body: req.body });
    },
    healthz: () => Promise.resolve(UP),
    readyz: () => readiness(verifier, deps.store),
    metrics: async () => ({ status: 200, body: await deps.registry.metrics(), contentType: deps.registry.contentType }),
  };
}

/** A lone UTF-16 surrogate, which JSON escapes allow and no text encoding can carry (Redis' Lua refuses it). */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** illFormedString is the JSON pointer of the first text in a body that is not well-formed Unicode. */
function illFormedString(value: unknown, pointer: string): string | undefined {
  if (typeof value === 'string') return LONE_SURROGATE.test(value) ? pointer || '/' : undefined;
  if (value === null || typeof value !== 'object') return undefined;
  for (const [k, v] of Object.entries(value)) {
    const found = illFormedString(v, `${pointer}/${k.replaceAll('~', '~0').replaceAll('/', '~1')}`);
    if (found !== undefined) return found;
  }
  return undefined;
}

/** historyQuery reads the history route's validated query. */
function historyQuery(q: Record<string, unknown>): HistoryQuery {
  return {
    limit: q.limit as number,
    ...(q.before !== undefined ? { before: q.before as number } : {}),
    ...(q.user !== undefined ? { user: q.user as string } : {}),
    ...(q.type !== undefined ? { type: q.type as HistoryEventType } : {}),
    ...(q.actor !== undefined ? { actor: q.actor as string } : {}),
    ...(q.since !== undefined ? { since: Date.parse(q.since as string) } : {}),
    ...(q.until !== undefined ? { until: Date.parse(q.until as string) } : {}),
  };
}

/**
 * STATUS_OF is the HTTP status of each of the verifier's domain outcomes: the one place they meet
 * HTTP. Another edge (the Twilio-compatible API, the console) maps the same outcomes its own way.
 */
export const STATUS_OF: Readonly<Record<ErrorCode, number>> = {
  invalid_request: 400,
  membership_required: 400,
  membership_from_directory: 400,
  bad_signature: 401,
  reauthentication_required: 403,
  enrollment_not_found: 404,
  gateway_not_found: 404,
  identity_store_not_found: 404,
  user_not_found: 404,
  verification_not_found: 404,
  directory_required: 409,
  enforced_by_role: 409,
  enrollment_disabled: 409,
  sms_not_offered: 409,
  verification_not_pending: 409,
  invalid_number: 422,
  number_refused: 422,
  idempotency_key_reused: 422,
  locked_out: 423,
  max_sends_reached: 429,
  rate_limited: 429,
  resend_too_soon: 429,
  gateway_rate_limited: 429,
  gateway_failed: 502,
  directory_unavailable: 503,
  not_ready: 503,
};

/** answer maps a domain outcome to its HTTP response: 201 for what it created, 200 else; a failure's status from STATUS_OF, with Retry-After when it says when. */
export function answer(outcome: Outcome<unknown>): HttpResponse {
  if (outcome.ok) return { status: outcome.created === true ? 201 : 200, body: outcome.value };
  const e: DomainError = outcome.error;
  const headers: Record<string, string> = {};
  if (e.retryAfterMs !== undefined) headers['retry-after'] = String(Math.max(1, Math.ceil(e.retryAfterMs / 1000)));
  const body: Record<string, unknown> = errorBody(e.code, e.message, e.field);
  if (e.verification !== undefined) body.verification = e.verification;
  return { status: STATUS_OF[e.code], headers, body };
}
