import { pino } from 'pino';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { LogScan } from './helpers/log-scan.ts';

// The suite's scanner (helpers/log-scan.ts) must catch what it is there to catch; a scanner that
// never fires would let every other test pass vacuously.
const test = suite('log scan');

test('finds a code logged before or after the gateway saw it, as a whole run of digits only', () => {
  const scan = new LogScan();
  scan.observe('a', '{"msg":"checking 482913"}\n');
  scan.message('+14155550123', '482913 is your code');
  scan.observe('b', '{"time":17648291348291,"verification":"VE019ca8d72d00a2297cdc482913f7918","msg":"ok"}\n{"code":"482913"}\n');
  assert.equal(
    scan.leaks.map((l) => [l.source, l.what]),
    [
      ['a', 'code'],
      ['b', 'code'],
    ],
  );
  assert.not.match(scan.leaks.map((l) => l.line).join(), '482913');
  assert.throws(() => scan.assertClean(), /a code in \{"msg":"checking <LEAKED>"\}/);
  scan.assertClean();
});

test('finds full numbers by shape and by value, in either spelling, across chunk boundaries', () => {
  const scan = new LogScan();
  scan.message('+33612345678', 'Code 9911');
  scan.observe('p', 'sending to 3361234');
  scan.observe('p', '5678 now\n');
  scan.observe('q', 'to +4915112345678\n');
  scan.observe('r', 'to +33 ••••••••• ok, time 1764362012345\n');
  assert.equal(
    scan.leaks.map((l) => [l.source, l.what]),
    [
      ['p', 'full number'],
      ['q', 'full number'],
    ],
  );
});

test('credentials, and the console gateway print as the one exemption (whose code it learns)', () => {
  const scan = new LogScan();
  scan.secret('Plivo auth token', 'plivo-token-1');
  scan.secret('too short to scan for', 'tok');
  scan.observe('s', '[smsauth console gateway] t/console to +1 •••••••••• (1 segment): 770011 is your code\n');
  scan.observe('s', '{"msg":"auth plivo-token-1 tok"}\n{"msg":"approved 770011"}\n');
  assert.equal(
    scan.leaks.map((l) => l.what),
    ['Plivo auth token', 'code'],
  );
});

test('a real pino logger through stream() is scanned', () => {
  const scan = new LogScan();
  scan.message('+14155550199', '123456 is your code');
  const log = pino({ level: 'info' }, scan.stream('pino'));
  log.info({ to: '+1 •••••••••• ' }, 'sent');
  assert.equal(scan.leaks, []);
  log.info({ text: '123456 is your code' }, 'oops');
  assert.equal(
    scan.leaks.map((l) => l.what),
    ['code'],
  );
});

test.run();
