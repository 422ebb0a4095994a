import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ManualClock, repeat } from '../controller/core/clock.ts';

const clock = suite('repeat');

clock('the first call after firstMs, then every everyMs from it (a random start stays spread), until stopped', async () => {
  const c = new ManualClock(0);
  const calls: number[] = [];
  const stop = repeat(c, 1000, () => calls.push(c.now()), 250);
  await c.advance(3300);
  assert.equal(calls, [250, 1250, 2250, 3250]);
  stop();
  await c.advance(5000);
  assert.equal(calls, [250, 1250, 2250, 3250], 'stopped');
  const plain: number[] = [];
  repeat(c, 500, () => plain.push(c.now()));
  await c.advance(1000);
  assert.equal(plain, [8800, 9300], 'without firstMs: the first after everyMs');
});

clock.run();
