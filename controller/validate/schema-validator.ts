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
      return dedupe((fn.errors ?? []).map(toFinding).filter((f): f is Finding => f !== undefined));
    },
  };
}

function toFinding(e: ErrorObject): Finding | undefined {
  const at = e.instancePath;
  const field = fieldPath(at);
  const parent = (e.parentSchema ?? {}) as Record<string, unknown>;
  const isCredential = e.schemaPath.includes('secretValue');
  switch (e.keyword) {
    case 'required': {
      const missing = (e.params as { missingProperty: string }).missingProperty;
      const child = (parent.properties as Record<string, { enum?: unknown[] }> | undefined)?.[missing];
      const choices = child?.enum !== undefined ? ` (one of ${child.enum.join(', ')})` : '';
      return err(
        DiagnosticCode.SchemaRequired,
        joinPointer(at, missing),
        `${field === '(document)' ? 'the document' : field} is missing the required field ${missing}${choices}`,
      );
    }
    case 'additionalProperties': {
      const extra = (e.params as { additionalProperty: string }).additionalProperty;
      const known = Object.keys((parent.properties as Record<string, unknown> | undefined) ?? {});
      const hint = suggest(extra, known);
      return err(
        DiagnosticCode.SchemaUnknownField,
        joinPointer(at, extra),
        `unknown field ${extra} in ${field}; ${hint !== undefined ? `did you mean ${hint}?` : `known fields: ${known.join(', ')}`}`,
      );
    }
    case 'type':
      if (isCredential) {
        return err(
          DiagnosticCode.CredentialInline,
          at,
          `${field} must be a Secret reference {secretRef: {name, key}}; credentials are never written inline: move the value into a Secret`,
        );
      }
      {
        const type = (e.params as { type: string }).type;
        const hint = type === 'string' && Array.isArray(e.data) ? ' (a value that starts with [ is a YAML list: quote texts that start with [Code])' : '';
        return err(DiagnosticCode.SchemaType, at, `${field} must be ${article(type)}${hint}`);
      }
    case 'enum':
    case 'const': {
      const allowed = e.keyword === 'enum' ? (e.params as { allowedValues: unknown[] }).allowedValues : [(e.params as { allowedValue: unknown }).allowedValue];
      const hint = typeof e.data === 'string' ? suggest(e.data, allowed.map(String)) : undefined;
      return err(DiagnosticCode.SchemaEnum, at, `${field} must be one of: ${allowed.join(', ')}${hint !== undefined ? `; did you mean ${hint}?` : ''}`);
    }
    case 'pattern': {
      const pattern = (e.params as { pattern: string }).pattern;
      return err(DiagnosticCode.SchemaPattern, at, `${field} must be ${PATTERN_HINTS[pattern] ?? `text matching ${pattern}`}`);
    }
    case 'format': {
      const format = (e.params as { format: string }).format;
      return err(DiagnosticCode.SchemaPattern, at, `${field} must be ${FORMAT_HINTS[format] ?? format}`);
    }
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum': {
      const { minimum, maximum } = parent as { minimum?: number; maximum?: number };
      const range =
        minimum !== undefined && maximum !== undefined
          ? `between ${minimum} and ${maximum}`
          : minimum !== undefined
            ? `at least ${minimum}`
            : `at most ${String(maximum)}`;
      return err(DiagnosticCode.SchemaRange, at, `${field} must be ${range}`);
    }
    case 'minLength':
    case 'maxLength': {
      const { minLength, maxLength } = parent as { minLength?: number; maxLength?: number };
      const limit =
        e.keyword === 'minLength'
          ? minLength === 1
            ? 'must not be empty'
            : `needs at least ${minLength} characters`
          : `must be at most ${maxLength} characters long`;
      return err(DiagnosticCode.SchemaRange, at, `${field} ${limit}`);
    }
    case 'minItems':
    case 'maxItems':
      return err(
        DiagnosticCode.SchemaRange,
        at,
        `${field} ${e.keyword === 'minItems' ? 'needs at least' : 'takes at most'} ${(e.params as { limit: number }).limit} items`,
      );
    case 'uniqueItems': {
      const { i, j } = e.params as { i: number; j: number };
      return err(DiagnosticCode.SchemaUnique, joinPointer(at, i), `${field} lists the same item twice (items ${j} and ${i}); remove one`);
    }
    default:
      return err(DiagnosticCode.SchemaType, at, `${field} is invalid (${e.keyword})`);
  }
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
