import { badRequest } from './status.ts';

/** One requirement of a label selector, e.g. `tier in (a,b)` or `!canary`. */
export interface LabelRequirement {
  key: string;
  op: 'exists' | '!' | '=' | '!=' | 'in' | 'notin' | 'gt' | 'lt';
  values: string[];
}

/** One requirement of a field selector, e.g. `metadata.name=foo`. */
export interface FieldRequirement {
  field: string;
  op: '=' | '!=';
  value: string;
}

/** parseLabelSelector parses Kubernetes' label selector syntax (equality- and set-based), throwing a 400 ApiError when malformed. */
export function parseLabelSelector(text: string): LabelRequirement[] {
  const out: LabelRequirement[] = [];
  for (const part of splitTopLevel(text)) {
    const p = part.trim();
    if (p === '') continue;
    let m: RegExpExecArray | null;
    if ((m = /^!\s*([A-Za-z0-9._/-]+)$/.exec(p)) !== null) out.push({ key: m[1] ?? '', op: '!', values: [] });
    else if ((m = /^([A-Za-z0-9._/-]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(p)) !== null) {
      const values = (m[3] ?? '')
        .split(',')
        .map((v) => v.trim())
        .filter((v) => v !== '');
      out.push({ key: m[1] ?? '', op: m[2] === 'in' ? 'in' : 'notin', values });
    } else if ((m = /^([A-Za-z0-9._/-]+)\s*(==|=|!=)\s*([A-Za-z0-9._-]*)$/.exec(p)) !== null) {
      out.push({ key: m[1] ?? '', op: m[2] === '!=' ? '!=' : '=', values: [m[3] ?? ''] });
    } else if ((m = /^([A-Za-z0-9._/-]+)\s*(>|<)\s*(-?\d+)$/.exec(p)) !== null) {
      out.push({ key: m[1] ?? '', op: m[2] === '>' ? 'gt' : 'lt', values: [m[3] ?? ''] });
    } else if ((m = /^([A-Za-z0-9._/-]+)$/.exec(p)) !== null) out.push({ key: m[1] ?? '', op: 'exists', values: [] });
    else throw badRequest(`unable to parse requirement: found '${p}', expected: in, notin, =, ==, !=, gt, lt`);
  }
  return out;
}

function splitTopLevel(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let cur = '';
  for (const c of text) {
    if (c === '(') depth++;
    if (c === ')') depth--;
    if (c === ',' && depth === 0) {
      parts.push(cur);
      cur = '';
    } else cur += c;
  }
  parts.push(cur);
  return parts;
}

/** matchesLabels tells whether labels satisfy every requirement. */
export function matchesLabels(reqs: LabelRequirement[], labels: Record<string, string>): boolean {
  return reqs.every((r) => {
    const has = Object.prototype.hasOwnProperty.call(labels, r.key);
    const v = labels[r.key];
    switch (r.op) {
      case 'exists':
        return has;
      case '!':
        return !has;
      case '=':
        return has && v === r.values[0];
      case '!=':
        return !has || v !== r.values[0];
      case 'in':
        return has && v !== undefined && r.values.includes(v);
      case 'notin':
        return !has || v === undefined || !r.values.includes(v);
      case 'gt':
      case 'lt': {
        if (!has || v === undefined || !/^-?\d+$/.test(v)) return false;
        const n = Number(v);
        const bound = Number(r.values[0]);
        return r.op === 'gt' ? n > bound : n < bound;
      }
    }
  });
}

function unescapeField(s: string): string {
  return s.replace(/\\(.)/g, '$1');
}

/** parseFieldSelector parses `a=b,c!=d` (with `\,` `\=` escapes), throwing a 400 ApiError when malformed. */
export function parseFieldSelector(text: string): FieldRequirement[] {
  const out: FieldRequirement[] = [];
  const parts = text.split(/(?<!\\),/);
  for (const raw of parts) {
    const p = raw.trim();
    if (p === '') continue;
    const m = /^((?:[^=!\\]|\\.)+?)\s*(==|=|!=)\s*((?:[^\\]|\\.)*)$/.exec(p);
    if (m === null) throw badRequest(`invalid selector: '${text}'; can't understand '${p}'`);
    out.push({ field: unescapeField(m[1] ?? ''), op: m[2] === '!=' ? '!=' : '=', value: unescapeField(m[3] ?? '') });
  }
  return out;
}

/** matchesFields tells whether the object's selectable fields satisfy every requirement. */
export function matchesFields(reqs: FieldRequirement[], fields: Record<string, string>): boolean {
  return reqs.every((r) => {
    const v = fields[r.field] ?? '';
    return r.op === '=' ? v === r.value : v !== r.value;
  });
}
