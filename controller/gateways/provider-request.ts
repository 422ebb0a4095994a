import { GatewayError, GatewayErrorCode, looksLikeCode } from './gateway.ts';

/**
 * FetchLike is the part of fetch the adapters use. The global fetch fits; so does a proxy-aware
 * fetch (undici's ProxyAgent as `dispatcher`) or a test's recorder.
 */
export type FetchLike = (input: string, init: RequestInit) => Promise<Response>;

/** ProviderCall is one HTTP request to a provider's API. */
export interface ProviderCall {
  provider: string;
  /** What the request does, in error messages: "send", "credential check". */
  action: string;
  fetch: FetchLike;
  url: string;
  method: 'GET' | 'POST';
  headers: Record<string, string>;
  body?: string;
  /** The adapter's explicit timeout for this request, body included. */
  timeoutMs: number;
  /** The caller's deadline. */
  signal?: AbortSignal | undefined;
}

/** ProviderResponse is a provider's answer, read in full. */
export interface ProviderResponse {
  status: number;
  headers: Headers;
  text: string;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  json: unknown;
}

/**
 * providerRequest performs one call and reads the whole answer within the timeout. Network
 * failures, timeouts and the caller's deadline reject with a Transient GatewayError that keeps
 * no foreign cause (fetch errors can repeat the URL, which may hold credentials); HTTP error
 * statuses resolve, for the adapter to map.
 */
export async function providerRequest(call: ProviderCall): Promise<ProviderResponse> {
  const timeout = AbortSignal.timeout(Math.max(1, call.timeoutMs));
  const signal = call.signal === undefined ? timeout : AbortSignal.any([timeout, call.signal]);
  try {
    const init: RequestInit = { method: call.method, headers: call.headers, signal, redirect: 'error' };
    if (call.body !== undefined) init.body = call.body;
    const res = await call.fetch(call.url, init);
    const text = await res.text();
    return { status: res.status, headers: res.headers, text, json: parseJson(text) };
  } catch (err) {
    if (err instanceof GatewayError) throw err;
    if (call.signal?.aborted === true) throw gatewayError(GatewayErrorCode.Transient, call.provider, call.action, { detail: 'abandoned at the send deadline' });
    if (timeout.aborted) throw gatewayError(GatewayErrorCode.Transient, call.provider, call.action, { detail: `no answer within ${call.timeoutMs} ms` });
    throw gatewayError(GatewayErrorCode.Transient, call.provider, call.action, { detail: `network error (${networkErrorCode(err)})` });
  }
}

const HINTS: Record<GatewayErrorCode, string> = {
  InvalidNumber: 'the provider says the destination cannot receive SMS (invalid, unassigned or unreachable number)',
  AuthFailed: 'the provider refused the credentials; check the Secret values the account references',
  Forbidden: 'the account may not send this message (geographic permissions, trial restrictions or a disabled feature)',
  RateLimited: 'the provider is rate limiting this account',
  InsufficientFunds: 'the account has no credit left or is suspended',
  Transient: 'the provider failed temporarily',
  Rejected: 'the provider rejected the request',
};

/** GatewayErrorFacts are the safe facts an error message may carry: never text, code, number or secret. */
export interface GatewayErrorFacts {
  httpStatus?: number | undefined;
  providerCode?: string | undefined;
  retryAfterMs?: number | undefined;
  /** A short fixed phrase chosen by the adapter, such as "no answer within 500 ms". */
  detail?: string | undefined;
}

/** gatewayError builds a GatewayError whose message is written only from the code and the safe facts given. */
export function gatewayError(code: GatewayErrorCode, provider: string, action: string, given: GatewayErrorFacts = {}): GatewayError {
  // A code that does not look like one is left out of the message too, not only of the details.
  const facts = given.providerCode !== undefined && !looksLikeCode(given.providerCode) ? { ...given, providerCode: undefined } : given;
  const parts: string[] = [];
  if (facts.httpStatus !== undefined) parts.push(`HTTP ${facts.httpStatus}`);
  if (facts.providerCode !== undefined) parts.push(`provider code ${facts.providerCode}`);
  if (facts.retryAfterMs !== undefined) parts.push(`retry after ${facts.retryAfterMs} ms`);
  const suffix = parts.length > 0 ? ` (${parts.join(', ')})` : '';
  const detail = facts.detail !== undefined ? `${facts.detail}; ` : '';
  const details: GatewayError['details'] = { provider };
  if (facts.providerCode !== undefined) details.providerCode = facts.providerCode;
  if (facts.httpStatus !== undefined) details.httpStatus = facts.httpStatus;
  if (facts.retryAfterMs !== undefined) details.retryAfterMs = facts.retryAfterMs;
  return new GatewayError(code, `${provider}: ${action} failed: ${detail}${HINTS[code]}${suffix}`, details);
}

/** asGatewayError keeps a GatewayError and reports anything else as Transient, without its message (which could hold the request). */
export function asGatewayError(provider: string, action: string): (err: unknown) => GatewayError {
  return (err) => (err instanceof GatewayError ? err : gatewayError(GatewayErrorCode.Transient, provider, action, { detail: 'unexpected failure' }));
}

/** codeForHttpStatus maps an HTTP error status to a gateway error code, the way the providers document their statuses. */
export function codeForHttpStatus(status: number): GatewayErrorCode {
  if (status === 401 || status === 407) return GatewayErrorCode.AuthFailed;
  if (status === 402) return GatewayErrorCode.InsufficientFunds;
  if (status === 403) return GatewayErrorCode.Forbidden;
  if (status === 429) return GatewayErrorCode.RateLimited;
  if (status === 408 || status >= 500) return GatewayErrorCode.Transient;
  return GatewayErrorCode.Rejected;
}

/** basicAuth is an HTTP Basic Authorization header value. */
export function basicAuth(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

function parseJson(text: string): unknown {
  if (text.length === 0) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

// A system error code (ECONNRESET) or an undici one (UND_ERR_SOCKET), never a message: those can repeat the URL.
export function networkErrorCode(err: unknown): string {
  let current: unknown = err;
  for (let depth = 0; depth < 4 && typeof current === 'object' && current !== null; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && /^[A-Z][A-Z0-9_]{2,40}$/.test(code)) return code;
    current = (current as { cause?: unknown }).cause;
  }
  return err instanceof Error ? err.name : 'unknown';
}
