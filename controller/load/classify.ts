import { DiagnosticCode, suggest, type Diagnostic } from '../core/diagnostics.ts';
import { GROUP, KINDS, VERSION, kindInfo, type KindName } from '../core/kinds.ts';
import { DEFAULT_NAMESPACE } from '../core/object-key.ts';
import type { YamlDocument } from './yaml-documents.ts';

/** LoadedObject is an smsauth document before validation, with where it came from. */
export interface LoadedObject {
  kind: KindName;
  document: YamlDocument;
  /** Pointer of the object within the document: '' or /items/N inside a List. */
  base: string;
  object: Record<string, unknown>;
}

/** SecretManifest is a Kubernetes Secret found among the files; its values are never printed. */
export interface SecretManifest {
  namespace: string;
  name: string;
  /** Decoded values by key (stringData wins over data, as in Kubernetes). */
  data: ReadonlyMap<string, string>;
  document: YamlDocument;
}

/** Classified is the sorting of documents into smsauth objects, Secrets and notes on the rest. */
export interface Classified {
  objects: LoadedObject[];
  secrets: SecretManifest[];
  diagnostics: Diagnostic[];
}

const KIND_NAMES = KINDS.map((k) => k.kind);

/**
 * classifyDocuments sorts parsed documents: smsauth.io objects go on to validation, v1 Secrets are
 * kept as secrets, items of a v1 List are unpacked, and other kinds are skipped with a note.
 */
export function classifyDocuments(documents: readonly YamlDocument[]): Classified {
  const out: Classified = { objects: [], secrets: [], diagnostics: [] };
  for (const doc of documents) classify(doc, doc.value, '', out);
  return out;
}

function classify(doc: YamlDocument, value: unknown, base: string, out: Classified): void {
  const note = (code: DiagnosticCode, severity: Diagnostic['severity'], pointer: string, message: string): void => {
    out.diagnostics.push({
      file: doc.file,
      range: doc.locate(base + pointer, pointer === '' ? 'value' : 'value'),
      code,
      severity,
      pointer: base + pointer,
      message,
    });
  };
  if (!isPlainObject(value)) {
    note(
      DiagnosticCode.NotAnObject,
      'error',
      '',
      `a document must be a mapping with apiVersion and kind, not ${Array.isArray(value) ? 'a sequence' : `a ${typeof value}`}`,
    );
    return;
  }
  const { apiVersion, kind } = value;
  if (typeof apiVersion !== 'string' || typeof kind !== 'string') {
    if (typeof apiVersion === 'string' && apiVersion.split('/')[0] === GROUP) {
      note(DiagnosticCode.MissingKind, 'error', '', `the document has apiVersion ${apiVersion} but no kind; add kind (one of ${KIND_NAMES.join(', ')})`);
    } else if (apiVersion === undefined && typeof kind === 'string' && kindInfo(kind) !== undefined) {
      // An smsauth kind that lost its apiVersion (a line deleted, a key misspelled) is a mistake,
      // not another tool's object: skipped, its object would be deleted where it serves.
      note(DiagnosticCode.UnknownApiVersion, 'error', '/kind', `kind ${kind} has no apiVersion; add apiVersion: ${GROUP}/${VERSION}`);
    } else {
      note(DiagnosticCode.SkippedKind, 'info', '', 'skipped: not a Kubernetes object (no apiVersion and kind)');
    }
    return;
  }
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/', 2) : ['', apiVersion];
  if (group === GROUP) {
    if (version !== VERSION) {
      note(DiagnosticCode.UnknownApiVersion, 'error', '/apiVersion', `apiVersion ${apiVersion} is not served; use ${GROUP}/${VERSION}`);
      return;
    }
    const info = kindInfo(kind);
    if (info === undefined) {
      const hint = suggest(kind, KIND_NAMES);
      note(
        DiagnosticCode.UnknownKind,
        'error',
        '/kind',
        `kind ${kind} is not an ${GROUP} kind${hint !== undefined ? `; did you mean ${hint}?` : `; the kinds are ${KIND_NAMES.join(', ')}`}`,
      );
      return;
    }
    const metadata = value.metadata;
    if (isPlainObject(metadata) && metadata.namespace === undefined) metadata.namespace = DEFAULT_NAMESPACE;
    out.objects.push({ kind: info.kind, document: doc, base, object: value });
    return;
  }
  if (group === '' && version === 'v1' && kind === 'List' && Array.isArray(value.items)) {
    value.items.forEach((item, i) => classify(doc, item, `${base}/items/${i}`, out));
    return;
  }
  if (group === '' && version === 'v1' && kind === 'Secret') {
    const secret = readSecret(doc, value, base, out.diagnostics);
    if (secret !== undefined) out.secrets.push(secret);
    return;
  }
  // A group that reads like smsauth's, or an smsauth kind with no group, under a wrong apiVersion (smsauth.io
  // without its version, smsauth.io.v1alpha1) is a mistake to report, not another tool's object to skip.
  if (apiVersion.startsWith(GROUP) || (kindInfo(kind) !== undefined && !apiVersion.includes('/'))) {
    note(DiagnosticCode.UnknownApiVersion, 'error', '/apiVersion', `apiVersion ${apiVersion} is not served; use ${GROUP}/${VERSION}`);
    return;
  }
  // An smsauth kind under a group a typo away from smsauth's (smsauht.io) is ours, misspelled.
  if (kindInfo(kind) !== undefined && suggest(group ?? '', [GROUP]) !== undefined) {
    note(DiagnosticCode.UnknownApiVersion, 'error', '/apiVersion', `apiVersion ${apiVersion} is not served; did you mean ${GROUP}/${VERSION}?`);
    return;
  }
  const name = isPlainObject(value.metadata) && typeof value.metadata.name === 'string' ? ` ${value.metadata.name}` : '';
  note(DiagnosticCode.SkippedKind, 'info', '', `skipped ${apiVersion} ${kind}${name}: not an ${GROUP} kind`);
}

function readSecret(doc: YamlDocument, value: Record<string, unknown>, base: string, diagnostics: Diagnostic[]): SecretManifest | undefined {
  const problem = (pointer: string, message: string): undefined => {
    diagnostics.push({
      file: doc.file,
      range: doc.locate(base + pointer, 'key'),
      code: DiagnosticCode.SecretInvalid,
      severity: 'error',
      pointer: base + pointer,
      message,
      kind: 'Secret',
    });
    return undefined;
  };
  const metadata = value.metadata;
  if (!isPlainObject(metadata) || typeof metadata.name !== 'string') return problem('/metadata', 'the Secret has no metadata.name');
  const namespace = typeof metadata.namespace === 'string' ? metadata.namespace : DEFAULT_NAMESPACE;
  const data = new Map<string, string>();
  for (const [field, decode] of [
    ['data', true],
    ['stringData', false],
  ] as const) {
    const entries = value[field];
    if (entries === undefined || entries === null) continue;
    if (!isPlainObject(entries)) return problem(`/${field}`, `${field} must be a mapping of keys to values`);
    for (const [key, v] of Object.entries(entries)) {
      // Messages name the key only, never the value.
      if (typeof v !== 'string') return problem(`/${field}/${key}`, `${field}.${key} must be a string`);
      if (decode) {
        if (!/^[A-Za-z0-9+/]*={0,2}$/.test(v) || v.length % 4 !== 0)
          return problem(`/${field}/${key}`, `data.${key} is not valid base64; encode it, or put the plain value under stringData`);
        data.set(key, Buffer.from(v, 'base64').toString('utf8'));
      } else {
        data.set(key, v);
      }
    }
  }
  return { namespace, name: metadata.name, data, document: doc };
}

/** isPlainObject tells whether a value is a JSON object (not null, not an array). */
export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** secretManifestsIn reads the Kubernetes Secrets among parsed documents (other documents are ignored). */
export function secretManifestsIn(documents: readonly YamlDocument[]): SecretManifest[] {
  return classifyDocuments(documents).secrets;
}
