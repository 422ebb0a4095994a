import type { DirectoryBundle } from '../core/bundle.ts';
import { CachedDirectory, DirectoryUnavailableError, type Directory, type DirectoryHealth } from './directory.ts';
import { createStaticDirectory } from './static-directory.ts';

/** createDirectory builds a store's directory adapter, cached for the bundle's cacheTTL, from its settings and resolved credentials. */
export function createDirectory(dir: DirectoryBundle, credentials: Readonly<Record<string, string>>): Directory {
  // spec.directory.timeout bounds a whole lookup (a token, a search per level of nesting, the next server), not only each request.
  return new CachedDirectory(adapterOf(dir, credentials), { ttlMs: dir.cacheTtlMs, deadlineMs: dir.timeoutMs });
}

function adapterOf(dir: DirectoryBundle, credentials: Readonly<Record<string, string>>): Directory {
  switch (dir.kind) {
    case 'static':
      return createStaticDirectory(dir.users);
    case 'ldap':
      return lazyDirectory(async () =>
        (await import('./ldap-directory.ts')).createLdapDirectory({
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
        }),
      );
    case 'google':
      return lazyDirectory(async () =>
        (await import('./google-directory.ts')).createGoogleDirectory({
          serviceAccountKey: credentials.serviceAccountKey ?? '',
          adminSubject: dir.adminSubject,
          customer: dir.customer,
          endpoint: dir.endpoint,
          timeoutMs: dir.timeoutMs,
        }),
      );
    case 'entra':
      return lazyDirectory(async () =>
        (await import('./entra-directory.ts')).createEntraDirectory({
          tenantId: dir.tenantId,
          clientId: dir.clientId,
          clientSecret: credentials.clientSecret ?? '',
          authorityHost: dir.authorityHost,
          graphEndpoint: dir.graphEndpoint,
          mobileAttribute: dir.mobileAttribute,
          ...(credentials.caBundle !== undefined ? { ca: credentials.caBundle } : {}),
          timeoutMs: dir.timeoutMs,
        }),
      );
  }
}

/**
 * lazyDirectory loads an adapter (and its client library) on first use, so that a process whose
 * stores use no such directory never loads it. An adapter that cannot be made (a key that is not
 * one) answers unavailable, with the reason its error gives.
 */
function lazyDirectory(make: () => Promise<Directory>): Directory {
  let made: Promise<Directory> | undefined;
  const get = (): Promise<Directory> =>
    (made ??= make().catch((err: unknown) => {
      made = undefined;
      throw err instanceof DirectoryUnavailableError
        ? err
        : new DirectoryUnavailableError(code(err) === 'ERR_GOOGLE_KEY' ? 'CredentialsRejected' : 'Unreachable', (err as Error).message, {
            detail: code(err) ?? 'not available',
          });
    }));
  return {
    lookup: async (name) => (await get()).lookup(name),
    members: async (scope, options) => (await get()).members(scope, options),
    check: async (): Promise<DirectoryHealth> => {
      try {
        return await (await get()).check();
      } catch (err) {
        const e = err as DirectoryUnavailableError;
        return { ok: false, problem: e.problem, ...(e.detail !== undefined ? { code: e.detail } : {}) };
      }
    },
    close: async () => {
      if (made !== undefined) await (await made).close();
    },
  };
}

function code(err: unknown): string | undefined {
  const c = (err as { code?: unknown }).code;
  return typeof c === 'string' ? c : undefined;
}
