/** Severity of a diagnostic; `info` notes never fail a run. */
export type Severity = 'error' | 'warning' | 'info';

/**
 * DiagnosticCode holds every stable diagnostic code. Codes are part of the public interface
 * (CI pipelines filter on them); docs/diagnostics.md describes each one.
 */
export const DiagnosticCode = {
  // Reading files.
  PathNotFound: 'path-not-found',
  FileUnreadable: 'file-unreadable',
  FileTooLarge: 'file-too-large',
  FileEmpty: 'file-empty',
  InvalidEncoding: 'invalid-encoding',
  // YAML.
  YamlSyntax: 'yaml-syntax',
  DuplicateKey: 'duplicate-key',
  AliasLimit: 'alias-limit',
  NestingTooDeep: 'nesting-too-deep',
  CustomTag: 'custom-tag',
  NotAnObject: 'not-an-object',
  // Documents.
  MissingKind: 'missing-kind',
  UnknownApiVersion: 'unknown-api-version',
  UnknownKind: 'unknown-kind',
  SkippedKind: 'skipped-kind',
  SecretInvalid: 'secret-invalid',
  // JSON Schema.
  SchemaRequired: 'schema-required',
  SchemaUnknownField: 'schema-unknown-field',
  SchemaType: 'schema-type',
  SchemaEnum: 'schema-enum',
  SchemaPattern: 'schema-pattern',
  SchemaRange: 'schema-range',
  SchemaUnique: 'schema-unique',
  CredentialInline: 'credential-inline',
  // One object.
  NameInvalid: 'name-invalid',
  ProviderSettingsMismatch: 'provider-settings-mismatch',
  TextSourceConflict: 'text-source-conflict',
  TextSourceMissing: 'text-source-missing',
  CodePlaceholderMissing: 'code-placeholder-missing',
  CodePlaceholderRepeated: 'code-placeholder-repeated',
  PlaceholderMisspelled: 'placeholder-misspelled',
  PlaceholderUnknown: 'placeholder-unknown',
  TextMultiSegment: 'text-multi-segment',
  DurationRange: 'duration-range',
  LimitNeverBinds: 'limit-never-binds',
  CountryUnknown: 'country-unknown',
  LocaleInvalid: 'locale-invalid',
  DirectoryTypeMismatch: 'directory-type-mismatch',
  DirectoryInsecure: 'directory-insecure',
  DirectoryStatic: 'directory-static',
  // Several objects.
  NameDuplicate: 'name-duplicate',
  ReferenceNotFound: 'reference-not-found',
  ReferenceInvalid: 'reference-invalid',
  FallbackCycle: 'fallback-cycle',
  DefaultGatewayConflict: 'default-gateway-conflict',
  TwilioServiceConflict: 'twilio-service-conflict',
  NoGateway: 'no-gateway',
  AuthTypeNotEnabled: 'auth-type-not-enabled',
  ChosenByEndUserTooMany: 'chosen-by-end-user-too-many',
  PriorityConflict: 'priority-conflict',
  EnrollmentDisabled: 'enrollment-disabled',
  MemberInvalid: 'member-invalid',
} as const;

/** A stable diagnostic code. */
export type DiagnosticCode = (typeof DiagnosticCode)[keyof typeof DiagnosticCode];

/** A place in a file; line and column start at 1. */
export interface Position {
  line: number;
  column: number;
}

/** A range in a file, end exclusive. */
export interface Range {
  start: Position;
  end: Position;
}

/**
 * Finding is a rule's verdict on one object: what is wrong, where in the object (JSON pointer)
 * and how to fix it. The validator adds the file position; the reconciler turns it into a condition.
 */
export interface Finding {
  code: DiagnosticCode;
  severity: Severity;
  /** JSON pointer into the object, '' for the whole object. */
  pointer: string;
  message: string;
  /** For a reference that names nothing, the object it names (its key: Kind/namespace/name). */
  refersTo?: string;
}

/** Diagnostic is a finding placed in a file and attributed to an object. Never carries secret values. */
export interface Diagnostic extends Finding {
  file?: string;
  range?: Range;
  kind?: string;
  namespace?: string;
  name?: string;
}

/** diagnosticLine is a diagnostic on one line: file:line:column: severity code message. */
export function diagnosticLine(d: Diagnostic): string {
  const where = d.file === undefined ? '' : d.range === undefined ? `${d.file}: ` : `${d.file}:${d.range.start.line}:${d.range.start.column}: `;
  return `${where}${d.severity} ${d.code} ${d.message}`;
}

/** countBySeverity returns how many diagnostics have each severity. */
export function countBySeverity(diagnostics: readonly Diagnostic[]): Record<Severity, number> {
  const counts: Record<Severity, number> = { error: 0, warning: 0, info: 0 };
  for (const d of diagnostics) counts[d.severity] += 1;
  return counts;
}

/** compareDiagnostics orders diagnostics by file, line, column and code, for stable output. */
export function compareDiagnostics(a: Diagnostic, b: Diagnostic): number {
  return (
    (a.file ?? '').localeCompare(b.file ?? '') ||
    (a.range?.start.line ?? 0) - (b.range?.start.line ?? 0) ||
    (a.range?.start.column ?? 0) - (b.range?.start.column ?? 0) ||
    a.code.localeCompare(b.code) ||
    a.message.localeCompare(b.message)
  );
}

/** fieldPath renders a JSON pointer as the dotted path a YAML author reads: spec.sms.code[0]. */
export function fieldPath(pointer: string): string {
  if (pointer === '') return '(document)';
  let out = '';
  for (const raw of pointer.split('/').slice(1)) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (/^\d+$/.test(seg)) out += `[${seg}]`;
    else if (/^[A-Za-z_][\w-]*$/.test(seg)) out += out === '' ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

/** joinPointer appends segments to a JSON pointer, escaping ~ and /. */
export function joinPointer(base: string, ...segments: (string | number)[]): string {
  return base + segments.map((s) => '/' + String(s).replace(/~/g, '~0').replace(/\//g, '~1')).join('');
}

/** suggest returns the candidate closest to value when it is close enough to be a likely typo. */
export function suggest(value: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(value.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best !== undefined && bestDistance <= Math.max(1, Math.floor(best.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 8) return Infinity;
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}
