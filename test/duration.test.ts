import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { formatDuration, parseDuration } from '../controller/core/duration.ts';

const parse = suite('parseDuration');
const cases: [string, number | undefined][] = [
  ['30s', 30_000],
  ['10m', 600_000],
  ['1h30m', 5_400_000],
  ['1.5s', 1500],
  ['250ms', 250],
  ['2h', 7_200_000],
  ['', undefined],
  ['10', undefined],
  ['5 minutes', undefined],
  ['-1s', undefined],
  ['1d', undefined],
  ['s', undefined],
];
for (const [text, want] of cases) parse(JSON.stringify(text), () => assert.is(parseDuration(text), want));
parse.run();

const format = suite('formatDuration');
for (const [ms, want] of [
  [0, '0s'],
  [250, '250ms'],
  [30_000, '30s'],
  [5_400_000, '1h30m'],
  [86_400_000, '24h'],
] as const) {
  format(want, () => assert.is(formatDuration(ms), want));
}
format('round-trips with parseDuration', () => {
  for (const ms of [1, 999, 1000, 61_000, 3_723_004]) assert.is(parseDuration(formatDuration(ms)), ms);
});
format.run();
