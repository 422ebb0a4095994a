import type { DirectoryBundle } from '../core/bundle.ts';
import { CachedDirectory, unavailableDirectory, type Directory } from './directory.ts';
import { createLdapDirectory } from './ldap-directory.ts';
import { createStaticDirectory } from './static-directory.ts';

/** createDirectory builds a store's directory adapter, cached for the bundle's cacheTTL, from its settings and resolved credentials. */
export function createDirectory(dir: DirectoryBundle, credentials: Readonly<Record<string, string>>): Directory {
  return new CachedDirectory(adapterOf(dir, credentials), { ttlMs: dir.cacheTtlMs });
}

function adapterOf(dir: DirectoryBundle, credentials: Readonly<Record<string, string>>): Directory {
  switch (dir.kind) {
    case 'static':
      return createStaticDirectory(dir.users);
    case 'ldap':
      return createLdapDirectory({
        flavor: dir.flavor,
        urls: dir.urls,
        startTLS: dir.startTLS,
        ...(credentials.caBundle !== undefined ? { ca: credentials.caBundle } : {}),
        bindDN: dir.bindDN,
        bindPassword: credentials.bindPassword ?? '',
        baseDN: dir.baseDN,
        userAttribute: dir.userAttribute,
        userFilter: dir.userFilter,
        mobileAttribute: dir.mobileAttribute,
        groupMemberAttribute: dir.groupMemberAttribute,
        timeoutMs: dir.timeoutMs,
      });
    case 'entra':
    case 'google':
      return unavailableDirectory(`the ${dir.kind} directory is not served by this version of smsauth yet`);
  }
}
