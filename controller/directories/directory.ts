/**
 * The directory port: what the verifier asks of an identity store's directory (Active Directory,
 * LDAP, Entra ID, Google Workspace, or a static list for development). One adapter per directory
 * implements it; CachedDirectory wraps any of them.
 */

/** DirectoryUser is what a directory says of a user. The mobile number is never logged or returned by the API. */
export interface DirectoryUser {
  /** The user's own name in the directory: a DN (LDAP), an object id (Entra), a primary email (Google). */
  id: string;
  /** Every group the user is in, nested ones included, as roles name groups (DNs, object ids, group emails). */
  groups: string[];
  /** Where the user is: the DN itself (roles' containers match it and everything above), or an org unit path; null where directories have none. */
  container: string | null;
  /** The mobile number as the directory holds it, or null. */
  mobile: string | null;
}

/** DirectoryProblem says why a directory could not answer: its credentials, its certificate, or the server. */
export type DirectoryProblem = 'CredentialsRejected' | 'CertificateUntrusted' | 'SearchFailed' | 'Unreachable';

/**
 * DirectoryUnavailableError is a lookup the directory could not answer (it did not say "no such
 * user"): the verifier answers 503 and decides nothing from it.
 */
export class DirectoryUnavailableError extends Error {
  override readonly name = 'DirectoryUnavailableError';
  readonly code = 'ERR_DIRECTORY_UNAVAILABLE';
  readonly problem: DirectoryProblem;
  /** The server tried last, and the code it gave (an LDAP result code, a network code, an HTTP status); never a secret. */
  readonly server: string | undefined;
  readonly detail: string | undefined;
  /** When the directory said when to come back (a throttling answer's Retry-After), in ms. */
  readonly retryAfterMs: number | undefined;

  constructor(
    problem: DirectoryProblem,
    message: string,
    details: { server?: string; detail?: string; retryAfterMs?: number } = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.problem = problem;
    this.server = details.server;
    this.detail = details.detail;
    this.retryAfterMs = details.retryAfterMs;
  }
}

/** DirectoryHealth is the answer to a health check: a bind and a search of the base. */
export type DirectoryHealth = { ok: true; server?: string } | { ok: false; problem: DirectoryProblem; server?: string; code?: string };

/** MemberScope is what a security role covers: its groups (nested ones included) and its containers, as roles write them. */
export interface MemberScope {
  groups: readonly string[];
  containers: readonly string[];
}

/** MemberList is a listing of the users a scope covers: their names, lower-cased, each once; truncated when it is not whole. */
export interface MemberList {
  users: string[];
  truncated: boolean;
}

/**
 * memberListOf answers a listing from the names it collected, in the order found (a listing stops
 * once it has more than limit); cut says a bound of the adapter's or the server's ended it first.
 */
export function memberListOf(names: ReadonlySet<string>, limit: number, cut = false): MemberList {
  return { users: [...names].slice(0, limit), truncated: cut || names.size > limit };
}

/** Directory is one identity store's directory. */
export interface Directory {
  /**
   * lookup finds a user by the name the API is called with: undefined when the directory has no
   * such user; DirectoryUnavailableError when it cannot tell.
   */
  lookup(name: string): Promise<DirectoryUser | undefined>;
  /**
   * members lists the names (as the API names users: what lookup(name) finds them by) of the users
   * in any of `groups` (nested groups included) or in/below any of `containers`, each once,
   * at most `limit` of them (truncated: true when there were more). Paged from the directory;
   * throws DirectoryUnavailableError when it cannot tell.
   */
  members(scope: MemberScope, options: { limit: number }): Promise<MemberList>;
  /** check binds and searches the base, for the store's DirectoryConnected condition. */
  check(): Promise<DirectoryHealth>;
  close(): Promise<void>;
}

/** healthOf turns a failure of a lookup or a check into a health answer. */
export function healthOf(err: unknown): DirectoryHealth {
  if (err instanceof DirectoryUnavailableError) {
    return {
      ok: false,
      problem: err.problem,
      ...(err.server !== undefined ? { server: err.server } : {}),
      ...(err.detail !== undefined ? { code: err.detail } : {}),
    };
  }
  return { ok: false, problem: 'Unreachable', code: (err as Error).name };
}

interface CacheEntry {
  user: DirectoryUser | undefined;
  until: number;
}

/**
 * CachedDirectory keeps each answer, a user or "no such user" alike, for ttlMs, at most maxEntries
 * of them (the oldest go first), and asks the directory once for concurrent lookups of one name.
 * A "no such user" from the directory is answered no sooner than users typically are (the
 * directory finds no groups for a name that is not there), so that neither a cached nor an
 * uncached answer tells by its timing whether a name exists. While the directory cannot answer,
 * what is cached keeps serving until it expires; nothing else is guessed.
 */
export class CachedDirectory implements Directory {
  private readonly entries = new Map<string, CacheEntry>();
  /** A moving average of how long the directory takes to answer for a user it knows, in ms. */
  private typicalFoundMs = 0;
  private readonly pending = new Map<string, Promise<DirectoryUser | undefined>>();
  private readonly inner: Directory;
  private readonly ttlMs: number;
  private readonly maxEntries: number;
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly deadlineMs: number | undefined;

  /** deadlineMs bounds a whole lookup or check (however many requests it makes): past it, unavailable. */
  constructor(
    inner: Directory,
    options: { ttlMs: number; maxEntries?: number; deadlineMs?: number; now?: () => number; sleep?: (ms: number) => Promise<void> },
  ) {
    this.inner = inner;
    this.ttlMs = options.ttlMs;
    this.maxEntries = options.maxEntries ?? 10_000;
    this.deadlineMs = options.deadlineMs;
    this.now = options.now ?? Date.now;
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  }

  private bounded<T>(work: Promise<T>): Promise<T> {
    const limit = this.deadlineMs;
    if (limit === undefined) return work;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new DirectoryUnavailableError('Unreachable', `the directory did not answer within ${limit} ms`, { detail: 'timeout' })),
        limit,
      );
    });
    return Promise.race([work, late]).finally(() => clearTimeout(timer));
  }

  lookup(name: string): Promise<DirectoryUser | undefined> {
    const key = name.toLowerCase();
    const hit = this.entries.get(key);
    if (hit !== undefined && hit.until > this.now()) return Promise.resolve(hit.user);
    const inFlight = this.pending.get(key);
    if (inFlight !== undefined) return inFlight;
    const started = this.now();
    const asked = this.bounded(this.inner.lookup(name))
      .then(async (user) => {
        const took = this.now() - started;
        if (user !== undefined) {
          this.typicalFoundMs = this.typicalFoundMs === 0 ? took : this.typicalFoundMs * 0.9 + took * 0.1;
        } else if (took < this.typicalFoundMs) {
          // "No such user" answers about as late as a user's groups take: timing tells no names apart.
          await this.sleep(this.typicalFoundMs - took);
        }
        this.remember(key, user);
        return user;
      })
      .finally(() => this.pending.delete(key));
    this.pending.set(key, asked);
    return asked;
  }

  private remember(key: string, user: DirectoryUser | undefined): void {
    if (this.ttlMs <= 0) return;
    this.entries.delete(key);
    this.entries.set(key, { user, until: this.now() + this.ttlMs });
    while (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
  }

  /** members is not cached, nor bounded by the lookup deadline: a listing takes many pages, each under the adapter's own timeout. */
  members(scope: MemberScope, options: { limit: number }): Promise<MemberList> {
    return this.inner.members(scope, options);
  }

  check(): Promise<DirectoryHealth> {
    return this.bounded(this.inner.check()).catch((err: unknown) => healthOf(err));
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

/** unavailableDirectory answers every lookup and listing "unavailable": a store whose directory cannot be built never falls back to trusting the caller. */
export function unavailableDirectory(why: string, problem: DirectoryProblem = 'Unreachable', code = 'not available'): Directory {
  const err = (): DirectoryUnavailableError => new DirectoryUnavailableError(problem, why, { detail: code });
  return {
    lookup: () => Promise.reject(err()),
    members: () => Promise.reject(err()),
    check: () => Promise.resolve({ ok: false, problem, code }),
    close: () => Promise.resolve(),
  };
}
