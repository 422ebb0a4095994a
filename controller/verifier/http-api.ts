import type { Registry } from 'prom-client';
import { errorBody, type HttpRequest, type HttpResponse, type Route } from '../core/http-route.ts';
import type { OperationValidator } from './openapi-validators.ts';
import type { StateStore } from './state-store.ts';
import { StoreUnavailableError } from './state-store.ts';
import type { AuthenticationType } from '../generated/kinds.ts';
import type { ApiError, Outcome, RequestContext, Verifier } from './verifier.ts';

/** ApiDeps are what the routes call. */
export interface ApiDeps {
  verifier: Verifier;
  store: StateStore;
  validators: ReadonlyMap<string, OperationValidator>;
  registry: Registry;
}

type Handler = (req: HttpRequest, params: Readonly<Record<string, string>>, body: unknown, query: Record<string, unknown>, ctx: RequestContext) => Promise<Outcome<unknown>>;

/**
 * verifierRoutes are the routes of docs/openapi.yaml. Each validates its path parameters, query
 * and body against that document before the verifier sees them, and maps results to statuses:
 * expected failures carry a stable code and the field at fault; an unreachable store answers 503.
 */
export function verifierRoutes(deps: ApiDeps): Route[] {
  const { verifier } = deps;
  const op = (method: Route['method'], pattern: string, operationId: string, handler: Handler, options: { json?: boolean } = {}): Route => {
    const validator = deps.validators.get(operationId);
    if (validator === undefined) throw new Error(`operation ${operationId} is not in the OpenAPI document`);
    return {
      method,
      pattern,
      name: operationId,
      auth: true,
      json: options.json ?? false,
      async handler(req, params) {
        const bad = validator.params(params);
        if (bad !== undefined) return { status: 400, body: errorBody('invalid_request', bad.message, bad.field) };
        const query = validator.query(req.query);
        if (!query.ok) return { status: 400, body: errorBody('invalid_request', query.failure.message, query.failure.field) };
        let body: unknown = undefined;
        if (options.json === true) {
          if (req.body.length === 0) return { status: 400, body: errorBody('invalid_request', 'a JSON body is required', '/') };
          try {
            body = JSON.parse(req.body.toString('utf8'));
          } catch (err) {
            // The parser's message quotes the text around the fault (a number, a code): only its position is kept.
            const at = /at position (\d+)/.exec((err as Error).message)?.[1];
            return { status: 400, body: errorBody('invalid_json', `the body is not valid JSON${at !== undefined ? ` (at byte ${at})` : ''}`, '/') };
          }
          const invalid = validator.body(body);
          if (invalid !== undefined) return { status: 400, body: errorBody('invalid_request', invalid.message, invalid.field) };
          const broken = illFormedString(body, '');
          if (broken !== undefined) return { status: 400, body: errorBody('invalid_request', 'a text holds half of a UTF-16 surrogate pair (an escape such as \\ud800 alone)', broken) };
        }
        try {
          return answer(await handler(req, params, body, query.value, { ip: req.ip, userAgent: req.userAgent }));
        } catch (err) {
          if (err instanceof StoreUnavailableError || (err as { code?: string }).code === 'ERR_STORE_UNAVAILABLE') {
            return { status: 503, headers: { 'retry-after': '1' }, body: errorBody('store_unavailable', 'the state store is unavailable; try again shortly') };
          }
          throw err;
        }
      },
    };
  };
  const base = '/v1/:ns/:store';
  return [
    op('POST', `${base}/verifications`, 'startVerification', (req, p, b) => {
      const key = req.headers['idempotency-key'];
      if (key !== undefined && (key.length === 0 || key.length > 255)) return Promise.resolve(badHeader('Idempotency-Key', 'must be 1 to 255 characters'));
      return verifier.startVerification(ctxOf(req), p.ns!, p.store!, b as Parameters<Verifier['startVerification']>[3], key);
    }, { json: true }),
    op('GET', `${base}/verifications/:id`, 'getVerification', (_r, p) => verifier.getVerification(p.ns!, p.store!, p.id!)),
    op('DELETE', `${base}/verifications/:id`, 'cancelVerification', (_r, p) => verifier.cancelVerification(p.ns!, p.store!, p.id!)),
    op('POST', `${base}/verifications/:id/check`, 'checkVerification', (req, p, b) => verifier.check(ctxOf(req), p.ns!, p.store!, p.id!, (b as { code: string }).code), { json: true }),
    op('POST', `${base}/verifications/:id/resend`, 'resendVerification', (req, p) => verifier.resend(ctxOf(req), p.ns!, p.store!, p.id!)),
    op('GET', `${base}/users/:user/enrollments`, 'listEnrollments', (_r, p) => verifier.enrollments(p.ns!, p.store!, p.user!)),
    op('DELETE', `${base}/users/:user/enrollments/sms`, 'unenrollSms', (req, p) => verifier.unenroll(ctxOf(req), p.ns!, p.store!, p.user!)),
    op('POST', `${base}/users/:user/challenges`, 'startChallenge', (req, p, b) => verifier.challenge(ctxOf(req), p.ns!, p.store!, p.user!, b as Parameters<Verifier['challenge']>[4]), { json: true }),
    op('POST', `${base}/users/:user/policy`, 'decidePolicy', (_r, p, b) => verifier.policy(p.ns!, p.store!, p.user!, { method: 'POST', ...(b as { groups?: string[]; containers?: string[]; enrolledTypes?: AuthenticationType[] }) }), { json: true }),
    op('GET', `${base}/users/:user/policy`, 'getPolicy', (_r, p, _b, q) =>
      verifier.policy(p.ns!, p.store!, p.user!, { method: 'GET', ...(typeof q.enrolledTypes === 'string' ? { enrolledTypes: q.enrolledTypes.split(',') as AuthenticationType[] } : {}) })),
    op('GET', `${base}/history`, 'listHistory', (_r, p, _b, q) => verifier.listHistory(p.ns!, p.store!, q as { user?: string; limit: number; before?: number })),
    {
      ...op('POST', '/v1/callbacks/:ns/:account', 'deliveryCallback', (req, p) => {
        const proto = req.headers['x-forwarded-proto'] ?? 'http';
        const host = req.headers['x-forwarded-host'] ?? req.headers.host ?? 'localhost';
        return verifier.receipt(p.ns!, p.account!, { url: `${proto}://${host}${req.url}`, method: req.method, headers: req.headers, body: req.body });
      }),
      auth: false,
      maxBodyBytes: 64 * 1024,
    },
    { method: 'GET', pattern: '/healthz', name: 'healthz', auth: false, handler: () => Promise.resolve({ status: 200, body: { status: 'ok' } }) },
    {
      method: 'GET',
      pattern: '/readyz',
      name: 'readyz',
      auth: false,
      async handler() {
        const checks: Record<string, string> = { bundles: verifier.ready() ? 'ok' : 'no configuration loaded yet' };
        try {
          await deps.store.ping();
          checks.store = 'ok';
        } catch {
          checks.store = 'unreachable';
        }
        const ok = Object.values(checks).every((c) => c === 'ok');
        return { status: ok ? 200 : 503, body: { status: ok ? 'ok' : 'unavailable', checks } };
      },
    },
    {
      method: 'GET',
      pattern: '/metrics',
      name: 'metrics',
      auth: true,
      async handler() {
        return { status: 200, body: await deps.registry.metrics(), contentType: deps.registry.contentType };
      },
    },
  ];
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

function ctxOf(req: HttpRequest): RequestContext {
  return { ip: req.ip, userAgent: req.userAgent };
}

function badHeader(field: string, message: string): Outcome<never> {
  return { ok: false, error: { status: 400, code: 'invalid_request', message: `${field} ${message}`, field } };
}

function answer(outcome: Outcome<unknown>): HttpResponse {
  if (outcome.ok) return { status: outcome.status, body: outcome.value };
  const e: ApiError = outcome.error;
  const headers: Record<string, string> = {};
  if (e.retryAfterMs !== undefined) headers['retry-after'] = String(Math.max(1, Math.ceil(e.retryAfterMs / 1000)));
  const body: Record<string, unknown> = errorBody(e.code, e.message, e.field);
  if (e.verification !== undefined) body.verification = e.verification;
  return { status: e.status, headers, body };
}
