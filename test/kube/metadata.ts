import { randomInt } from 'node:crypto';
import { deepEqual, getObject, isObject } from './json.ts';
import type { JsonObject } from './json.ts';
import type { NameRule } from './resources.ts';
import { forbiddenField, invalidValue, required } from './status.ts';
import type { FieldError } from './status.ts';

const SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1035 = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const QUALIFIED_NAME_PART = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

const SUBDOMAIN_MSG =
  "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_MSG =
  "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1035_MSG =
  "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
const QUALIFIED_MSG =
  "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const LABEL_VALUE_MSG =
  "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

/** nameErrors checks a metadata.name (or generated name) against a name rule and returns the messages, empty when valid. */
export function nameErrors(name: string, rule: NameRule): string[] {
  const out: string[] = [];
  if (rule === 'path-segment' || rule === 'subdomain') {
    if (name === '.' || name === '..') out.push(`may not be '${name}'`);
    if (name.includes('/')) out.push("may not contain '/'");
    if (name.includes('%')) out.push("may not contain '%'");
  }
  if (rule === 'subdomain') {
    if (name.length > 253) out.push('must be no more than 253 characters');
    if (!SUBDOMAIN.test(name)) out.push(SUBDOMAIN_MSG);
  } else if (rule === 'label') {
    if (name.length > 63) out.push('must be no more than 63 characters');
    if (!LABEL.test(name)) out.push(LABEL_MSG);
  } else if (rule === 'dns1035') {
    if (name.length > 63) out.push('must be no more than 63 characters');
    if (!DNS1035.test(name)) out.push(DNS1035_MSG);
  }
  return out;
}

/** qualifiedNameErrors validates a label key, annotation key or finalizer (optional DNS prefix, then a name part). */
export function qualifiedNameErrors(value: string): string[] {
  const parts = value.split('/');
  if (parts.length > 2)
    return [
      `a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')`,
    ];
  const out: string[] = [];
  const name = parts.length === 2 ? (parts[1] ?? '') : (parts[0] ?? '');
  if (parts.length === 2) {
    const prefix = parts[0] ?? '';
    if (prefix === '') out.push('prefix part must be non-empty');
    else if (!SUBDOMAIN.test(prefix) || prefix.length > 253) out.push(`prefix part ${SUBDOMAIN_MSG}`);
  }
  if (name === '') out.push('name part must be non-empty');
  else {
    if (name.length > 63) out.push('name part must be no more than 63 characters');
    if (!QUALIFIED_NAME_PART.test(name)) out.push(QUALIFIED_MSG);
  }
  return out;
}

function validateStringMap(value: unknown, path: string, valueRule: ((v: string) => string[]) | undefined): FieldError[] {
  const errs: FieldError[] = [];
  if (!isObject(value)) return errs;
  for (const [k, v] of Object.entries(value)) {
    for (const msg of qualifiedNameErrors(k)) errs.push(invalidValue(path, k, msg));
    if (valueRule !== undefined && typeof v === 'string') for (const msg of valueRule(v)) errs.push(invalidValue(`${path}`, v, msg));
  }
  return errs;
}

function labelValueErrors(v: string): string[] {
  const out: string[] = [];
  if (v.length > 63) out.push('must be no more than 63 characters');
  if (!LABEL_VALUE.test(v)) out.push(LABEL_VALUE_MSG);
  return out;
}

/** validateObjectMeta checks the metadata rules every kind shares (name, namespace scope, labels, annotations, finalizers, ownerReferences). */
export function validateObjectMeta(obj: JsonObject, namespaced: boolean, rule: NameRule): FieldError[] {
  const meta = getObject(obj, 'metadata') ?? {};
  const errs: FieldError[] = [];
  const name = meta['name'];
  if (typeof name !== 'string' || name === '') {
    if (typeof meta['generateName'] !== 'string' || meta['generateName'] === '') errs.push(required('metadata.name', 'name or generateName is required'));
  } else {
    for (const msg of nameErrors(name, rule)) errs.push(invalidValue('metadata.name', name, msg));
  }
  const ns = meta['namespace'];
  if (namespaced) {
    if (typeof ns !== 'string' || ns === '') errs.push(required('metadata.namespace'));
  } else if (typeof ns === 'string' && ns !== '') {
    errs.push(forbiddenField('metadata.namespace', 'not allowed on this type'));
  }
  errs.push(...validateStringMap(meta['labels'], 'metadata.labels', labelValueErrors));
  errs.push(...validateStringMap(meta['annotations'], 'metadata.annotations', undefined));
  const annotations = meta['annotations'];
  if (isObject(annotations)) {
    const size = Object.entries(annotations).reduce((n, [k, v]) => n + k.length + (typeof v === 'string' ? v.length : 0), 0);
    if (size > 256 * 1024) errs.push({ type: 'FieldValueTooLong', field: 'metadata.annotations', detail: `may not be more than ${256 * 1024} bytes` });
  }
  const finalizers = meta['finalizers'];
  if (Array.isArray(finalizers)) {
    finalizers.forEach((f, i) => {
      if (typeof f === 'string') for (const msg of qualifiedNameErrors(f)) errs.push(invalidValue(`metadata.finalizers[${i}]`, f, msg));
    });
  }
  const owners = meta['ownerReferences'];
  if (Array.isArray(owners)) {
    owners.forEach((o, i) => {
      if (!isObject(o)) return;
      for (const k of ['apiVersion', 'kind', 'name', 'uid']) {
        if (typeof o[k] !== 'string' || o[k] === '') errs.push(invalidValue(`metadata.ownerReferences[${i}].${k}`, o[k] ?? '', `${k} must not be empty`));
      }
    });
  }
  return errs;
}

/** validateObjectMetaUpdate checks the update-only metadata rules: immutable identity and no new finalizers while deleting. */
export function validateObjectMetaUpdate(obj: JsonObject, old: JsonObject): FieldError[] {
  const meta = getObject(obj, 'metadata') ?? {};
  const oldMeta = getObject(old, 'metadata') ?? {};
  const errs: FieldError[] = [];
  for (const k of ['name', 'namespace', 'uid', 'creationTimestamp']) {
    if (!deepEqual(meta[k], oldMeta[k])) errs.push(invalidValue(`metadata.${k}`, meta[k] ?? '', 'field is immutable'));
  }
  if (oldMeta['deletionTimestamp'] !== undefined) {
    const before = new Set(Array.isArray(oldMeta['finalizers']) ? oldMeta['finalizers'] : []);
    const after = Array.isArray(meta['finalizers']) ? meta['finalizers'] : [];
    const added = after.filter((f) => !before.has(f));
    if (added.length > 0)
      errs.push(
        forbiddenField('metadata.finalizers', `no new finalizers can be added if the object is being deleted, found new finalizers ${JSON.stringify(added)}`),
      );
  }
  return errs;
}

const NAME_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';

/** generateName appends the API server's 5-character random suffix to a generateName prefix. */
export function generateName(prefix: string): string {
  let suffix = '';
  for (let i = 0; i < 5; i++) suffix += NAME_ALPHABET[randomInt(NAME_ALPHABET.length)];
  return `${prefix.slice(0, 58)}${suffix}`;
}

/** formatTime renders a metav1.Time: RFC 3339 in UTC with whole seconds. */
export function formatTime(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}
