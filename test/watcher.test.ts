import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { watchTrees } from '../controller/adapters/watcher.ts';

/** watched starts a watcher on a fresh folder and records what it reports. */
async function watched(
  options: { maxWaitMs?: number } = {},
): Promise<{ base: string; root: string; reasons: string[]; close(): Promise<void>; next(ms?: number): Promise<string> }> {
  const base = mkdtempSync(join(tmpdir(), 'smsauth-watch-'));
  const root = join(base, 'root');
  mkdirSync(root);
  writeFileSync(join(root, 'a.yaml'), 'a: 1\n');
  const reasons: string[] = [];
  const waiting: ((r: string) => void)[] = [];
  const w = watchTrees(
    [root],
    (r) => {
      reasons.push(r);
      waiting.shift()?.(r);
    },
    { pollMs: 200, ...options },
  );
  await w.ready;
  return {
    base,
    root,
    reasons,
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

test('a file that keeps changing does not hold reports back past the longest wait', async () => {
  const w = await watched({ maxWaitMs: 1000 });
  const writer = setInterval(() => writeFileSync(join(w.root, 'busy.yaml'), `t: ${Date.now()}\n`), 50);
  try {
    const started = Date.now();
    await w.next(4000);
    assert.ok(Date.now() - started < 3000, 'reported while the file still changes');
  } finally {
    clearInterval(writer);
    await w.close();
  }
});

test.run();
