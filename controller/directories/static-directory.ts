import type { DirectoryUserBundle } from '../core/bundle.ts';
import { isInContainer, memberKey } from '../core/membership.ts';
import { memberListOf, type Directory, type DirectoryHealth, type DirectoryUser, type MemberList, type MemberScope } from './directory.ts';

/**
 * createStaticDirectory serves the users a store writes in spec.directory.static (development and
 * tests): names compare without case, as directories' user attributes do. Its users' groups are
 * taken as written (nested ones included), and a role covers them as the policy decides roles.
 */
export function createStaticDirectory(users: readonly DirectoryUserBundle[]): Directory {
  const byName = new Map(users.map((u) => [u.name.toLowerCase(), u]));
  return {
    lookup(name: string): Promise<DirectoryUser | undefined> {
      const u = byName.get(name.toLowerCase());
      return Promise.resolve(u === undefined ? undefined : { id: u.name, groups: [...u.groups], container: u.container, mobile: u.mobile });
    },
    members(scope: MemberScope, options: { limit: number }): Promise<MemberList> {
      const groups = new Set(scope.groups.map(memberKey));
      const names = new Set<string>();
      for (const [name, u] of byName) {
        if (names.size > options.limit) break;
        const container = u.container;
        if (u.groups.some((g) => groups.has(memberKey(g))) || (container !== null && scope.containers.some((c) => isInContainer(container, c))))
          names.add(name);
      }
      return Promise.resolve(memberListOf(names, options.limit));
    },
    check(): Promise<DirectoryHealth> {
      return Promise.resolve({ ok: true });
    },
    close(): Promise<void> {
      return Promise.resolve();
    },
  };
}
