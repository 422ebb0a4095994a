import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { canonicalJson, directoryCredentialRefs, type DirectoryBundle } from '../core/bundle.ts';
import { unavailableDirectory, type Directory } from '../directories/directory.ts';
import { resolveRefs, type SecretValues } from './credentials.ts';

/** DIRECTORY_CHECK_INTERVAL_MS is how often a store's directory is checked (besides when its bundle changes), in every mode. */
export const DIRECTORY_CHECK_INTERVAL_MS = 60_000;

/** DirectoryFactory builds a store's directory (createDirectory, or a fake in tests). */
export type DirectoryFactory = (dir: DirectoryBundle, credentials: Readonly<Record<string, string>>) => Directory;

/**
 * DirectoryPool gives each identity store its directory, reusing it (its connection and its
 * cache) while neither its settings nor its secret values change; a replaced one is closed. A
 * directory whose Secrets do not resolve answers every lookup "unavailable": a store that names a
 * directory never falls back to trusting the caller.
 */
export class DirectoryPool {
  private readonly cache = new Map<string, { digest: string; directory: Directory }>();
  private readonly factory: DirectoryFactory;
  private readonly log: Logger;

  constructor(factory: DirectoryFactory, log: Logger) {
    this.factory = factory;
    this.log = log;
  }

  /** directory returns the store's directory; namespace/store name the cache entry. */
  directory(namespace: string, store: string, dir: DirectoryBundle, values: SecretValues): Directory {
    const key = `${namespace}/${store}`;
    const resolved = resolveRefs(namespace, directoryCredentialRefs(dir), values);
    if (!resolved.ok) {
      this.log.warn({ namespace, store, field: resolved.field }, 'directory unavailable: a credential does not resolve');
      this.drop(key);
      return unavailableDirectory(`spec.directory's ${resolved.field} does not resolve`);
    }
    const digest = createHash('sha256').update(canonicalJson(dir)).update(canonicalJson(resolved.values)).digest('hex');
    const cached = this.cache.get(key);
    if (cached?.digest === digest) return cached.directory;
    this.drop(key);
    const directory = this.factory(dir, resolved.values);
    this.cache.set(key, { digest, directory });
    return directory;
  }

  /** forget closes the directory of a store that is gone or has none any more. */
  forget(namespace: string, store: string): void {
    this.drop(`${namespace}/${store}`);
  }

  /** close closes every directory. */
  async close(): Promise<void> {
    const all = [...this.cache.values()];
    this.cache.clear();
    await Promise.allSettled(all.map((c) => c.directory.close()));
  }

  private drop(key: string): void {
    const old = this.cache.get(key);
    if (old === undefined) return;
    this.cache.delete(key);
    void old.directory.close().catch(() => undefined);
  }
}
