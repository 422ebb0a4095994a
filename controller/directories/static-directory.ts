import type { DirectoryUserBundle } from '../core/bundle.ts';
import type { Directory, DirectoryHealth, DirectoryUser } from './directory.ts';

/**
 * createStaticDirectory serves the users a store writes in spec.directory.static (development and
 * tests): names compare without case, as directories' user attributes do.
 */
export function createStaticDirectory(users: readonly DirectoryUserBundle[]): Directory {
  const byName = new Map(users.map((u) => [u.name.toLowerCase(), u]));
  return {
    lookup(name: string): Promise<DirectoryUser | undefined> {
      const u = byName.get(name.toLowerCase());
      return Promise.resolve(u === undefined ? undefined : { id: u.name, groups: [...u.groups], container: u.container, mobile: u.mobile });
    },
    check(): Promise<DirectoryHealth> {
      return Promise.resolve({ ok: true });
    },
    close(): Promise<void> {
      return Promise.resolve();
    },
  };
}
