import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Registry } from 'prom-client';
import { ManualClock, type Clock, type TimerHandle } from '../controller/core/clock.ts';
import { LeaderElectionConfigError, LeaderElector, type LeaderElectionOptions } from '../controller/kube/leader-election.ts';
import { LeaseConflictError, type LeaseClient, type LeaseRecord } from '../controller/adapters/lease-client.ts';
import { registerLeaderElectionMetrics } from '../controller/kube/prometheus-metrics.ts';

/** One Lease as the API server keeps it: a resourceVersion bumped on every write, 409 on a stale one. */
class LeaseStore {
  record: LeaseRecord | undefined;
  private rv = 0;
  conflicts = { create: 0, update: 0 };
  writes = 0;

  put(record: Omit<LeaseRecord, 'resourceVersion'>): LeaseRecord {
    this.rv++;
    this.writes++;
    this.record = { ...record, resourceVersion: String(this.rv) };
    return { ...this.record };
  }

  /** touch is a third party's write that changes only metadata (a label): the spec stays, the resourceVersion moves. */
  touch(): void {
    if (this.record === undefined) return;
    this.rv++;
    this.record = { ...this.record, resourceVersion: String(this.rv) };
  }
}

/** A candidate's connection to the store; it can be made to fail or hang (a partition). */
class FakeLeaseClient implements LeaseClient {
  mode: 'ok' | 'fail' | 'hang' = 'ok';
  calls = 0;
  /** Runs once, just before the next update is applied (to interleave another writer). */
  beforeUpdate: (() => void) | undefined;
  /** Each answer arrives this long after the call (on the clock); the store acts when called. */
  latencyMs = 0;

  private readonly store: LeaseStore;
  private readonly clock: ManualClock | undefined;

  constructor(store: LeaseStore, clock?: ManualClock) {
    this.store = store;
    this.clock = clock;
  }

  get(): Promise<LeaseRecord | undefined> {
    return this.call(() => (this.store.record === undefined ? undefined : { ...this.store.record }));
  }

  create(record: Omit<LeaseRecord, 'resourceVersion'>): Promise<LeaseRecord> {
    return this.call(() => {
      if (this.store.record !== undefined) {
        this.store.conflicts.create++;
        throw new LeaseConflictError('leases.coordination.k8s.io "smsauth-controller" already exists');
      }
      return this.store.put(record);
    });
  }

  update(record: LeaseRecord): Promise<LeaseRecord> {
    return this.call(() => {
      const hook = this.beforeUpdate;
      this.beforeUpdate = undefined;
      hook?.();
      if (this.store.record === undefined || this.store.record.resourceVersion !== record.resourceVersion) {
        this.store.conflicts.update++;
        throw new LeaseConflictError('the object has been modified; please apply your changes to the latest version and try again');
      }
      const { resourceVersion: _rv, ...spec } = record;
      return this.store.put(spec);
    });
  }

  private call<T>(op: () => T): Promise<T> {
    this.calls++;
    if (this.mode === 'hang') return new Promise(() => {});
    if (this.mode === 'fail') return Promise.reject(new Error('connect ECONNREFUSED 10.96.0.1:443'));
    let settle: () => Promise<T>;
    try {
      const value = op();
      settle = () => Promise.resolve(value);
    } catch (error) {
      settle = () => Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    if (this.latencyMs === 0 || this.clock === undefined) return settle();
    const clock = this.clock;
    return new Promise<void>((resolve) => clock.setTimeout(resolve, this.latencyMs)).then(settle);
  }
}

/** A clock whose wall time is off by skewMs from the shared scheduler (another machine's clock). */
function skewed(base: ManualClock, skewMs: number): Clock {
  return {
    now: () => base.now() + skewMs,
    setTimeout: (callback: () => void, ms: number): TimerHandle => base.setTimeout(callback, ms),
    clearTimeout: (handle: TimerHandle) => base.clearTimeout(handle),
  };
}

interface Candidate {
  elector: LeaderElector;
  client: FakeLeaseClient;
  events: string[];
  startedAt: number[];
  stoppedAt: number[];
  leading: boolean[];
}

function candidate(store: LeaseStore, clock: ManualClock, identity: string, extra: Partial<LeaderElectionOptions> = {}): Candidate {
  const client = new FakeLeaseClient(store, clock);
  const c: Candidate = { elector: undefined as unknown as LeaderElector, client, events: [], startedAt: [], stoppedAt: [], leading: [] };
  c.elector = new LeaderElector({
    client,
    identity,
    clock,
    random: () => 0,
    callbacks: {
      onStartedLeading: () => {
        c.events.push('started');
        c.startedAt.push(clock.now());
      },
      onStoppedLeading: (reason) => {
        c.events.push(`stopped:${reason}`);
        c.stoppedAt.push(clock.now());
      },
      onNewLeader: (id) => c.events.push(`leader:${id}`),
    },
    metrics: { setLeading: (leading) => c.leading.push(leading) },
    ...extra,
  });
  return c;
}

const T0 = 1_750_000_000_000;

const acquire = suite('LeaderElector.start');

acquire('a single candidate creates the Lease and leads at once', async () => {
  const clock = new ManualClock(T0);
  const store = new LeaseStore();
  const a = candidate(store, clock, 'host-a_1');
  a.elector.start();
  await clock.advance(0);
  assert.ok(a.elector.isLeader());
  assert.equal(a.events, ['leader:host-a_1', 'started']);
  assert.equal(a.leading, [false, true]);
  const { resourceVersion: _rv, ...spec } = store.record!;
  assert.equal(spec, { holderIdentity: 'host-a_1', leaseDurationSeconds: 15, acquireTime: T0, renewTime: T0, leaseTransitions: 0 });
  assert.is(a.elector.observedLeader(), 'host-a_1');
});

acquire('the leader renews every retry period, keeping acquireTime and transitions', async () => {
  const clock = new ManualClock(T0);
  const store = new LeaseStore();
  const a = candidate(store, clock, 'a');
  a.elector.start();
  await clock.advance(10_000);
  assert.is(store.writes, 1 + 5);
  assert.is(store.record!.renewTime, T0 + 10_000);
  assert.is(store.record!.acquireTime, T0);
  assert.is(store.record!.leaseTransitions, 0);
  assert.ok(a.elector.isLeader());
  assert.equal(a.events, ['leader:a', 'started']);
});

acquire('two candidates: exactly one leads, the other follows it', async () => {
  const clock = new ManualClock(T0);
  const store = new LeaseStore();
  const a = candidate(store, clock, 'a');
  const b = candidate(store, clock, 'b');
  a.elector.start();
  b.elector.start();
  for (let t = 0; t < 60; t++) {
    await clock.advance(1_000);
    assert.is(Number(a.elector.isLeader()) + Number(b.elector.isLeader()), 1, `at ${t + 1}s`);
  }
  assert.is(store.conflicts.create, 1, 'both saw no Lease; the second create lost the race');
  assert.ok(a.elector.isLeader());
  assert.equal(b.events, ['leader:a']);
  assert.equal(b.leading, [false]);
  assert.is(store.record!.leaseTransitions, 0);
});

acquire('a stale Lease of a dead holder is taken only after the lease duration on our own clock', async () => {
  const clock = new ManualClock(T0);
  const store = new LeaseStore();
  // Written a day ago by a replica that died: comparing its renewTime with our clock would take it at once.
  store.put({ holderIdentity: 'dead', leaseDurationSeconds: 15, acquireTime: T0 - 86_400_000, renewTime: T0 - 86_400_000, leaseTransitions: 4 });
  const a = candidate(store, clock, 'a');
  a.elector.start();
  await clock.advance(14_999);
  assert.not.ok(a.elector.isLeader());
  assert.is(store.record!.holderIdentity, 'dead');
  await clock.advance(2_000);
  assert.ok(a.elector.isLeader());
  assert.equal(a.startedAt, [T0 + 16_000], 'the first poll at or after 15 s (polls every 2 s)');
  assert.is(store.record!.leaseTransitions, 5);
  assert.equal(a.events, ['leader:dead', 'leader:a', 'started']);
});

acquire("the follower takes over when the leader stops renewing, after the lease duration on the follower's clock", async () => {
  const clock = new ManualClock(T0);
  const store = new LeaseStore();
  // The leader's clock runs an hour ahead: its renewTime values look an hour in the future to b.
  const a = candidate(store, clock, 'a', { clock: skewed(clock, 3_600_000) });
  const b = candidate(store, clock, 'b');
  a.elector.start();
  await clock.advance(0);
  b.elector.start();
  await clock.advance(5_000);
  a.client.mode = 'fail';
  // a's last successful renewal, on the shared clock (a wrote it with its own clock, an hour ahead).
  const lastRenew = store.record!.renewTime! - 3_600_000;
  assert.is(lastRenew, T0 + 4_000);
  await clock.advance(40_000);
  assert.ok(b.elector.isLeader());
  const takeover = b.startedAt[0]!;
  // b observed a's last renewal (at lastRenew) no earlier than it was written, and waited 15 s from then.
  assert.ok(takeover >= lastRenew + 15_000, `took over at +${takeover - T0}, last renewal at +${lastRenew - T0}`);
  assert.ok(takeover <= lastRenew + 15_000 + 2 * 2_000, `took over late, at +${takeover - T0}`);
  assert.is(store.record!.holderIdentity, 'b');
  assert.is(store.record!.leaseTransitions, 1);
  assert.equal(b.events, ['leader:a', 'leader:b', 'started']);
  // The partitioned leader gave up first: retry period + renew deadline after its last success.
  assert.equal(a.stoppedAt, [lastRenew + 2_000 + 10_000]);
  assert.ok(a.stoppedAt[0]! < takeover);
});

acquire('a follower never takes over while the leader renews, however far behind its clock is', async () => {
  const clock = new ManualClock(T0);
  const store = new LeaseStore();
  const a = candidate(store, clock, 'a', { clock: skewed(clock, -3_600_000) });
  const b = candidate(store, clock, 'b');
  a.elector.start();
  await clock.advance(0);
  b.elector.start();
  await clock.advance(120_000);
  assert.ok(a.elector.isLeader());
  assert.not.ok(b.elector.isLeader());
  assert.is(store.record!.leaseTransitions, 0);
});

acquire('start may be called once', () => {
  const a = candidate(new LeaseStore(), new ManualClock(), 'a');
  a.elector.start();
  assert.throws(
    () => a.elector.start(),
    (e: unknown) => e instanceof LeaderElectionConfigError,
  );
});

acquire.run();

const renew = suite('LeaderElector renew deadline');

renew('a leader whose renewals fail for the renew deadline stops leading', async () => {
  const clock = new ManualClock(T0);
  const store = new LeaseStore();
  const errors: unknown[] = [];
  const a = candidate(store, clock, 'a', { onError: (e) => errors.push(e) });
  a.elector.start();
  await clock.advance(4_000);
  a.client.mode = 'fail';
  await clock.advance(11_999);
  assert.ok(a.elector.isLeader(), 'not before the deadline');
  await clock.advance(1);
  assert.not.ok(a.elector.isLeader());
  // Last success at +4 s; the next cycle starts at +6 s and has 10 s.
  assert.equal(a.stoppedAt, [T0 + 16_000]);
  assert.equal(a.events, ['leader:a', 'started', 'stopped:lost']);
  assert.equal(a.leading, [false, true, false]);
  assert.is(errors.length, 5, 'attempts at +6, +8, +10, +12, +14 s each failed and were reported');
  const calls = a.client.calls;
  await clock.advance(60_000);
  assert.is(a.client.calls, calls, 'a stopped elector makes no more calls');
});

renew('a renewal that hangs is cut off by the renew deadline', async () => {
  const clock = new ManualClock(T0);
  const store = new LeaseStore();
  const a = candidate(store, clock, 'a');
  a.elector.start();
  await clock.advance(4_000);
  a.client.mode = 'hang';
  await clock.advance(30_000);
  assert.equal(a.stoppedAt, [T0 + 16_000]);
  // get+create at +0 s, get+update at +2 s and +4 s, then the get at +6 s that never answers: no attempt overlaps it.
  assert.is(a.client.calls, 2 + 2 + 2 + 1);
});

renew('renewals failing for less than the deadline keep leadership', async () => {
  const clock = new ManualClock(T0);
  const store = new LeaseStore();
  const a = candidate(store, clock, 'a');
  a.elector.start();
  await clock.advance(4_000);
  a.client.mode = 'fail';
  await clock.advance(9_000);
  a.client.mode = 'ok';
  await clock.advance(60_000);
  assert.ok(a.elector.isLeader());
  assert.equal(a.events, ['leader:a', 'started']);
  assert.is(store.record!.renewTime, T0 + 72_000);
});

renew('a leader that finds another holder in the Lease stops leading at once', async () => {
  const clock = new ManualClock(T0);
  const store = new LeaseStore();
  const a = candidate(store, clock, 'a');
  a.elector.start();
  await clock.advance(3_000);
  store.put({ ...store.record!, holderIdentity: 'intruder', leaseTransitions: 1 });
  await clock.advance(1_000);
  assert.equal(a.stoppedAt, [T0 + 4_000]);
  assert.equal(a.events, ['leader:a', 'started', 'leader:intruder', 'stopped:lost']);
  assert.is(store.record!.holderIdentity, 'intruder');
});

renew.run();

const release = suite('LeaderElector.release');

release('release empties the Lease so that the follower takes over at its next poll', async () => {
  const clock = new ManualClock(T0);
  const store = new LeaseStore();
  const a = candidate(store, clock, 'a');
  const b = candidate(store, clock, 'b');
  a.elector.start();
  await clock.advance(0);
  b.elector.start();
  await clock.advance(7_000);
  const released = a.elector.release();
  await clock.advance(0);
  assert.is(await released, 'released');
  const releasedAt = clock.now();
  assert.is(store.record!.holderIdentity, null);
  assert.is(store.record!.leaseDurationSeconds, 1);
  assert.equal(a.events, ['leader:a', 'started', 'stopped:released']);
  assert.equal(a.leading, [false, true, false]);
  assert.not.ok(a.elector.isLeader());
  await clock.advance(2_000);
  assert.ok(b.elector.isLeader());
  assert.ok(b.startedAt[0]! - releasedAt <= 2_000, 'well within the 15 s lease duration');
  assert.is(store.record!.holderIdentity, 'b');
  assert.is(store.record!.leaseTransitions, 1);
  assert.is(await a.elector.release(), 'released', 'a second call returns the same result');
});

release('release by a follower leaves the Lease alone', async () => {
  const clock = new ManualClock(T0);
  const store = new LeaseStore();
  const a = candidate(store, clock, 'a');
  const b = candidate(store, clock, 'b');
  a.elector.start();
  await clock.advance(0);
  b.elector.start();
  await clock.advance(3_000);
  const before = { ...store.record! };
  const result = b.elector.release();
  await clock.advance(0);
  assert.is(await result, 'not-held');
  assert.equal(store.record, before);
  assert.equal(b.events, ['leader:a']);
  await clock.advance(60_000);
  assert.is(b.client.calls, 2, 'b stopped polling');
});

release('release after leadership was lost does not overwrite the new holder', async () => {
  const clock = new ManualClock(T0);
  const store = new LeaseStore();
  const a = candidate(store, clock, 'a');
  a.elector.start();
  await clock.advance(1_000);
  store.put({ ...store.record!, holderIdentity: 'c', leaseTransitions: 1 });
  a.client.mode = 'fail';
  await clock.advance(20_000);
  assert.equal(a.events.at(-1), 'stopped:lost');
  a.client.mode = 'ok';
  const result = a.elector.release();
  await clock.advance(0);
  assert.is(await result, 'not-held');
  assert.is(store.record!.holderIdentity, 'c');
  assert.is(store.conflicts.update, 1, 'the stale write was refused by resourceVersion');
});

release('release re-reads after a conflict and still releases', async () => {
  const clock = new ManualClock(T0);
  const store = new LeaseStore();
  const a = candidate(store, clock, 'a');
  a.elector.start();
  await clock.advance(1_000);
  a.client.beforeUpdate = () => store.touch();
  const result = a.elector.release();
  await clock.advance(0);
  assert.is(await result, 'released');
  assert.is(store.conflicts.update, 1);
  assert.is(store.record!.holderIdentity, null);
});

release('release during an acquisition in flight releases what it acquired, without leading', async () => {
  const clock = new ManualClock(T0);
  const store = new LeaseStore();
  const a = candidate(store, clock, 'a');
  a.client.latencyMs = 10;
  a.elector.start();
  await clock.advance(5);
  const result = a.elector.release();
  await clock.advance(100);
  assert.is(await result, 'released');
  assert.is(store.writes, 2, 'created, then emptied');
  assert.is(store.record!.holderIdentity, null);
  assert.equal(a.events, [], 'never started leading');
  assert.not.ok(a.elector.isLeader());
});

release('release gives up after the renew deadline when the API server does not answer', async () => {
  const clock = new ManualClock(T0);
  const store = new LeaseStore();
  const a = candidate(store, clock, 'a');
  a.elector.start();
  await clock.advance(1_000);
  a.client.mode = 'hang';
  let result: string | undefined;
  void a.elector.release().then((r) => (result = r));
  await clock.advance(9_999);
  assert.is(result, undefined);
  await clock.advance(1);
  assert.is(result, 'failed');
  assert.equal(a.events, ['leader:a', 'started', 'stopped:released']);
});

release.run();

const conflicts = suite('LeaderElector conflicts');

conflicts('a conflict on renew (someone else wrote metadata) is re-read and the renewal retried at once', async () => {
  const clock = new ManualClock(T0);
  const store = new LeaseStore();
  const a = candidate(store, clock, 'a');
  a.elector.start();
  await clock.advance(1_000);
  a.client.beforeUpdate = () => store.touch();
  await clock.advance(1_000);
  assert.is(store.conflicts.update, 1);
  assert.is(store.record!.renewTime, T0 + 2_000, 'renewed in the same attempt');
  assert.ok(a.elector.isLeader());
  assert.is(store.record!.leaseTransitions, 0);
});

conflicts('two candidates taking over an expired Lease at the same moment: one wins, transitions counted once', async () => {
  const clock = new ManualClock(T0);
  const store = new LeaseStore();
  store.put({ holderIdentity: 'dead', leaseDurationSeconds: 15, acquireTime: T0, renewTime: T0, leaseTransitions: 2 });
  const a = candidate(store, clock, 'a');
  const b = candidate(store, clock, 'b');
  // With 10 ms round trips both read the expired Lease before either writes it.
  a.client.latencyMs = 10;
  b.client.latencyMs = 10;
  a.elector.start();
  b.elector.start();
  await clock.advance(16_000);
  assert.not.ok(a.elector.isLeader() || b.elector.isLeader(), 'not before 15 s after first observing it');
  await clock.advance(4_000);
  assert.is(Number(a.elector.isLeader()) + Number(b.elector.isLeader()), 1);
  assert.is(store.conflicts.update, 1);
  assert.is(store.record!.leaseTransitions, 3);
  const winner = a.elector.isLeader() ? 'a' : 'b';
  const loser = winner === 'a' ? b : a;
  assert.equal(loser.events, ['leader:dead', `leader:${winner}`]);
  await clock.advance(60_000);
  assert.is(Number(a.elector.isLeader()) + Number(b.elector.isLeader()), 1);
});

conflicts.run();

const config = suite('LeaderElector options');

config('rejects timings client-go rejects', () => {
  const client = new FakeLeaseClient(new LeaseStore());
  const callbacks = { onStartedLeading: () => {}, onStoppedLeading: () => {} };
  const bad: Partial<LeaderElectionOptions>[] = [
    { identity: '' },
    { leaseDurationMs: 10_000, renewDeadlineMs: 10_000 },
    { renewDeadlineMs: 2_000, retryPeriodMs: 2_000 },
    { retryPeriodMs: 0 },
    { leaseDurationMs: 500, renewDeadlineMs: 400, retryPeriodMs: 100 },
  ];
  for (const options of bad) {
    assert.throws(
      () => new LeaderElector({ client, identity: 'a', callbacks, ...options }),
      (e: unknown) => e instanceof LeaderElectionConfigError && e.code === 'ERR_LEADER_ELECTION_CONFIG',
      JSON.stringify(options),
    );
  }
  new LeaderElector({ client, identity: 'a', callbacks });
});

config('jitters acquire retries between 1 and 1 + jitterFactor retry periods', async () => {
  for (const [r, want] of [
    [0, 2_000],
    [0.5, 3_200],
    [1, 4_400],
  ] as const) {
    const clock = new ManualClock(T0);
    const store = new LeaseStore();
    store.put({ holderIdentity: 'other', leaseDurationSeconds: 15, acquireTime: T0, renewTime: T0, leaseTransitions: 0 });
    const a = candidate(store, clock, 'a', { random: () => r });
    a.elector.start();
    await clock.advance(0);
    assert.is(a.client.calls, 1);
    assert.is(clock.nextDue(), T0 + want);
  }
});

config('registerLeaderElectionMetrics exposes leader_election_master_status{name}', async () => {
  const clock = new ManualClock(T0);
  const registry = new Registry();
  const forLease = registerLeaderElectionMetrics(registry);
  const a = candidate(new LeaseStore(), clock, 'a', { metrics: forLease('smsauth-controller') });
  assert.match(await registry.metrics(), /^leader_election_master_status\{name="smsauth-controller"\} 0$/m);
  a.elector.start();
  await clock.advance(0);
  assert.match(await registry.metrics(), /^leader_election_master_status\{name="smsauth-controller"\} 1$/m);
  const released = a.elector.release();
  await clock.advance(0);
  await released;
  assert.match(await registry.metrics(), /^leader_election_master_status\{name="smsauth-controller"\} 0$/m);
});

config.run();
