// The fraud guard (spec.sms.fraudGuard): SMS pumping sends codes to ranges of numbers whose
// termination fees the attacker shares, and never enters a code. So conversion (verifications
// approved among those started) is tracked per destination prefix and per country over a sliding
// window, and a prefix or country whose conversion falls below minConversion after minSample
// starts is blocked for blockDuration (Enforce) or only reported (Monitor). blockedPrefixes are
// refused in every mode (the kill switch); numbers of the safeList are never refused.
import type { FraudGuard as DeclaredFraudGuard } from '../generated/kinds.ts';
import { parseDuration } from './duration.ts';
import { numberPrefix } from './phone.ts';

/** FraudGuardMode (as spec.sms.fraudGuard.mode): Disabled tracks nothing (not "Off", which kubectl's YAML 1.1 reads as false); Monitor tracks and reports; Enforce tracks and refuses. */
export type FraudGuardMode = NonNullable<DeclaredFraudGuard['mode']>;

/** FraudPolicy is what the state store needs to count and decide: the sliding window and the thresholds. */
export interface FraudPolicy {
  windowMs: number;
  minSample: number;
  minConversion: number;
  blockMs: number;
}

/** FraudGuard is a store's fraud guard, resolved (in its bundle). */
export interface FraudGuard extends FraudPolicy {
  mode: FraudGuardMode;
  /** Numbers and prefixes (E.164 starts) never refused. */
  safeList: string[];
  /** Prefixes always refused. */
  blockedPrefixes: string[];
}

/** FraudBlock is a prefix or country blocked until a time; newly when this very start blocked it. */
export interface FraudBlock {
  key: string;
  until: number;
  newly: boolean;
}

/** The defaults, and where they come from: docs/security.md ("The fraud guard"). */
const FRAUD_GUARD_DEFAULTS = { mode: 'Monitor', window: '1h', minSample: 30, minConversion: 0.3, blockDuration: '1h' } as const;

/** Bounds of the guard's durations. */
export const FRAUD_WINDOW_BOUNDS = { min: 10 * 60_000, max: 24 * 3_600_000 } as const;
export const FRAUD_BLOCK_BOUNDS = { min: 60_000, max: 7 * 24 * 3_600_000 } as const;

/** resolveFraudGuard fills what spec.sms.fraudGuard leaves out with the defaults. */
export function resolveFraudGuard(declared: DeclaredFraudGuard): FraudGuard {
  return {
    mode: declared.mode ?? FRAUD_GUARD_DEFAULTS.mode,
    windowMs: parseDuration(declared.window ?? FRAUD_GUARD_DEFAULTS.window) ?? parseDuration(FRAUD_GUARD_DEFAULTS.window)!,
    minSample: declared.minSample ?? FRAUD_GUARD_DEFAULTS.minSample,
    minConversion: declared.minConversion ?? FRAUD_GUARD_DEFAULTS.minConversion,
    blockMs: parseDuration(declared.blockDuration ?? FRAUD_GUARD_DEFAULTS.blockDuration) ?? parseDuration(FRAUD_GUARD_DEFAULTS.blockDuration)!,
    safeList: [...(declared.safeList ?? [])].sort(),
    blockedPrefixes: [...(declared.blockedPrefixes ?? [])].sort(),
  };
}

/** What the guard says of a start to a number before it is sent. */
export type FraudVerdict = { action: 'skip' } | { action: 'kill-switch'; prefix: string } | { action: 'track'; keys: string[] };

/**
 * judgeNumber decides what the guard does with a start to this number (E.164): nothing for a
 * safe-listed one, refuse it when a blocked prefix covers it, else track its prefix and country
 * (the stored blocks then decide), unless the mode is Disabled.
 */
export function judgeNumber(guard: FraudGuard, tag: string, e164: string): FraudVerdict {
  if (guard.safeList.some((s) => e164.startsWith(s))) return { action: 'skip' };
  const killed = guard.blockedPrefixes.find((p) => e164.startsWith(p));
  if (killed !== undefined) return { action: 'kill-switch', prefix: killed };
  if (guard.mode === 'Disabled') return { action: 'skip' };
  return { action: 'track', keys: fraudKeys(tag, e164) };
}

/**
 * fraudKeys are the counters a number falls under: its prefix and its country, in a store named
 * by its hash tag (keyTag), so that a Redis Cluster keeps one store's counters in one slot.
 */
function fraudKeys(tag: string, e164: string): string[] {
  const prefix = numberPrefix(e164);
  const country = numberPrefix(e164, 0);
  return prefix === country ? [`fg:${tag}:${prefix}`] : [`fg:${tag}:${prefix}`, `fg:${tag}:${country}`];
}

/** prefixOfKey is the prefix a counter's key names (for logs and metrics: never a whole number). */
export function prefixOfKey(key: string): string {
  return key.slice(key.lastIndexOf(':') + 1);
}

/** FRAUD_BUCKETS is how many buckets a window is counted in: the window slides by a twelfth. */
const FRAUD_BUCKETS = 12;

/** bucketOf is the start of the bucket a time falls in. */
export function bucketOf(now: number, windowMs: number): number {
  const size = Math.max(1000, Math.floor(windowMs / FRAUD_BUCKETS));
  return Math.floor(now / size) * size;
}

/** shouldBlock says whether counts over the window call for a block: enough starts, too few approved. */
export function shouldBlock(starts: number, approved: number, policy: FraudPolicy): boolean {
  return starts >= policy.minSample && approved < policy.minConversion * starts;
}
