import type { KindName } from './kinds.ts';
import type { SmsObject } from '../generated/kinds.ts';
import { DiagnosticCode, fieldPath, type Finding } from './diagnostics.ts';
import { canonicalJson } from './bundle.ts';
import { keyOf, objectKey } from './object-key.ts';
import { checkObject } from './object-rules.ts';
import { referenceFindings } from './reference-rules.ts';
import { ResourceIndex } from './resource-index.ts';

/** The schema check the admission decision needs: the validator's, with defaults applied to the object. */
export type SchemaCheck = (kind: KindName, object: unknown) => Finding[];

/** What to do with a reference to an object that does not exist (yet). */
export type DanglingReferences = 'Warn' | 'Deny';

/** An object offered for admission, and the namespace's objects of the four kinds as they are. */
export interface AdmissionRequest {
  kind: KindName;
  object: unknown;
  /** The objects of the namespace now, the offered object's current version among them on update. */
  namespaceObjects: readonly unknown[];
}

/** One reason for a refusal, with the field at fault (a JSON pointer turned into a dotted path). */
export interface AdmissionCause {
  field: string;
  message: string;
}

/** The decision: allowed or not, why, and warnings kubectl shows either way. */
export interface AdmissionVerdict {
  allowed: boolean;
  causes: AdmissionCause[];
  warnings: string[];
}

/**
 * decideAdmission applies the validator to an object offered to the API server: its schema and its
 * own rules (which the CRD's CEL rules mostly repeat, and which go further where CEL cannot), then
 * the rules that need other objects, against the namespace as it would be with the object in it.
 * An edit that would break another object (a role whose store stops enabling SMS, a second default
 * account) is refused too, naming that object. A reference to an object not there yet is a warning
 * by default: GitOps tools dry-run a whole folder before applying any of it, and the controller
 * reports the reference until its object arrives.
 */
export function decideAdmission(req: AdmissionRequest, schema: SchemaCheck, dangling: DanglingReferences = 'Warn'): AdmissionVerdict {
  const causes: AdmissionCause[] = [];
  const warnings: string[] = [];
  const own = checked(req.kind, req.object, schema);
  for (const f of own.findings) sortFinding(f, causes, warnings);
  if (own.object === undefined) return { allowed: false, causes, warnings };

  const offered = own.object;
  const before = new ResourceIndex();
  const invalid = new Map<string, { where: string; isDefault: boolean }>();
  for (const raw of req.namespaceObjects) {
    const kind = (raw as { kind?: unknown }).kind as KindName;
    const other = checked(kind, raw, schema);
    const key = keyOfRaw(kind, raw);
    if (other.object !== undefined) before.upsert(other.object);
    else if (key !== keyOf(offered)) invalid.set(key, { where: `${kind} ${nameOf(raw)}`, isDefault: isDefault(raw) });
  }
  const after = new ResourceIndex(before.all());
  after.upsert(offered);

  for (const f of referenceFindings(offered, after, invalid)) {
    const warnOnly = f.code === DiagnosticCode.ReferenceNotFound && dangling === 'Warn';
    sortFinding(warnOnly ? { ...f, severity: 'warning' } : f, causes, warnings);
  }
  for (const other of after.all()) {
    if (keyOf(other) === keyOf(offered)) continue;
    const was = new Set(errorsOf(referenceFindings(other, before, invalid)).map(findingKey));
    for (const f of errorsOf(referenceFindings(other, after, invalid))) {
      if (!was.has(findingKey(f))) causes.push({ field: fieldPath(f.pointer), message: `${other.kind} ${other.metadata.name}: ${f.message}` });
    }
  }
  return { allowed: causes.length === 0, causes, warnings };
}

function checked(kind: KindName, raw: unknown, schema: SchemaCheck): { object: SmsObject | undefined; findings: Finding[] } {
  const copy = structuredClone(raw) as SmsObject;
  const schemaFindings = schema(kind, copy);
  const findings = schemaFindings.length > 0 ? schemaFindings : checkObject(copy);
  return { object: findings.some((f) => f.severity === 'error') ? undefined : copy, findings };
}

function sortFinding(f: Finding, causes: AdmissionCause[], warnings: string[]): void {
  if (f.severity === 'error') causes.push({ field: fieldPath(f.pointer), message: f.message });
  else if (f.severity === 'warning') warnings.push(`${fieldPath(f.pointer)}: ${f.message}`);
}

// Another object's errors that this write could cause: names are immutable and a write adds an
// object, so a reference of another object that dangles did so before (its message lists what is
// there, which changes; the finding does not).
function errorsOf(findings: readonly Finding[]): Finding[] {
  return findings.filter((f) => f.severity === 'error' && f.code !== DiagnosticCode.ReferenceNotFound);
}

function findingKey(f: Finding): string {
  return `${f.code} ${f.pointer}`;
}

/**
 * needsReview tells whether a write is judged: a creation, or an update of the spec. An update that
 * leaves the spec alone (a finalizer removed, a label, an annotation) or of an object being deleted
 * is admitted, so that an object stored before a rule existed can still be labelled, and deleted.
 */
export function needsReview(operation: 'CREATE' | 'UPDATE', object: unknown, oldObject: unknown): boolean {
  if (operation === 'CREATE') return true;
  const meta = (o: unknown): Record<string, unknown> => (o as { metadata?: Record<string, unknown> } | null)?.metadata ?? {};
  if (meta(object)['deletionTimestamp'] != null) return false;
  const spec = (o: unknown): string => canonicalJson((o as { spec?: unknown } | null)?.spec ?? null);
  return oldObject === undefined || oldObject === null || spec(object) !== spec(oldObject);
}

/** nameOf reads metadata.name of an object not validated yet ('' when it has none). */
export function nameOf(raw: unknown): string {
  const name = (raw as { metadata?: { name?: unknown } } | undefined)?.metadata?.name;
  return typeof name === 'string' ? name : '';
}

function keyOfRaw(kind: KindName, raw: unknown): string {
  const namespace = (raw as { metadata?: { namespace?: unknown } }).metadata?.namespace;
  return objectKey(kind, typeof namespace === 'string' ? namespace : 'default', nameOf(raw));
}

function isDefault(raw: unknown): boolean {
  return (raw as { spec?: { default?: unknown } }).spec?.default === true;
}

/** admissionMessage is the one line a refusal carries: each cause's message, in order. */
export function admissionMessage(causes: readonly AdmissionCause[]): string {
  return causes.map((c) => c.message).join('; ');
}
