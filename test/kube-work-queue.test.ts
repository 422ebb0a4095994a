import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { Registry } from 'prom-client';
import { ManualClock } from '../controller/core/clock.ts';
import { registerWorkQueueMetrics } from '../controller/kube/prometheus-metrics.ts';
import {
  BucketRateLimiter,
  ItemExponentialFailureRateLimiter,
  TerminalError,
  WorkQueue,
  WorkQueueConfigError,
  createDefaultControllerRateLimiter,
  isTerminalError,
  type WorkHandler,
  type WorkOutcome,
  type WorkResult,
  type WorkQueueMetrics,
} from '../controller/kube/work-queue.ts';

const ok = (): Promise<WorkResult> => Promise.resolve({});
const sleep = (clock: ManualClock, ms: number): Promise<void> => new Promise((resolve) => clock.setTimeout(resolve, ms));

/** Runs handlers and records every start (key, time) and the peak concurrency, overall and per key. */
function recorder(clock: ManualClock, work: (key: string, run: number) => WorkResult | Promise<WorkResult> = () => ({})) {
  const starts: { key: string; at: number }[] = [];
  const active = new Map<string, number>();
  let running = 0;
  let peak = 0;
  let overlaps = 0;
  const runs = new Map<string, number>();
  const handler: WorkHandler = async (key) => {
    const run = (runs.get(key) ?? 0) + 1;
    runs.set(key, run);
    starts.push({ key, at: clock.now() });
    running++;
    peak = Math.max(peak, running);
    if ((active.get(key) ?? 0) > 0) overlaps++;
    active.set(key, (active.get(key) ?? 0) + 1);
    try {
      return await work(key, run);
    } finally {
      running--;
      active.set(key, (active.get(key) ?? 1) - 1);
    }
  };
  return {
    handler,
    starts,
    keys: () => starts.map((s) => s.key),
    runsOf: (key: string) => runs.get(key) ?? 0,
    peak: () => peak,
    overlaps: () => overlaps,
  };
}

const isConfigError = (e: unknown): boolean => e instanceof WorkQueueConfigError && e.code === 'ERR_WORK_QUEUE_CONFIG';

function newQueue(clock: ManualClock, extra: Partial<ConstructorParameters<typeof WorkQueue>[0]> = {}): WorkQueue {
  return new WorkQueue({ name: 'test', clock, ...extra });
}

const add = suite('WorkQueue.add');

add('a key added many times while queued is processed once', async () => {
  const clock = new ManualClock();
  const queue = newQueue(clock);
  for (const key of ['A/ns/a', 'A/ns/b', 'A/ns/a', 'A/ns/a', 'A/ns/b']) queue.add(key);
  assert.is(queue.len(), 2);
  const rec = recorder(clock);
  queue.start(1, rec.handler);
  await clock.advance(1000);
  assert.equal(rec.keys(), ['A/ns/a', 'A/ns/b']);
  assert.is(queue.len(), 0);
});

add('keys are processed in the order they were first added', async () => {
  const clock = new ManualClock();
  const queue = newQueue(clock);
  const order = ['c', 'a', 'b', 'a', 'd', 'c'];
  for (const key of order) queue.add(key);
  const rec = recorder(clock);
  queue.start(1, rec.handler);
  await clock.advance(10);
  assert.equal(rec.keys(), ['c', 'a', 'b', 'd']);
});

add('a key added while it is processed is processed again afterwards, once, never concurrently', async () => {
  const clock = new ManualClock();
  const queue = newQueue(clock);
  const rec = recorder(clock, async () => {
    await sleep(clock, 100);
    return {};
  });
  queue.start(4, rec.handler);
  queue.add('k');
  await clock.advance(10);
  assert.is(rec.runsOf('k'), 1);
  queue.add('k');
  queue.add('k');
  await clock.advance(50);
  assert.is(rec.runsOf('k'), 1, 'not started a second time while the first run is going');
  await clock.advance(1000);
  assert.equal(rec.starts, [
    { key: 'k', at: 0 },
    { key: 'k', at: 100 },
  ]);
  assert.is(rec.overlaps(), 0);
});

add('ignores adds after shutdown', async () => {
  const clock = new ManualClock();
  const queue = newQueue(clock);
  await queue.shutdown(false, 0);
  queue.add('x');
  assert.is(queue.len(), 0);
});

add.run();

const exponential = suite('ItemExponentialFailureRateLimiter');

// [retry number, expected delay ms]: 5 ms doubling, capped at 1000 s.
const backoffCases: [number, number][] = [
  [1, 5],
  [2, 10],
  [3, 20],
  [4, 40],
  [5, 80],
  [6, 160],
  [10, 2_560],
  [14, 40_960],
  [17, 327_680],
  [18, 655_360],
  [19, 1_000_000],
  [20, 1_000_000],
  [100, 1_000_000],
  [1100, 1_000_000],
];
for (const [retry, want] of backoffCases) {
  exponential(`retry ${retry} waits ${want} ms`, () => {
    const limiter = new ItemExponentialFailureRateLimiter(5, 1_000_000);
    let got = -1;
    for (let i = 0; i < retry; i++) got = limiter.when('key');
    assert.is(got, want);
    assert.is(limiter.numRequeues('key'), retry);
  });
}

exponential('keys back off independently', () => {
  const limiter = new ItemExponentialFailureRateLimiter(5, 1_000_000);
  assert.equal([limiter.when('a'), limiter.when('a'), limiter.when('b'), limiter.when('a')], [5, 10, 5, 20]);
});

exponential('forget resets the backoff to 5 ms', () => {
  const limiter = new ItemExponentialFailureRateLimiter(5, 1_000_000);
  for (let i = 0; i < 6; i++) limiter.when('a');
  limiter.forget('a');
  assert.is(limiter.numRequeues('a'), 0);
  assert.is(limiter.when('a'), 5);
});

exponential.run();

const bucket = suite('BucketRateLimiter');

bucket('a burst of 100 passes at once, then one every 100 ms (10/s)', () => {
  const clock = new ManualClock();
  const limiter = new BucketRateLimiter(10, 100, clock);
  const delays = Array.from({ length: 103 }, (_, i) => limiter.when(`k${i}`));
  assert.equal(delays.slice(0, 100), new Array<number>(100).fill(0));
  assert.equal(delays.slice(100), [100, 200, 300]);
});

bucket('refills at 10 tokens per second, never above the burst', async () => {
  const clock = new ManualClock();
  const limiter = new BucketRateLimiter(10, 100, clock);
  for (let i = 0; i < 100; i++) limiter.when('k');
  await clock.advance(1000);
  const refilled = Array.from({ length: 11 }, () => limiter.when('k'));
  assert.equal(refilled, [...new Array<number>(10).fill(0), 100]);
  await clock.advance(3_600_000);
  const afterAnHour = Array.from({ length: 101 }, () => limiter.when('k'));
  assert.is(afterAnHour.filter((d) => d === 0).length, 100);
  assert.is(afterAnHour[100], 100);
});

bucket.run();

const defaults = suite('createDefaultControllerRateLimiter');

defaults('waits the longer of the per-key backoff and the overall bucket', () => {
  const clock = new ManualClock();
  const limiter = createDefaultControllerRateLimiter(clock);
  assert.is(limiter.when('a'), 5);
  assert.is(limiter.when('a'), 10);
  for (let i = 0; i < 98; i++) limiter.when(`other${i}`);
  // The bucket is now empty: a fresh key waits for a token (100 ms) rather than 5 ms.
  assert.is(limiter.when('fresh'), 100);
  // 'a' is at its 3rd retry (20 ms), but the bucket makes it wait 200 ms.
  assert.is(limiter.when('a'), 200);
  assert.is(limiter.numRequeues('a'), 3);
  limiter.forget('a');
  assert.is(limiter.numRequeues('a'), 0);
});

defaults.run();

const rateLimited = suite('WorkQueue.addRateLimited');

rateLimited('a failing key is retried after 5, 10, 20, 40 ms', async () => {
  const clock = new ManualClock();
  const queue = newQueue(clock);
  const rec = recorder(clock, () => {
    throw new Error('apiserver unavailable');
  });
  queue.start(1, rec.handler);
  queue.add('k');
  await clock.advance(5 + 10 + 20 + 40 + 1);
  assert.equal(
    rec.starts.map((s) => s.at),
    [0, 5, 15, 35, 75],
  );
  assert.is(queue.numRequeues('k'), 5);
});

rateLimited('a delayed key is not ready one millisecond early', async () => {
  const clock = new ManualClock();
  const queue = newQueue(clock);
  queue.addRateLimited('k');
  queue.addRateLimited('k');
  // The second call (10 ms) does not postpone the first (5 ms): the earliest pending delay wins.
  await clock.advance(4);
  assert.is(queue.len(), 0);
  await clock.advance(1);
  assert.is(queue.len(), 1);
});

rateLimited.run();

const forget = suite('WorkQueue.forget');

forget('success forgets the backoff, so the next failure waits 5 ms again', async () => {
  const clock = new ManualClock();
  const queue = newQueue(clock);
  // Fail 3 times, succeed, then fail again on the next change.
  const rec = recorder(clock, (_key, run) => {
    if (run === 4) return {};
    throw new Error(`failure ${run}`);
  });
  queue.start(1, rec.handler);
  queue.add('k');
  await clock.advance(100);
  assert.equal(
    rec.starts.map((s) => s.at),
    [0, 5, 15, 35],
  );
  assert.is(queue.numRequeues('k'), 0);
  queue.add('k');
  await clock.advance(16);
  // Without forget the 5th run's retry would wait 80 ms; it waits 5, then 10.
  assert.equal(rec.starts.map((s) => s.at).slice(4), [100, 105, 115]);
});

forget('forget on a key clears numRequeues', () => {
  const queue = newQueue(new ManualClock());
  queue.addRateLimited('k');
  queue.addRateLimited('k');
  assert.is(queue.numRequeues('k'), 2);
  queue.forget('k');
  assert.is(queue.numRequeues('k'), 0);
});

forget.run();

const quiet = suite('WorkQueue quiet');

quiet('resolves once every key given, and every key re-added meanwhile, is processed; keys waiting out a delay do not count', async () => {
  const clock = new ManualClock(0);
  const q = newQueue(clock);
  const done: string[] = [];
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  q.start(2, async (key) => {
    if (key === 'slow') await held;
    done.push(key);
    if (key === 'a' && done.filter((k) => k === 'a').length === 1) q.add('a'); // re-added while processing
    return {};
  });
  await q.quiet(); // nothing given yet
  for (const k of ['a', 'b', 'slow']) q.add(k);
  q.addAfter('later', 60_000);
  let settled = false;
  const waiting = q.quiet().then(() => (settled = true));
  await new Promise((resolve) => setImmediate(resolve));
  assert.is(settled, false, 'a key is still in flight');
  release();
  await waiting;
  assert.equal([...done].sort(), ['a', 'a', 'b', 'slow'], 'the re-added key ran again before quiet');
  assert.not.ok(done.includes('later'), 'a delayed key is not waited for');
  await q.shutdown(false, 100);
});

quiet.run();

const requeueAfter = suite('WorkQueue requeueAfterMs');

requeueAfter('a handler asking to be polled is processed again after exactly that long', async () => {
  const clock = new ManualClock();
  const queue = newQueue(clock);
  const rec = recorder(clock, (_key, run) => (run < 3 ? { requeueAfterMs: 30_000 } : {}));
  queue.start(2, rec.handler);
  queue.add('k');
  await clock.advance(29_999);
  assert.is(rec.runsOf('k'), 1);
  await clock.advance(1);
  assert.is(rec.runsOf('k'), 2);
  await clock.advance(600_000);
  assert.equal(
    rec.starts.map((s) => s.at),
    [0, 30_000, 60_000],
  );
  assert.is(queue.numRequeues('k'), 0, 'requeueAfter is not a failure: no backoff is counted');
});

requeueAfter('addAfter with no delay adds at once; an earlier delay replaces a later one', async () => {
  const clock = new ManualClock();
  const queue = newQueue(clock);
  queue.addAfter('now', 0);
  assert.is(queue.len(), 1);
  queue.addAfter('k', 10_000);
  queue.addAfter('k', 1_000);
  queue.addAfter('k', 5_000);
  await clock.advance(1_000);
  assert.is(queue.len(), 2);
  assert.is(clock.pendingTimers(), 0, 'the replaced timers were cleared');
});

requeueAfter.run();

const terminal = suite('TerminalError');

terminal('a TerminalError is not retried and its backoff is forgotten', async () => {
  const clock = new ManualClock();
  const outcomes: WorkOutcome[] = [];
  const queue = newQueue(clock, { onOutcome: (o) => outcomes.push(o) });
  const rec = recorder(clock, (_key, run) => {
    if (run === 1) throw new Error('transient');
    throw new TerminalError('spec.sms.code.length must be between 6 and 10');
  });
  queue.start(1, rec.handler);
  queue.add('k');
  await clock.advance(2_000_000);
  assert.equal(
    rec.starts.map((s) => s.at),
    [0, 5],
  );
  assert.equal(
    outcomes.map((o) => o.result),
    ['error', 'terminal_error'],
  );
  assert.is(queue.numRequeues('k'), 0);
  queue.add('k');
  await clock.advance(1);
  assert.is(rec.runsOf('k'), 3, 'the next change enqueues it again');
});

terminal('isTerminalError follows the cause chain', () => {
  const wrapped = new Error('reconcile failed', { cause: new TerminalError('bad spec') });
  assert.ok(isTerminalError(wrapped));
  assert.not.ok(isTerminalError(new Error('plain', { cause: new Error('also plain') })));
  assert.not.ok(isTerminalError('a string'));
  assert.is(new TerminalError('x').code, 'ERR_TERMINAL');
});

terminal.run();

const workers = suite('WorkQueue.start');

workers('never runs more than N handlers at once, and uses all N', async () => {
  const clock = new ManualClock();
  const queue = newQueue(clock);
  const rec = recorder(clock, async (key) => {
    await sleep(clock, 10 + (key.charCodeAt(key.length - 1) % 7) * 13);
    return {};
  });
  queue.start(3, rec.handler);
  for (let i = 0; i < 20; i++) queue.add(`K/ns/k${i}`);
  await clock.advance(50);
  for (let i = 0; i < 20; i += 2) queue.add(`K/ns/k${i}`);
  await clock.advance(10_000);
  assert.is(rec.peak(), 3);
  assert.is(rec.overlaps(), 0);
  const counts = new Map<string, number>();
  for (const key of rec.keys()) counts.set(key, (counts.get(key) ?? 0) + 1);
  assert.is(counts.size, 20);
});

workers('a handler that throws synchronously is retried like an async failure', async () => {
  const clock = new ManualClock();
  const queue = newQueue(clock);
  let calls = 0;
  const handler = ((): Promise<{ requeueAfterMs?: number }> => {
    calls++;
    if (calls === 1) throw new Error('sync throw');
    return Promise.resolve({});
  }) as WorkHandler;
  queue.start(1, handler);
  queue.add('k');
  await clock.advance(5);
  assert.is(calls, 2);
});

workers('rejects a bad worker count and a second start', () => {
  const queue = newQueue(new ManualClock());
  assert.throws(() => queue.start(0, ok), isConfigError);
  assert.throws(() => queue.start(1.5, ok), isConfigError);
  queue.start(1, ok);
  assert.throws(() => queue.start(1, ok), isConfigError);
});

workers('runs on the system clock when none is injected', async () => {
  const queue = new WorkQueue({ name: 'real' });
  const seen: string[] = [];
  let handled!: () => void;
  const done = new Promise<void>((resolve) => (handled = resolve));
  queue.start(1, (key) => {
    seen.push(key);
    handled();
    return ok();
  });
  // Long enough that the next turn comes first on a loaded machine (the delay's semantics are the manual clock's tests).
  queue.addAfter('k', 250);
  await new Promise<void>((resolve) => setImmediate(resolve));
  assert.equal(seen, [], 'not before its delay');
  await done;
  assert.equal(seen, ['k']);
  assert.equal(await queue.shutdown(true, 1_000), { inFlight: [] });
});

workers.run();

const resync = suite('WorkQueue.resync');

resync('re-adds every key every period, each period within ±jitter', async () => {
  const clock = new ManualClock();
  let seed = 42;
  // A small deterministic PRNG, so the intervals vary but the test is repeatable.
  const random = (): number => {
    seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
    return seed / 2_147_483_648;
  };
  const queue = newQueue(clock, { random });
  const rec = recorder(clock);
  queue.start(2, rec.handler);
  const listed: number[] = [];
  const stop = queue.resync(
    () => {
      listed.push(clock.now());
      return ['K/ns/a', 'K/ns/b'];
    },
    10_000,
    0.1,
  );
  await clock.advance(200_000);
  assert.ok(listed.length >= 18 && listed.length <= 22, `${listed.length} resyncs in 200 s`);
  const intervals = listed.map((at, i) => at - (i === 0 ? 0 : listed[i - 1]!));
  for (const interval of intervals) assert.ok(interval >= 9_000 && interval <= 11_000, `interval ${interval}`);
  assert.ok(new Set(intervals).size > 1, 'the jitter varies the periods');
  assert.is(rec.runsOf('K/ns/a'), listed.length);
  assert.is(rec.runsOf('K/ns/b'), listed.length);
  stop();
  const before = listed.length;
  await clock.advance(100_000);
  assert.is(listed.length, before);
});

resync('the jitter bounds are reached at the extremes of random', async () => {
  for (const [r, want] of [
    [0, 900],
    [0.5, 1000],
    [0.999_999, 1100],
  ] as const) {
    const clock = new ManualClock();
    const queue = newQueue(clock, { random: () => r });
    const at: number[] = [];
    queue.resync(
      () => {
        at.push(clock.now());
        return [];
      },
      1000,
      0.1,
    );
    await clock.advance(1200);
    assert.is(Math.round(at[0]!), want);
  }
});

resync('rejects a jitter outside [0, 1) and a non-positive period', () => {
  const queue = newQueue(new ManualClock());
  assert.throws(() => queue.resync(() => [], 1000, 1), isConfigError);
  assert.throws(() => queue.resync(() => [], 0, 0.1), isConfigError);
  assert.throws(() => queue.resync(() => [], 1000, -0.1), isConfigError);
});

resync('a throwing key source is reported and the resync continues', async () => {
  const clock = new ManualClock();
  const errors: unknown[] = [];
  const queue = newQueue(clock, { onError: (e) => errors.push(e), random: () => 0.5 });
  let calls = 0;
  queue.resync(
    () => {
      calls++;
      if (calls === 1) throw new Error('cache not synced');
      return ['k'];
    },
    1000,
    0,
  );
  await clock.advance(2000);
  assert.is(errors.length, 1);
  assert.is(calls, 2);
  assert.is(queue.len(), 1);
});

resync.run();

const shutdown = suite('WorkQueue.shutdown');

shutdown('with drain, waits for running handlers and starts no new work', async () => {
  const clock = new ManualClock();
  const queue = newQueue(clock);
  let finished = 0;
  const rec = recorder(clock, async () => {
    await sleep(clock, 500);
    finished++;
    return {};
  });
  queue.start(2, rec.handler);
  for (const key of ['a', 'b', 'c', 'd']) queue.add(key);
  queue.addAfter('later', 100);
  queue.resync(() => ['e'], 50, 0);
  await clock.advance(10);
  let result: { inFlight: string[] } | undefined;
  void queue.shutdown(true, 5_000).then((r) => (result = r));
  await clock.advance(1);
  assert.is(result, undefined, 'still draining');
  queue.add('f');
  await clock.advance(488);
  assert.is(result, undefined);
  await clock.advance(1);
  assert.equal(result, { inFlight: [] });
  assert.is(finished, 2);
  await clock.advance(10_000);
  assert.equal(rec.keys(), ['a', 'b'], 'queued, delayed, resynced and late keys were not started');
  assert.is(clock.pendingTimers(), 0, 'no timer left behind');
  await queue.whenStopped();
});

shutdown('the drain is bounded by the timeout and reports what is still running', async () => {
  const clock = new ManualClock();
  const queue = newQueue(clock);
  queue.start(1, () => new Promise(() => {}));
  queue.add('stuck');
  await clock.advance(1);
  let result: { inFlight: string[] } | undefined;
  void queue.shutdown(true, 1_000).then((r) => (result = r));
  await clock.advance(999);
  assert.is(result, undefined);
  await clock.advance(1);
  assert.equal(result, { inFlight: ['stuck'] });
});

shutdown('without drain, returns at once with the running keys', async () => {
  const clock = new ManualClock();
  const queue = newQueue(clock);
  queue.start(1, async () => {
    await sleep(clock, 100);
    return {};
  });
  queue.add('a');
  await clock.advance(1);
  assert.equal(await queue.shutdown(false, 10_000), { inFlight: ['a'] });
  assert.ok(queue.isShuttingDown());
});

shutdown('a failure during the drain is not retried', async () => {
  const clock = new ManualClock();
  const queue = newQueue(clock);
  const rec = recorder(clock, async () => {
    await sleep(clock, 100);
    throw new Error('boom');
  });
  queue.start(1, rec.handler);
  queue.add('a');
  await clock.advance(1);
  const done = queue.shutdown(true, 1000);
  await clock.advance(200);
  assert.equal(await done, { inFlight: [] });
  await clock.advance(10_000);
  assert.is(rec.runsOf('a'), 1);
  assert.is(clock.pendingTimers(), 0);
});

shutdown.run();

const metrics = suite('WorkQueue metrics');

metrics('hooks see depth, adds, retries and durations', async () => {
  const clock = new ManualClock();
  const seen = { depth: [] as number[], added: 0, retried: 0, queue: [] as number[], work: [] as number[] };
  const hooks: WorkQueueMetrics = {
    depth: (v) => seen.depth.push(v),
    added: () => seen.added++,
    retried: () => seen.retried++,
    queueDuration: (s) => seen.queue.push(s),
    workDuration: (s) => seen.work.push(s),
  };
  const queue = newQueue(clock, { metrics: hooks });
  queue.add('a');
  queue.add('a');
  queue.add('b');
  assert.equal(seen.depth, [1, 2]);
  await clock.advance(250);
  let failed = false;
  queue.start(1, async () => {
    await sleep(clock, 40);
    if (!failed) {
      failed = true;
      throw new Error('once');
    }
    return {};
  });
  await clock.advance(1_000);
  assert.is(seen.added, 3, 'a, b, and the retry of a');
  assert.is(seen.retried, 1);
  assert.equal(seen.queue.slice(0, 2), [0.25, 0.29]);
  assert.equal(seen.work, [0.04, 0.04, 0.04]);
  assert.is(seen.depth.at(-1), 0);
});

metrics('registerWorkQueueMetrics exposes controller-runtime names with the name label', async () => {
  const clock = new ManualClock();
  const registry = new Registry();
  const forQueue = registerWorkQueueMetrics(registry);
  const queue = newQueue(clock, { name: 'identitystore', metrics: forQueue('identitystore') });
  forQueue('smsgatewayaccount');
  queue.add('a');
  queue.add('b');
  queue.addAfter('c', 10);
  const text = await registry.metrics();
  assert.match(text, /^workqueue_depth\{name="identitystore"\} 2$/m);
  assert.match(text, /^workqueue_depth\{name="smsgatewayaccount"\} 0$/m);
  assert.match(text, /^workqueue_adds_total\{name="identitystore"\} 2$/m);
  assert.match(text, /^workqueue_retries_total\{name="identitystore"\} 1$/m);
  queue.start(1, ok);
  await clock.advance(20);
  const after = await registry.metrics();
  assert.match(after, /^workqueue_queue_duration_seconds_count\{name="identitystore"\} 3$/m);
  assert.match(after, /^workqueue_work_duration_seconds_count\{name="identitystore"\} 3$/m);
  assert.match(after, /^workqueue_work_duration_seconds_bucket\{le="1e-8",name="identitystore"\} 3$/m);
  assert.match(after, /^workqueue_depth\{name="identitystore"\} 0$/m);
});

metrics.run();

const property = suite('WorkQueue property');

property('every added key is eventually processed after its last add; no key runs twice at once; never more than N', async () => {
  const op = fc.oneof(
    fc.record({ type: fc.constant('add' as const), key: fc.constantFrom('a', 'b', 'c', 'd', 'e') }),
    fc.record({ type: fc.constant('wait' as const), ms: fc.integer({ min: 0, max: 300 }) }),
  );
  await fc.assert(
    fc.asyncProperty(
      fc.array(op, { minLength: 1, maxLength: 40 }),
      fc.array(fc.constantFrom('ok', 'error', 'terminal', 'requeue'), { maxLength: 30 }),
      fc.integer({ min: 1, max: 4 }),
      fc.array(fc.integer({ min: 0, max: 120 }), { minLength: 1, maxLength: 10 }),
      async (ops, outcomes, n, durations) => {
        const clock = new ManualClock();
        const queue = newQueue(clock);
        let call = 0;
        const lastAdd = new Map<string, number>();
        const rec = recorder(clock, async () => {
          const i = call++;
          await sleep(clock, durations[i % durations.length]!);
          const outcome = outcomes[i] ?? 'ok';
          if (outcome === 'error') throw new Error('retry me');
          if (outcome === 'terminal') throw new TerminalError('stop');
          return outcome === 'requeue' ? { requeueAfterMs: 50 } : {};
        });
        queue.start(n, rec.handler);
        for (const o of ops) {
          if (o.type === 'add') {
            queue.add(o.key);
            lastAdd.set(o.key, clock.now());
          } else {
            await clock.advance(o.ms);
          }
        }
        // Outcomes run out after 30 calls: from then on every run succeeds and the queue settles.
        for (let i = 0; i === 0 || (i < 50 && clock.pendingTimers() > 0); i++) await clock.advance(2_000_000);
        assert.is(rec.overlaps(), 0, 'a key ran twice at once');
        assert.ok(rec.peak() <= n, `peak ${rec.peak()} > ${n}`);
        for (const [key, at] of lastAdd) {
          assert.ok(
            rec.starts.some((s) => s.key === key && s.at >= at),
            `${key} added at ${at} was not processed afterwards`,
          );
        }
        assert.is(queue.len(), 0);
      },
    ),
    { numRuns: 150 },
  );
});

property.run();
