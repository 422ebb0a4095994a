import fc from 'fast-check';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { isoTime } from '../controller/core/iso-time.ts';

const iso = suite('isoTime');

iso('writes what toISOString writes, for any whole millisecond of years 1970 to 9999', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 253_402_300_799_999 }), (ms) => {
      assert.is(isoTime(ms), new Date(ms).toISOString());
    }),
    { numRuns: 20_000 },
  );
});

iso('across one day: each hour, minute and second, and the days on either side', () => {
  const day = Date.UTC(2026, 11, 4);
  for (let ms = day - 1500; ms < day + 86_400_000 + 1500; ms += 997) assert.is(isoTime(ms), new Date(ms).toISOString(), String(ms));
  for (const ms of [day - 1, day, day + 86_399_999, day + 86_400_000, 0, 253_402_300_799_999]) assert.is(isoTime(ms), new Date(ms).toISOString());
});

iso('of what is not a whole millisecond of 1970 to 9999 is toISOString’s own answer, RangeError included', () => {
  for (const ms of [-1, -86_400_001, 1.5, Date.UTC(2026, 0, 1) + 0.25, 253_402_300_800_000, 8.64e15])
    assert.is(isoTime(ms), new Date(ms).toISOString(), String(ms));
  for (const ms of [Number.NaN, Number.POSITIVE_INFINITY, 8.64e15 + 1])
    assert.throws(
      () => isoTime(ms),
      (e: unknown) => e instanceof RangeError,
    );
});

iso.run();
