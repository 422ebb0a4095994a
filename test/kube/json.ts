/** A decoded JSON object, the shape every stored Kubernetes object has. */
export type JsonObject = Record<string, unknown>;

/** isObject tells whether a decoded JSON value is a plain object (not null, not an array). */
export function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** deepClone copies a decoded JSON value so the copy shares nothing with the original. */
export function deepClone<T>(value: T): T {
  return structuredClone(value);
}

/** deepEqual compares two decoded JSON values structurally (object key order ignored). */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    return a.every((v, i) => deepEqual(v, b[i]));
  }
  if (isObject(a)) {
    if (!isObject(b)) return false;
    const ka = Object.keys(a);
    if (ka.length !== Object.keys(b).length) return false;
    return ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && deepEqual(a[k], b[k]));
  }
  return false;
}

/** getPath reads a nested value by keys, returning undefined as soon as a step is missing. */
export function getPath(value: unknown, ...keys: string[]): unknown {
  let cur = value;
  for (const k of keys) {
    if (!isObject(cur)) return undefined;
    cur = cur[k];
  }
  return cur;
}

/** getObject reads a nested object by keys, or undefined when it is missing or not an object. */
export function getObject(value: unknown, ...keys: string[]): JsonObject | undefined {
  const v = getPath(value, ...keys);
  return isObject(v) ? v : undefined;
}

/** getString reads a nested string by keys, or undefined when it is missing or not a string. */
export function getString(value: unknown, ...keys: string[]): string | undefined {
  const v = getPath(value, ...keys);
  return typeof v === 'string' ? v : undefined;
}

/** ensureObject returns obj[key] as an object, creating an empty one when it is missing. */
export function ensureObject(obj: JsonObject, key: string): JsonObject {
  const v = obj[key];
  if (isObject(v)) return v;
  const created: JsonObject = {};
  obj[key] = created;
  return created;
}

/** stringMap reads a map of strings (labels, annotations), ignoring non-string values. */
export function stringMap(value: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!isObject(value)) return out;
  for (const [k, v] of Object.entries(value)) if (typeof v === 'string') out[k] = v;
  return out;
}

/** jsonTypeName names a decoded JSON value's type the way Go's encoding/json errors do. */
export function jsonTypeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'object') return 'object';
  if (typeof value === 'number') return 'number';
  return typeof value;
}

/** text renders a decoded JSON value for messages: strings as they are, other scalars with String, objects as JSON, absent as "". */
export function text(value: unknown): string {
  if (value === undefined || value === null) return '';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return JSON.stringify(value);
}
