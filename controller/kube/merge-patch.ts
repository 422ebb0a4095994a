import { canonicalJson } from '../core/bundle.ts';

/**
 * mergePatchFrom returns the JSON merge patch (RFC 7386) that turns current into desired: changed
 * values, and null for keys desired no longer has (so that stale nested fields are removed too).
 * Arrays are replaced whole, as merge patch does. Equal values give undefined: nothing to write.
 */
export function mergePatchFrom(current: unknown, desired: unknown): unknown {
  if (canonicalJson(current ?? null) === canonicalJson(desired ?? null)) return undefined;
  if (!isObject(current) || !isObject(desired)) return desired ?? null;
  const patch: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(desired)) {
    const sub = mergePatchFrom(current[k], v);
    if (sub !== undefined) patch[k] = sub;
  }
  for (const k of Object.keys(current)) if (!(k in desired)) patch[k] = null;
  return patch;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
