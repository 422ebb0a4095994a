import { deepClone, deepEqual, isObject, jsonTypeName } from './json.ts';
import type { JsonObject } from './json.ts';
import { isRe2, re2Test } from './re2.ts';
import { fieldErrorString, invalidValue, notSupported, required } from './status.ts';
import type { FieldError } from './status.ts';

/** The subset of OpenAPI v3 (JSONSchemaProps) that structural CRD schemas and our built-in schemas use. */
export interface Schema {
  type?: string;
  format?: string;
  description?: string;
  default?: unknown;
  nullable?: boolean;
  enum?: unknown[];
  pattern?: string;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: boolean;
  exclusiveMaximum?: boolean;
  multipleOf?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  uniqueItems?: boolean;
  minProperties?: number;
  maxProperties?: number;
  required?: string[];
  properties?: Record<string, Schema>;
  additionalProperties?: Schema | boolean;
  items?: Schema;
  allOf?: Schema[];
  anyOf?: Schema[];
  oneOf?: Schema[];
  not?: Schema;
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  'x-kubernetes-int-or-string'?: boolean;
  'x-kubernetes-embedded-resource'?: boolean;
  'x-kubernetes-list-type'?: string;
  'x-kubernetes-list-map-keys'?: string[];
  'x-kubernetes-map-type'?: string;
  'x-kubernetes-validations'?: unknown[];
}

/** OBJECT_META_FIELDS are the fields of metav1.ObjectMeta; anything else under metadata is pruned. */
export const OBJECT_META_FIELDS: ReadonlySet<string> = new Set([
  'name',
  'generateName',
  'namespace',
  'selfLink',
  'uid',
  'resourceVersion',
  'generation',
  'creationTimestamp',
  'deletionTimestamp',
  'deletionGracePeriodSeconds',
  'labels',
  'annotations',
  'ownerReferences',
  'finalizers',
  'managedFields',
]);

/** childPath appends a property name to a field path (`spec` + `sms` → `spec.sms`). */
export function childPath(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}

function mapKeyPath(path: string, key: string): string {
  return `${path}[${key}]`;
}

function indexPath(path: string, i: number): string {
  return `${path}[${i}]`;
}

function preservesUnknown(s: Schema): boolean {
  return s['x-kubernetes-preserve-unknown-fields'] === true;
}

/** additional is the schema of an object's undeclared keys (a map's values), when it has one. */
export function additional(s: Schema): Schema | undefined {
  return isObject(s.additionalProperties) ? s.additionalProperties : undefined;
}

function pruneMetadata(meta: unknown, path: string, unknown: string[]): void {
  if (!isObject(meta)) return;
  for (const k of Object.keys(meta)) {
    if (!OBJECT_META_FIELDS.has(k)) {
      unknown.push(childPath(path, k));
      delete meta[k];
    }
  }
}

/**
 * prune removes every field the schema does not declare (unless x-kubernetes-preserve-unknown-fields),
 * mutating value, and returns the paths it removed; `isRoot` keeps apiVersion/kind and prunes metadata to ObjectMeta.
 */
export function prune(value: unknown, schema: Schema, path = '', isRoot = true): string[] {
  const unknown: string[] = [];
  pruneInto(value, schema, path, isRoot, unknown);
  return unknown;
}

function pruneInto(value: unknown, s: Schema, path: string, isResource: boolean, unknown: string[]): void {
  if (isObject(value)) {
    const props = s.properties ?? {};
    const addl = additional(s);
    for (const k of Object.keys(value)) {
      const p = childPath(path, k);
      if (isResource && (k === 'apiVersion' || k === 'kind')) continue;
      if (isResource && k === 'metadata') {
        pruneMetadata(value[k], p, unknown);
        continue;
      }
      const prop = props[k];
      if (prop !== undefined) {
        pruneInto(value[k], prop, p, prop['x-kubernetes-embedded-resource'] === true, unknown);
      } else if (addl !== undefined) {
        pruneInto(value[k], addl, mapKeyPath(path, k), addl['x-kubernetes-embedded-resource'] === true, unknown);
      } else if (s.additionalProperties === true || preservesUnknown(s)) {
        continue;
      } else {
        unknown.push(p);
        delete value[k];
      }
    }
  } else if (Array.isArray(value) && s.items !== undefined) {
    const items = s.items;
    value.forEach((v, i) => pruneInto(v, items, indexPath(path, i), items['x-kubernetes-embedded-resource'] === true, unknown));
  }
}

function isNonNullableNull(v: unknown, s: Schema | undefined): boolean {
  return v === null && s !== undefined && s.nullable !== true;
}

/**
 * applyDefaults sets schema defaults on missing (or non-nullable null) fields, recursing into defaulted values
 * so nested defaults apply, and drops non-nullable nulls that have no default, like structural defaulting.
 */
export function applyDefaults(value: unknown, schema: Schema | undefined, isRoot = true): void {
  if (schema === undefined) return;
  if (isObject(value)) {
    const props = schema.properties ?? {};
    for (const [k, prop] of Object.entries(props)) {
      if (isRoot && (k === 'metadata' || k === 'apiVersion' || k === 'kind')) continue;
      const present = Object.prototype.hasOwnProperty.call(value, k);
      if (prop.default !== undefined && (!present || isNonNullableNull(value[k], prop))) {
        value[k] = deepClone(prop.default);
      } else if (present && isNonNullableNull(value[k], prop)) {
        delete value[k];
      }
    }
    const addl = additional(schema);
    for (const [k, v] of Object.entries(value)) {
      if (isRoot && (k === 'metadata' || k === 'apiVersion' || k === 'kind')) continue;
      const prop = props[k];
      if (prop !== undefined) applyDefaults(v, prop, prop['x-kubernetes-embedded-resource'] === true);
      else if (addl !== undefined) {
        if (isNonNullableNull(v, addl) && addl.default !== undefined) value[k] = deepClone(addl.default);
        applyDefaults(value[k], addl, addl['x-kubernetes-embedded-resource'] === true);
      }
    }
  } else if (Array.isArray(value) && schema.items !== undefined) {
    const items = schema.items;
    value.forEach((v, i) => {
      if (isNonNullableNull(v, items) && items.default !== undefined) value[i] = deepClone(items.default);
      applyDefaults(value[i], items, items['x-kubernetes-embedded-resource'] === true);
    });
  }
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/i;
const FORMAT_CHECKS: Record<string, (v: string) => boolean> = {
  email: (v) => /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(v),
  hostname: (v) => v.length <= 253 && v.split('.').every((l) => l.length <= 63 && DNS_LABEL.test(l)),
  ipv4: (v) => isIPv4(v),
  ipv6: (v) => isIPv6(v),
  cidr: (v) => {
    const [ip, bits, ...rest] = v.split('/');
    if (ip === undefined || bits === undefined || rest.length > 0 || !/^\d+$/.test(bits)) return false;
    const n = Number(bits);
    return isIPv4(ip) ? n <= 32 : isIPv6(ip) && n <= 128;
  },
  mac: (v) => /^([0-9a-f]{2}[:-]){5}[0-9a-f]{2}$/i.test(v),
  uuid: (v) => /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i.test(v),
  uuid3: (v) => /^[0-9a-f]{8}-?[0-9a-f]{4}-?3[0-9a-f]{3}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i.test(v),
  uuid4: (v) => /^[0-9a-f]{8}-?[0-9a-f]{4}-?4[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}$/i.test(v),
  uuid5: (v) => /^[0-9a-f]{8}-?[0-9a-f]{4}-?5[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}$/i.test(v),
  byte: (v) => /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(v),
  date: (v) => /^\d{4}-\d{2}-\d{2}$/.test(v) && !Number.isNaN(Date.parse(`${v}T00:00:00Z`)),
  'date-time': (v) => isDateTime(v),
  datetime: (v) => isDateTime(v),
  duration: (v) =>
    /^(\d+(\.\d+)?\s*(ns|us|µs|ms|s|m|h|d|w))+$/.test(v.replace(/\s+/g, '')) ||
    /^\d+\s*(ns|us|µs|ms|s|m|h|d|w|second|seconds|minute|minutes|hour|hours|day|days|week|weeks)$/.test(v),
  uri: (v) => {
    try {
      new URL(v);
      return true;
    } catch {
      return false;
    }
  },
  hexcolor: (v) => /^#?([0-9a-f]{3}|[0-9a-f]{6})$/i.test(v),
  bsonobjectid: (v) => /^[0-9a-f]{24}$/i.test(v),
};

function isIPv4(v: string): boolean {
  const parts = v.split('.');
  return parts.length === 4 && parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255);
}

function isIPv6(v: string): boolean {
  if (!/^[0-9a-f:.]+$/i.test(v) || !v.includes(':')) return false;
  const double = v.split('::');
  if (double.length > 2) return false;
  const groups = v.split(':').filter((g) => g !== '');
  return groups.length <= 8 && groups.every((g) => /^[0-9a-f]{1,4}$/i.test(g) || isIPv4(g));
}

function isDateTime(v: string): boolean {
  return /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/.test(v) && !Number.isNaN(Date.parse(v.replace(' ', 'T')));
}

/** typeMatches tells whether a JSON value is of an OpenAPI type (an unknown type matches anything). */
export function typeMatches(type: string, v: unknown): boolean {
  switch (type) {
    case 'object':
      return isObject(v);
    case 'array':
      return Array.isArray(v);
    case 'string':
      return typeof v === 'string';
    case 'integer':
      return typeof v === 'number' && Number.isInteger(v);
    case 'number':
      return typeof v === 'number';
    case 'boolean':
      return typeof v === 'boolean';
    default:
      return true;
  }
}

function actualType(v: unknown): string {
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return jsonTypeName(v);
}

function listKey(item: unknown, keys: string[]): string {
  return JSON.stringify(keys.map((k) => (isObject(item) ? item[k] : undefined)));
}

/**
 * validate checks value against schema like kube-openapi's validator does for custom resources and returns
 * field errors with Kubernetes' paths and messages (empty when valid); apiVersion/kind/metadata at the root are skipped.
 */
export function validate(value: unknown, schema: Schema, path = '', isRoot = true): FieldError[] {
  const errors: FieldError[] = [];
  validateInto(value, schema, path, isRoot, errors);
  return errors;
}

function validateInto(v: unknown, s: Schema, path: string, isResource: boolean, errors: FieldError[]): void {
  const where = path === '' ? '<root>' : path;
  if (v === null) {
    if (s.nullable === true || s.type === undefined || s.type === '') return;
    errors.push({ type: 'FieldValueTypeInvalid', field: where, badValue: 'null', detail: `${where} in body must be of type ${s.type}: "null"` });
    return;
  }
  if (s['x-kubernetes-int-or-string'] === true) {
    if (!(typeof v === 'string' || (typeof v === 'number' && Number.isInteger(v)))) {
      errors.push({
        type: 'FieldValueTypeInvalid',
        field: where,
        badValue: actualType(v),
        detail: `${where} in body must be of type integer,string: ${JSON.stringify(actualType(v))}`,
      });
      return;
    }
  } else if (s.type !== undefined && s.type !== '' && !typeMatches(s.type, v)) {
    errors.push({
      type: 'FieldValueTypeInvalid',
      field: where,
      badValue: actualType(v),
      detail: `${where} in body must be of type ${s.type}: ${JSON.stringify(actualType(v))}`,
    });
    return;
  }
  if (s.enum !== undefined && !s.enum.some((e) => deepEqual(e, v))) {
    errors.push(
      notSupported(
        where,
        v,
        s.enum.map((e) => (typeof e === 'string' ? e : JSON.stringify(e))),
      ),
    );
  }
  if (typeof v === 'string') validateString(v, s, where, errors);
  if (typeof v === 'number') validateNumber(v, s, where, errors);
  if (Array.isArray(v)) validateArray(v, s, path, where, errors);
  if (isObject(v)) validateObject(v, s, path, where, isResource, errors);
  validateCombinators(v, s, path, where, isResource, errors);
}

function validateString(v: string, s: Schema, where: string, errors: FieldError[]): void {
  const len = [...v].length;
  if (s.maxLength !== undefined && len > s.maxLength) {
    errors.push({ type: 'FieldValueTooLong', field: where, badValue: v, detail: `may not be more than ${s.maxLength} bytes` });
  }
  if (s.minLength !== undefined && len < s.minLength) {
    errors.push(invalidValue(where, v, `${where} in body should be at least ${s.minLength} chars long`));
  }
  if (s.pattern !== undefined) {
    if (isRe2(s.pattern) && !re2Test(s.pattern, v)) errors.push(invalidValue(where, v, `${where} in body should match '${s.pattern}'`));
  }
  if (s.format !== undefined) {
    const check = FORMAT_CHECKS[s.format];
    if (check !== undefined && !check(v)) errors.push(invalidValue(where, v, `${where} in body must be of type ${s.format}: ${JSON.stringify(v)}`));
  }
}

function validateNumber(v: number, s: Schema, where: string, errors: FieldError[]): void {
  if (s.maximum !== undefined) {
    if (s.exclusiveMaximum === true ? v >= s.maximum : v > s.maximum) {
      errors.push(invalidValue(where, v, `${where} in body should be less than ${s.exclusiveMaximum === true ? '' : 'or equal to '}${s.maximum}`));
    }
  }
  if (s.minimum !== undefined) {
    if (s.exclusiveMinimum === true ? v <= s.minimum : v < s.minimum) {
      errors.push(invalidValue(where, v, `${where} in body should be greater than ${s.exclusiveMinimum === true ? '' : 'or equal to '}${s.minimum}`));
    }
  }
  if (s.multipleOf !== undefined && s.multipleOf !== 0) {
    const q = v / s.multipleOf;
    if (Math.abs(q - Math.round(q)) > 1e-9) errors.push(invalidValue(where, v, `${where} in body should be a multiple of ${s.multipleOf}`));
  }
}

function validateArray(v: unknown[], s: Schema, path: string, where: string, errors: FieldError[]): void {
  if (s.maxItems !== undefined && v.length > s.maxItems) {
    errors.push({ type: 'FieldValueTooMany', field: where, badValue: v.length, detail: `must have at most ${s.maxItems} items` });
  }
  if (s.minItems !== undefined && v.length < s.minItems) {
    errors.push(invalidValue(where, v, `${where} in body should have at least ${s.minItems} items`));
  }
  const listType = s['x-kubernetes-list-type'];
  if (s.uniqueItems === true || listType === 'set') {
    v.forEach((item, i) => {
      if (v.findIndex((other) => deepEqual(other, item)) < i) errors.push({ type: 'FieldValueDuplicate', field: indexPath(where, i), badValue: item });
    });
  }
  if (listType === 'map') {
    const keys = s['x-kubernetes-list-map-keys'] ?? [];
    const seen = new Set<string>();
    v.forEach((item, i) => {
      const k = listKey(item, keys);
      if (seen.has(k)) errors.push({ type: 'FieldValueDuplicate', field: indexPath(where, i), badValue: item });
      seen.add(k);
    });
  }
  const items = s.items;
  if (items !== undefined) v.forEach((item, i) => validateInto(item, items, indexPath(path, i), items['x-kubernetes-embedded-resource'] === true, errors));
}

function validateObject(v: JsonObject, s: Schema, path: string, where: string, isResource: boolean, errors: FieldError[]): void {
  for (const r of s.required ?? []) {
    if (isResource && (r === 'apiVersion' || r === 'kind' || r === 'metadata')) continue;
    if (!Object.prototype.hasOwnProperty.call(v, r)) errors.push(required(childPath(path, r)));
  }
  const n = Object.keys(v).length;
  if (s.maxProperties !== undefined && n > s.maxProperties) {
    errors.push({ type: 'FieldValueTooMany', field: where, badValue: n, detail: `must have at most ${s.maxProperties} items` });
  }
  if (s.minProperties !== undefined && n < s.minProperties) {
    errors.push(invalidValue(where, v, `${where} in body should have at least ${s.minProperties} properties`));
  }
  const props = s.properties ?? {};
  const addl = additional(s);
  for (const [k, child] of Object.entries(v)) {
    if (isResource && (k === 'apiVersion' || k === 'kind' || k === 'metadata')) continue;
    const prop = props[k];
    if (prop !== undefined) validateInto(child, prop, childPath(path, k), prop['x-kubernetes-embedded-resource'] === true, errors);
    else if (addl !== undefined) validateInto(child, addl, mapKeyPath(path, k), addl['x-kubernetes-embedded-resource'] === true, errors);
  }
}

function validateCombinators(v: unknown, s: Schema, path: string, where: string, isResource: boolean, errors: FieldError[]): void {
  const passes = (sub: Schema): boolean => {
    const e: FieldError[] = [];
    validateInto(v, sub, path, isResource, e);
    return e.length === 0;
  };
  for (const sub of s.allOf ?? []) validateInto(v, sub, path, isResource, errors);
  if (s.anyOf !== undefined && s.anyOf.length > 0 && !s.anyOf.some(passes)) {
    errors.push(invalidValue(where, v, `${where} in body must validate at least one schema (anyOf)`));
  }
  if (s.oneOf !== undefined && s.oneOf.length > 0 && s.oneOf.filter(passes).length !== 1) {
    errors.push(invalidValue(where, v, `${where} in body must validate one and only one schema (oneOf)`));
  }
  if (s.not !== undefined && passes(s.not)) {
    errors.push(invalidValue(where, v, `${where} in body must not validate the schema (not)`));
  }
}

/** describeErrors renders field errors as one line each, for messages and test failures. */
export function describeErrors(errors: FieldError[]): string {
  return errors.map(fieldErrorString).join('; ');
}
