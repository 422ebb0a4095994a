import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readSchemaSet } from '../../controller/adapters/files.ts';
import { createSchemaValidator, type SchemaValidator } from '../../controller/validate/schema-validator.ts';

/** ROOT is the repository root. */
export const ROOT = join(import.meta.dirname, '..', '..');

/** fixtureBytes reads a file under test/fixtures fresh for each call. */
export function fixtureBytes(path: string): Uint8Array {
  return readFileSync(join(ROOT, 'test', 'fixtures', path));
}

/** utf8 encodes a string for the loader. */
export function utf8(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

let validator: SchemaValidator | undefined;
/** schemaValidator compiles the package's schemas once per test process. */
export async function schemaValidator(): Promise<SchemaValidator> {
  validator ??= createSchemaValidator(await readSchemaSet(join(ROOT, 'schemas')));
  return validator;
}
