import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { Clock, TimerHandle } from '../core/clock.ts';
import type { EventPoster } from '../adapters/event-sink.ts';
import { cloudEventsOf, dueRuns, retryOf, shortTypeOf, webhookHeaders, type EventEndpoint } from '../verifier/events.ts';
import type { VerifierMetrics } from '../verifier/metrics.ts';
import type { OutboxEntry, OutboxRetry, StateStore } from '../verifier/state-store.ts';

/** EventDeliveryOptions tune the deliverer; the defaults suit production. */
export interface EventDeliveryOptions {
  /** How often each store's outbox is looked at besides wake(). */
  pollMs?: number;
  /** How long a claim on a store's outbox lasts (renewed by every pass). */
  leaseMs?: number;
  /** Entries claimed per pass and store. */
  batch?: number;
  /** Ordering keys (users) delivered at once per store. */
  concurrency?: number;
}

export interface EventDeliveryDeps {
  store: StateStore;
  /** The endpoints of the stores served now. */
  endpoints: () => readonly EventEndpoint[];
  post: EventPoster;
  clock: Clock;
  log: Logger;
  metrics?: VerifierMetrics;
  /** This process, as the outbox leases name it. */
  holder: string;
  random?: () => number;
}

/** MAX_PAGES bounds how far one pass reads a store's outbox past keys that wait (pages of `batch`). */
const MAX_PAGES = 20;

/** PassReport is what one pass did, emitted as 'pass' (tests and logs wait on it). */
export interface PassReport {
  delivered: number;
  failed: number;
  dropped: number;
}

/**
 * EventDelivery delivers each identity store's outbox to its events endpoint: at least once, in
 * order per user (per ordering key), retried with backoff for a day. One replica at a time holds a
 * store's outbox (a lease in the state store), so that two never race one user's events; another
 * takes over when it stops or dies. Passes run every pollMs and at once on wake().
 */
export class EventDelivery extends EventEmitter {
  private readonly deps: EventDeliveryDeps;
  private readonly pollMs: number;
  private readonly leaseMs: number;
  private readonly batch: number;
  private readonly concurrency: number;
  private timer: TimerHandle | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  /** Stores whose lease this process holds, to release on stop. */
  private readonly held = new Set<string>();
  /** Problems already logged, by store, so that a missing secret is said once, not every pass. */
  private readonly said = new Map<string, string>();

  constructor(deps: EventDeliveryDeps, options: EventDeliveryOptions = {}) {
    super();
    this.deps = deps;
    this.pollMs = options.pollMs ?? 1000;
    this.leaseMs = options.leaseMs ?? 15_000;
    this.batch = options.batch ?? 200;
    this.concurrency = options.concurrency ?? 4;
  }

  /** start runs the first pass now, then one every pollMs. */
  start(): void {
    this.wake();
  }

  /** wake runs a pass now (or right after the one running): an event was just written. */
  wake(): void {
    if (this.stopped) return;
    if (this.running !== undefined) {
      this.again = true;
      return;
    }
    if (this.timer !== undefined) this.deps.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.running = this.pass()
      .catch((err: unknown) => this.deps.log.warn({ err: (err as Error).message }, 'events: a delivery pass failed; the next one retries'))
      .finally(() => {
        this.running = undefined;
        if (this.stopped) return;
        if (this.again) {
          this.again = false;
          this.wake();
        } else this.timer = this.deps.clock.setTimeout(() => this.wake(), this.pollMs);
      });
  }

  /** idle resolves once no pass runs or waits to run (the next is a timer away). */
  async idle(): Promise<void> {
    while (this.running !== undefined) await this.running;
  }

  /** stop ends the passes (the one running finishes) and releases the leases held, so that another replica delivers at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) this.deps.clock.clearTimeout(this.timer);
    await this.running;
    await Promise.allSettled(
      [...this.held].map((k) => {
        const [ns, store] = k.split('/') as [string, string];
        return this.deps.store.outboxRelease(ns, store, this.deps.holder);
      }),
    );
    this.held.clear();
  }

  private async pass(): Promise<void> {
    const report: PassReport = { delivered: 0, failed: 0, dropped: 0 };
    const endpoints = this.deps.endpoints();
    const serving = new Set(endpoints.map((e) => `${e.namespace}/${e.store}`));
    for (const k of [...this.held]) if (!serving.has(k)) this.held.delete(k);
    for (const ep of endpoints) {
      const k = `${ep.namespace}/${ep.store}`;
      if (!ep.key.ok) {
        if (this.said.get(k) !== ep.key.problem) {
          this.said.set(k, ep.key.problem);
          this.deps.log.error(
            { namespace: ep.namespace, store: ep.store, problem: ep.key.problem },
            'events: not delivered, the signing secret is unusable; they wait in the outbox',
          );
        }
        continue;
      }
      this.said.delete(k);
      try {
        await this.deliverStore(ep, ep.key.value, report);
      } catch (err) {
        this.deps.log.warn({ namespace: ep.namespace, store: ep.store, err: (err as Error).message }, 'events: outbox not reachable; the next pass retries');
      }
    }
    this.emit('pass', report);
  }

  /**
   * deliverStore delivers what is due in one store's outbox, page after page (pages past keys that
   * wait, so that entries in backoff hold up only their own key), while renewing its lease; a
   * lease lost meanwhile stops it, and its results are not settled (the new holder sends them
   * again: at least once).
   */
  private async deliverStore(ep: EventEndpoint, key: Buffer, report: PassReport): Promise<void> {
    const k = `${ep.namespace}/${ep.store}`;
    const lease = { lost: false, active: true };
    let timer: TimerHandle | undefined;
    const renew = (): void => {
      if (!lease.active) return;
      timer = this.deps.clock.setTimeout(() => {
        void this.deps.store.outboxClaim(ep.namespace, ep.store, this.deps.holder, this.deps.clock.now(), this.leaseMs, 0).then(
          (held) => {
            if (held === undefined) lease.lost = true;
            else renew();
          },
          () => renew(),
        );
      }, this.leaseMs / 3);
    };
    renew();
    try {
      // Keys with an entry that is not due (or failed in this pass): their later entries wait.
      const waiting = new Set<string>();
      let after = 0;
      for (let page = 0; page < MAX_PAGES && !lease.lost; page++) {
        const now = this.deps.clock.now();
        const entries = await this.deps.store.outboxClaim(ep.namespace, ep.store, this.deps.holder, now, this.leaseMs, this.batch, after);
        if (entries === undefined) {
          this.held.delete(k);
          return;
        }
        this.held.add(k);
        const runs = dueRuns(entries, now, waiting);
        const done: number[] = [];
        const retry: OutboxRetry[] = [];
        const queue = [...runs];
        const worker = async (): Promise<void> => {
          for (let run = queue.shift(); run !== undefined && !lease.lost; run = queue.shift()) {
            for (const entry of run) {
              if (lease.lost) break;
              const outcome = await this.deliverEntry(ep, key, entry, report);
              if (outcome === 'done') done.push(entry.seq);
              else {
                retry.push(outcome);
                waiting.add(entry.key);
                break; // the key's later entries wait for this one
              }
            }
          }
        };
        await Promise.all(Array.from({ length: Math.min(this.concurrency, runs.length) }, worker));
        if (done.length + retry.length > 0 && !(await this.deps.store.outboxSettle(ep.namespace, ep.store, this.deps.holder, done, retry))) return;
        if (entries.length < this.batch) return;
        after = entries.at(-1)!.seq;
      }
    } finally {
      lease.active = false;
      if (timer !== undefined) this.deps.clock.clearTimeout(timer);
    }
  }

  /** deliverEntry sends an entry's events that the endpoint asked for: done when all were accepted (or given up), else its retry. */
  private async deliverEntry(ep: EventEndpoint, key: Buffer, entry: OutboxEntry, report: PassReport): Promise<'done' | OutboxRetry> {
    const labels = { namespace: ep.namespace, store: ep.store };
    for (const event of cloudEventsOf(ep.namespace, ep.store, entry.body)) {
      const type = shortTypeOf(event);
      if (!ep.types.includes(type)) continue;
      const payload = JSON.stringify(event);
      const now = this.deps.clock.now();
      const result = await this.deps.post(ep.url, webhookHeaders(key, event.id, Math.floor(now / 1000), payload), payload);
      if (result.ok) {
        report.delivered += 1;
        this.deps.metrics?.events.inc({ ...labels, type, result: 'delivered' });
        continue;
      }
      const next = retryOf(entry, this.deps.clock.now(), (this.deps.random ?? Math.random)(), result.retryAfterMs);
      if (next === undefined) {
        report.dropped += 1;
        this.deps.metrics?.events.inc({ ...labels, type, result: 'dropped' });
        this.deps.log.error(
          { ...labels, type, id: event.id, problem: result.problem },
          'events: given up after a day of retries; `smsauth events replay` can send it again',
        );
        continue;
      }
      report.failed += 1;
      this.deps.metrics?.events.inc({ ...labels, type, result: 'failed' });
      this.deps.log.warn(
        { ...labels, type, id: event.id, problem: result.problem, attempts: next.attempts, retryAt: new Date(next.nextAt).toISOString() },
        'events: not accepted; retried later',
      );
      return next;
    }
    return 'done';
  }
}
