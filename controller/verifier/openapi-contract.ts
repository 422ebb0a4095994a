import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import type { Route } from '../core/http-route.ts';

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;

/** ValidationFailure names the field at fault (a parameter or header name, or a JSON pointer into the body) and says what is wrong. */
export interface ValidationFailure {
  field: string;
  message: string;
}

/** OperationValidator checks one operation's path parameters, query, headers and body as the OpenAPI document declares them. */
export interface OperationValidator {
  params(params: Readonly<Record<string, string>>): ValidationFailure | undefined;
  /** query returns the typed query values (integers parsed, defaults applied), or the failure. */
  query(query: URLSearchParams): { ok: true; value: Record<string, unknown> } | { ok: false; failure: ValidationFailure };
  headers(headers: Readonly<Record<string, string | undefined>>): ValidationFailure | undefined;
  /** body validates (and applies defaults to) a parsed JSON body. */
  body(body: unknown): ValidationFailure | undefined;
}

/** ContractOperation is one operation of the document: where it is, who may call it, what it takes. */
export interface ContractOperation {
  operationId: string;
  method: Route['method'];
  /** The path as routes write it (`/v1/:ns/:store/verifications`). */
  pattern: string;
  /** Which token opens it: none (`security: [{}]`), the application's (the document's default), or the helpdesk's. */
  security: 'none' | 'application' | 'helpdesk';
  /** Its body: JSON required or optional, none, or raw (a provider's callback, form-encoded or JSON, checked by its signature). */
  body: 'required' | 'optional' | 'none' | 'raw';
  validator: OperationValidator;
}

/** OpenApiContract is docs/openapi.yaml compiled once: the server's routes and validators, and the tests' response checks. */
export interface OpenApiContract {
  operations: ReadonlyMap<string, ContractOperation>;
  /**
   * checkResponse throws when a response is not what the document declares for its operation:
   * its status, its required headers, its JSON body's schema. It returns the operationId.
   */
  checkResponse(method: string, path: string, status: number, headers: { get(name: string): string | null }, body: unknown): string;
}

interface ParameterObject {
  name: string;
  in: 'path' | 'query' | 'header';
  required?: boolean;
  schema: Record<string, unknown>;
}

interface OperationObject {
  operationId: string;
  parameters?: Record<string, unknown>[];
  security?: Record<string, unknown>[];
  requestBody?: { required?: boolean; content?: Record<string, { schema?: Record<string, unknown> }> };
  responses: Record<
    string,
    { $ref?: string; content?: Record<string, { schema?: Record<string, unknown> }>; headers?: Record<string, { required?: boolean }> }
  >;
}

const METHODS = ['get', 'post', 'put', 'delete', 'patch'] as const;

/**
 * compileContract compiles, once, an OpenAPI 3.1 document: for each operation its route (method,
 * path, security, body) and validators of its path parameters, query, headers and body, so that
 * the server accepts exactly what the document describes; and the response checks the tests run
 * on every answer they see.
 */
export function compileContract(doc: Record<string, unknown>): OpenApiContract {
  const ajv = new Ajv2020({ strict: false, allErrors: false, useDefaults: true });
  addFormats(ajv);
  ajv.addSchema({ $id: 'openapi', components: doc.components }, 'openapi');
  const compile = (schema: Record<string, unknown>): ValidateFunction => ajv.compile(rebase(schema));
  const components = doc.components as { parameters: Record<string, ParameterObject>; responses: Record<string, OperationObject['responses'][string]> };
  const resolveParam = (p: Record<string, unknown>): ParameterObject => {
    const ref = p.$ref;
    return typeof ref === 'string' ? components.parameters[ref.split('/').pop()!]! : (p as unknown as ParameterObject);
  };
  const operations = new Map<string, ContractOperation>();
  const responseChecks: { method: string; regex: RegExp; operationId: string; responses: Map<string, { schema?: ValidateFunction; headers: string[] }> }[] = [];
  for (const [template, item] of Object.entries(doc.paths as Record<string, Record<string, unknown>>)) {
    const shared = ((item.parameters as Record<string, unknown>[] | undefined) ?? []).map(resolveParam);
    for (const method of METHODS) {
      const operation = item[method] as OperationObject | undefined;
      if (operation === undefined) continue;
      const params = [...shared, ...(operation.parameters ?? []).map(resolveParam)];
      const content = operation.requestBody?.content ?? {};
      const body =
        operation.requestBody === undefined
          ? 'none'
          : content['application/x-www-form-urlencoded'] !== undefined
            ? 'raw'
            : operation.requestBody.required === true
              ? 'required'
              : 'optional';
      const bodySchema = body === 'required' || body === 'optional' ? content['application/json']?.schema : undefined;
      operations.set(operation.operationId, {
        operationId: operation.operationId,
        method: method.toUpperCase() as Route['method'],
        pattern: template.replace(/\{([^}]+)\}/g, ':$1'),
        security: securityOf(operation.security),
        body,
        validator: validatorOf(params, bodySchema === undefined ? undefined : compile(bodySchema), compile),
      });
      const responses = new Map<string, { schema?: ValidateFunction; headers: string[] }>();
      for (const [status, declared] of Object.entries(operation.responses)) {
        const resp = declared.$ref !== undefined ? components.responses[declared.$ref.split('/').pop()!]! : declared;
        const json = resp.content?.['application/json']?.schema;
        const headers = Object.entries(resp.headers ?? {})
          .filter(([, h]) => h.required === true)
          .map(([n]) => n.toLowerCase());
        responses.set(status, { ...(json !== undefined ? { schema: compile(json) } : {}), headers });
      }
      responseChecks.push({
        method: method.toUpperCase(),
        regex: new RegExp(`^${template.replace(/\{[^}]+\}/g, '[^/]+')}$`),
        operationId: operation.operationId,
        responses,
      });
    }
  }
  return {
    operations,
    checkResponse(method, path, status, headers, body) {
      const p = path.split('?')[0]!;
      const op = responseChecks.find((o) => o.method === method && o.regex.test(p));
      if (op === undefined) throw new Error(`OpenAPI: no operation for ${method} ${p}`);
      const declared = op.responses.get(String(status));
      if (declared === undefined) throw new Error(`OpenAPI: ${op.operationId} does not declare status ${status} (body ${JSON.stringify(body)})`);
      for (const h of declared.headers) if (headers.get(h) === null) throw new Error(`OpenAPI: ${op.operationId} ${status} lacks header ${h}`);
      if (declared.schema !== undefined && !declared.schema(body)) {
        throw new Error(`OpenAPI: ${op.operationId} ${status} body does not match: ${JSON.stringify(declared.schema.errors)} in ${JSON.stringify(body)}`);
      }
      return op.operationId;
    },
  };
}

function securityOf(security: Record<string, unknown>[] | undefined): ContractOperation['security'] {
  if (security === undefined) return 'application';
  if (security.some((s) => 'helpdeskAuth' in s)) return 'helpdesk';
  return security.every((s) => Object.keys(s).length === 0) ? 'none' : 'application';
}

function validatorOf(
  params: ParameterObject[],
  bodyValidate: ValidateFunction | undefined,
  compile: (schema: Record<string, unknown>) => ValidateFunction,
): OperationValidator {
  const of = (where: ParameterObject['in']) => params.filter((p) => p.in === where).map((p) => ({ ...p, validate: compile(p.schema) }));
  const pathParams = of('path');
  const queryParams = of('query');
  const headerParams = of('header');
  return {
    params(values) {
      for (const p of pathParams) {
        if (!p.validate(values[p.name])) return { field: p.name, message: `path parameter ${p.name} ${describe(p.validate.errors?.[0])}` };
      }
      return undefined;
    },
    query(query) {
      // A parameter this route does not take, or one given twice, is refused: ignored, a misspelt
      // filter (users=, Since=) would answer everything unfiltered.
      const known = new Set(queryParams.map((p) => p.name));
      for (const name of new Set(query.keys())) {
        if (!known.has(name)) {
          const takes = known.size === 0 ? 'this route takes none' : `this route takes ${[...known].join(', ')}`;
          return { ok: false, failure: { field: name, message: `query parameter ${name} is not known: ${takes}` } };
        }
        const given = query.getAll(name).length;
        if (given > 1) return { ok: false, failure: { field: name, message: `query parameter ${name} is given ${given} times; give it once` } };
      }
      const value: Record<string, unknown> = {};
      for (const p of queryParams) {
        const raw = query.get(p.name);
        if (raw === null) {
          if (p.schema.default !== undefined) value[p.name] = p.schema.default;
          continue;
        }
        const typed = p.schema.type === 'integer' ? (/^-?\d+$/.test(raw) ? Number(raw) : raw) : raw;
        if (!p.validate(typed)) return { ok: false, failure: { field: p.name, message: `query parameter ${p.name} ${describe(p.validate.errors?.[0])}` } };
        // RFC 3339 admits a leap second (:60) that no clock here can read: refused, not read as no time.
        if (p.schema.format === 'date-time' && !Number.isFinite(Date.parse(raw)))
          return { ok: false, failure: { field: p.name, message: `query parameter ${p.name} is not a time this server can read (a leap second?)` } };
        value[p.name] = typed;
      }
      return { ok: true, value };
    },
    headers(headers) {
      for (const p of headerParams) {
        const value = headers[p.name.toLowerCase()];
        if (value === undefined) {
          if (p.required === true) return { field: p.name, message: `header ${p.name} is required` };
          continue;
        }
        if (!p.validate(value)) return { field: p.name, message: `header ${p.name} ${describe(p.validate.errors?.[0])}` };
      }
      return undefined;
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
  };
}

function describe(e: ErrorObject | undefined): string {
  if (e === undefined) return 'is invalid';
  if (e.keyword === 'required') return 'is required';
  if (e.keyword === 'additionalProperties') return 'is not a known field';
  if (e.keyword === 'enum') return `must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.join(', ')}`;
  if (e.keyword === 'pattern') return 'does not have the expected form';
  if (e.keyword === 'minLength' || e.keyword === 'maxLength')
    return `must be ${e.keyword === 'minLength' ? 'at least' : 'at most'} ${(e.params as { limit: number }).limit} characters`;
  return e.message ?? 'is invalid';
}

// Point '#/components/...' references at the document registered as 'openapi'.
function rebase(schema: unknown): Record<string, unknown> {
  return JSON.parse(JSON.stringify(schema).replace(/"#\/components\//g, '"openapi#/components/')) as Record<string, unknown>;
}
