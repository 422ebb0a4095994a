import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { watchTrees, type WatchOptions } from '../controller/adapters/watcher.ts';
import { ManualClock, type TimerHandle } from '../controller/core/clock.ts';
import { Signal, waitUntil } from './helpers/wait.ts';

/** ArmingClock is a ManualClock that tells when a timer is armed: the watcher arms its debounce on each change it sees. */
class ArmingClock extends ManualClock {
  armed = 0;
  private readonly arming = new Signal();
  override setTimeout(callback: () => void, ms: number): TimerHandle {
    this.armed++;
    this.arming.fire();
    return super.setTimeout(callback, ms);
  }
  nextArm(): Promise<void> {
    return this.arming.next();
  }
}

/** watched starts a watcher on a fresh folder and records what it reports. */
async function watched(
  options: WatchOptions = {},
): Promise<{ base: string; root: string; reasons: string[]; reportedAt: number[]; close(): Promise<void>; next(ms?: number): Promise<string> }> {
  const base = mkdtempSync(join(tmpdir(), 'smsauth-watch-'));
  const root = join(base, 'root');
  mkdirSync(root);
  writeFileSync(join(root, 'a.yaml'), 'a: 1\n');
  const reasons: string[] = [];
  const reportedAt: number[] = [];
  const waiting: ((r: string) => void)[] = [];
  const w = watchTrees(
    [root],
    (r) => {
      reasons.push(r);
      reportedAt.push(options.clock?.now() ?? Date.now());
      waiting.shift()?.(r);
    },
    { pollMs: 200, ...options },
  );
  await w.ready;
  return {
    base,
    root,
    reasons,
    reportedAt,
    close: () => w.close(),
    next: (ms = 5000) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no change reported within ${ms} ms`)), ms);
        waiting.push((r) => {
          clearTimeout(timer);
          resolve(r);
        });
      }),
  };
}

const test = suite('watchTrees');

test('a folder removed and made again is watched again: edits in the new one are reported', async () => {
  const w = await watched();
  try {
    rmSync(w.root, { recursive: true });
    mkdirSync(w.root);
    writeFileSync(join(w.root, 'a.yaml'), 'a: 2\n');
    // The poll notices the new folder, watches it and says so: the event to wait for.
    while (!w.reasons.some((r) => r.includes('was replaced'))) await w.next();
    const before = w.reasons.length;
    writeFileSync(join(w.root, 'b.yaml'), 'b: 1\n');
    // Reports until the edit's (a late one about the replacement may come first).
    const sawB = (): boolean => w.reasons.slice(before).some((r) => /add .*b\.yaml/.test(r));
    for (let i = 0; i < 3 && !sawB(); i++) await w.next();
    assert.ok(sawB(), `the edit in the new folder is seen: ${w.reasons.slice(before).join(' | ')}`);
  } finally {
    await w.close();
  }
});

test('a folder renamed over (mv new root) is watched again: edits in the new one are reported', async () => {
  const w = await watched();
  try {
    const next = join(w.base, 'next');
    mkdirSync(next);
    writeFileSync(join(next, 'a.yaml'), 'a: 3\n');
    renameSync(w.root, join(w.base, 'old'));
    renameSync(next, w.root);
    assert.match(await w.next(), /replaced/);
    writeFileSync(join(w.root, 'c.yaml'), 'c: 1\n');
    assert.match(await w.next(), /c\.yaml/);
  } finally {
    await w.close();
  }
});

test('a file that keeps changing is reported when the longest wait is over, not held back by the debounce', async () => {
  const clock = new ArmingClock(0);
  const w = await watched({ clock, debounceMs: 150, maxWaitMs: 1000, pollMs: 3_600_000 });
  try {
    // A change every 100 ms of the watcher's time: never the 150 ms of quiet the debounce waits for.
    for (let n = 0; w.reasons.length === 0 && n < 30; n++) {
      const armed = clock.armed;
      writeFileSync(join(w.root, `busy-${n}.yaml`), `n: ${n}\n`);
      await waitUntil(
        `the watcher to see busy-${n}.yaml`,
        () => clock.armed > armed,
        () => clock.nextArm(),
      );
      await clock.advance(100);
    }
    assert.equal(w.reportedAt, [1000], 'one report, when the longest wait after the first change is over');
    assert.match(w.reasons[0] ?? '', /busy-0\.yaml/);
  } finally {
    await w.close();
  }
});

test('changes in quick succession are reported once, after the quiet time', async () => {
  const clock = new ArmingClock(0);
  const w = await watched({ clock, debounceMs: 150, maxWaitMs: 1000, pollMs: 3_600_000 });
  try {
    for (const name of ['x.yaml', 'y.yaml']) {
      const armed = clock.armed;
      writeFileSync(join(w.root, name), 'v: 1\n');
      await waitUntil(
        `the watcher to see ${name}`,
        () => clock.armed > armed,
        () => clock.nextArm(),
      );
    }
    await clock.advance(149);
    assert.equal(w.reasons, [], 'nothing before the quiet time');
    await clock.advance(1);
    assert.equal(w.reportedAt, [150]);
    assert.match(w.reasons[0] ?? '', /x\.yaml.*y\.yaml/);
  } finally {
    await w.close();
  }
});

test.run();
