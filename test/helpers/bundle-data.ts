import { reconcile } from '../../controller/core/reconciler.ts';
import { bundleSecretData } from '../../controller/runtime/bundle-secret.ts';
import type { SecretValues } from '../../controller/runtime/credentials.ts';
import { desiredStateOf } from '../../controller/validate/desired-state.ts';
import { validateFiles } from '../../controller/validate/validate-files.ts';
import { schemaValidator, utf8 } from './fixtures.ts';

/** bundleDataOf reconciles resources (YAML) as the controller would and returns its bundle Secret's data, with these Secret values. */
export async function bundleDataOf(yaml: string, secrets: SecretValues = new Map()): Promise<Record<string, string>> {
  const result = validateFiles([{ path: 'r.yaml', bytes: utf8(yaml) }], await schemaValidator());
  const state = reconcile(desiredStateOf(result), undefined, new Date().toISOString());
  return bundleSecretData([...state.bundles.values()], secrets).data;
}
