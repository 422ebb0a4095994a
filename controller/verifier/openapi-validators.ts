import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;

/** ValidationFailure names the field at fault (a parameter name, or a JSON pointer into the body) and says what is wrong. */
export interface ValidationFailure {
  field: string;
  message: string;
}

/** OperationValidator checks one operation's path parameters, query and body as the OpenAPI document declares them. */
export interface OperationValidator {
  params(params: Readonly<Record<string, string>>): ValidationFailure | undefined;
  /** query returns the typed query values (integers parsed, defaults applied), or the failure. */
  query(query: URLSearchParams): { ok: true; value: Record<string, unknown> } | { ok: false; failure: ValidationFailure };
  /** body validates (and applies defaults to) a parsed JSON body. */
  body(body: unknown): ValidationFailure | undefined;
}

interface ParameterObject {
  name: string;
  in: 'path' | 'query' | 'header';
  required?: boolean;
  schema: Record<string, unknown>;
}

/**
 * compileOpenApi compiles, once, a validator per operationId from an OpenAPI 3.1 document, so that
 * the server accepts exactly what the document describes.
 */
export function compileOpenApi(doc: Record<string, unknown>): Map<string, OperationValidator> {
  const ajv = new Ajv2020({ strict: false, allErrors: false, useDefaults: true });
  addFormats(ajv);
  ajv.addSchema({ $id: 'openapi', components: doc.components }, 'openapi');
  const compile = (schema: Record<string, unknown>): ValidateFunction => ajv.compile(rebase(schema));
  const resolveParam = (p: Record<string, unknown>): ParameterObject => {
    const ref = p.$ref;
    if (typeof ref !== 'string') return p as unknown as ParameterObject;
    const name = ref.split('/').pop()!;
    return (doc.components as { parameters: Record<string, ParameterObject> }).parameters[name]!;
  };
  const out = new Map<string, OperationValidator>();
  for (const pathItem of Object.values(doc.paths as Record<string, Record<string, unknown>>)) {
    const shared = ((pathItem.parameters as Record<string, unknown>[] | undefined) ?? []).map(resolveParam);
    for (const [method, op] of Object.entries(pathItem)) {
      if (!['get', 'post', 'put', 'delete', 'patch'].includes(method)) continue;
      const operation = op as {
        operationId: string;
        parameters?: Record<string, unknown>[];
        requestBody?: { content?: Record<string, { schema?: Record<string, unknown> }> };
      };
      const params = [...shared, ...(operation.parameters ?? []).map(resolveParam)];
      const pathParams = params.filter((p) => p.in === 'path').map((p) => ({ name: p.name, validate: compile(p.schema) }));
      const queryParams = params.filter((p) => p.in === 'query').map((p) => ({ name: p.name, schema: p.schema, validate: compile(p.schema) }));
      const bodySchema = operation.requestBody?.content?.['application/json']?.schema;
      const bodyValidate = bodySchema !== undefined && operation.operationId !== 'deliveryCallback' ? compile(bodySchema) : undefined;
      out.set(operation.operationId, {
        params(values) {
          for (const p of pathParams) {
            if (!p.validate(values[p.name])) return { field: p.name, message: `path parameter ${p.name} ${describe(p.validate.errors?.[0])}` };
          }
          return undefined;
        },
        query(query) {
          const value: Record<string, unknown> = {};
          for (const p of queryParams) {
            const raw = query.get(p.name);
            if (raw === null) {
              if (p.schema.default !== undefined) value[p.name] = p.schema.default;
              continue;
            }
            const typed = p.schema.type === 'integer' ? (/^-?\d+$/.test(raw) ? Number(raw) : raw) : raw;
            if (!p.validate(typed)) return { ok: false, failure: { field: p.name, message: `query parameter ${p.name} ${describe(p.validate.errors?.[0])}` } };
            value[p.name] = typed;
          }
          return { ok: true, value };
        },
        body(body) {
          if (bodyValidate === undefined || bodyValidate(body)) return undefined;
          const e = bodyValidate.errors![0]!;
          const pointer =
            e.keyword === 'required'
              ? `${e.instancePath}/${(e.params as { missingProperty: string }).missingProperty}`
              : e.keyword === 'additionalProperties'
                ? `${e.instancePath}/${(e.params as { additionalProperty: string }).additionalProperty}`
                : e.instancePath;
          return { field: pointer === '' ? '/' : pointer, message: `${pointer === '' ? 'the body' : pointer} ${describe(e)}` };
        },
      });
    }
  }
  return out;
}

function describe(e: ErrorObject | undefined): string {
  if (e === undefined) return 'is invalid';
  if (e.keyword === 'required') return 'is required';
  if (e.keyword === 'additionalProperties') return 'is not a known field';
  if (e.keyword === 'enum') return `must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.join(', ')}`;
  if (e.keyword === 'pattern') return 'does not have the expected form';
  return e.message ?? 'is invalid';
}

// Point '#/components/...' references at the document registered as 'openapi'.
function rebase(schema: unknown): Record<string, unknown> {
  return JSON.parse(JSON.stringify(schema).replace(/"#\/components\//g, '"openapi#/components/')) as Record<string, unknown>;
}
