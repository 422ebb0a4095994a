/**
 * mergePatchFrom returns the JSON merge patch (RFC 7386) that turns current into desired: changed
 * values, and null for keys desired no longer has (so that stale nested fields are removed too).
 * Arrays are replaced whole, as merge patch does. Equal values give undefined: nothing to write.
 * One walk of both documents: objects are compared key by key as the patch is built, and only
 * values that are not both objects (scalars, arrays) are compared whole, once.
 */
export function mergePatchFrom(current: unknown, desired: unknown): unknown {
  if (isObject(current) && isObject(desired)) {
    const patch: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(desired)) {
      const sub = mergePatchFrom(current[k], v);
      if (sub !== undefined) patch[k] = sub;
    }
    for (const [k, v] of Object.entries(current)) if (!(k in desired) && v !== undefined) patch[k] = null;
    return Object.keys(patch).length === 0 ? undefined : patch;
  }
  return jsonEqual(current ?? null, desired ?? null) ? undefined : (desired ?? null);
}

/** jsonEqual compares two JSON values (undefined object members count as absent, as JSON.stringify drops them). */
function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((v, i) => jsonEqual(v ?? null, b[i] ?? null));
  }
  if (!isObject(a) || !isObject(b)) return false;
  const ka = Object.keys(a).filter((k) => a[k] !== undefined);
  const kb = Object.keys(b).filter((k) => b[k] !== undefined);
  return ka.length === kb.length && ka.every((k) => k in b && jsonEqual(a[k], b[k]));
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
