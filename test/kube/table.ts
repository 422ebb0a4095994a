import { getObject, getString } from './json.ts';
import type { JsonObject } from './json.ts';
import { evaluateJsonPath, parseJsonPath, printJsonPathValue } from './jsonpath.ts';
import type { Column } from './resources.ts';

/** NAME_DESCRIPTION is ObjectMeta.name's documentation, which the API server uses for the Name column. */
export const NAME_DESCRIPTION =
  'Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names';

/** CREATION_TIMESTAMP_DESCRIPTION is ObjectMeta.creationTimestamp's documentation, used for Age columns. */
export const CREATION_TIMESTAMP_DESCRIPTION =
  'CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata';

/** humanDuration renders a duration the way apimachinery's duration.HumanDuration does (`45s`, `3m20s`, `5h`, `2d4h`, `3y`). */
export function humanDuration(ms: number): string {
  const seconds = Math.trunc(ms / 1000);
  if (seconds < -1) return '<invalid>';
  if (seconds < 0) return '0s';
  if (seconds < 60 * 2) return `${seconds}s`;
  const minutes = Math.trunc(seconds / 60);
  if (minutes < 10) {
    const s = seconds % 60;
    return s === 0 ? `${minutes}m` : `${minutes}m${s}s`;
  }
  if (minutes < 60 * 3) return `${minutes}m`;
  const hours = Math.trunc(minutes / 60);
  if (hours < 8) {
    const m = minutes % 60;
    return m === 0 ? `${hours}h` : `${hours}h${m}m`;
  }
  if (hours < 48) return `${hours}h`;
  if (hours < 24 * 8) {
    const h = hours % 24;
    return h === 0 ? `${Math.trunc(hours / 24)}d` : `${Math.trunc(hours / 24)}d${h}h`;
  }
  if (hours < 24 * 365 * 2) return `${Math.trunc(hours / 24)}d`;
  if (hours < 24 * 365 * 8) {
    const dy = Math.trunc(hours / 24) % 365;
    const y = Math.trunc(hours / 24 / 365);
    return dy === 0 ? `${y}y` : `${y}y${dy}d`;
  }
  return `${Math.trunc(hours / 24 / 365)}y`;
}

/** age renders the time since an RFC 3339 timestamp like the server's date cells, `<unknown>` when absent and `<invalid>` when unparsable. */
export function age(timestamp: string | undefined, now: number): string {
  if (timestamp === undefined || timestamp === '') return '<unknown>';
  const t = Date.parse(timestamp);
  if (Number.isNaN(t)) return '<invalid>';
  return humanDuration(now - t);
}

/** ageColumn is the standard Age column computed from metadata.creationTimestamp. */
export function ageColumn(): Column {
  return {
    name: 'Age',
    type: 'string',
    format: '',
    description: CREATION_TIMESTAMP_DESCRIPTION,
    priority: 0,
    cell: (obj, now) => age(getString(obj, 'metadata', 'creationTimestamp'), now),
  };
}

/** simpleColumn builds a column from a cell function. */
export function simpleColumn(name: string, type: string, cell: (obj: JsonObject, now: number) => unknown, priority = 0, description = ''): Column {
  return { name, type, format: '', description, priority, cell };
}

/** The printer-column fields of a CRD version (spec.versions[].additionalPrinterColumns[]). */
export interface PrinterColumnSpec {
  name: string;
  type: string;
  format?: string;
  description?: string;
  priority?: number;
  jsonPath: string;
}

/** printerColumn turns a CRD additionalPrinterColumn into a Column, converting cells like the apiextensions table convertor. */
export function printerColumn(spec: PrinterColumnSpec): Column {
  const steps = parseJsonPath(spec.jsonPath);
  return {
    name: spec.name,
    type: spec.type,
    format: spec.format ?? '',
    description: spec.description ?? '',
    priority: spec.priority ?? 0,
    cell: (obj, now) => {
      const results = evaluateJsonPath(steps, obj);
      if (results.length === 0) return null;
      const value = results[0];
      if (value === undefined || value === null) return null;
      switch (spec.type) {
        case 'string':
          return printJsonPathValue(value);
        case 'integer':
          return typeof value === 'number' ? Math.trunc(value) : null;
        case 'number':
          return typeof value === 'number' ? value : null;
        case 'boolean':
          return typeof value === 'boolean' ? value : null;
        case 'date':
          if (typeof value !== 'string') return null;
          return Number.isNaN(Date.parse(value)) ? '<invalid>' : age(value, now);
        default:
          return null;
      }
    },
  };
}

/** What a Table row carries as its object, from the includeObject query parameter. */
export type IncludeObject = 'None' | 'Metadata' | 'Object';

/** partialObjectMetadata is the meta.k8s.io/v1 PartialObjectMetadata of an object. */
export function partialObjectMetadata(obj: JsonObject): JsonObject {
  return { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: getObject(obj, 'metadata') ?? {} };
}

/**
 * buildTable renders objects as a meta.k8s.io/v1 Table: a Name column first (unless the columns define their own),
 * then the given columns, one row per object with cells and the object as includeObject asks.
 */
export function buildTable(
  objects: JsonObject[],
  columns: Column[],
  options: { includeObject: IncludeObject; listMeta: JsonObject; now: number; nameColumn: boolean; noHeaders?: boolean },
): JsonObject {
  const all: Column[] = options.nameColumn
    ? [
        { name: 'Name', type: 'string', format: 'name', description: NAME_DESCRIPTION, priority: 0, cell: (o) => getString(o, 'metadata', 'name') ?? '' },
        ...columns,
      ]
    : columns;
  const rows = objects.map((o) => {
    const row: JsonObject = { cells: all.map((c) => c.cell(o, options.now) ?? null) };
    if (options.includeObject === 'Object') row['object'] = o;
    else if (options.includeObject === 'Metadata') row['object'] = partialObjectMetadata(o);
    return row;
  });
  const table: JsonObject = {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: options.listMeta,
    columnDefinitions:
      options.noHeaders === true ? [] : all.map((c) => ({ name: c.name, type: c.type, format: c.format, description: c.description, priority: c.priority })),
    rows,
  };
  return table;
}
