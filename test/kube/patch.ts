import { deepClone, deepEqual, isObject } from './json.ts';
import type { JsonObject } from './json.ts';

/** PatchError reports a patch that cannot be applied; `invalidPatch` marks a malformed patch document. */
export class PatchError extends Error {
  readonly code = 'ERR_PATCH';
  readonly invalidPatch: boolean;
  constructor(message: string, invalidPatch = false) {
    super(message);
    this.invalidPatch = invalidPatch;
  }
}

/** applyMergePatch applies an RFC 7386 JSON merge patch and returns the new document (the input is not changed). */
export function applyMergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return deepClone(patch);
  const out: JsonObject = isObject(target) ? deepClone(target) : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = applyMergePatch(out[k], v);
  }
  return out;
}

function decodePointer(path: string): string[] {
  if (path === '') return [];
  if (!path.startsWith('/')) throw new PatchError(`JSON pointer must start with "/": ${JSON.stringify(path)}`, true);
  return path
    .slice(1)
    .split('/')
    .map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
}

interface Located {
  parent: unknown;
  key: string;
}

function locate(doc: unknown, tokens: string[], op: string, path: string): Located {
  let cur = doc;
  for (const t of tokens.slice(0, -1)) {
    if (Array.isArray(cur)) {
      const i = Number(t);
      if (!/^\d+$/.test(t) || i >= cur.length) throw new PatchError(`${op} operation does not apply: doc is missing path: "${path}": missing value`);
      cur = cur[i];
    } else if (isObject(cur) && t in cur) cur = cur[t];
    else throw new PatchError(`${op} operation does not apply: doc is missing path: "${path}": missing value`);
  }
  return { parent: cur, key: tokens[tokens.length - 1] ?? '' };
}

function getAt(doc: unknown, path: string, op: string): unknown {
  let cur = doc;
  for (const t of decodePointer(path)) {
    if (Array.isArray(cur) && /^\d+$/.test(t) && Number(t) < cur.length) cur = cur[Number(t)];
    else if (isObject(cur) && t in cur) cur = cur[t];
    else throw new PatchError(`${op} operation does not apply: doc is missing path: "${path}": missing value`);
  }
  return cur;
}

function addAt(doc: unknown, path: string, value: unknown, op: string): unknown {
  const tokens = decodePointer(path);
  if (tokens.length === 0) return deepClone(value);
  const { parent, key } = locate(doc, tokens, op, path);
  if (Array.isArray(parent)) {
    const i = key === '-' ? parent.length : Number(key);
    if (!(key === '-' || /^\d+$/.test(key)) || i > parent.length)
      throw new PatchError(`${op} operation does not apply: doc is missing path: "${path}": invalid index`);
    parent.splice(i, 0, deepClone(value));
  } else if (isObject(parent)) parent[key] = deepClone(value);
  else throw new PatchError(`${op} operation does not apply: doc is missing path: "${path}": missing value`);
  return doc;
}

function removeAt(doc: unknown, path: string, op: string): unknown {
  const tokens = decodePointer(path);
  const { parent, key } = locate(doc, tokens, op, path);
  if (Array.isArray(parent) && /^\d+$/.test(key) && Number(key) < parent.length) parent.splice(Number(key), 1);
  else if (isObject(parent) && key in parent) delete parent[key];
  else throw new PatchError(`${op} operation does not apply: doc is missing path: "${path}": missing value`);
  return doc;
}

/** applyJsonPatch applies an RFC 6902 JSON patch (add, remove, replace, move, copy, test) and returns the new document. */
export function applyJsonPatch(target: unknown, patch: unknown): unknown {
  if (!Array.isArray(patch)) throw new PatchError('json: cannot unmarshal object into Go value of type jsonpatch.Patch', true);
  let doc = deepClone(target);
  for (const raw of patch) {
    if (!isObject(raw) || typeof raw['op'] !== 'string') throw new PatchError('Unexpected kind: unknown', true);
    const op = raw['op'];
    const path = typeof raw['path'] === 'string' ? raw['path'] : undefined;
    if (path === undefined) throw new PatchError(`${op} operation missing path`, true);
    switch (op) {
      case 'add':
        doc = addAt(doc, path, raw['value'], op);
        break;
      case 'remove':
        doc = removeAt(doc, path, op);
        break;
      case 'replace':
        getAt(doc, path, op);
        doc = removeAt(doc, path, op);
        doc = addAt(doc, path, raw['value'], op);
        break;
      case 'move':
      case 'copy': {
        const from = typeof raw['from'] === 'string' ? raw['from'] : undefined;
        if (from === undefined) throw new PatchError(`${op} operation missing from`, true);
        const value = deepClone(getAt(doc, from, op));
        if (op === 'move') doc = removeAt(doc, from, op);
        doc = addAt(doc, path, value, op);
        break;
      }
      case 'test':
        if (!deepEqual(getAt(doc, path, op), raw['value'])) throw new PatchError(`testing value ${path} failed: test failed`);
        break;
      default:
        throw new PatchError(`Unexpected kind: ${op}`, true);
    }
  }
  return doc;
}

/** How a list field merges in a strategic merge patch: by a key, as a set of primitives, or replaced. */
export interface ListMergeMeta {
  mergeKey?: string;
  strategy: 'merge' | 'replace';
}

/** Strategic-merge metadata for a resource: dotted field path (list items add no segment) → how its list merges. */
export type PatchMeta = Record<string, ListMergeMeta>;

/** applyStrategicMergePatch applies a strategic merge patch using `meta` for list fields, honouring $patch, $retainKeys, $setElementOrder and $deleteFromPrimitiveList. */
export function applyStrategicMergePatch(target: unknown, patch: unknown, meta: PatchMeta): unknown {
  return smp(isObject(target) ? deepClone(target) : {}, patch, meta, '');
}

function smp(original: unknown, patch: unknown, meta: PatchMeta, path: string): unknown {
  if (!isObject(patch)) return deepClone(patch);
  const directive = patch['$patch'];
  if (directive === 'delete') return undefined;
  if (directive === 'replace') {
    const copy = deepClone(patch);
    delete copy['$patch'];
    return copy;
  }
  const out: JsonObject = isObject(original) ? original : {};
  const retain = patch['$retainKeys'];
  if (Array.isArray(retain)) for (const k of Object.keys(out)) if (!retain.includes(k) && !(k in patch)) delete out[k];
  for (const [k, v] of Object.entries(patch)) {
    if (k === '$patch' || k === '$retainKeys' || k.startsWith('$setElementOrder/')) continue;
    if (k.startsWith('$deleteFromPrimitiveList/')) {
      const field = k.slice('$deleteFromPrimitiveList/'.length);
      const cur = out[field];
      if (Array.isArray(cur) && Array.isArray(v)) out[field] = cur.filter((x) => !v.some((d) => deepEqual(d, x)));
      continue;
    }
    const p = path === '' ? k : `${path}.${k}`;
    if (v === null) {
      delete out[k];
      continue;
    }
    const listMeta = meta[p];
    if (Array.isArray(v) && listMeta !== undefined && listMeta.strategy === 'merge') {
      out[k] = mergeList(Array.isArray(out[k]) ? (out[k] as unknown[]) : [], v, listMeta, meta, p);
    } else if (isObject(v)) {
      const merged = smp(out[k], v, meta, p);
      if (merged === undefined) delete out[k];
      else out[k] = merged;
    } else out[k] = deepClone(v);
  }
  return out;
}

function mergeList(original: unknown[], patch: unknown[], listMeta: ListMergeMeta, meta: PatchMeta, path: string): unknown[] {
  if (patch.some((p) => isObject(p) && p['$patch'] === 'replace')) {
    return patch.filter((p) => !(isObject(p) && p['$patch'] === 'replace')).map((p) => deepClone(p));
  }
  const key = listMeta.mergeKey;
  if (key === undefined) {
    const out = [...original];
    for (const p of patch) if (!out.some((o) => deepEqual(o, p))) out.push(deepClone(p));
    return out;
  }
  const out = [...original];
  for (const p of patch) {
    if (!isObject(p)) continue;
    const idx = out.findIndex((o) => isObject(o) && deepEqual(o[key], p[key]));
    if (p['$patch'] === 'delete') {
      if (idx >= 0) out.splice(idx, 1);
      continue;
    }
    if (idx >= 0) out[idx] = smp(out[idx], p, meta, path);
    else out.push(smp({}, p, meta, path));
  }
  return out;
}
