import { kindInfo, type KindInfo } from '../core/kinds.ts';
import { objectKey } from '../core/object-key.ts';

/**
 * WorkKey is what the controller's work queue holds, typed: an object of one of the four kinds
 * (its status to write), a Secret that changed, a namespace's bundle to publish, or a store's
 * directory or an account's credentials to check. The queue holds their string form (formatWorkKey), which dedups.
 */
export type WorkKey =
  | { type: 'object'; kind: KindInfo['kind']; namespace: string; name: string }
  | { type: 'secret'; namespace: string; name: string }
  | { type: 'bundle'; namespace: string }
  | { type: 'directory'; namespace: string; store: string }
  | { type: 'credentials'; namespace: string; account: string };

/** formatWorkKey is a work key's string form: Kind/namespace/name (objectKey), Secret/ns/name, Bundle/ns, Directory/ns/store, Credentials/ns/account. */
export function formatWorkKey(k: WorkKey): string {
  switch (k.type) {
    case 'object':
      return objectKey(k.kind, k.namespace, k.name);
    case 'secret':
      return `Secret/${k.namespace}/${k.name}`;
    case 'bundle':
      return `Bundle/${k.namespace}`;
    case 'directory':
      return `Directory/${k.namespace}/${k.store}`;
    case 'credentials':
      return `Credentials/${k.namespace}/${k.account}`;
  }
}

/** parseWorkKey reads a work key's string form; undefined for anything else (the queue drops it, never retries it). */
export function parseWorkKey(key: string): WorkKey | undefined {
  const [head, namespace, ...rest] = key.split('/');
  const name = rest.join('/');
  if (namespace === undefined || namespace === '') return undefined;
  if (head === 'Bundle') return rest.length === 0 ? { type: 'bundle', namespace } : undefined;
  if (name === '') return undefined;
  if (head === 'Secret') return { type: 'secret', namespace, name };
  if (head === 'Directory') return { type: 'directory', namespace, store: name };
  if (head === 'Credentials') return { type: 'credentials', namespace, account: name };
  const info = kindInfo(head ?? '');
  return info === undefined ? undefined : { type: 'object', kind: info.kind, namespace, name };
}
