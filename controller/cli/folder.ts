import { readYamlTree } from '../adapters/files.ts';
import { DEFAULT_NAMESPACE } from '../core/object-key.ts';
import { secretManifestsIn } from '../load/classify.ts';
import { DEFAULT_LIMITS, parseYamlFile } from '../load/yaml-documents.ts';
import { mergeSecretValues, secretsFromEnv, type SecretValues } from '../runtime/credentials.ts';
import type { ValidationResult } from '../validate/validate-files.ts';
import { UsageError } from './cli-io.ts';
import { requireFolder } from './startup.ts';
import { loadTree } from './validate-command.ts';

/** FOLDER_FLAGS are the parseArgs options of the commands that read a folder of resources and its Secrets. */
export const FOLDER_FLAGS = {
  dir: { type: 'string', default: '.' },
  'secrets-dir': { type: 'string' },
} as const;

/** FOLDER_USAGE documents FOLDER_FLAGS in a command's help. */
export const FOLDER_USAGE = `      --dir DIR            the folder of resources (default .)
      --secrets-dir DIR    Secret manifests kept out of the folder`;

/** testTarget reads `test NAMESPACE/NAME` from a command line (a name alone is in namespace default). */
export function testTarget(positionals: readonly string[], use: string): { namespace: string; name: string } {
  const [action, target] = positionals;
  if (action !== 'test' || target === undefined || positionals.length !== 2) throw new UsageError(`use: ${use}`);
  const [namespace, name] = target.includes('/') ? (target.split('/', 2) as [string, string]) : [DEFAULT_NAMESPACE, target];
  return { namespace, name };
}

/**
 * loadFolderWithSecrets reads and validates a folder of resources (refusing --dir and
 * --secrets-dir that are not folders), and gathers the Secret values
 * the commands that reach a provider or a directory need: the folder's Secret manifests, those of
 * secretsDir, then SMSAUTH_SECRETS (later wins).
 */
export async function loadFolderWithSecrets(
  dir: string,
  secretsDir: string | undefined,
): Promise<{ result: ValidationResult; ioErrors: number; values: SecretValues }> {
  await requireFolder('--dir', dir);
  if (secretsDir !== undefined) await requireFolder('--secrets-dir', secretsDir);
  const env = secretsFromEnv(process.env);
  if (!env.ok) throw new UsageError(env.error);
  const { result, ioErrors } = await loadTree([dir]);
  let extra = new Map<string, ReadonlyMap<string, string>>();
  if (secretsDir !== undefined) {
    const tree = await readYamlTree([secretsDir], DEFAULT_LIMITS.maxFileBytes);
    extra = new Map(secretManifestsIn(tree.files.flatMap((f) => parseYamlFile(f.path, f.bytes).documents)).map((s) => [`${s.namespace}/${s.name}`, s.data]));
  }
  const values = mergeSecretValues(new Map(result.secrets.map((s) => [`${s.namespace}/${s.name}`, s.data])), extra, env.value);
  return { result, ioErrors: ioErrors.length, values };
}
