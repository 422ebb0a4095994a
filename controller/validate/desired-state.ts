import { DiagnosticCode } from '../core/diagnostics.ts';
import { keyOf, objectKey } from '../core/object-key.ts';
import type { DesiredState, InvalidVersion } from '../core/reconciler.ts';
import type { ValidationResult } from './validate-files.ts';

/**
 * desiredStateOf turns a validation result into the reconciler's input: valid objects, the
 * invalid ones with their diagnostics as sentences (file:line:col first), and for each Secret only
 * the names of its keys. generationOf gives an object's generation (metadata.generation, or 1).
 */
export function desiredStateOf(
  result: ValidationResult,
  generationOf: (kind: string, namespace: string, name: string, object: Record<string, unknown>) => number = defaultGeneration,
): DesiredState {
  // An object declared twice is invalid as a whole: neither copy replaces the version that serves
  // (which copy is first depends on file names, and a new file may sort before the old one).
  const duplicated = new Set(
    result.rejected
      .filter((r) => r.diagnostics.some((d) => d.code === DiagnosticCode.NameDuplicate))
      .map((r) => objectKey(r.ref.kind, r.ref.namespace, r.ref.name)),
  );
  const valid = result.valid.filter((v) => !duplicated.has(keyOf(v.object)));
  const validKeys = new Set(valid.map((v) => keyOf(v.object)));
  const invalid: InvalidVersion[] = result.rejected
    .filter((r) => !validKeys.has(objectKey(r.ref.kind, r.ref.namespace, r.ref.name)))
    .map((r) => ({
      ref: { kind: r.loaded.kind, namespace: r.ref.namespace, name: r.ref.name },
      generation: generationOf(r.ref.kind, r.ref.namespace, r.ref.name, r.loaded.object),
      messages: r.diagnostics
        .filter((d) => d.severity === 'error')
        .map((d) => `${d.file}:${d.range?.start.line ?? 1}:${d.range?.start.column ?? 1}: ${d.message}`),
    }));
  const objects = valid.map((v) => {
    const generation = generationOf(v.object.kind, v.object.metadata.namespace ?? 'default', v.object.metadata.name, v.loaded.object);
    return v.object.metadata.generation === generation ? v.object : { ...v.object, metadata: { ...v.object.metadata, generation } };
  });
  const secrets = new Map<string, string[]>();
  for (const s of result.secrets) secrets.set(`${s.namespace}/${s.name}`, [...s.data.keys()].sort());
  return { objects, invalid, secrets };
}

function defaultGeneration(_kind: string, _namespace: string, _name: string, object: Record<string, unknown>): number {
  const g = (object.metadata as { generation?: unknown } | undefined)?.generation;
  return typeof g === 'number' && Number.isInteger(g) && g > 0 ? g : 1;
}
