import { networkErrorCode } from '../gateways/provider-request.ts';
import { retryAfterMs } from '../core/retry-after.ts';

/** EVENT_POST_TIMEOUT_MS is how long a receiver has to answer one event (Standard Webhooks recommends 15 to 30 s). */
export const EVENT_POST_TIMEOUT_MS = 15_000;

/** PostResult is a receiver's answer to one event: accepted (2xx), or why not, with its Retry-After. */
export type PostResult = { ok: true; status: number } | { ok: false; status?: number; problem: string; retryAfterMs?: number };

/** EventPoster sends one signed event to a receiver (postEvent, or a test's recorder). */
export type EventPoster = (url: string, headers: Record<string, string>, body: string, stop?: AbortSignal) => Promise<PostResult>;

/**
 * postEvent POSTs one event to a store's events endpoint (node's fetch) and reads the answer:
 * 2xx accepts it; any other status, a redirect (not followed: the URL should be fixed), a
 * timeout or a network error does not. Problems name the status or the error code, never the
 * URL (it may hold a token).
 */
export async function postEvent(
  url: string,
  headers: Record<string, string>,
  body: string,
  stop?: AbortSignal,
  timeoutMs = EVENT_POST_TIMEOUT_MS,
): Promise<PostResult> {
  const late = AbortSignal.timeout(timeoutMs);
  const signal = stop === undefined ? late : AbortSignal.any([late, stop]);
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/cloudevents+json; charset=utf-8', 'user-agent': 'smsauth-events/1', ...headers },
      body,
      redirect: 'manual',
      signal,
    });
    // The answer's body is not used: cancelled unread (however large), which frees the connection.
    await res.body?.cancel().catch(() => undefined);
    if (res.status >= 200 && res.status < 300) return { ok: true, status: res.status };
    const after = retryAfterMs(res.headers.get('retry-after'));
    return { ok: false, status: res.status, problem: `answered ${res.status}`, ...(after !== undefined ? { retryAfterMs: after } : {}) };
  } catch (err) {
    if (stop?.aborted === true) return { ok: false, problem: 'abandoned: the deliverer stops' };
    return { ok: false, problem: late.aborted ? `no answer within ${timeoutMs} ms` : `network error (${networkErrorCode(err)})` };
  }
}
