import { canonicalJson } from './bundle.ts';
import { keyOf, objectKey } from './object-key.ts';
import type { Change, CredentialCheck, DesiredState, DirectoryCheck, InvalidVersion, Ref } from './reconciler.ts';

/**
 * diffDesired turns two successive snapshots of the sources into the reconciler's changes: what
 * appeared or changed is upserted (or marked invalid), what vanished is deleted, and Secrets whose
 * keys changed are passed on. Equal content gives no change, so an unchanged file costs nothing.
 */
export function diffDesired(previous: DesiredState | undefined, next: DesiredState): Change[] {
  const changes: Change[] = [];
  const before = new Map<string, string>();
  for (const o of previous?.objects ?? []) before.set(keyOf(o), canonicalJson(o));
  for (const v of previous?.invalid ?? []) before.set(invalidKey(v), `invalid:${v.generation}:${canonicalJson(v.messages)}`);
  const seen = new Set<string>();
  for (const o of next.objects) {
    const key = keyOf(o);
    seen.add(key);
    if (before.get(key) !== canonicalJson(o)) changes.push({ type: 'upsert', object: o });
  }
  for (const v of next.invalid) {
    const key = invalidKey(v);
    seen.add(key);
    if (before.get(key) !== `invalid:${v.generation}:${canonicalJson(v.messages)}`) changes.push({ type: 'invalid', version: v });
  }
  for (const key of before.keys()) {
    if (seen.has(key)) continue;
    const [kind, namespace, name] = key.split('/') as [Ref['kind'], string, string];
    changes.push({ type: 'delete', ref: { kind, namespace, name } });
  }
  const oldSecrets = previous?.secrets ?? new Map<string, readonly string[]>();
  for (const [key, keys] of next.secrets) {
    if (canonicalJson(oldSecrets.get(key) ?? null) !== canonicalJson(keys)) changes.push({ type: 'secret', ...splitRef(key), keys });
  }
  for (const key of oldSecrets.keys()) {
    if (!next.secrets.has(key)) changes.push({ type: 'secret', ...splitRef(key), keys: null });
  }
  const oldChecks: ReadonlyMap<string, CredentialCheck> = previous?.credentialChecks ?? new Map();
  const newChecks: ReadonlyMap<string, CredentialCheck> = next.credentialChecks ?? new Map();
  for (const [key, result] of newChecks) {
    if (canonicalJson(oldChecks.get(key) ?? null) !== canonicalJson(result)) changes.push({ type: 'credential-check', ...splitRef(key), result });
  }
  for (const key of oldChecks.keys()) {
    if (!newChecks.has(key)) changes.push({ type: 'credential-check', ...splitRef(key), result: null });
  }
  const oldDirs: ReadonlyMap<string, DirectoryCheck> = previous?.directoryChecks ?? new Map();
  const newDirs: ReadonlyMap<string, DirectoryCheck> = next.directoryChecks ?? new Map();
  for (const [key, result] of newDirs) {
    if (canonicalJson(oldDirs.get(key) ?? null) !== canonicalJson(result)) changes.push({ type: 'directory-check', ...splitRef(key), result });
  }
  for (const key of oldDirs.keys()) {
    if (!newDirs.has(key)) changes.push({ type: 'directory-check', ...splitRef(key), result: null });
  }
  return changes;
}

// 'namespace/name' → its parts (names may not contain '/', namespaces never do).
function splitRef(key: string): { namespace: string; name: string } {
  const i = key.indexOf('/');
  return { namespace: key.slice(0, i), name: key.slice(i + 1) };
}

function invalidKey(v: InvalidVersion): string {
  return objectKey(v.ref.kind, v.ref.namespace, v.ref.name);
}
