import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { parse } from 'yaml';
import { readSchemaSet, readYamlTree } from '../controller/adapters/files.ts';
import { KINDS } from '../controller/core/kinds.ts';
import { structuralViolations } from '../controller/tools/crd.ts';
import { generatedFiles } from '../controller/tools/generated-files.ts';
import type { JsonSchema } from '../controller/core/schema-tree.ts';
import { DEFAULT_LIMITS } from '../controller/load/yaml-documents.ts';
import { validateFiles } from '../controller/validate/validate-files.ts';
import { ROOT, schemaValidator } from './helpers/fixtures.ts';

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;
const crdOf = (plural: string): JsonSchema => parse(readFileSync(join(ROOT, 'charts/smsauth/files/crds', `${plural}.smsauth.io.yaml`), 'utf8')) as JsonSchema;
const openApiOf = (crd: JsonSchema): JsonSchema =>
  (crd.spec as { versions: { schema: { openAPIV3Schema: JsonSchema } }[] }).versions[0]!.schema.openAPIV3Schema;

const drift = suite('generated files');
drift('match what npm run gen makes from schemas/ (run it after editing a schema)', async () => {
  const files = await generatedFiles(await readSchemaSet(join(ROOT, 'schemas')));
  assert.ok(files.size >= 6);
  for (const [path, content] of files) assert.fixture(readFileSync(join(ROOT, path), 'utf8'), content, `${path} drifted`);
});
drift.run();

const crds = suite('CRDs');
for (const info of KINDS) {
  crds(`${info.kind} is a structural schema with status, printer columns, short name and category`, () => {
    const crd = crdOf(info.plural);
    const spec = crd.spec as Record<string, any>;
    assert.equal(spec.names.shortNames, [info.shortName]);
    assert.equal(spec.names.categories, ['smsauth']);
    assert.is(spec.scope, 'Namespaced');
    const version = spec.versions[0];
    assert.equal(version.subresources, { status: {} });
    const columns = version.additionalPrinterColumns.map((c: { name: string }) => c.name);
    for (const c of ['Ready', 'Reason', 'Age', ...info.columns.map((col) => col.name)]) assert.ok(columns.includes(c), `column ${c}`);
    assert.equal(structuralViolations(openApiOf(crd)), []);
    assert.not.match(JSON.stringify(crd), '$ref');
  });
}
crds('the structural check catches what an API server refuses', () => {
  const bad = {
    type: 'object',
    properties: {
      metadata: { type: 'object', properties: { name: { type: 'string' } } },
      spec: {
        type: 'object',
        properties: { a: { description: 'untyped' }, b: { type: 'object', properties: {}, additionalProperties: false }, c: { $ref: '#/x' } },
      },
    },
  };
  const problems = structuralViolations(bad);
  assert.ok(problems.some((p) => p.includes('root.spec.a: no type')));
  assert.ok(problems.some((p) => p.includes('additionalProperties beside properties')));
  assert.ok(problems.some((p) => p.includes('keyword $ref')));
  assert.ok(problems.some((p) => p.includes('root.metadata')));
});
crds('accept every example as the API server would validate it, and their defaults are valid', async () => {
  const ajv = new Ajv({ strict: false, allErrors: true });
  addFormats(ajv);
  const tree = await readYamlTree([join(ROOT, 'examples')], DEFAULT_LIMITS.maxFileBytes);
  const result = validateFiles(tree.files, await schemaValidator());
  for (const info of KINDS) {
    const validate = ajv.compile(openApiOf(crdOf(info.plural)));
    for (const v of result.valid.filter((x) => x.object.kind === info.kind)) {
      assert.ok(validate(v.object), `${info.kind} ${v.object.metadata.name}: ${ajv.errorsText(validate.errors)}`);
    }
  }
});
crds.run();
