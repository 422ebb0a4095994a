/** One request the fake API server received, as tests assert on it. */
export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  contentType: string | undefined;
  accept: string | undefined;
  userAgent: string | undefined;
  /** The HTTP status answered (set when the response starts; 0 before). */
  status: number;
  /** Whether this was a watch request. */
  watch: boolean;
  /** The request body as text, for writes. */
  body: string;
  /** Date.now() when the request arrived. */
  at: number;
  /** Bytes of response body sent so far (a watch's grow as its events go out). */
  bytes: number;
}

/** Which requests a fault rule applies to; every given field must match. */
export interface RequestMatcher {
  method?: string;
  pathPrefix?: string;
  /** true: only watch requests; false: only non-watch requests. */
  watch?: boolean;
}

/** A rule that answers matching requests with an error Status instead of serving them. */
export interface FailRule extends RequestMatcher {
  status: number;
  count?: number;
  reason?: string;
  message?: string;
}

/** A rule that holds matching requests for `ms` milliseconds before serving them. */
export interface DelayRule extends RequestMatcher {
  ms: number;
  count?: number;
}

interface Counted<T> {
  rule: T;
  remaining: number;
}

function matches(m: RequestMatcher, method: string, path: string, watch: boolean): boolean {
  if (m.method !== undefined && m.method.toUpperCase() !== method.toUpperCase()) return false;
  if (m.pathPrefix !== undefined && !path.startsWith(m.pathPrefix)) return false;
  if (m.watch !== undefined && m.watch !== watch) return false;
  return true;
}

/** The hooks the server gives Faults so tests can act on live state. */
export interface FaultHooks {
  dropWatches: (abrupt: boolean) => number;
  compact: () => void;
}

/**
 * Faults injects failures into the fake API server for resilience tests (dropped watches, compaction, failing or
 * slow requests) and records every request so tests can assert what a client did.
 */
export class Faults {
  /** requests holds every request received, oldest first. */
  readonly requests: RecordedRequest[] = [];
  private fails: Counted<FailRule>[] = [];
  private delays: Counted<DelayRule>[] = [];
  private holds: { rule: RequestMatcher; released: Promise<void>; release: () => void }[] = [];
  private readonly hooks: FaultHooks;

  constructor(hooks: FaultHooks) {
    this.hooks = hooks;
  }

  /** dropWatches ends every open watch stream (cleanly by default, or by destroying the socket) and returns how many it ended. */
  dropWatches(options: { abrupt?: boolean } = {}): number {
    return this.hooks.dropWatches(options.abrupt === true);
  }

  /** compact forgets the change history so that the next watch resuming from an earlier resourceVersion gets 410 Gone. */
  compact(): void {
    this.hooks.compact();
  }

  /** failNext makes the next `count` (default 1) matching requests fail with the given status code. */
  failNext(rule: FailRule): void {
    this.fails.push({ rule, remaining: rule.count ?? 1 });
  }

  /** delay holds the next `count` (default: every) matching requests for `ms` milliseconds; returns a function that removes the rule. */
  delay(rule: DelayRule): () => void {
    const entry = { rule, remaining: rule.count ?? Number.POSITIVE_INFINITY };
    this.delays.push(entry);
    return () => {
      this.delays = this.delays.filter((d) => d !== entry);
    };
  }

  /**
   * hold keeps every matching request waiting, without answering, until release is called: an
   * order between requests that does not depend on how long anything takes. Release also removes the rule.
   */
  hold(rule: RequestMatcher): () => void {
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const entry = { rule, released, release };
    this.holds.push(entry);
    return () => {
      this.holds = this.holds.filter((h) => h !== entry);
      release();
    };
  }

  /** reset removes every fail, delay and hold rule (held requests go on). */
  reset(): void {
    this.fails = [];
    this.delays = [];
    for (const h of this.holds) h.release();
    this.holds = [];
  }

  /** takeHold answers what a request must wait for before it is served: the release of every hold matching it (for the server). */
  takeHold(method: string, path: string, watch: boolean): Promise<void> | undefined {
    const matching = this.holds.filter((h) => matches(h.rule, method, path, watch));
    return matching.length === 0 ? undefined : Promise.all(matching.map((h) => h.released)).then(() => undefined);
  }

  /** clearRequests forgets the recorded requests. */
  clearRequests(): void {
    this.requests.length = 0;
  }

  /** requestsMatching filters the recorded requests. */
  requestsMatching(m: RequestMatcher): RecordedRequest[] {
    return this.requests.filter((r) => matches(m, r.method, r.path, r.watch));
  }

  /** takeFailure consumes and returns the first fail rule matching a request, if any (for the server). */
  takeFailure(method: string, path: string, watch: boolean): FailRule | undefined {
    const hit = this.fails.find((f) => f.remaining > 0 && matches(f.rule, method, path, watch));
    if (hit === undefined) return undefined;
    hit.remaining -= 1;
    this.fails = this.fails.filter((f) => f.remaining > 0);
    return hit.rule;
  }

  /** takeDelay consumes the delay rules matching a request and returns the total milliseconds to wait (for the server). */
  takeDelay(method: string, path: string, watch: boolean): number {
    let ms = 0;
    for (const d of this.delays) {
      if (d.remaining > 0 && matches(d.rule, method, path, watch)) {
        ms += d.rule.ms;
        d.remaining -= 1;
      }
    }
    this.delays = this.delays.filter((d) => d.remaining > 0);
    return ms;
  }
}
