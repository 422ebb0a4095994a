import { isObject, jsonTypeName } from './json.ts';
import { additional, typeMatches, type Schema } from './schema.ts';

/** MICRO_TIME_LAYOUT is Go's layout for metav1.MicroTime, which requires exactly six fractional digits. */
export const MICRO_TIME_LAYOUT = '2006-01-02T15:04:05.000000Z07:00';

const ZONE = /^(Z|[+-]\d{2}:\d{2})$/;

/**
 * parseMicroTime parses a metav1.MicroTime like Go's time.Parse with RFC3339Micro: exactly six fractional digits;
 * returns the value normalised to UTC, or an error message worded like Go's.
 */
export function parseMicroTime(text: string): { ok: true; value: string } | { ok: false; message: string } {
  const head = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})/.exec(text);
  const fail = (rest: string, elem: string): { ok: false; message: string } => ({
    ok: false,
    message: `parsing time ${JSON.stringify(text)} as ${JSON.stringify(MICRO_TIME_LAYOUT)}: cannot parse ${JSON.stringify(rest)} as ${JSON.stringify(elem)}`,
  });
  if (head === null) return fail(text, '2006');
  const rest = text.slice(head[0].length);
  const frac = /^\.\d{6}/.exec(rest);
  if (frac === null) return fail(rest, '.000000');
  const zone = rest.slice(7);
  if (!ZONE.test(zone)) return fail(zone, 'Z07:00');
  const ms = Date.parse(text);
  if (Number.isNaN(ms)) return { ok: false, message: `parsing time ${JSON.stringify(text)}: day out of range` };
  const micros = frac[0].slice(4, 7);
  const iso = new Date(ms).toISOString();
  return { ok: true, value: `${iso.slice(0, 19)}.${iso.slice(20, 23)}${micros}Z` };
}

/** parseTime parses a metav1.Time (RFC 3339, fraction allowed) and returns it normalised to UTC whole seconds, or an error message. */
export function parseTime(text: string): { ok: true; value: string } | { ok: false; message: string } {
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(text) || Number.isNaN(Date.parse(text))) {
    return { ok: false, message: `parsing time ${JSON.stringify(text)} as "2006-01-02T15:04:05Z07:00": cannot parse ${JSON.stringify(text)} as "2006"` };
  }
  return { ok: true, value: new Date(Math.floor(Date.parse(text) / 1000) * 1000).toISOString().replace('.000Z', 'Z') };
}

function base64Error(text: string): string | undefined {
  const clean = text.replace(/[\r\n]/g, '');
  for (let i = 0; i < clean.length; i++) {
    if (!/[A-Za-z0-9+/=]/.test(clean[i] ?? '')) return `illegal base64 data at input byte ${i}`;
  }
  if (clean.length % 4 !== 0) return `illegal base64 data at input byte ${clean.length - (clean.length % 4)}`;
  const pad = clean.indexOf('=');
  if (pad >= 0 && pad < clean.length - 2) return `illegal base64 data at input byte ${pad}`;
  return undefined;
}

function goType(s: Schema): string {
  if (s['x-kubernetes-int-or-string'] === true) return 'intstr.IntOrString';
  switch (s.type) {
    case 'string':
      return s.format === 'byte' ? '[]uint8' : s.format === 'micro-time' ? 'v1.MicroTime' : s.format === 'k8s-time' ? 'v1.Time' : 'string';
    case 'integer':
      return s.format ?? 'int64';
    case 'number':
      return 'float64';
    case 'boolean':
      return 'bool';
    case 'array':
      return `[]${s.items === undefined ? 'interface {}' : goType(s.items)}`;
    case 'object':
      return additional(s) !== undefined ? `map[string]${goType(additional(s)!)}` : 'struct';
    default:
      return 'interface {}';
  }
}

function typeOk(s: Schema, v: unknown): boolean {
  if (s['x-kubernetes-int-or-string'] === true) return typeof v === 'string' || (typeof v === 'number' && Number.isInteger(v));
  return s.type === undefined || typeMatches(s.type, v);
}

/**
 * decodeTyped checks a built-in object against its Go-struct schema the way encoding/json would decode it:
 * it drops nulls, normalises Time and MicroTime fields and returns the first decode error (for a 400), or undefined.
 */
export function decodeTyped(value: unknown, schema: Schema, structName: string, path = ''): string | undefined {
  if (isObject(value)) {
    const props = schema.properties ?? {};
    const addl = additional(schema);
    for (const [k, v] of Object.entries(value)) {
      const sub = props[k] ?? addl;
      if (sub === undefined) continue;
      const p = props[k] !== undefined ? (path === '' ? k : `${path}.${k}`) : path;
      if (v === null) {
        delete value[k];
        continue;
      }
      const err = decodeValue(value, k, v, sub, structName, p);
      if (err !== undefined) return err;
    }
  } else if (Array.isArray(value) && schema.items !== undefined) {
    for (let i = 0; i < value.length; i++) {
      const err = decodeValue(value, i, value[i], schema.items, structName, path);
      if (err !== undefined) return err;
    }
  }
  return undefined;
}

function decodeValue(
  container: Record<string, unknown> | unknown[],
  key: string | number,
  v: unknown,
  s: Schema,
  structName: string,
  path: string,
): string | undefined {
  if (v === null) return undefined;
  if (!typeOk(s, v)) {
    return `json: cannot unmarshal ${jsonTypeName(v)} into Go struct field ${structName}.${path} of type ${goType(s)}`;
  }
  const set = (nv: unknown): void => {
    if (Array.isArray(container)) container[key as number] = nv;
    else container[key as string] = nv;
  };
  if (typeof v === 'string') {
    if (s.format === 'micro-time') {
      const r = parseMicroTime(v);
      if (!r.ok) return r.message;
      set(r.value);
    } else if (s.format === 'k8s-time') {
      const r = parseTime(v);
      if (!r.ok) return r.message;
      set(r.value);
    } else if (s.format === 'byte') {
      const e = base64Error(v);
      if (e !== undefined) return e;
    }
    return undefined;
  }
  if (typeof v === 'number' && s.type === 'integer' && s.format === 'int32' && (v > 2147483647 || v < -2147483648)) {
    return `json: cannot unmarshal number ${v} into Go struct field ${structName}.${path} of type int32`;
  }
  if (isObject(v) || Array.isArray(v)) return decodeTyped(v, s, structName, path);
  return undefined;
}
