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
  /** Pages of `batch` entries one pass reads at most; the next pass reads on. */
  pages?: number;
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

/**
 * Lane is one store's delivery: its passes run one at a time, apart from other stores' (a receiver
 * that hangs holds up its own store only).
 */
interface Lane {
  ep: EventEndpoint;
  running: Promise<void> | undefined;
  again: boolean;
  /**
   * Where the last pass stopped reading before the outbox's end, and the keys it found waiting
   * before that point: the next pass reads on from there, so that entries behind a backlog longer
   * than a pass reads are reached in turn, and none is sent before an earlier one of its key.
   */
  sweep: { after: number; waiting: Set<string> } | undefined;
}

/**
 * EventDelivery delivers each identity store's outbox to its events endpoint: at least once, in
 * order per user (per ordering key), retried with backoff for a day. One replica at a time holds a
 * store's outbox (a lease in the state store), so that two never race one user's events; another
 * takes over when it stops or dies. Each store's passes run on their own, every pollMs and at once
 * on wake().
 */
export class EventDelivery {
  private readonly deps: EventDeliveryDeps;
  private readonly pollMs: number;
  private readonly leaseMs: number;
  private readonly batch: number;
  private readonly concurrency: number;
  private readonly pages: number;
  private timer: TimerHandle | undefined;
  private stopped = false;
  /** Aborts the posts in flight on stop: their entries are not settled, and the next holder sends them. */
  private readonly stopping = new AbortController();
  private readonly lanes = new Map<string, Lane>();
  /** Stores whose lease this process holds, to release on stop. */
  private readonly held = new Set<string>();
  /** Problems already logged, by store, so that a missing secret is said once, not every pass. */
  private readonly said = new Map<string, string>();

  constructor(deps: EventDeliveryDeps, options: EventDeliveryOptions = {}) {
    this.deps = deps;
    this.pollMs = options.pollMs ?? 1000;
    this.leaseMs = options.leaseMs ?? 15_000;
    this.batch = options.batch ?? 200;
    this.concurrency = options.concurrency ?? 4;
    this.pages = options.pages ?? 20;
  }

  /** start runs the first passes now, then every pollMs. */
  start(): void {
    this.wake();
  }

  /** wake runs a pass of each store now (or right after the one it runs): an event was just written. */
  wake(): void {
    if (this.stopped) return;
    const endpoints = this.deps.endpoints();
    const serving = new Set(endpoints.map((e) => `${e.namespace}/${e.store}`));
    for (const k of [...this.held]) if (!serving.has(k)) this.held.delete(k);
    for (const [k, lane] of this.lanes) if (!serving.has(k) && lane.running === undefined) this.lanes.delete(k);
    for (const ep of endpoints) {
      const k = `${ep.namespace}/${ep.store}`;
      let lane = this.lanes.get(k);
      if (lane === undefined) {
        lane = { ep, running: undefined, again: false, sweep: undefined };
        this.lanes.set(k, lane);
      }
      lane.ep = ep;
      if (lane.running !== undefined) lane.again = true;
      else this.run(lane);
    }
    this.timer ??= this.deps.clock.setTimeout(() => {
      this.timer = undefined;
      this.wake();
    }, this.pollMs);
  }

  /** idle resolves once no pass runs or waits to run (the next is a timer away). */
  async idle(): Promise<void> {
    for (;;) {
      const running = [...this.lanes.values()].map((l) => l.running).filter((r) => r !== undefined);
      if (running.length === 0) return;
      await Promise.all(running);
    }
  }

  /**
   * stop ends the passes (the posts in flight are abandoned, their entries left for the next
   * holder: at least once) and releases the leases held, so that another replica delivers at once.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) this.deps.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.stopping.abort();
    await this.idle();
    await Promise.allSettled(
      [...this.held].map((k) => {
        const [ns, store] = k.split('/') as [string, string];
        return this.deps.store.outboxRelease(ns, store, this.deps.holder);
      }),
    );
    this.held.clear();
  }

  private run(lane: Lane): void {
    const ep = lane.ep;
    lane.running = this.pass(lane)
      .catch((err: unknown) =>
        this.deps.log.warn({ namespace: ep.namespace, store: ep.store, err: (err as Error).message }, 'events: outbox not reachable; the next pass retries'),
      )
      .finally(() => {
        lane.running = undefined;
        if (this.stopped || !lane.again) return;
        lane.again = false;
        this.run(lane);
      });
  }

  private async pass(lane: Lane): Promise<void> {
    const ep = lane.ep;
    const k = `${ep.namespace}/${ep.store}`;
    if (!ep.key.ok) {
      if (this.said.get(k) !== ep.key.problem) {
        this.said.set(k, ep.key.problem);
        this.deps.log.error(
          { namespace: ep.namespace, store: ep.store, problem: ep.key.problem },
          'events: not delivered, the signing secret is unusable; they wait in the outbox',
        );
      }
      return;
    }
    this.said.delete(k);
    await this.deliverStore(lane, ep.key.value);
  }

  /**
   * deliverStore delivers what is due in one store's outbox, page after page (pages past keys that
   * wait, so that entries in backoff hold up only their own key), while renewing its lease; a
   * lease lost meanwhile stops it, and its results are not settled (the new holder sends them
   * again: at least once). A receiver that does not answer (a network error, a timeout) ends the
   * pass after the entries being sent: each of the others would wait as long for nothing.
   */
  private async deliverStore(lane: Lane, key: Buffer): Promise<void> {
    const ep = lane.ep;
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
    const sweep = lane.sweep ?? { after: 0, waiting: new Set<string>() };
    lane.sweep = undefined;
    // Keys with an entry that is not due (or failed in this sweep): their later entries wait.
    const { waiting } = sweep;
    let after = sweep.after;
    const receiver = { silent: false };
    const going = (): boolean => !lease.lost && !receiver.silent && !this.stopped;
    try {
      for (let page = 0; page < this.pages && going(); page++) {
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
          for (let run = queue.shift(); run !== undefined && going(); run = queue.shift()) {
            for (const entry of run) {
              if (!going()) break;
              const outcome = await this.deliverEntry(ep, key, entry, receiver);
              if (outcome === 'done') done.push(entry.seq);
              else {
                if (outcome !== 'abandoned') retry.push(outcome);
                waiting.add(entry.key);
                break; // the key's later entries wait for this one
              }
            }
          }
        };
        await Promise.all(Array.from({ length: Math.min(this.concurrency, runs.length) }, worker));
        if (done.length + retry.length > 0 && !(await this.deps.store.outboxSettle(ep.namespace, ep.store, this.deps.holder, done, retry))) return;
        if (entries.length < this.batch) return; // the end: the next pass starts over
        // A receiver that went silent: the next pass reads this page again, for what was not sent.
        if (receiver.silent) {
          lane.sweep = { after, waiting };
          return;
        }
        after = entries.at(-1)!.seq;
      }
      if (!lease.lost && !this.stopped) lane.sweep = { after, waiting };
    } finally {
      lease.active = false;
      if (timer !== undefined) this.deps.clock.clearTimeout(timer);
    }
  }

  /**
   * deliverEntry sends an entry's events that the endpoint asked for: done when all were accepted
   * (or given up), else its retry; abandoned when the deliverer stops meanwhile (not settled).
   */
  private async deliverEntry(ep: EventEndpoint, key: Buffer, entry: OutboxEntry, receiver: { silent: boolean }): Promise<'done' | 'abandoned' | OutboxRetry> {
    const labels = { namespace: ep.namespace, store: ep.store };
    for (const event of cloudEventsOf(ep.namespace, ep.store, entry.body)) {
      const type = shortTypeOf(event);
      if (!ep.types.includes(type)) continue;
      const payload = JSON.stringify(event);
      const now = this.deps.clock.now();
      const result = await this.deps.post(ep.url, webhookHeaders(key, event.id, Math.floor(now / 1000), payload), payload, this.stopping.signal);
      if (result.ok) {
        this.deps.metrics?.events.inc({ ...labels, type, result: 'delivered' });
        continue;
      }
      if (this.stopped) return 'abandoned';
      if (result.status === undefined) receiver.silent = true;
      const next = retryOf(entry, this.deps.clock.now(), (this.deps.random ?? Math.random)(), result.retryAfterMs);
      if (next === undefined) {
        this.deps.metrics?.events.inc({ ...labels, type, result: 'dropped' });
        this.deps.log.error(
          { ...labels, type, id: event.id, problem: result.problem },
          'events: given up after a day of retries; `smsauth events replay` can send it again',
        );
        continue;
      }
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
