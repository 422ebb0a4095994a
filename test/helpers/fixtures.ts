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

/**
 * appStoreYaml is the resources of namespace app served by the sidecar tests: the console account
 * and the store corp, with its text message and any further lines of its spec (indented by two).
 */
export function appStoreYaml(textMessage: string, moreSpec = ''): string {
  return `apiVersion: smsauth.io/v1alpha1
kind: SmsGatewayAccount
metadata: {name: console, namespace: app}
spec: {provider: console, default: true}
---
apiVersion: smsauth.io/v1alpha1
kind: IdentityStore
metadata: {name: corp, namespace: app}
spec:
  type: ActiveDirectory
  authenticationTypes: [SMS]
  sms: {textMessage: "${textMessage}"}
${moreSpec}`;
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
