import { fieldPath } from '../core/diagnostics.ts';
import { kindInfo } from '../core/kinds.ts';
import { checkObject } from '../core/object-rules.ts';
import type { Change } from '../core/reconciler.ts';
import type { SmsObject } from '../generated/kinds.ts';
import type { SchemaValidator } from '../validate/schema-validator.ts';

/** ClusterObject is a custom resource as the API serves it. */
export interface ClusterObject {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; generation?: number; deletionTimestamp?: unknown; [k: string]: unknown };
  spec?: unknown;
  status?: unknown;
}

/**
 * changeOf turns the current state of one key into the reconciler's change: absent or being
 * deleted → delete; invalid (schema, with the API server's defaults, then the object's own rules)
 * → invalid, with messages naming the fields; valid → upsert. The status is left out: it is ours.
 */
export function changeOf(kind: string, namespace: string, name: string, obj: ClusterObject | undefined, validator: SchemaValidator): Change {
  const info = kindInfo(kind);
  if (info === undefined) throw new Error(`not an smsauth kind: ${kind}`);
  if (obj === undefined || (obj.metadata?.deletionTimestamp !== undefined && obj.metadata.deletionTimestamp !== null)) {
    return { type: 'delete', ref: { kind: info.kind, namespace, name } };
  }
  const { status: _status, ...rest } = structuredClone(obj) as Record<string, unknown> & ClusterObject;
  const metadata = { ...(rest.metadata ?? {}), namespace, name };
  // Only the fields our schema knows: the API server adds uid, managedFields and the like.
  const candidate: Record<string, unknown> = {
    apiVersion: rest.apiVersion,
    kind: rest.kind,
    metadata: { name, namespace, ...(metadata.generation !== undefined ? { generation: metadata.generation } : {}) },
    spec: rest.spec,
  };
  const findings = validator.validate(info.kind, candidate);
  const errors = (findings.length > 0 ? findings : checkObject(candidate as unknown as SmsObject)).filter((f) => f.severity === 'error');
  const generation = typeof metadata.generation === 'number' ? metadata.generation : 1;
  if (errors.length > 0) {
    return {
      type: 'invalid',
      version: {
        ref: { kind: info.kind, namespace, name },
        generation,
        // A message that names its field already is not prefixed with it again.
        messages: errors.map((f) => (f.pointer === '' || f.message.includes(fieldPath(f.pointer)) ? f.message : `${fieldPath(f.pointer)}: ${f.message}`)),
      },
    };
  }
  return { type: 'upsert', object: candidate as unknown as SmsObject };
}
