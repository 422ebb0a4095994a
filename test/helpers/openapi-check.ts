import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { parse } from 'yaml';
import { ROOT } from './fixtures.ts';

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;

interface Operation {
  method: string;
  template: string;
  regex: RegExp;
  operationId: string;
  responses: Map<string, { schema?: ValidateFunction; headers: string[] }>;
}

let operations: Operation[] | undefined;

/** openApiDocument reads docs/openapi.yaml. */
export function openApiDocument(): Record<string, any> {
  return parse(readFileSync(join(ROOT, 'docs', 'openapi.yaml'), 'utf8')) as Record<string, any>;
}

function load(): Operation[] {
  if (operations !== undefined) return operations;
  const doc = openApiDocument();
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  ajv.addSchema({ $id: 'openapi', components: doc.components }, 'openapi');
  const rebase = (s: unknown): any => JSON.parse(JSON.stringify(s).replace(/"#\/components\//g, '"openapi#/components/'));
  operations = [];
  for (const [template, item] of Object.entries(doc.paths as Record<string, any>)) {
    for (const [method, op] of Object.entries(item as Record<string, any>)) {
      if (!['get', 'post', 'put', 'delete', 'patch'].includes(method)) continue;
      const responses = new Map<string, { schema?: ValidateFunction; headers: string[] }>();
      for (const [status, resp0] of Object.entries(op.responses as Record<string, any>)) {
        const resp = resp0.$ref !== undefined ? doc.components.responses[String(resp0.$ref).split('/').pop()!] : resp0;
        const json = resp.content?.['application/json']?.schema;
        responses.set(status, {
          ...(json !== undefined ? { schema: ajv.compile(rebase(json)) } : {}),
          headers: Object.entries(resp.headers ?? {})
            .filter(([, h]: [string, any]) => h.required === true)
            .map(([n]) => n.toLowerCase()),
        });
      }
      const regex = new RegExp(`^${template.replace(/\{[^}]+\}/g, '[^/]+')}$`);
      operations.push({ method: method.toUpperCase(), template, regex, operationId: op.operationId, responses });
    }
  }
  return operations;
}

/** checkResponse throws when a response is not what docs/openapi.yaml declares for its operation: status, required headers, body schema. */
export function checkResponse(method: string, path: string, status: number, headers: Headers, body: unknown): string {
  const p = path.split('?')[0]!;
  const op = load().find((o) => o.method === method && o.regex.test(p));
  if (op === undefined) throw new Error(`OpenAPI: no operation for ${method} ${p}`);
  const declared = op.responses.get(String(status));
  if (declared === undefined) throw new Error(`OpenAPI: ${op.operationId} does not declare status ${status} (body ${JSON.stringify(body)})`);
  for (const h of declared.headers) if (headers.get(h) === null) throw new Error(`OpenAPI: ${op.operationId} ${status} lacks header ${h}`);
  if (declared.schema !== undefined && !declared.schema(body)) {
    throw new Error(`OpenAPI: ${op.operationId} ${status} body does not match: ${JSON.stringify(declared.schema.errors)} in ${JSON.stringify(body)}`);
  }
  return op.operationId;
}

/** declaredOperations lists METHOD template of every operation in the document. */
export function declaredOperations(): string[] {
  return load().map((o) => `${o.method} ${o.template}`);
}
