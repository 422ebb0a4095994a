import { systemClock, type Clock, type TimerHandle } from '../core/clock.ts';

/**
 * TerminalError is what a handler throws when retrying cannot help (an invalid spec): the key is not
 * retried and its backoff is forgotten; the next change of the object enqueues it again.
 */
export class TerminalError extends Error {
  override readonly name = 'TerminalError';
  readonly code = 'ERR_TERMINAL';
}

/** isTerminalError is true when error, or an error in its `cause` chain, is a TerminalError (as Go's errors.Is). */
export function isTerminalError(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 32; e = e.cause, depth++) {
    if (e instanceof TerminalError) return true;
  }
  return false;
}

/** WorkQueueConfigError reports a programming error in how a queue is configured or started. */
export class WorkQueueConfigError extends Error {
  override readonly name = 'WorkQueueConfigError';
  readonly code = 'ERR_WORK_QUEUE_CONFIG';
}

/** RateLimiter decides how long a key waits before its next retry (client-go's workqueue.RateLimiter). */
export interface RateLimiter {
  /** when returns the delay in ms for the key's next retry, and counts that retry. */
  when(key: string): number;
  /** forget clears the key's retry history (after a success). */
  forget(key: string): void;
  /** numRequeues returns how many retries of the key have been counted since it was last forgotten. */
  numRequeues(key: string): number;
}

/** ItemExponentialFailureRateLimiter delays a key's nth consecutive retry by base·2^(n-1) ms, capped at max ms. */
export class ItemExponentialFailureRateLimiter implements RateLimiter {
  private readonly failures = new Map<string, number>();

  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;

  constructor(baseDelayMs: number, maxDelayMs: number) {
    this.baseDelayMs = baseDelayMs;
    this.maxDelayMs = maxDelayMs;
  }

  when(key: string): number {
    const exponent = this.failures.get(key) ?? 0;
    this.failures.set(key, exponent + 1);
    const backoff = this.baseDelayMs * 2 ** exponent;
    return Number.isFinite(backoff) && backoff < this.maxDelayMs ? backoff : this.maxDelayMs;
  }

  forget(key: string): void {
    this.failures.delete(key);
  }

  numRequeues(key: string): number {
    return this.failures.get(key) ?? 0;
  }
}

/**
 * BucketRateLimiter is an overall token bucket (Go's rate.Limiter as client-go's BucketRateLimiter
 * uses it): burst tokens, refilled at ratePerSecond; each retry takes a token, and waits for it when
 * the bucket is empty.
 */
export class BucketRateLimiter implements RateLimiter {
  private tokens: number;
  private last: number;

  private readonly ratePerSecond: number;
  private readonly burst: number;
  private readonly clock: Clock;

  constructor(ratePerSecond: number, burst: number, clock: Clock = systemClock) {
    this.ratePerSecond = ratePerSecond;
    this.burst = burst;
    this.clock = clock;
    this.tokens = burst;
    this.last = clock.now();
  }

  when(_key: string): number {
    const now = this.clock.now();
    if (now > this.last) this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.ratePerSecond) / 1000);
    this.last = now;
    this.tokens -= 1;
    return this.tokens < 0 ? (-this.tokens / this.ratePerSecond) * 1000 : 0;
  }

  forget(_key: string): void {}

  numRequeues(_key: string): number {
    return 0;
  }
}

/** MaxOfRateLimiter asks every limiter and waits for the longest delay (client-go's MaxOfRateLimiter). */
export class MaxOfRateLimiter implements RateLimiter {
  private readonly limiters: readonly RateLimiter[];

  constructor(...limiters: RateLimiter[]) {
    this.limiters = limiters;
  }

  when(key: string): number {
    let delay = 0;
    for (const limiter of this.limiters) delay = Math.max(delay, limiter.when(key));
    return delay;
  }

  forget(key: string): void {
    for (const limiter of this.limiters) limiter.forget(key);
  }

  numRequeues(key: string): number {
    let most = 0;
    for (const limiter of this.limiters) most = Math.max(most, limiter.numRequeues(key));
    return most;
  }
}

/**
 * createDefaultControllerRateLimiter returns controller-runtime's default: per-key exponential backoff
 * from 5 ms to 1000 s, and an overall bucket of 10 retries per second with a burst of 100, whichever waits longer.
 */
export function createDefaultControllerRateLimiter(clock: Clock = systemClock): RateLimiter {
  return new MaxOfRateLimiter(new ItemExponentialFailureRateLimiter(5, 1_000_000), new BucketRateLimiter(10, 100, clock));
}

/**
 * WorkQueueMetrics receives the queue's measurements for one queue name, to expose as controller-runtime's
 * workqueue_depth, workqueue_adds_total, workqueue_retries_total, workqueue_queue_duration_seconds and
 * workqueue_work_duration_seconds (see registerWorkQueueMetrics).
 */
export interface WorkQueueMetrics {
  /** depth is the number of keys waiting to be processed (queued, or re-added while processing). */
  depth(value: number): void;
  added(): void;
  /** retried counts every delayed add (addAfter and addRateLimited), as client-go does. */
  retried(): void;
  queueDuration(seconds: number): void;
  workDuration(seconds: number): void;
}

/** WorkResult is what a handler returns on success: requeueAfterMs re-adds the key after that long (a poll). */
export interface WorkResult {
  requeueAfterMs?: number;
}

/** WorkHandler processes one key; throwing retries it with backoff, throwing a TerminalError does not. */
export type WorkHandler = (key: string) => Promise<WorkResult>;

/** WorkOutcome reports one handler run, as controller-runtime labels reconcile results (plus terminal_error). */
export interface WorkOutcome {
  key: string;
  result: 'success' | 'requeue_after' | 'error' | 'terminal_error';
  durationMs: number;
  error?: unknown;
}

/** WorkQueueOptions configures a WorkQueue; everything but the name has a production default. */
export interface WorkQueueOptions {
  /** The queue's name, the `name` label of its metrics. */
  name: string;
  clock?: Clock;
  /** Defaults to createDefaultControllerRateLimiter(clock). */
  rateLimiter?: RateLimiter;
  metrics?: WorkQueueMetrics;
  /** Random numbers in [0, 1) for resync jitter. */
  random?: () => number;
  /** Called after each handler run (for reconcile metrics and logs). */
  onOutcome?: (outcome: WorkOutcome) => void;
  /** Called when a hook (onOutcome, a resync key source, a metrics callback) throws; the queue carries on. */
  onError?: (error: unknown) => void;
}

/** ShutdownResult lists the keys whose handlers were still running when shutdown returned (empty when drained). */
export interface ShutdownResult {
  inFlight: string[];
}

interface Delayed {
  readyAt: number;
  timer: TimerHandle;
}

/**
 * WorkQueue is a controller work queue with client-go's semantics: a key added many times while queued is
 * processed once, a key added while being processed is processed again afterwards, and no key is ever
 * processed by two workers at once; retries are rate limited, delayed adds wait on the injected clock.
 */
export class WorkQueue {
  readonly name: string;
  private readonly clock: Clock;
  private readonly rateLimiter: RateLimiter;
  private readonly metrics: WorkQueueMetrics | undefined;
  private readonly random: () => number;
  private readonly onOutcome: ((outcome: WorkOutcome) => void) | undefined;
  private readonly onError: ((error: unknown) => void) | undefined;

  private queue: string[] = [];
  private head = 0;
  private readonly dirty = new Set<string>();
  /** The keys being processed, each with when it started (for the unfinished-work gauges). */
  private readonly processing = new Map<string, number>();
  private readonly addedAt = new Map<string, number>();
  private readonly delayed = new Map<string, Delayed>();
  private readonly resyncTimers = new Set<{ timer: TimerHandle | undefined }>();
  private readonly waiters: ((key: string | undefined) => void)[] = [];
  private idleWaiters: (() => void)[] = [];
  /** Who waits for the queue to be quiet: nothing queued, nothing in flight. */
  private quietWaiters: (() => void)[] = [];
  private shuttingDown = false;
  private started = false;
  private workers: Promise<void> | undefined;

  constructor(options: WorkQueueOptions) {
    this.name = options.name;
    this.clock = options.clock ?? systemClock;
    this.rateLimiter = options.rateLimiter ?? createDefaultControllerRateLimiter(this.clock);
    this.metrics = options.metrics;
    this.random = options.random ?? Math.random;
    this.onOutcome = options.onOutcome;
    this.onError = options.onError;
  }

  /**
   * quiet resolves once nothing is queued and nothing is being processed: the queue has caught up
   * with what it was given (keys waiting out a delay or a backoff do not count). Tests and
   * operators await it instead of sleeping.
   */
  quiet(): Promise<void> {
    if (this.processing.size === 0 && this.len() === 0) return Promise.resolve();
    return new Promise((resolve) => this.quietWaiters.push(resolve));
  }

  /** add queues the key unless it is already waiting; a key being processed is queued again when it is done. */
  add(key: string): void {
    if (this.shuttingDown || this.dirty.has(key)) return;
    this.dirty.add(key);
    this.addedAt.set(key, this.clock.now());
    this.report((m) => m.added());
    this.reportDepth();
    if (this.processing.has(key)) return;
    this.queue.push(key);
    this.wake();
  }

  /** addAfter adds the key once ms have passed (at once when ms <= 0); of several pending delays for a key the earliest wins. */
  addAfter(key: string, ms: number): void {
    if (this.shuttingDown) return;
    this.report((m) => m.retried());
    if (!(ms > 0)) {
      this.add(key);
      return;
    }
    const readyAt = this.clock.now() + ms;
    const pending = this.delayed.get(key);
    if (pending !== undefined) {
      if (pending.readyAt <= readyAt) return;
      this.clock.clearTimeout(pending.timer);
    }
    const timer = this.clock.setTimeout(() => {
      this.delayed.delete(key);
      this.add(key);
    }, ms);
    this.delayed.set(key, { readyAt, timer });
  }

  /** addRateLimited adds the key after the rate limiter's delay (per-key backoff and the overall bucket). */
  addRateLimited(key: string): void {
    if (this.shuttingDown) return;
    this.addAfter(key, this.rateLimiter.when(key));
  }

  /** forget resets the key's backoff; call it after the key was processed successfully. */
  forget(key: string): void {
    this.rateLimiter.forget(key);
  }

  /** numRequeues returns how many rate-limited retries the key has had since it was last forgotten. */
  numRequeues(key: string): number {
    return this.rateLimiter.numRequeues(key);
  }

  /** len returns the number of keys ready and waiting for a worker. */
  len(): number {
    return this.queue.length - this.head;
  }

  /** whenStopped resolves once start's worker loops have all returned (after shutdown and their last handlers). */
  whenStopped(): Promise<void> {
    return this.workers ?? Promise.resolve();
  }

  /** isShuttingDown is true once shutdown has been called. */
  isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  /**
   * start runs `workers` concurrent loops that take keys and call handler: success forgets the key's
   * backoff (and re-adds it after requeueAfterMs), a thrown error retries it with backoff, a thrown
   * TerminalError forgets it. It may be called once.
   */
  start(workers: number, handler: WorkHandler): void {
    if (!Number.isInteger(workers) || workers < 1)
      throw new WorkQueueConfigError(`work queue ${this.name}: workers must be a positive integer, got ${workers}`);
    if (this.started) throw new WorkQueueConfigError(`work queue ${this.name}: already started`);
    if (this.shuttingDown) throw new WorkQueueConfigError(`work queue ${this.name}: already shut down`);
    this.started = true;
    const loops: Promise<void>[] = [];
    for (let i = 0; i < workers; i++) loops.push(this.runWorker(handler));
    this.workers = Promise.all(loops).then(() => undefined);
  }

  /**
   * resync re-adds every key that keys() returns every periodMs, each period stretched or shrunk by a
   * random factor in [1 - jitter, 1 + jitter] (controller-runtime's SyncPeriod uses 0.1); the returned
   * function, or shutdown, stops it.
   */
  resync(keys: () => Iterable<string>, periodMs: number, jitter = 0.1): () => void {
    if (!(periodMs > 0) || !Number.isFinite(periodMs))
      throw new WorkQueueConfigError(`work queue ${this.name}: resync period must be a positive number of ms, got ${periodMs}`);
    if (!(jitter >= 0 && jitter < 1)) throw new WorkQueueConfigError(`work queue ${this.name}: resync jitter must be in [0, 1), got ${jitter}`);
    const entry: { timer: TimerHandle | undefined } = { timer: undefined };
    const arm = (): void => {
      const period = periodMs * (1 + jitter * (2 * this.random() - 1));
      entry.timer = this.clock.setTimeout(() => {
        entry.timer = undefined;
        if (this.shuttingDown || !this.resyncTimers.has(entry)) return;
        try {
          for (const key of keys()) this.add(key);
        } catch (error) {
          this.onError?.(error);
        }
        arm();
      }, period);
    };
    if (this.shuttingDown) return () => {};
    this.resyncTimers.add(entry);
    arm();
    return () => {
      if (entry.timer !== undefined) this.clock.clearTimeout(entry.timer);
      this.resyncTimers.delete(entry);
    };
  }

  /**
   * shutdown stops taking new work at once (queued keys are dropped, delayed adds and resyncs cancelled,
   * later adds ignored); with drain it waits until the running handlers finish or timeoutMs passes.
   */
  async shutdown(drain: boolean, timeoutMs: number): Promise<ShutdownResult> {
    if (!this.shuttingDown) {
      this.shuttingDown = true;
      for (const pending of this.delayed.values()) this.clock.clearTimeout(pending.timer);
      this.delayed.clear();
      for (const entry of this.resyncTimers) if (entry.timer !== undefined) this.clock.clearTimeout(entry.timer);
      this.resyncTimers.clear();
      this.queue = [];
      this.head = 0;
      this.dirty.clear();
      this.addedAt.clear();
      this.reportDepth();
      for (const waiter of this.waiters.splice(0)) waiter(undefined);
    }
    if (drain && this.processing.size > 0) {
      let timer: TimerHandle | undefined;
      await new Promise<void>((resolve) => {
        this.idleWaiters.push(resolve);
        timer = this.clock.setTimeout(resolve, Math.max(0, timeoutMs));
      });
      if (timer !== undefined) this.clock.clearTimeout(timer);
    }
    return { inFlight: [...this.processing.keys()] };
  }

  private async runWorker(handler: WorkHandler): Promise<void> {
    for (;;) {
      const key = await this.get();
      if (key === undefined) return;
      await this.process(key, handler);
    }
  }

  private get(): Promise<string | undefined> {
    if (this.shuttingDown) return Promise.resolve(undefined);
    if (this.len() > 0) return Promise.resolve(this.take());
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private take(): string {
    const key = this.queue[this.head] as string;
    this.head++;
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    this.dirty.delete(key);
    this.processing.set(key, this.clock.now());
    const addedAt = this.addedAt.get(key);
    this.addedAt.delete(key);
    if (addedAt !== undefined) {
      const waited = (this.clock.now() - addedAt) / 1000;
      this.report((m) => m.queueDuration(waited));
    }
    this.reportDepth();
    return key;
  }

  private wake(): void {
    while (this.waiters.length > 0 && this.len() > 0) {
      const waiter = this.waiters.shift() as (key: string | undefined) => void;
      waiter(this.take());
    }
  }

  private done(key: string): void {
    this.processing.delete(key);
    if (this.dirty.has(key) && !this.shuttingDown) {
      this.queue.push(key);
      this.wake();
    }
    if (this.processing.size === 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
    if (this.processing.size === 0 && this.len() === 0) for (const resolve of this.quietWaiters.splice(0)) resolve();
  }

  /**
   * unfinished tells how long the keys in processing have run: in total, and the longest one
   * (controller-runtime's workqueue_unfinished_work_seconds and workqueue_longest_running_processor_seconds).
   */
  unfinished(): { totalSeconds: number; longestSeconds: number } {
    const now = this.clock.now();
    let total = 0;
    let longest = 0;
    for (const at of this.processing.values()) {
      total += (now - at) / 1000;
      longest = Math.max(longest, (now - at) / 1000);
    }
    return { totalSeconds: total, longestSeconds: longest };
  }

  private async process(key: string, handler: WorkHandler): Promise<void> {
    const started = this.clock.now();
    let outcome: Omit<WorkOutcome, 'durationMs'>;
    try {
      const result = await handler(key);
      this.forget(key);
      const after = (result as WorkResult | undefined)?.requeueAfterMs;
      if (after !== undefined && after > 0) {
        this.addAfter(key, after);
        outcome = { key, result: 'requeue_after' };
      } else {
        outcome = { key, result: 'success' };
      }
    } catch (error) {
      if (isTerminalError(error)) {
        this.forget(key);
        outcome = { key, result: 'terminal_error', error };
      } else {
        this.addRateLimited(key);
        outcome = { key, result: 'error', error };
      }
    }
    const durationMs = this.clock.now() - started;
    this.report((m) => m.workDuration(durationMs / 1000));
    this.done(key);
    if (this.onOutcome !== undefined) {
      try {
        this.onOutcome({ ...outcome, durationMs });
      } catch (error) {
        this.onError?.(error);
      }
    }
  }

  private reportDepth(): void {
    const depth = this.dirty.size;
    this.report((m) => m.depth(depth));
  }

  private report(call: (metrics: WorkQueueMetrics) => void): void {
    if (this.metrics === undefined) return;
    try {
      call(this.metrics);
    } catch (error) {
      this.onError?.(error);
    }
  }
}
