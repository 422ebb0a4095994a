import { DiagnosticCode, compareDiagnostics, type Diagnostic, type Finding } from '../core/diagnostics.ts';
import { checkObject } from '../core/object-rules.ts';
import { objectKey, type ObjectRef } from '../core/object-key.ts';
import { referenceFindings } from '../core/reference-rules.ts';
import { ResourceIndex } from '../core/resource-index.ts';
import type { SmsObject } from '../generated/kinds.ts';
import { classifyDocuments, type LoadedObject, type SecretManifest } from '../load/classify.ts';
import { DEFAULT_LIMITS, parseYamlFile, type LoaderLimits, type ParsedFile, type YamlDocument } from '../load/yaml-documents.ts';
import type { SchemaValidator } from './schema-validator.ts';

/** ValidatedObject is an object that passed its schema and its own rules, with defaults applied. */
export interface ValidatedObject {
  object: SmsObject;
  loaded: LoadedObject;
}

/** RejectedObject is an object invalid on its own; where the last good version of it exists, that one keeps serving. */
export interface RejectedObject {
  ref: ObjectRef;
  loaded: LoadedObject;
  diagnostics: Diagnostic[];
}

/** ValidationResult is everything the files declare, sorted into valid, rejected and secrets, with every diagnostic. */
export interface ValidationResult {
  valid: ValidatedObject[];
  rejected: RejectedObject[];
  secrets: SecretManifest[];
  /** Every diagnostic, sorted by file and position. */
  diagnostics: Diagnostic[];
}

/** SourceText is one file to validate: its name as shown and its bytes. */
export interface SourceText {
  path: string;
  bytes: Uint8Array;
}

/** FileParser parses one file's bytes; a caching one may return earlier results, as fresh copies. */
export type FileParser = (path: string, bytes: Uint8Array, limits: LoaderLimits) => ParsedFile;

/** validateFiles parses, classifies and validates files: schema, then each object's own rules, then the rules across objects. */
export function validateFiles(
  files: readonly SourceText[],
  validator: SchemaValidator,
  limits: LoaderLimits = DEFAULT_LIMITS,
  parse: FileParser = parseYamlFile,
): ValidationResult {
  const documents: YamlDocument[] = [];
  const diagnostics: Diagnostic[] = [];
  for (const f of files) {
    const parsed = parse(f.path, f.bytes, limits);
    documents.push(...parsed.documents);
    diagnostics.push(...parsed.diagnostics);
  }
  const result = validateDocuments(documents, validator);
  result.diagnostics = [...diagnostics, ...result.diagnostics].sort(compareDiagnostics);
  return result;
}

/** validateDocuments validates parsed documents (see validateFiles). */
export function validateDocuments(documents: readonly YamlDocument[], validator: SchemaValidator): ValidationResult {
  const classified = classifyDocuments(documents);
  const diagnostics = [...classified.diagnostics];
  const valid: ValidatedObject[] = [];
  const rejected: RejectedObject[] = [];
  const firstSeen = new Map<string, LoadedObject>();

  for (const loaded of classified.objects) {
    const schemaFindings = validator.validate(loaded.kind, loaded.object);
    const object = loaded.object as unknown as SmsObject;
    const findings = schemaFindings.length > 0 ? schemaFindings : checkObject(object);
    const placed = findings.map((f) => place(loaded, f));
    diagnostics.push(...placed);
    const ref = refOf(loaded);
    if (ref !== undefined) {
      const key = objectKey(ref.kind, ref.namespace, ref.name);
      const first = firstSeen.get(key);
      if (first !== undefined) {
        const dup = place(loaded, {
          code: DiagnosticCode.NameDuplicate,
          severity: 'error',
          pointer: '/metadata/name',
          message: `${ref.kind} ${ref.namespace}/${ref.name} is already defined at ${where(first)}; names are unique per kind and namespace`,
        });
        diagnostics.push(dup);
        rejected.push({ ref, loaded, diagnostics: [...placed, dup] });
        continue;
      }
      firstSeen.set(key, loaded);
    }
    if (placed.some((d) => d.severity === 'error')) {
      if (ref !== undefined) rejected.push({ ref, loaded, diagnostics: placed });
    } else {
      valid.push({ object, loaded });
    }
  }

  const secretsSeen = new Map<string, SecretManifest>();
  for (const s of classified.secrets) {
    const key = `${s.namespace}/${s.name}`;
    const first = secretsSeen.get(key);
    if (first !== undefined) {
      diagnostics.push({
        file: s.document.file,
        range: s.document.range,
        kind: 'Secret',
        namespace: s.namespace,
        name: s.name,
        pointer: '/metadata/name',
        code: DiagnosticCode.NameDuplicate,
        severity: 'error',
        message: `Secret ${key} is already defined at ${first.document.file}:${first.document.range.start.line}`,
      });
    } else {
      secretsSeen.set(key, s);
    }
  }

  const index = new ResourceIndex(valid.map((v) => v.object));
  const invalid = new Map(
    rejected.map((r) => [
      objectKey(r.ref.kind, r.ref.namespace, r.ref.name),
      { where: firstError(r), isDefault: (r.loaded.object.spec as { default?: unknown } | undefined)?.default === true },
    ]),
  );
  for (const v of valid) diagnostics.push(...referenceFindings(v.object, index, invalid).map((f) => place(v.loaded, f)));

  return { valid, rejected, secrets: [...secretsSeen.values()], diagnostics: diagnostics.sort(compareDiagnostics) };
}

function refOf(loaded: LoadedObject): ObjectRef | undefined {
  const metadata = loaded.object.metadata as { name?: unknown; namespace?: unknown } | undefined;
  if (typeof metadata?.name !== 'string') return undefined;
  return { kind: loaded.kind, namespace: typeof metadata.namespace === 'string' ? metadata.namespace : 'default', name: metadata.name };
}

function place(loaded: LoadedObject, f: Finding): Diagnostic {
  const ref = refOf(loaded);
  const target = f.code === DiagnosticCode.SchemaUnknownField || f.code === DiagnosticCode.SchemaRequired ? 'key' : 'value';
  return {
    ...f,
    pointer: loaded.base + f.pointer,
    file: loaded.document.file,
    range: loaded.document.locate(loaded.base + f.pointer, target),
    kind: loaded.kind,
    ...(ref !== undefined ? { namespace: ref.namespace, name: ref.name } : {}),
  };
}

function firstError(r: RejectedObject): string {
  const d = r.diagnostics.find((x) => x.severity === 'error');
  return d?.range !== undefined ? `${d.file}:${d.range.start.line}:${d.range.start.column}` : where(r.loaded);
}

function where(loaded: LoadedObject): string {
  const r = loaded.document.locate(loaded.base);
  return `${loaded.document.file}:${r.start.line}:${r.start.column}`;
}
