import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { compileContract, type OpenApiContract } from '../../controller/verifier/openapi-contract.ts';
import { ROOT } from './fixtures.ts';

// The tests check every response they see against docs/openapi.yaml, through the same compiled
// contract the server routes and validates requests with.

let contract: OpenApiContract | undefined;

/** openApiDocument reads docs/openapi.yaml. */
export function openApiDocument(): Record<string, any> {
  return parse(readFileSync(join(ROOT, 'docs', 'openapi.yaml'), 'utf8')) as Record<string, any>;
}

/** checkResponse throws when a response is not what docs/openapi.yaml declares for its operation: status, required headers, body schema. */
export function checkResponse(method: string, path: string, status: number, headers: Headers, body: unknown): string {
  contract ??= compileContract(openApiDocument());
  return contract.checkResponse(method, path, status, headers, body);
}
