import { createHmac } from 'node:crypto';
import { safeEqual } from './callback-params.ts';

/** WEBHOOK_TIMESTAMP_HEADER carries the Unix seconds a webhook request was signed at (docs/gateways.md, the plug-in API). */
export const WEBHOOK_TIMESTAMP_HEADER = 'X-Smsauth-Timestamp';
/** WEBHOOK_SIGNATURE_HEADER carries `v1=<hex HMAC-SHA-256 of "<timestamp>.<body>">`, several comma-separated during a secret rotation. */
export const WEBHOOK_SIGNATURE_HEADER = 'X-Smsauth-Signature';
/** WEBHOOK_TOLERANCE_SECONDS is how far a signed timestamp may be from the receiver's clock, either way: 5 minutes, against replays. */
export const WEBHOOK_TOLERANCE_SECONDS = 300;

/** signWebhook returns the two signature headers for a body sent at `nowMs`. */
export function signWebhook(secret: string, body: string, nowMs: number): Record<string, string> {
  const timestamp = String(Math.floor(nowMs / 1000));
  return { [WEBHOOK_TIMESTAMP_HEADER]: timestamp, [WEBHOOK_SIGNATURE_HEADER]: `v1=${webhookHmac(secret, timestamp, body)}` };
}

/**
 * webhookSignatureProblem checks a webhook signature and returns null when it is good, else the
 * reason: missing headers, a timestamp outside the tolerance, or no `v1=` value that matches.
 */
export function webhookSignatureProblem(
  secret: string,
  body: string | Buffer,
  timestamp: string | undefined,
  signature: string | undefined,
  nowMs: number,
): string | null {
  if (timestamp === undefined || signature === undefined) return 'no signature headers';
  if (!/^\d{1,12}$/.test(timestamp)) return 'unreadable timestamp';
  if (Math.abs(Math.floor(nowMs / 1000) - Number(timestamp)) > WEBHOOK_TOLERANCE_SECONDS) return 'timestamp outside the 5-minute tolerance';
  const expected = webhookHmac(secret, timestamp, body);
  const matches = signature
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.startsWith('v1='))
    .some((s) => safeEqual(s.slice(3).toLowerCase(), expected));
  return matches ? null : 'wrong signature';
}

function webhookHmac(secret: string, timestamp: string, body: string | Buffer): string {
  const hmac = createHmac('sha256', secret).update(`${timestamp}.`, 'utf8');
  return (typeof body === 'string' ? hmac.update(body, 'utf8') : hmac.update(body)).digest('hex');
}
