import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { compileContract } from '../controller/verifier/openapi-contract.ts';
import { verifierRoutes, type ApiDeps } from '../controller/verifier/http-api.ts';
import { openApiDocument } from './helpers/openapi-check.ts';

// One contract: the server's routes and validators and the tests' response checks all come from
// docs/openapi.yaml, and the server refuses to start when the two drift apart.

const contract = suite('the OpenAPI contract');
const deps = (doc: Record<string, any>, helpdesk = false): ApiDeps => ({ contract: compileContract(doc), helpdesk }) as unknown as ApiDeps;

contract('every operation is a route with the method, path and security the document gives it', () => {
  const routes = verifierRoutes(deps(openApiDocument(), true));
  const byName = new Map(routes.map((r) => [r.name, r]));
  assert.equal(
    [byName.get('startVerification'), byName.get('helpdeskUnlock'), byName.get('healthz')].map(
      (r) => r && [r.method, r.pattern, r.auth, r.scope ?? 'application', r.json],
    ),
    [
      ['POST', '/v1/:ns/:store/verifications', true, 'application', true],
      ['DELETE', '/v1/:ns/:store/users/:user/lockout', true, 'helpdesk', true],
      ['GET', '/healthz', false, 'application', false],
    ],
  );
  assert.is(
    routes.length,
    Object.values(openApiDocument().paths as Record<string, Record<string, unknown>>).flatMap((p) => Object.keys(p).filter((k) => k !== 'parameters')).length,
  );
  assert.not.ok(
    verifierRoutes(deps(openApiDocument(), false)).some((r) => r.scope === 'helpdesk'),
    'no helpdesk token: no helpdesk route',
  );
});

contract('an operation without a handler, or a handler without an operation, stops the server from starting', () => {
  const extra = openApiDocument();
  extra.paths['/v1/{ns}/{store}/novelty'] = { get: { operationId: 'novelty', responses: { '200': { description: 'x' } } } };
  assert.throws(() => verifierRoutes(deps(extra)), /operation novelty of docs\/openapi.yaml has no handler/);
  const missing = openApiDocument();
  delete missing.paths['/metrics'];
  assert.throws(() => verifierRoutes(deps(missing)), /handler metrics is not an operation/);
});

contract('headers are validated as the document declares them', () => {
  const start = compileContract(openApiDocument()).operations.get('startVerification')!;
  assert.is(start.validator.headers({ 'idempotency-key': 'k-1' }), undefined);
  assert.equal(start.validator.headers({ 'idempotency-key': 'k'.repeat(256) }), {
    field: 'Idempotency-Key',
    message: 'header Idempotency-Key must be at most 255 characters',
  });
  assert.equal(start.validator.headers({ 'idempotency-key': '' })?.field, 'Idempotency-Key');
});

contract.run();
