import { createHash, randomBytes } from 'node:crypto';
import { errorBody, tokensEqual, type HttpRequest, type HttpResponse, type Route } from '../core/http-route.ts';
import { answer, storeUnavailable } from '../verifier/http-api.ts';
import type { StateStore } from '../verifier/state-store.ts';
import type { RequestContext, Verifier } from '../verifier/verifier.ts';
import type { ConsoleEvent, ConsoleHub } from './console-hub.ts';

// The console of `smsauth run` (GET /): a page built at `npm run gen` time (Preact, bundled by
// esbuild into controller/generated/console/), its live feed (server-sent events) and the few
// actions it takes through the verifier. Every answer carries a Content-Security-Policy that allows
// no inline script; every state-changing request must come from the page itself: same origin
// (Sec-Fetch-Site, Origin), the per-process CSRF token the page carries, and a Host this process
// answers to (a DNS-rebinding page is another host).

/** ConsoleAssets are the built page's script and style. */
export interface ConsoleAssets {
  js: string;
  css: string;
}

/** ConsoleOptions guard the console as the API is guarded. */
export interface ConsoleRouteOptions {
  hub: ConsoleHub;
  verifier: Verifier;
  store: StateStore;
  assets: ConsoleAssets;
  /** The API's bearer token: with one, the console needs it too (header, or the cookie GET /?token= sets). */
  token?: string;
  /** Host names the console answers to besides loopback ones (the listen address). */
  hosts: readonly string[];
  /** The helpdesk's token: with one, the console's unlock is served, to a request that carries it (as the API's helpdesk routes are). */
  helpdeskToken?: string;
}

/** CONTENT_SECURITY_POLICY lets the page load its own script, style and feed, and nothing else: no inline script, no frame. */
export const CONTENT_SECURITY_POLICY =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

const COOKIE = 'smsauth_console';
const CSRF_HEADER = 'x-smsauth-csrf';
/** The header the console's unlock carries the helpdesk's token in (the page never stores it). */
const HELPDESK_HEADER = 'x-smsauth-helpdesk-token';
/** How often an idle feed sends a comment, so that proxies keep it and a closed page is noticed. */
const HEARTBEAT_MS = 15_000;
/** How many changes a feed holds for a page that does not read them before it ends the feed. */
const MAX_QUEUED = 256;

/** consoleRoutes are the console's routes: the page, its assets, its feed and its actions. */
export function consoleRoutes(options: ConsoleRouteOptions): Route[] {
  const csrf = randomBytes(32).toString('base64url');
  const cookieValue = options.token === undefined ? undefined : createHash('sha256').update(`smsauth-console\n${options.token}`).digest('base64url');
  const version = createHash('sha256').update(options.assets.js).update(options.assets.css).digest('hex').slice(0, 12);
  const hosts = new Set(['localhost', '127.0.0.1', '::1', ...options.hosts.map((h) => h.toLowerCase())]);

  /** answersTo tells whether a Host names this process: loopback, or the address it listens on. */
  const answersTo = (host: string | undefined): host is string => host !== undefined && (hosts.has(host) || /^127\.\d+\.\d+\.\d+$/.test(host));

  /** refusal says why a request may not reach the console (undefined: it may). */
  const refusal = (req: HttpRequest, changes: boolean): HttpResponse | undefined => {
    const host = hostName(req.headers.host);
    if (!answersTo(host)) {
      return respond(421, errorBody('misdirected_request', 'the console answers only to the host it listens on', 'Host'));
    }
    if (cookieValue !== undefined && options.token !== undefined) {
      const bearer = /^Bearer (.+)$/i.exec(req.headers.authorization ?? '')?.[1];
      const cookie = cookieOf(req.headers.cookie, COOKIE);
      const ok = (bearer !== undefined && tokensEqual(bearer, options.token)) || (cookie !== undefined && tokensEqual(cookie, cookieValue));
      if (!ok) return respond(401, errorBody('unauthorized', 'open /?token=TOKEN once (the API token), or send it as a bearer token', 'Authorization'));
    }
    if (!changes) return undefined;
    const site = req.headers['sec-fetch-site'];
    const origin = req.headers.origin;
    // The whole origin (scheme, host and port) must be this one's: another port on localhost is another site.
    const sameOrigin = (site === undefined || site === 'same-origin') && (origin === undefined || origin === `http://${req.headers.host ?? ''}`);
    const token = req.headers[CSRF_HEADER];
    if (!sameOrigin || token === undefined || !tokensEqual(token, csrf)) {
      return respond(403, errorBody('cross_site_refused', 'a state-changing request must come from the console page itself', CSRF_HEADER));
    }
    return undefined;
  };

  const guarded =
    (changes: boolean, handler: (req: HttpRequest, params: Readonly<Record<string, string>>) => Promise<HttpResponse>): Route['handler'] =>
    async (req, params) => {
      const refused = refusal(req, changes);
      if (refused !== undefined) return refused;
      try {
        return withSecurity(await handler(req, params));
      } catch (err) {
        const unavailable = storeUnavailable(err);
        if (unavailable === undefined) throw err;
        return withSecurity(unavailable);
      }
    };

  const ctx = (req: HttpRequest): RequestContext => ({ ip: req.ip, userAgent: req.userAgent, actor: 'user' });

  /** landing is GET /: the page; with ?token= (the API token), a cookie for the page and its feed (SameSite=Strict, HttpOnly), then the page. */
  const landing = (req: HttpRequest): HttpResponse => {
    const given = req.query.get('token');
    if (given !== null && options.token !== undefined && cookieValue !== undefined) {
      if (!answersTo(hostName(req.headers.host))) return refusal(req, false)!;
      if (!tokensEqual(given, options.token)) return respond(401, errorBody('unauthorized', 'that is not the API token', 'token'));
      return withSecurity({ status: 303, headers: { location: '/', 'set-cookie': `${COOKIE}=${cookieValue}; Path=/; HttpOnly; SameSite=Strict` } });
    }
    return refusal(req, false) ?? withSecurity({ status: 200, contentType: 'text/html; charset=utf-8', body: page() });
  };

  const page = (): string => `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="smsauth-csrf" content="${csrf}">
<title>smsauth console</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/console/app.css?v=${version}">
<script type="module" src="/console/app.js?v=${version}"></script>
</head>
<body><div id="app"><noscript>The console needs JavaScript; everything it shows is also in the API (docs/openapi.yaml).</noscript></div></body>
</html>
`;

  return [
    {
      method: 'GET',
      pattern: '/',
      name: 'console',
      auth: false,
      handler: (req) => Promise.resolve(landing(req)),
    },
    {
      method: 'GET',
      pattern: '/console/app.js',
      name: 'console_asset',
      auth: false,
      handler: guarded(false, () =>
        Promise.resolve({ status: 200, contentType: 'text/javascript; charset=utf-8', body: options.assets.js, headers: cacheable() }),
      ),
    },
    {
      method: 'GET',
      pattern: '/console/app.css',
      name: 'console_asset',
      auth: false,
      handler: guarded(false, () => Promise.resolve({ status: 200, contentType: 'text/css; charset=utf-8', body: options.assets.css, headers: cacheable() })),
    },
    {
      method: 'GET',
      pattern: '/console/api/events',
      name: 'console_events',
      auth: false,
      handler: guarded(false, () => Promise.resolve({ status: 200, contentType: 'text/event-stream; charset=utf-8', stream: feed(options.hub) })),
    },
    {
      method: 'GET',
      pattern: '/console/api/objects/:kind/:ns/:name',
      name: 'console_object',
      auth: false,
      handler: guarded(false, (_req, p) => {
        const detail = options.hub.detail(p.kind!, p.ns!, p.name!);
        return Promise.resolve(detail === undefined ? respond(404, errorBody('not_found', `no ${p.kind} ${p.ns}/${p.name}`)) : { status: 200, body: detail });
      }),
    },
    {
      method: 'GET',
      pattern: '/console/api/users/:ns/:store/:user',
      name: 'console_user',
      auth: false,
      handler: guarded(false, async (_req, p) => {
        const [enrollments, history] = await Promise.all([
          options.verifier.enrollments(p.ns!, p.store!, p.user!),
          options.verifier.listHistory(p.ns!, p.store!, { user: p.user!, limit: 50 }),
        ]);
        if (!enrollments.ok) return answer(enrollments);
        // The user as the store keys it (a directory's names are case-insensitive).
        const user = enrollments.value.user;
        const lockout = await options.store.getLockout(p.ns!, p.store!, user, Date.now());
        return {
          status: 200,
          body: {
            user,
            enrollments: enrollments.value.enrollments,
            lockout: { failures: lockout.failures, lockedUntil: lockout.lockedUntil === null ? null : new Date(lockout.lockedUntil).toISOString() },
            history: history.ok ? history.value.events : [],
            unlock: options.helpdeskToken !== undefined,
          },
        };
      }),
    },
    {
      method: 'POST',
      pattern: '/console/api/enroll',
      name: 'console_enroll',
      auth: false,
      json: true,
      handler: guarded(true, async (req) => {
        const b = bodyOf(req);
        if (b === undefined) return badBody();
        return answer(
          await options.verifier.startVerification(ctx(req), str(b.namespace), str(b.store), { to: str(b.to), purpose: 'enroll', user: str(b.user) }),
        );
      }),
    },
    {
      method: 'POST',
      pattern: '/console/api/check',
      name: 'console_check',
      auth: false,
      json: true,
      handler: guarded(true, async (req) => {
        const b = bodyOf(req);
        if (b === undefined) return badBody();
        return answer(await options.verifier.check(ctx(req), str(b.namespace), str(b.store), str(b.id), str(b.code)));
      }),
    },
    {
      method: 'POST',
      pattern: '/console/api/authenticate',
      name: 'console_authenticate',
      auth: false,
      json: true,
      handler: guarded(true, async (req) => {
        const b = bodyOf(req);
        if (b === undefined) return badBody();
        const lastDigits = str(b.lastDigits);
        return answer(
          await options.verifier.challenge(ctx(req), str(b.namespace), str(b.store), str(b.user), {
            type: 'SMS',
            ...(lastDigits !== '' ? { lastDigits } : {}),
          }),
        );
      }),
    },
    {
      method: 'POST',
      pattern: '/console/api/unlock',
      name: 'console_unlock',
      auth: false,
      json: true,
      handler: guarded(true, async (req) => {
        if (options.helpdeskToken === undefined)
          return respond(404, errorBody('not_found', 'unlocking takes the helpdesk: start smsauth run with --helpdesk-token-file'));
        const presented = req.headers[HELPDESK_HEADER] ?? '';
        if (!tokensEqual(presented, options.helpdeskToken)) return respond(401, errorBody('unauthorized', 'the helpdesk token is required', HELPDESK_HEADER));
        const b = bodyOf(req);
        if (b === undefined) return badBody();
        const reason = str(b.reason).trim();
        if (reason === '') return respond(400, errorBody('invalid_request', 'say why the user is unlocked', 'reason'));
        const helpdesk: RequestContext = { ip: req.ip, userAgent: req.userAgent, actor: 'helpdesk:console', reason };
        return answer(await options.verifier.unlock(helpdesk, str(b.namespace), str(b.store), str(b.user)));
      }),
    },
  ];
}

/** feed is a page's server-sent events: the snapshot, then each change, with a comment when idle. */
async function* feed(hub: ConsoleHub): AsyncGenerator<string> {
  const queue: ConsoleEvent[] = [];
  let wake: (() => void) | undefined;
  let closed = false;
  const unsubscribe = hub.subscribe((e) => {
    queue.push(e);
    wake?.();
  });
  const forget = hub.onClose(() => {
    closed = true;
    wake?.();
  });
  try {
    yield `retry: 2000\nevent: snapshot\ndata: ${JSON.stringify(hub.snapshot())}\n\n`;
    while (!closed) {
      if (queue.length === 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, HEARTBEAT_MS);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wake = undefined;
        if (closed) return;
        if (queue.length === 0) {
          yield ': idle\n\n';
          continue;
        }
      }
      // A page that stopped reading gets no unbounded queue: its feed ends, and the browser's
      // reconnect starts from a fresh snapshot.
      if (queue.length > MAX_QUEUED) return;
      const e = queue.shift()!;
      yield `event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`;
    }
  } finally {
    unsubscribe();
    forget();
  }
}

function withSecurity(r: HttpResponse): HttpResponse {
  return { ...r, headers: { ...SECURITY_HEADERS, ...r.headers } };
}

function respond(status: number, body: unknown): HttpResponse {
  return withSecurity({ status, body });
}

function cacheable(): Record<string, string> {
  // Versioned by the page (?v=): kept for a day, and never shared.
  return { 'cache-control': 'private, max-age=86400, immutable' };
}

function bodyOf(req: HttpRequest): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(req.body.toString('utf8'));
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function badBody(): HttpResponse {
  return respond(400, errorBody('invalid_json', 'the body must be a JSON object'));
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

/** hostName is a Host header's name, lower case, without its port or an IPv6 address's brackets. */
function hostName(host: string | undefined): string | undefined {
  if (host === undefined || host === '') return undefined;
  const m = /^\[([^\]]+)\](?::\d+)?$/.exec(host) ?? /^([^:]+)(?::\d+)?$/.exec(host);
  return m?.[1]?.toLowerCase();
}

function cookieOf(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) return v.join('=');
  }
  return undefined;
}
