import type { SmsObject } from '../generated/kinds.ts';

/** DEFAULT_NAMESPACE is where an object without metadata.namespace lives, locally as in a cluster. */
export const DEFAULT_NAMESPACE = 'default';

/** ObjectRef names one object of a kind. */
export interface ObjectRef {
  kind: string;
  namespace: string;
  name: string;
}

/** objectKey is the map key of an object: Kind/namespace/name. */
export function objectKey(kind: string, namespace: string, name: string): string {
  return `${kind}/${namespace}/${name}`;
}

/** objectRefOf reads an object key back into the object it names. */
export function objectRefOf(key: string): ObjectRef {
  const [kind = '', namespace = '', name = ''] = key.split('/');
  return { kind, namespace, name };
}

/** keyOf returns the map key of an object. */
export function keyOf(obj: SmsObject): string {
  return objectKey(obj.kind, namespaceOf(obj), obj.metadata.name);
}

/** namespaceOf returns an object's namespace, 'default' when unset. */
export function namespaceOf(obj: { metadata: { namespace?: string } }): string {
  return obj.metadata.namespace ?? DEFAULT_NAMESPACE;
}
