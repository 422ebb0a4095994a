/** TimerHandle is the opaque value Clock.setTimeout returns, to cancel that timer with Clock.clearTimeout. */
export type TimerHandle = object;

/** Clock is the time source and timer scheduler the work queue and leader election use, injectable for tests. */
export interface Clock {
  /** now returns epoch milliseconds. */
  now(): number;
  setTimeout(callback: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

/** Node's setTimeout fires at once (with a warning) for delays above 2^31-1 ms; longer timers are re-armed in steps. */
const MAX_NODE_DELAY_MS = 2_147_483_647;

interface SystemTimer {
  timeout: ReturnType<typeof setTimeout> | undefined;
}

/** systemClock is the real clock: Date.now and Node's timers, with delays of any length. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout(callback: () => void, ms: number): TimerHandle {
    const timer: SystemTimer = { timeout: undefined };
    // NaN waits 0 ms, as Node does; Infinity never fires.
    const due = Date.now() + (Number.isNaN(ms) ? 0 : Math.max(0, ms));
    const arm = (): void => {
      const left = due - Date.now();
      if (left > MAX_NODE_DELAY_MS) timer.timeout = setTimeout(arm, MAX_NODE_DELAY_MS);
      else timer.timeout = setTimeout(callback, Math.max(0, left));
    };
    arm();
    return timer;
  },
  clearTimeout(handle: TimerHandle): void {
    const timer = handle as SystemTimer;
    if (timer.timeout !== undefined) clearTimeout(timer.timeout);
    timer.timeout = undefined;
  },
};

interface ManualTimer {
  due: number;
  seq: number;
  callback: () => void;
}

/**
 * ManualClock is a Clock that only moves when told (advance), running due timers in time order and
 * letting pending promise callbacks settle after each, so timer-driven async code runs deterministically
 * (like k8s.io/utils/clock/testing's FakeClock).
 */
export class ManualClock implements Clock {
  private current: number;
  private seq = 0;
  private readonly timers = new Map<TimerHandle, ManualTimer>();

  constructor(startMs = 0) {
    this.current = startMs;
  }

  now(): number {
    return this.current;
  }

  setTimeout(callback: () => void, ms: number): TimerHandle {
    const handle = {};
    const delay = Number.isNaN(ms) ? 0 : Math.max(0, ms);
    this.timers.set(handle, { due: this.current + delay, seq: this.seq++, callback });
    return handle;
  }

  clearTimeout(handle: TimerHandle): void {
    this.timers.delete(handle);
  }

  /** pendingTimers counts the timers scheduled and not yet fired or cleared. */
  pendingTimers(): number {
    return this.timers.size;
  }

  /** nextDue returns when the earliest pending timer fires, or undefined when none is pending. */
  nextDue(): number | undefined {
    return this.earliest()?.[1].due;
  }

  /** flush lets every pending promise callback (microtask) run, without moving time. */
  async flush(): Promise<void> {
    for (let i = 0; i < 3; i++) await new Promise<void>((resolve) => setImmediate(resolve));
  }

  /** advance moves time forward by ms, firing each timer due on the way at its due time, in order. */
  async advance(ms: number): Promise<void> {
    const target = this.current + Math.max(0, ms);
    await this.flush();
    for (let fired = 0; ; fired++) {
      if (fired > 1_000_000) throw new Error('ManualClock.advance: more than a million timers fired; a timer loop?');
      const next = this.earliest();
      if (next === undefined || next[1].due > target) break;
      this.timers.delete(next[0]);
      this.current = Math.max(this.current, next[1].due);
      next[1].callback();
      await this.flush();
    }
    this.current = target;
    await this.flush();
  }

  private earliest(): [TimerHandle, ManualTimer] | undefined {
    let best: [TimerHandle, ManualTimer] | undefined;
    for (const entry of this.timers) {
      const timer = entry[1];
      if (best === undefined || timer.due < best[1].due || (timer.due === best[1].due && timer.seq < best[1].seq)) best = entry;
    }
    return best;
  }
}

/**
 * repeat calls fn every everyMs on the clock, the first time after firstMs (default everyMs), each
 * call scheduled from the one before: a random firstMs spreads replicas started together for good,
 * not only at their first call. It returns the function that stops it.
 */
export function repeat(clock: Clock, everyMs: number, fn: () => void, firstMs = everyMs): () => void {
  let stopped = false;
  let handle: TimerHandle;
  const tick = (): void => {
    if (stopped) return;
    handle = clock.setTimeout(tick, everyMs);
    fn();
  };
  handle = clock.setTimeout(tick, firstMs);
  return () => {
    stopped = true;
    clock.clearTimeout(handle);
  };
}
