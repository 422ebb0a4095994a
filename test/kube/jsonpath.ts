import { isObject } from './json.ts';

/** One step of a compiled JSONPath expression. */
export type JsonPathStep =
  | { kind: 'field'; name: string }
  | { kind: 'index'; index: number }
  | { kind: 'wildcard' }
  | { kind: 'filter'; path: string[]; op: string | undefined; literal: unknown };

/** JsonPathError reports a JSONPath expression outside the supported subset. */
export class JsonPathError extends Error {
  readonly code = 'ERR_JSONPATH';
}

function parseLiteral(text: string): unknown {
  const t = text.trim();
  if (/^".*"$/.test(t) || /^'.*'$/.test(t)) return t.slice(1, -1);
  if (t === 'true' || t === 'false') return t === 'true';
  if (t === 'null') return null;
  if (/^-?\d+(\.\d+)?$/.test(t)) return Number(t);
  throw new JsonPathError(`unsupported literal ${t}`);
}

function parseFilter(body: string): JsonPathStep {
  const m = /^@((?:\.[A-Za-z0-9_\-/]+)+)\s*(?:(==|!=|<=|>=|<|>)\s*(.+))?$/.exec(body.trim());
  if (m === null || m[1] === undefined) throw new JsonPathError(`unsupported filter ${body}`);
  const path = m[1].split('.').filter((p) => p !== '');
  return { kind: 'filter', path, op: m[2], literal: m[3] === undefined ? undefined : parseLiteral(m[3]) };
}

/**
 * parseJsonPath compiles the JSONPath subset printer columns and selectable fields use
 * (`.a.b`, `.a[0]`, `.a[*]`, `.a['k']`, `.a[?(@.type=="Ready")].status`), throwing JsonPathError otherwise.
 */
export function parseJsonPath(expr: string): JsonPathStep[] {
  let s = expr.trim();
  if (s.startsWith('{') && s.endsWith('}')) s = s.slice(1, -1).trim();
  if (s.startsWith('$')) s = s.slice(1);
  const steps: JsonPathStep[] = [];
  let i = 0;
  while (i < s.length) {
    const c = s[i];
    if (c === '.') {
      const m = /^[A-Za-z0-9_\-/]+/.exec(s.slice(i + 1));
      if (m === null) {
        if (s[i + 1] === '*') {
          steps.push({ kind: 'wildcard' });
          i += 2;
          continue;
        }
        throw new JsonPathError(`invalid field at ${i} in ${expr}`);
      }
      steps.push({ kind: 'field', name: m[0] });
      i += 1 + m[0].length;
    } else if (c === '[') {
      const end = findBracketEnd(s, i);
      const inner = s.slice(i + 1, end).trim();
      if (inner === '*') steps.push({ kind: 'wildcard' });
      else if (/^-?\d+$/.test(inner)) steps.push({ kind: 'index', index: Number(inner) });
      else if (/^'.*'$/.test(inner) || /^".*"$/.test(inner)) steps.push({ kind: 'field', name: inner.slice(1, -1) });
      else if (inner.startsWith('?(') && inner.endsWith(')')) steps.push(parseFilter(inner.slice(2, -1)));
      else throw new JsonPathError(`unsupported subscript [${inner}] in ${expr}`);
      i = end + 1;
    } else {
      throw new JsonPathError(`unexpected ${c ?? ''} at ${i} in ${expr}`);
    }
  }
  return steps;
}

function findBracketEnd(s: string, start: number): number {
  let depth = 0;
  let quote: string | undefined;
  for (let i = start; i < s.length; i++) {
    const c = s[i];
    if (quote !== undefined) {
      if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '[' || c === '(') depth++;
    else if (c === ']' || c === ')') {
      depth--;
      if (depth === 0 && c === ']') return i;
    }
  }
  throw new JsonPathError(`unterminated [ in ${s}`);
}

function compare(a: unknown, op: string, b: unknown): boolean {
  switch (op) {
    case '==':
      return a === b;
    case '!=':
      return a !== b;
    default:
      if (typeof a !== 'number' || typeof b !== 'number') return false;
      return op === '<' ? a < b : op === '>' ? a > b : op === '<=' ? a <= b : a >= b;
  }
}

function children(v: unknown): unknown[] {
  if (Array.isArray(v)) return v;
  if (isObject(v)) return Object.values(v);
  return [];
}

/** evaluateJsonPath returns every value the compiled path selects from data, in document order. */
export function evaluateJsonPath(steps: JsonPathStep[], data: unknown): unknown[] {
  let cur: unknown[] = [data];
  for (const step of steps) {
    const next: unknown[] = [];
    for (const v of cur) {
      if (step.kind === 'field') {
        if (isObject(v) && Object.prototype.hasOwnProperty.call(v, step.name)) next.push(v[step.name]);
      } else if (step.kind === 'index') {
        if (Array.isArray(v)) {
          const idx = step.index < 0 ? v.length + step.index : step.index;
          if (idx >= 0 && idx < v.length) next.push(v[idx]);
        }
      } else if (step.kind === 'wildcard') {
        next.push(...children(v));
      } else {
        for (const item of children(v)) {
          let x: unknown = item;
          for (const p of step.path) x = isObject(x) ? x[p] : undefined;
          if (step.op === undefined ? x !== undefined && x !== null && x !== false : compare(x, step.op, step.literal)) next.push(item);
        }
      }
    }
    cur = next;
  }
  return cur;
}

/** printJsonPathValue renders a selected value as kubectl's JSONPath text printer does (Go's fmt for non-strings). */
export function printJsonPathValue(v: unknown): string {
  if (typeof v === 'string') return v;
  if (v === null || v === undefined) return '<nil>';
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return `[${v.map(printJsonPathValue).join(' ')}]`;
  if (isObject(v)) {
    const keys = Object.keys(v).sort();
    return `map[${keys.map((k) => `${k}:${printJsonPathValue(v[k])}`).join(' ')}]`;
  }
  return JSON.stringify(v) ?? '';
}
