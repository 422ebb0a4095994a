import type { SendLimits as DeclaredLimits } from '../generated/kinds.ts';
import { formatDuration, parseDuration } from './duration.ts';

/** RateLimit is a fixed-window limit: at most `limit` sends per `windowMs`. */
export interface RateLimit {
  limit: number;
  windowMs: number;
}

/** SendLimits are a store's send limits, resolved: perClient null when the store declares none. */
export interface SendLimits {
  perNumber: RateLimit;
  perUser: RateLimit;
  perPrefix: RateLimit;
  perClient: RateLimit | null;
  global: RateLimit;
}

/** The limits a store that declares none has (Twilio Verify's defaults where it has them). */
export const DEFAULT_SEND_LIMITS: SendLimits = {
  perNumber: { limit: 5, windowMs: 10 * 60_000 },
  perUser: { limit: 10, windowMs: 60 * 60_000 },
  perPrefix: { limit: 50, windowMs: 10 * 60_000 },
  perClient: null,
  global: { limit: 1000, windowMs: 60_000 },
};

/** Bounds of a limit's window. */
export const LIMIT_WINDOW_BOUNDS = { min: 1000, max: 24 * 3_600_000 } as const;

/** The narrower limits, by their field name under spec.sms.limits. */
export const NARROW_LIMITS = ['perNumber', 'perUser', 'perPrefix', 'perClient'] as const;

/** resolveSendLimits fills what spec.sms.limits leaves out with the defaults. */
export function resolveSendLimits(declared: DeclaredLimits | undefined): SendLimits {
  const one = (name: keyof DeclaredLimits, fallback: RateLimit | null): RateLimit | null => {
    const d = declared?.[name];
    const windowMs = d === undefined ? undefined : parseDuration(d.window);
    return d === undefined || windowMs === undefined ? fallback : { limit: d.count, windowMs };
  };
  return {
    perNumber: one('perNumber', DEFAULT_SEND_LIMITS.perNumber)!,
    perUser: one('perUser', DEFAULT_SEND_LIMITS.perUser)!,
    perPrefix: one('perPrefix', DEFAULT_SEND_LIMITS.perPrefix)!,
    perClient: one('perClient', DEFAULT_SEND_LIMITS.perClient),
    global: one('global', DEFAULT_SEND_LIMITS.global)!,
  };
}

/**
 * neverBinding names the narrower limits that can never refuse a send: their count is above the
 * global one, over a window that divides the global one (the global limit refuses first).
 */
export function neverBinding(limits: SendLimits): { name: (typeof NARROW_LIMITS)[number]; message: string }[] {
  const out: { name: (typeof NARROW_LIMITS)[number]; message: string }[] = [];
  for (const name of NARROW_LIMITS) {
    const l = limits[name];
    // Fixed windows aligned on their own length: one that does not divide the global one spans two of its windows, and may bind.
    if (l === null || l.limit <= limits.global.limit || l.windowMs > limits.global.windowMs || limits.global.windowMs % l.windowMs !== 0) continue;
    out.push({
      name,
      message: `spec.sms.limits.${name} allows ${l.limit} per ${formatDuration(l.windowMs)}, more than spec.sms.limits.global (${limits.global.limit} per ${formatDuration(limits.global.windowMs)}): it can never refuse a send; lower it, or raise global`,
    });
  }
  return out;
}
