import { celEnv, celMethod, CelScalar, isCelError, listType, parse, plan, type CelInput, type CelResult } from '@bufbuild/cel';
import { strings } from '@bufbuild/cel/ext';
import { isObject } from './json.ts';
import { re2Test } from './re2.ts';
import { additional, childPath, type Schema } from './schema.ts';
import { forbiddenField, invalidValue, required } from './status.ts';
import type { FieldError } from './status.ts';

// x-kubernetes-validations as the API server evaluates them: CEL from @bufbuild/cel (a CEL
// implementation that passes the cel-spec conformance suite) with RE2 regular expressions, plus the
// Kubernetes library functions the smsauth rules use (the strings extension and regex find).

/** A rule of x-kubernetes-validations, as a CRD writes it. */
interface ValidationRule {
  rule: string;
  message?: string;
  messageExpression?: string;
  fieldPath?: string;
  reason?: string;
}

type Program = (ctx: { self: CelInput; oldSelf?: CelInput }) => CelResult;

/**
 * jsRegExp is an RE2 pattern JavaScript's engine can locate matches with, once RE2 said there is
 * one: the rules' patterns use syntax common to both, but for a leading (?i), which is a flag here.
 */
function jsRegExp(pattern: string, flags: string): RegExp {
  const insensitive = pattern.startsWith('(?i)');
  return new RegExp(insensitive ? pattern.slice(4) : pattern, `${flags}u${insensitive ? 'i' : ''}`);
}

/** find returns the first match of an RE2 pattern in the string, or '' (Kubernetes' regex library). */
const find = celMethod('find', CelScalar.STRING, [CelScalar.STRING], CelScalar.STRING, function (pattern) {
  if (!re2Test(pattern, this)) return '';
  return jsRegExp(pattern, '').exec(this)?.[0] ?? '';
});

/** findAll returns every match of an RE2 pattern in the string, in order (Kubernetes' regex library). */
const findAll = celMethod('findAll', CelScalar.STRING, [CelScalar.STRING], listType(CelScalar.STRING), function (pattern) {
  if (!re2Test(pattern, this)) return [];
  return [...this.matchAll(jsRegExp(pattern, 'g'))].map((m) => m[0]);
});

const ENV = celEnv({ funcs: [...strings, find, findAll] });
const programs = new Map<string, Program | Error>();

function compile(expr: string): Program | Error {
  let p = programs.get(expr);
  if (p === undefined) {
    try {
      p = plan(ENV, parse(expr));
    } catch (e) {
      p = e instanceof Error ? e : new Error(String(e));
    }
    programs.set(expr, p);
  }
  return p;
}

function rulesOf(s: Schema): ValidationRule[] {
  return (s['x-kubernetes-validations'] ?? []).filter(isObject) as unknown as ValidationRule[];
}

/** compileErrors checks a schema's rules compile, as CRD validation does (path names the schema node). */
export function compileErrors(s: Schema, path: string): FieldError[] {
  const errs: FieldError[] = [];
  rulesOf(s).forEach((r, i) => {
    const where = `${path}.x-kubernetes-validations[${i}]`;
    if (typeof r.rule !== 'string' || r.rule === '') errs.push(required(`${where}.rule`));
    else {
      const p = compile(r.rule);
      if (p instanceof Error) errs.push(invalidValue(`${where}.rule`, r.rule, `compilation failed: ${p.message}`));
    }
    if (typeof r.messageExpression === 'string') {
      const p = compile(r.messageExpression);
      if (p instanceof Error) errs.push(invalidValue(`${where}.messageExpression`, r.messageExpression, `messageExpression compilation failed: ${p.message}`));
    }
    if (r.reason !== undefined && !['FieldValueInvalid', 'FieldValueForbidden', 'FieldValueRequired', 'FieldValueDuplicate'].includes(r.reason)) {
      errs.push(invalidValue(`${where}.reason`, r.reason, 'must be FieldValueRequired, FieldValueForbidden, FieldValueInvalid or FieldValueDuplicate'));
    }
  });
  return errs;
}

/** toCel converts a JSON value to the CEL value its schema types: integers are CEL ints, objects maps. */
function toCel(v: unknown, s: Schema | undefined): CelInput {
  if (v === null || v === undefined) return null;
  if (Array.isArray(v)) return v.map((x) => toCel(x, s?.items));
  if (isObject(v)) {
    const addl = s === undefined ? undefined : additional(s);
    return new Map(Object.entries(v).map(([k, x]) => [k, toCel(x, s?.properties?.[k] ?? addl)]));
  }
  if (typeof v === 'number') return s?.type === 'number' || !Number.isInteger(v) ? v : BigInt(v);
  return v as CelInput;
}

function typeName(s: Schema): string {
  return s.type ?? 'object';
}

function failure(r: ValidationRule, path: string, s: Schema, message: string): FieldError {
  const field = r.fieldPath !== undefined && r.fieldPath !== '' ? `${path}${r.fieldPath}` : path;
  if (r.reason === 'FieldValueForbidden') return forbiddenField(field, message);
  if (r.reason === 'FieldValueRequired') return required(field, message);
  if (r.reason === 'FieldValueDuplicate') return { type: 'FieldValueDuplicate', field, badValue: typeName(s), detail: message };
  return invalidValue(field, typeName(s), message);
}

function messageOf(r: ValidationRule, ctx: { self: CelInput; oldSelf?: CelInput }): string {
  if (typeof r.messageExpression === 'string') {
    const p = compile(r.messageExpression);
    const out = p instanceof Error ? p : p(ctx);
    if (typeof out === 'string' && out.trim() !== '' && !out.includes('\n')) return out;
  }
  return r.message ?? `failed rule: ${r.rule}`;
}

function evaluateNode(v: unknown, old: unknown, s: Schema, path: string, errors: FieldError[]): void {
  for (const r of rulesOf(s)) {
    const usesOld = /\boldSelf\b/.test(r.rule);
    if (usesOld && old === undefined) continue; // a transition rule only runs on update
    const p = compile(r.rule);
    if (p instanceof Error) continue;
    const ctx = usesOld ? { self: toCel(v, s), oldSelf: toCel(old, s) } : { self: toCel(v, s) };
    const result = p(ctx);
    if (isCelError(result)) errors.push(invalidValue(path, typeName(s), `rule evaluation failed: ${result.message}`));
    else if (result !== true) errors.push(failure(r, path, s, messageOf(r, ctx)));
  }
}

/**
 * celErrors evaluates every x-kubernetes-validations rule of schema against value (old is the stored
 * object on update, for transition rules), walking properties, map values and list items, and
 * returns Kubernetes' field errors. The root rules see the whole object, metadata included.
 */
export function celErrors(value: unknown, schema: Schema, old?: unknown, path = ''): FieldError[] {
  const errors: FieldError[] = [];
  walk(value, old, schema, path, errors);
  return errors;
}

function walk(v: unknown, old: unknown, s: Schema, path: string, errors: FieldError[]): void {
  if (v === null || v === undefined) return;
  evaluateNode(v, old, s, path === '' ? '<root>' : path, errors);
  if (Array.isArray(v) && s.items !== undefined) {
    v.forEach((item, i) => walk(item, undefined, s.items!, `${path}[${i}]`, errors));
  } else if (isObject(v)) {
    const o = isObject(old) ? old : undefined;
    const addl = additional(s);
    for (const [k, child] of Object.entries(v)) {
      if (path === '' && (k === 'apiVersion' || k === 'kind' || k === 'metadata')) continue;
      const prop = s.properties?.[k];
      if (prop !== undefined) walk(child, o?.[k], prop, childPath(path, k), errors);
      else if (addl !== undefined) walk(child, o?.[k], addl, `${path}[${k}]`, errors);
    }
  }
}
