import type { Logger } from 'pino';
import { GatewayError, GatewayErrorCode, type OutboundMessage, type SendResult, type SmsGateway } from './gateway.ts';

/** FailoverLink is one account of a send chain: the linked account first, then its fallbacks in order. */
export interface FailoverLink {
  account: string;
  gateway: SmsGateway;
  /** The most time this account may take, retries included (its spec.timeout); the chain's deadline still bounds it. */
  budgetMs?: number;
}

/** FailoverOptions bound a send in time and make its clock and randomness injectable. */
export interface FailoverOptions {
  /** When the whole send must be over, in epoch milliseconds (the request's deadline). */
  deadline: number;
  /** The caller's cancellation. */
  signal?: AbortSignal;
  /** Tries per account for Transient and RateLimited errors; default 3. */
  maxAttemptsPerAccount?: number;
  /** First backoff ceiling; each retry doubles it, up to maxDelayMs. Default 200. */
  baseDelayMs?: number;
  /** Default 2000. */
  maxDelayMs?: number;
  now?: () => number;
  /** A number in [0, 1) for the jitter. */
  random?: () => number;
  sleep?: (ms: number, signal: AbortSignal | undefined) => Promise<void>;
  logger?: Logger;
}

/** SendAttempt is one call to a gateway and how it ended. */
export interface SendAttempt {
  account: string;
  outcome: 'sent' | GatewayErrorCode;
  startedAt: number;
  durationMs: number;
}

/** FailoverResult says which account sent and after which attempts, or the last error. */
export type FailoverResult =
  { ok: true; account: string; result: SendResult; attempts: SendAttempt[] } | { ok: false; error: GatewayError; attempts: SendAttempt[] };

/** FailoverStep is what follows a failed attempt. */
export type FailoverStep = 'retry' | 'next-account' | 'stop';

/**
 * failoverStep is the policy for a failed attempt's code. Transient and RateLimited are retried on
 * the same account (then the next one); AuthFailed, Forbidden, InsufficientFunds and Rejected say
 * this account cannot send it, so the next account is tried at once without a retry; InvalidNumber
 * is about the destination, which no other account can fix, so the send stops.
 */
export function failoverStep(code: GatewayErrorCode): FailoverStep {
  switch (code) {
    case GatewayErrorCode.Transient:
    case GatewayErrorCode.RateLimited:
      return 'retry';
    case GatewayErrorCode.InvalidNumber:
      return 'stop';
    default:
      return 'next-account';
  }
}

/**
 * sendWithFailover sends one message through the chain: on each account it retries Transient and
 * RateLimited errors with full-jitter exponential backoff (waiting at least Retry-After) while
 * the account's budget and the deadline allow, then moves on as failoverStep says. Each attempt
 * gets a signal that aborts at the earlier of the two, and the message's validitySeconds shrinks
 * with the time spent; `account` is set to each link's. It never throws for a gateway failure:
 * the result carries the last error.
 */
export async function sendWithFailover(
  chain: readonly FailoverLink[],
  message: Omit<OutboundMessage, 'account'>,
  options: FailoverOptions,
): Promise<FailoverResult> {
  const now = options.now ?? Date.now;
  const random = options.random ?? Math.random;
  const sleep = options.sleep ?? abortableSleep;
  const maxAttempts = Math.max(1, options.maxAttemptsPerAccount ?? 3);
  const baseDelay = options.baseDelayMs ?? 200;
  const maxDelay = options.maxDelayMs ?? 2000;
  const attempts: SendAttempt[] = [];
  const started = now();
  let last: GatewayError = new GatewayError(GatewayErrorCode.Rejected, 'no gateway account to send through', { provider: 'none' });

  for (const [index, link] of chain.entries()) {
    const accountStart = now();
    const limit = Math.min(options.deadline, link.budgetMs !== undefined ? accountStart + link.budgetMs : Number.POSITIVE_INFINITY);
    for (let attempt = 1; attempt <= maxAttempts; attempt++) {
      if (options.signal?.aborted === true || now() >= limit) break;
      const startedAt = now();
      const signal = attemptSignal(limit - startedAt, options.signal);
      const elapsedSeconds = Math.floor((startedAt - started) / 1000);
      try {
        const result = await link.gateway.send(
          { ...message, account: link.account, validitySeconds: Math.max(1, message.validitySeconds - elapsedSeconds) },
          signal,
        );
        attempts.push({ account: link.account, outcome: 'sent', startedAt, durationMs: now() - startedAt });
        return { ok: true, account: link.account, result, attempts };
      } catch (err) {
        last = asGatewayError(err, link);
        attempts.push({ account: link.account, outcome: last.code, startedAt, durationMs: now() - startedAt });
      }
      const step = failoverStep(last.code);
      options.logger?.warn({ account: link.account, attempt, code: last.code, step }, `send attempt failed: ${last.message}`);
      if (step === 'stop') return { ok: false, error: last, attempts };
      if (step === 'next-account' || attempt === maxAttempts) break;
      const ceiling = Math.min(maxDelay, baseDelay * 2 ** (attempt - 1));
      const delay = Math.max(random() * ceiling, last.details.retryAfterMs ?? 0);
      // A wait that would outlast this account's time is better spent on the next account.
      if (now() + delay >= limit) break;
      await sleep(delay, options.signal);
    }
    if (index < chain.length - 1 && options.signal?.aborted !== true && now() < options.deadline) {
      options.logger?.warn({ from: link.account, to: chain[index + 1]?.account, code: last.code }, 'failing over to the next gateway account');
    }
    if (options.signal?.aborted === true || now() >= options.deadline) break;
  }
  return { ok: false, error: last, attempts };
}

function attemptSignal(ms: number, outer: AbortSignal | undefined): AbortSignal {
  const timeout = AbortSignal.timeout(Math.max(1, Math.ceil(ms)));
  return outer === undefined ? timeout : AbortSignal.any([timeout, outer]);
}

// The port promises GatewayErrors only; anything else is a bug in an adapter, reported without its
// message (which could hold anything).
function asGatewayError(err: unknown, link: FailoverLink): GatewayError {
  if (err instanceof GatewayError) return err;
  const kind = err instanceof Error ? err.name : typeof err;
  return new GatewayError(GatewayErrorCode.Transient, `${link.gateway.provider}: send failed with an unexpected ${kind}`, { provider: link.gateway.provider });
}

function abortableSleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted === true) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
