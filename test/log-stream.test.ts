import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, readSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { stderrLog } from '../controller/adapters/log-stream.ts';

/** A named pipe, its reading end (never blocking) and its writing end (non-blocking, as Node leaves a piped stderr). */
function pipe(): { reader: number; writer: number; drain: () => string } {
  const path = join(mkdtempSync(join(tmpdir(), 'smsauth-log-')), 'fifo');
  execFileSync('mkfifo', [path]);
  const reader = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  const writer = openSync(path, constants.O_WRONLY | constants.O_NONBLOCK);
  const drain = (): string => {
    const chunks: Buffer[] = [];
    const buf = Buffer.alloc(1 << 16);
    for (;;) {
      let n: number;
      try {
        n = readSync(reader, buf);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EAGAIN') break;
        throw err;
      }
      if (n === 0) break;
      chunks.push(Buffer.from(buf.subarray(0, n)));
    }
    return Buffer.concat(chunks).toString('utf8');
  };
  return { reader, writer, drain };
}

test('a full pipe drops lines without holding the process for ever, and no two lines run together', () => {
  const { reader, writer, drain } = pipe();
  const log = stderrLog(writer);
  const line = (i: number): string => `${JSON.stringify({ i, pad: 'x'.repeat(5000) })}\n`;
  // Nobody reads: the pipe fills, and what does not fit is dropped, a line possibly cut short.
  for (let i = 0; i < 40; i++) log.write(line(i));
  const first = drain();
  log.write(line(100));
  const after = drain();
  const lines = (first + after).split('\n').filter((l) => l !== '');
  // Every line but a cut one is whole JSON, and the line written once the pipe had room is there, whole.
  const whole = lines.filter((l) => {
    try {
      JSON.parse(l);
      return true;
    } catch {
      return false;
    }
  });
  assert.ok(lines.length - whole.length <= 1, `at most one cut line: ${lines.length - whole.length}`);
  assert.ok(whole.length < 40, 'lines were dropped');
  assert.is((JSON.parse(whole.at(-1)!) as { i: number }).i, 100);
  closeSync(reader);
  closeSync(writer);
});

test('a reader gone (EPIPE) ends the writing: nothing thrown, and later lines cost nothing', () => {
  const { reader, writer, drain } = pipe();
  const log = stderrLog(writer);
  log.write('{"a":1}\n');
  assert.is(drain(), '{"a":1}\n');
  closeSync(reader);
  log.write('{"a":2}\n');
  log.write('{"a":3}\n');
  closeSync(writer);
});

test.run();
