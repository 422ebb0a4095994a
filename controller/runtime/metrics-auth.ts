import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { AccessReview, Cluster } from '../adapters/kubernetes.ts';
import type { Clock } from '../core/clock.ts';
import { errorFields } from '../core/error-fields.ts';
import type { HttpRequest, HttpResponse } from '../core/http-route.ts';

/** How long a review is reused: an allowed one a minute, a refused one 10 s (so a new RoleBinding counts soon). */
const ALLOWED_TTL_MS = 60_000;
const DENIED_TTL_MS = 10_000;
/** At most this many tokens are remembered (each scraper has one). */
const MAX_ENTRIES = 256;

/**
 * metricsGuard answers for each request to /metrics, as controller-runtime's secure metrics serving
 * (filters.WithAuthenticationAndAuthorization) does: 401 without a bearer token or with one the
 * API server does not authenticate, 403 when the user may not `get` the path (a ClusterRole with
 * nonResourceURLs: ["/metrics"]), 503 when the API server cannot answer; undefined lets the request
 * through. Reviews are remembered by the token's SHA-256, never by the token.
 */
export function metricsGuard(review: Cluster['reviewAccess'], clock: Clock, log: Logger) {
  const cache = new Map<string, { review: AccessReview; until: number }>();
  return async (req: HttpRequest): Promise<HttpResponse | undefined> => {
    const header = req.headers['authorization'] ?? '';
    const token = /^Bearer\s+(\S+)$/i.exec(header)?.[1];
    if (token === undefined)
      return { status: 401, body: 'Unauthorized: a bearer token is required\n', contentType: 'text/plain', headers: { 'www-authenticate': 'Bearer' } };
    const id = createHash('sha256').update(token).update(`\0${req.path}`).digest('hex');
    const now = clock.now();
    let entry = cache.get(id);
    if (entry === undefined || entry.until <= now) {
      try {
        const answer = await review(token, req.path, 'get');
        entry = { review: answer, until: now + (answer.allowed ? ALLOWED_TTL_MS : DENIED_TTL_MS) };
      } catch (err) {
        log.warn({ err: errorFields(err) }, 'metrics request not reviewed: the API server did not answer');
        return { status: 503, body: 'Service Unavailable: the access review failed\n', contentType: 'text/plain' };
      }
      cache.delete(id);
      if (cache.size >= MAX_ENTRIES) cache.delete(cache.keys().next().value!);
      cache.set(id, entry);
    }
    const { user, allowed } = entry.review;
    if (user === undefined) return { status: 401, body: 'Unauthorized\n', contentType: 'text/plain', headers: { 'www-authenticate': 'Bearer' } };
    if (!allowed) {
      log.info({ user, path: req.path }, 'metrics request refused: not allowed to get it');
      return { status: 403, body: `Forbidden: user "${user}" cannot get path "${req.path}"\n`, contentType: 'text/plain' };
    }
    return undefined;
  };
}
