import { systemClock, type Clock, type TimerHandle } from '../core/clock.ts';
import { LeaseConflictError, type LeaseClient, type LeaseRecord } from '../adapters/lease-client.ts';

/** LEADER_ELECTION_DEFAULTS are client-go's and controller-runtime's timings: 15 s lease, 10 s renew deadline, 2 s retry. */
export const LEADER_ELECTION_DEFAULTS = {
  leaseDurationMs: 15_000,
  renewDeadlineMs: 10_000,
  retryPeriodMs: 2_000,
  jitterFactor: 1.2,
} as const;

/** LeaderElectionConfigError reports timings or an identity that leader election cannot work with. */
export class LeaderElectionConfigError extends Error {
  override readonly name = 'LeaderElectionConfigError';
  readonly code = 'ERR_LEADER_ELECTION_CONFIG';
}

/** StoppedLeadingReason says why leading ended: `lost` (renewals failed or another holder took the Lease) or `released` (release was called). */
export type StoppedLeadingReason = 'lost' | 'released';

/** LeaderElectionCallbacks are called on the elector's transitions; a callback that throws is reported to onError. */
export interface LeaderElectionCallbacks {
  /** Called once, when this candidate acquires the Lease. */
  onStartedLeading(): void;
  /** Called once after onStartedLeading, when leading ends; on `lost` the controller should exit. */
  onStoppedLeading(reason: StoppedLeadingReason): void;
  /** Called when the observed holder changes to another identity (ourselves included). */
  onNewLeader?(identity: string): void;
}

/** LeaderElectionMetrics receives the leader_election_master_status gauge's value for this Lease (see registerLeaderElectionMetrics). */
export interface LeaderElectionMetrics {
  setLeading(leading: boolean): void;
}

/** LeaderElectionOptions configures a LeaderElector; timings default to LEADER_ELECTION_DEFAULTS. */
export interface LeaderElectionOptions {
  client: LeaseClient;
  /** This candidate's identity, unique per process (e.g. hostname_uuid). */
  identity: string;
  callbacks: LeaderElectionCallbacks;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  /** Acquire attempts wait retryPeriod·(1 + random·jitterFactor), as client-go's wait.JitterUntil. */
  jitterFactor?: number;
  clock?: Clock;
  random?: () => number;
  metrics?: LeaderElectionMetrics;
  /** Called with each failed Lease call (other than a conflict) and each throwing callback. */
  onError?: (error: unknown) => void;
}

/** ReleaseResult says what release did: `released` the Lease, found it `not-held` by us, or `failed` to write it in time. */
export type ReleaseResult = 'released' | 'not-held' | 'failed';

type Attempt = 'held' | 'held-by-other' | 'conflict' | 'failed';
type State = 'idle' | 'acquiring' | 'leading' | 'stopped';

const TIMED_OUT = Symbol('timed out');

/**
 * LeaderElector runs client-go's Lease-based leader election for one candidate: it acquires the Lease
 * when absent, held by itself, or not changed for the holder's lease duration as measured on its own
 * clock (the observed-record technique: other holders' timestamps are never compared with ours), renews
 * it every retry period while leading, and stops leading when renewing fails for the renew deadline or
 * another holder shows up.
 */
export class LeaderElector {
  private readonly client: LeaseClient;
  private readonly identity: string;
  private readonly callbacks: LeaderElectionCallbacks;
  private readonly leaseDurationMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;
  private readonly jitterFactor: number;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly metrics: LeaderElectionMetrics | undefined;
  private readonly onError: ((error: unknown) => void) | undefined;

  private state: State = 'idle';
  private observed: LeaseRecord | undefined;
  private observedAt = 0;
  private reportedLeader: string | undefined;
  private retryTimer: TimerHandle | undefined;
  private deadlineTimer: TimerHandle | undefined;
  private inFlight: Promise<Attempt> | undefined;
  private releasing: Promise<ReleaseResult> | undefined;

  constructor(options: LeaderElectionOptions) {
    this.client = options.client;
    this.identity = options.identity;
    this.callbacks = options.callbacks;
    this.leaseDurationMs = options.leaseDurationMs ?? LEADER_ELECTION_DEFAULTS.leaseDurationMs;
    this.renewDeadlineMs = options.renewDeadlineMs ?? LEADER_ELECTION_DEFAULTS.renewDeadlineMs;
    this.retryPeriodMs = options.retryPeriodMs ?? LEADER_ELECTION_DEFAULTS.retryPeriodMs;
    this.jitterFactor = options.jitterFactor ?? LEADER_ELECTION_DEFAULTS.jitterFactor;
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
    this.metrics = options.metrics;
    this.onError = options.onError;
    validate({
      identity: this.identity,
      leaseDurationMs: this.leaseDurationMs,
      renewDeadlineMs: this.renewDeadlineMs,
      retryPeriodMs: this.retryPeriodMs,
      jitterFactor: this.jitterFactor,
    });
  }

  /** start begins trying to acquire the Lease (at once, then every jittered retry period); it may be called once. */
  start(): void {
    if (this.state !== 'idle') throw new LeaderElectionConfigError(`leader election for ${this.identity}: start may be called once`);
    this.state = 'acquiring';
    this.safely(() => this.metrics?.setLeading(false));
    void this.acquireTick();
  }

  /** isLeader is true between onStartedLeading and onStoppedLeading. */
  isLeader(): boolean {
    return this.state === 'leading';
  }

  /** observedLeader returns the holder of the Lease as last read or written, or null when none holds it. */
  observedLeader(): string | null {
    const holder = this.observed?.holderIdentity;
    return holder === undefined || holder === '' ? null : holder;
  }

  /**
   * release stops the elector for good and, if the Lease is ours, writes it with no holder so that
   * another candidate acquires it at once (client-go's ReleaseOnCancel); bounded by the renew deadline.
   * It calls onStoppedLeading('released') if we were leading; calling it again returns the same result.
   */
  release(): Promise<ReleaseResult> {
    if (this.releasing !== undefined) return this.releasing;
    const wasLeading = this.state === 'leading';
    this.state = 'stopped';
    this.clearTimers();
    this.releasing = (async (): Promise<ReleaseResult> => {
      const outcome = await this.withTimeout(this.writeRelease(), this.renewDeadlineMs);
      const result = outcome === TIMED_OUT ? 'failed' : outcome;
      if (wasLeading) {
        this.safely(() => this.metrics?.setLeading(false));
        this.safely(() => this.callbacks.onStoppedLeading('released'));
      }
      return result;
    })();
    return this.releasing;
  }

  private async acquireTick(): Promise<void> {
    this.retryTimer = undefined;
    if (this.state !== 'acquiring') return;
    const attempt = await this.attempt();
    if (this.state !== 'acquiring') return;
    this.reportTransition();
    if (attempt === 'held') {
      this.state = 'leading';
      this.safely(() => this.metrics?.setLeading(true));
      this.safely(() => this.callbacks.onStartedLeading());
      if (this.isLeader()) this.scheduleRenewCycle();
      return;
    }
    const wait = this.retryPeriodMs * (1 + this.random() * this.jitterFactor);
    this.retryTimer = this.clock.setTimeout(() => void this.acquireTick(), wait);
  }

  private scheduleRenewCycle(): void {
    this.retryTimer = this.clock.setTimeout(() => {
      this.retryTimer = undefined;
      if (this.state !== 'leading') return;
      this.deadlineTimer = this.clock.setTimeout(() => {
        this.deadlineTimer = undefined;
        this.stopLeading();
      }, this.renewDeadlineMs);
      void this.renewTick();
    }, this.retryPeriodMs);
  }

  private async renewTick(): Promise<void> {
    this.retryTimer = undefined;
    if (this.state !== 'leading') return;
    const attempt = await this.attempt();
    if (this.state !== 'leading') return;
    this.reportTransition();
    if (attempt === 'held') {
      if (this.deadlineTimer !== undefined) this.clock.clearTimeout(this.deadlineTimer);
      this.deadlineTimer = undefined;
      this.scheduleRenewCycle();
    } else if (attempt === 'held-by-other') {
      this.stopLeading();
    } else {
      this.retryTimer = this.clock.setTimeout(() => void this.renewTick(), this.retryPeriodMs);
    }
  }

  private stopLeading(): void {
    if (this.state !== 'leading') return;
    this.state = 'stopped';
    this.clearTimers();
    this.safely(() => this.metrics?.setLeading(false));
    this.safely(() => this.callbacks.onStoppedLeading('lost'));
  }

  /** attempt runs tryAcquireOrRenew, re-reading once at once after a conflict; attempts never overlap. */
  private attempt(): Promise<Attempt> {
    const run = async (): Promise<Attempt> => {
      const first = await this.tryAcquireOrRenew();
      if (first !== 'conflict') return first;
      const second = await this.tryAcquireOrRenew();
      return second === 'conflict' ? 'failed' : second;
    };
    const inFlight = run().finally(() => {
      if (this.inFlight === inFlight) this.inFlight = undefined;
    });
    this.inFlight = inFlight;
    return inFlight;
  }

  private async tryAcquireOrRenew(): Promise<Attempt> {
    try {
      const current = await this.client.get();
      const now = this.clock.now();
      if (current === undefined) {
        const created = await this.client.create({
          holderIdentity: this.identity,
          leaseDurationSeconds: this.leaseDurationSeconds(),
          acquireTime: now,
          renewTime: now,
          leaseTransitions: 0,
        });
        this.observe(created);
        return 'held';
      }
      this.observe(current);
      const holder = current.holderIdentity;
      const ours = holder === this.identity;
      if (holder !== null && holder !== '' && !ours && this.isObservedLeaseValid(now)) return 'held-by-other';
      const written = await this.client.update({
        holderIdentity: this.identity,
        leaseDurationSeconds: this.leaseDurationSeconds(),
        acquireTime: ours ? current.acquireTime : now,
        renewTime: now,
        leaseTransitions: ours ? current.leaseTransitions : current.leaseTransitions + 1,
        resourceVersion: current.resourceVersion,
      });
      this.observe(written);
      return 'held';
    } catch (error) {
      if (error instanceof LeaseConflictError) return 'conflict';
      this.onError?.(error);
      return 'failed';
    }
  }

  private async writeRelease(): Promise<ReleaseResult> {
    if (this.inFlight !== undefined) await this.inFlight;
    for (let tries = 0; tries < 3; tries++) {
      const observed = this.observed;
      if (observed === undefined || observed.holderIdentity !== this.identity) return 'not-held';
      const now = this.clock.now();
      try {
        const written = await this.client.update({
          holderIdentity: null,
          leaseDurationSeconds: 1,
          acquireTime: now,
          renewTime: now,
          leaseTransitions: observed.leaseTransitions,
          resourceVersion: observed.resourceVersion,
        });
        this.observe(written);
        return 'released';
      } catch (error) {
        if (!(error instanceof LeaseConflictError)) {
          this.onError?.(error);
          return 'failed';
        }
        try {
          const current = await this.client.get();
          if (current === undefined) return 'not-held';
          this.observe(current);
        } catch (readError) {
          this.onError?.(readError);
          return 'failed';
        }
      }
    }
    return 'failed';
  }

  /** observe keeps the latest record; the observed time moves only when the record's content changed (client-go's observedRawRecord). */
  private observe(record: LeaseRecord): void {
    if (this.observed === undefined || !sameSpec(this.observed, record)) this.observedAt = this.clock.now();
    this.observed = record;
  }

  private isObservedLeaseValid(now: number): boolean {
    const seconds = this.observed?.leaseDurationSeconds ?? 0;
    return this.observedAt + seconds * 1000 > now;
  }

  private reportTransition(): void {
    const holder = this.observedLeader();
    if (holder === null || holder === this.reportedLeader) return;
    this.reportedLeader = holder;
    this.safely(() => this.callbacks.onNewLeader?.(holder));
  }

  private leaseDurationSeconds(): number {
    return Math.ceil(this.leaseDurationMs / 1000);
  }

  private clearTimers(): void {
    if (this.retryTimer !== undefined) this.clock.clearTimeout(this.retryTimer);
    if (this.deadlineTimer !== undefined) this.clock.clearTimeout(this.deadlineTimer);
    this.retryTimer = undefined;
    this.deadlineTimer = undefined;
  }

  private async withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | typeof TIMED_OUT> {
    let timer: TimerHandle | undefined;
    const timeout = new Promise<typeof TIMED_OUT>((resolve) => {
      timer = this.clock.setTimeout(() => resolve(TIMED_OUT), ms);
    });
    try {
      return await Promise.race([promise, timeout]);
    } finally {
      if (timer !== undefined) this.clock.clearTimeout(timer);
    }
  }

  private safely(call: () => void): void {
    try {
      call();
    } catch (error) {
      this.onError?.(error);
    }
  }
}

function sameSpec(a: LeaseRecord, b: LeaseRecord): boolean {
  return (
    a.holderIdentity === b.holderIdentity &&
    a.leaseDurationSeconds === b.leaseDurationSeconds &&
    a.acquireTime === b.acquireTime &&
    a.renewTime === b.renewTime &&
    a.leaseTransitions === b.leaseTransitions
  );
}

function validate(options: { identity: string; leaseDurationMs: number; renewDeadlineMs: number; retryPeriodMs: number; jitterFactor: number }): void {
  const { identity, leaseDurationMs, renewDeadlineMs, retryPeriodMs, jitterFactor } = options;
  const fail = (message: string): never => {
    throw new LeaderElectionConfigError(`leader election: ${message}`);
  };
  if (identity === '') fail('identity must not be empty');
  if (!(leaseDurationMs >= 1000)) fail(`leaseDurationMs must be at least 1000 (the Lease counts whole seconds), got ${leaseDurationMs}`);
  if (!(renewDeadlineMs > 0) || !(retryPeriodMs > 0)) fail('renewDeadlineMs and retryPeriodMs must be positive');
  if (!(jitterFactor >= 0)) fail(`jitterFactor must not be negative, got ${jitterFactor}`);
  if (leaseDurationMs <= renewDeadlineMs) fail(`leaseDurationMs (${leaseDurationMs}) must be greater than renewDeadlineMs (${renewDeadlineMs})`);
  if (renewDeadlineMs <= jitterFactor * retryPeriodMs)
    fail(`renewDeadlineMs (${renewDeadlineMs}) must be greater than jitterFactor × retryPeriodMs (${jitterFactor * retryPeriodMs})`);
}
