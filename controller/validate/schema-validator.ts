import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { DiagnosticCode, fieldPath, joinPointer, suggest, type Finding } from '../core/diagnostics.ts';
import { KINDS, type KindName } from '../core/kinds.ts';
import type { SchemaSet } from '../core/schema-tree.ts';

/** SchemaValidator checks one object against its kind's schema and applies the schema's defaults to it in place. */
export interface SchemaValidator {
  validate(kind: KindName, object: Record<string, unknown>): Finding[];
}

// ajv-formats is CommonJS with a default export; under NodeNext it arrives as the module object.
const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

// Friendlier words for the schemas' patterns and formats.
const PATTERN_HINTS: Record<string, string> = {
  '^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$': 'a duration such as 30s, 10m or 1h30m',
  '^[A-Z]{2}$': 'two capital letters, an ISO 3166-1 alpha-2 country code such as FR',
  '^[-._a-zA-Z0-9]+$': "a Secret key: letters, digits, '-', '_' and '.'",
  '^MG[0-9a-fA-F]{32}$': 'a Messaging Service SID: MG and 32 hexadecimal digits',
};
const FORMAT_HINTS: Record<string, string> = {
  uri: 'an absolute URL such as https://api.example.com',
  hostname: 'a host name such as login.example.com',
  'date-time': 'an RFC 3339 time',
};

/** createSchemaValidator compiles the kinds' schemas once (ajv, strict, all errors, formats, defaults). */
export function createSchemaValidator(schemas: SchemaSet): SchemaValidator {
  const ajv = new Ajv({ allErrors: true, strict: true, useDefaults: true, verbose: true });
  addFormats(ajv);
  ajv.addKeyword('x-kubernetes-list-type');
  ajv.addKeyword('x-kubernetes-list-map-keys');
  ajv.addKeyword('x-kubernetes-preserve-unknown-fields');
  for (const [file, schema] of Object.entries(schemas)) ajv.addSchema(schema, file);
  const compiled = new Map<KindName, ValidateFunction>();
  for (const info of KINDS) {
    const fn = ajv.getSchema(info.schemaFile);
    if (fn === undefined) throw new Error(`schema ${info.schemaFile} is missing`);
    compiled.set(info.kind, fn);
  }
  return {
    validate(kind, object) {
      const fn = compiled.get(kind)!;
      if (fn(object)) return [];
      return dedupe((fn.errors ?? []).map(toFinding));
    },
  };
}

/** toFinding words one ajv error as a finding, by its keyword (DESCRIBE), or generically for a keyword without its own words. */
function toFinding(e: ErrorObject): Finding {
  const describe = DESCRIBE.get(e.keyword) ?? describeOther;
  return describe({ e, at: e.instancePath, field: fieldPath(e.instancePath), parent: e.parentSchema ?? {} });
}

/** DESCRIBE words the errors of each ajv keyword that has its own words. */
const DESCRIBE = new Map<string, (k: KeywordError) => Finding>([
  ['required', describeRequired],
  ['additionalProperties', describeUnknownField],
  ['type', describeType],
  ['enum', describeEnum],
  ['const', describeEnum],
  ['pattern', describePattern],
  ['format', describeFormat],
  ['minimum', describeRange],
  ['maximum', describeRange],
  ['exclusiveMinimum', describeRange],
  ['exclusiveMaximum', describeRange],
  ['minLength', describeLength],
  ['maxLength', describeLength],
  ['minItems', describeItems],
  ['maxItems', describeItems],
  ['uniqueItems', describeUnique],
]);

/** KeywordError is an ajv error with what every description needs: the pointer, the field in words, and the failing schema. */
interface KeywordError {
  e: ErrorObject;
  at: string;
  field: string;
  parent: Record<string, unknown>;
}

/** describeRequired names the missing field, with its allowed values when the schema lists them. */
function describeRequired({ e, at, field, parent }: KeywordError): Finding {
  const missing = (e.params as { missingProperty: string }).missingProperty;
  const child = (parent.properties as Record<string, { enum?: unknown[] }> | undefined)?.[missing];
  const choices = child?.enum !== undefined ? ` (one of ${child.enum.join(', ')})` : '';
  return err(
    DiagnosticCode.SchemaRequired,
    joinPointer(at, missing),
    `${field === '(document)' ? 'the document' : field} is missing the required field ${missing}${choices}`,
  );
}

/** describeUnknownField names a field the schema does not know, with the nearest known one or the list of them. */
function describeUnknownField({ e, at, field, parent }: KeywordError): Finding {
  const extra = (e.params as { additionalProperty: string }).additionalProperty;
  const known = Object.keys((parent.properties as Record<string, unknown> | undefined) ?? {});
  const hint = suggest(extra, known);
  return err(
    DiagnosticCode.SchemaUnknownField,
    joinPointer(at, extra),
    `unknown field ${extra} in ${field}; ${hint !== undefined ? `did you mean ${hint}?` : `known fields: ${known.join(', ')}`}`,
  );
}

/** describeType names the expected type; a credential written inline instead of a Secret reference is said to be one. */
function describeType({ e, at, field }: KeywordError): Finding {
  if (e.schemaPath.includes('secretValue')) {
    return err(
      DiagnosticCode.CredentialInline,
      at,
      `${field} must be a Secret reference {secretRef: {name, key}}; credentials are never written inline: move the value into a Secret`,
    );
  }
  const type = (e.params as { type: string }).type;
  const hint = type === 'string' && Array.isArray(e.data) ? ' (a value that starts with [ is a YAML list: quote texts that start with [Code])' : '';
  return err(DiagnosticCode.SchemaType, at, `${field} must be ${article(type)}${hint}`);
}

/** describeEnum lists the allowed values (of enum or const), with the nearest one to a text given. */
function describeEnum({ e, at, field }: KeywordError): Finding {
  const allowed = e.keyword === 'enum' ? (e.params as { allowedValues: unknown[] }).allowedValues : [(e.params as { allowedValue: unknown }).allowedValue];
  const hint = typeof e.data === 'string' ? suggest(e.data, allowed.map(String)) : undefined;
  return err(DiagnosticCode.SchemaEnum, at, `${field} must be one of: ${allowed.join(', ')}${hint !== undefined ? `; did you mean ${hint}?` : ''}`);
}

/** describePattern says what the pattern stands for (PATTERN_HINTS), or quotes it. */
function describePattern({ e, at, field }: KeywordError): Finding {
  const pattern = (e.params as { pattern: string }).pattern;
  return err(DiagnosticCode.SchemaPattern, at, `${field} must be ${PATTERN_HINTS[pattern] ?? `text matching ${pattern}`}`);
}

/** describeFormat says what the format stands for (FORMAT_HINTS), or names it. */
function describeFormat({ e, at, field }: KeywordError): Finding {
  const format = (e.params as { format: string }).format;
  return err(DiagnosticCode.SchemaPattern, at, `${field} must be ${FORMAT_HINTS[format] ?? format}`);
}

/** describeRange gives a number's bounds from the schema (minimum, maximum or both). */
function describeRange({ at, field, parent }: KeywordError): Finding {
  const { minimum, maximum } = parent as { minimum?: number; maximum?: number };
  const range =
    minimum !== undefined && maximum !== undefined
      ? `between ${minimum} and ${maximum}`
      : minimum !== undefined
        ? `at least ${minimum}`
        : `at most ${String(maximum)}`;
  return err(DiagnosticCode.SchemaRange, at, `${field} must be ${range}`);
}

/** describeLength gives a text's length bound: not empty, at least or at most so many characters. */
function describeLength({ e, at, field, parent }: KeywordError): Finding {
  const { minLength, maxLength } = parent as { minLength?: number; maxLength?: number };
  const limit =
    e.keyword === 'minLength'
      ? minLength === 1
        ? 'must not be empty'
        : `needs at least ${minLength} characters`
      : `must be at most ${maxLength} characters long`;
  return err(DiagnosticCode.SchemaRange, at, `${field} ${limit}`);
}

/** describeItems gives a list's bound on its number of items. */
function describeItems({ e, at, field }: KeywordError): Finding {
  return err(
    DiagnosticCode.SchemaRange,
    at,
    `${field} ${e.keyword === 'minItems' ? 'needs at least' : 'takes at most'} ${(e.params as { limit: number }).limit} items`,
  );
}

/** describeUnique points at the second of two equal items of a list. */
function describeUnique({ e, at, field }: KeywordError): Finding {
  const { i, j } = e.params as { i: number; j: number };
  return err(DiagnosticCode.SchemaUnique, joinPointer(at, i), `${field} lists the same item twice (items ${j} and ${i}); remove one`);
}

/** describeOther says only that the field is invalid, naming the keyword. */
function describeOther({ e, at, field }: KeywordError): Finding {
  return err(DiagnosticCode.SchemaType, at, `${field} is invalid (${e.keyword})`);
}

function err(code: DiagnosticCode, pointer: string, message: string): Finding {
  return { code, severity: 'error', pointer, message };
}

function article(type: string): string {
  const t = type.split(',')[0] ?? type;
  return /^[aeiou]/.test(t) ? `an ${t}` : `a ${t}`;
}

function dedupe(findings: Finding[]): Finding[] {
  const seen = new Set<string>();
  return findings.filter((f) => {
    const k = `${f.code} ${f.pointer}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
