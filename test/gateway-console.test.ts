import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { OutboxEntry } from '../controller/gateways/console-gateway.ts';
import { createGateway } from '../controller/gateways/create-gateway.ts';
import { GatewayError, type SmsGateway } from '../controller/gateways/gateway.ts';
import { bundle, message, settled, TO } from './gateways/fixtures.ts';
import { assertNoLeak, captureLogs, errorText, messageSecrets, type CapturedLogs } from './gateways/leak-check.ts';

interface Ctx {
  dir: string;
  outbox: string;
  printed: string[];
  logs: CapturedLogs;
  gateway: SmsGateway;
}

const send = suite<Ctx>('send (console)');

send.before.each(async (ctx) => {
  ctx.dir = await mkdtemp(join(tmpdir(), 'smsauth-console-'));
  ctx.outbox = join(ctx.dir, 'state', 'outbox.jsonl');
  ctx.printed = [];
  ctx.logs = captureLogs();
  ctx.gateway = createGateway(
    bundle('console', {}, { name: 'console-dev' }),
    {},
    { logger: ctx.logs.logger, console: { outboxPath: ctx.outbox, print: (line) => ctx.printed.push(line) } },
  );
});
send.after.each((ctx) => rm(ctx.dir, { recursive: true, force: true }));

const readOutbox = async (path: string): Promise<OutboxEntry[]> =>
  (await readFile(path, 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as OutboxEntry);

send('prints the code with the number masked', async (ctx) => {
  const { msg, code } = message();
  await ctx.gateway.send(msg);
  assert.is(ctx.printed.length, 1);
  const line = ctx.printed[0]!;
  assert.ok(line.includes(code), 'the code is visible on the terminal');
  assert.ok(line.includes('+33 •••••••••'), 'the number is masked');
  assert.not.ok(line.includes(TO.slice(1)), 'the full number is not printed');
  assert.ok(line.includes('default/console-dev'));
});

send('prints a message of several lines (an origin-bound code) as one line, escaped', async (ctx) => {
  const { msg, code } = message();
  await ctx.gateway.send({ ...msg, text: `${code} is your code\n\n@login.example #${code}` });
  assert.equal(ctx.printed.length, 1);
  assert.not.ok(ctx.printed[0]!.includes('\n'));
  assert.ok(ctx.printed[0]!.endsWith(`: ${code} is your code\\n\\n@login.example #${code}`));
});

send('appends {time, namespace, gateway, to, text, messageId} lines, with the full number and text, to a 0600 outbox', async (ctx) => {
  const first = message();
  const second = message({ namespace: 'helpdesk', to: '+447700900123' });
  const r1 = await ctx.gateway.send(first.msg);
  const r2 = await ctx.gateway.send(second.msg);
  const entries = await readOutbox(ctx.outbox);
  assert.is(entries.length, 2);
  assert.equal(
    entries.map(({ time: _t, ...rest }) => rest),
    [
      { namespace: 'default', gateway: 'console-dev', to: TO, text: first.msg.text, messageId: r1.messageId, reference: first.msg.reference },
      { namespace: 'helpdesk', gateway: 'console-dev', to: '+447700900123', text: second.msg.text, messageId: r2.messageId, reference: second.msg.reference },
    ],
  );
  assert.ok(!Number.isNaN(Date.parse(entries[0]!.time)));
  assert.is((await stat(ctx.outbox)).mode & 0o777, 0o600);
});

send('a script can read the latest code for a number from the outbox', async (ctx) => {
  await ctx.gateway.send(message().msg);
  const { msg, code } = message();
  await ctx.gateway.send(msg);
  const latest = (await readOutbox(ctx.outbox)).filter((e) => e.to === TO).at(-1)!;
  assert.is(/\b(\d{6})\b/.exec(latest.text)?.[1], code);
});

send('logs neither the code nor the full number', async (ctx) => {
  const { msg, code } = message();
  await ctx.gateway.send(msg);
  assertNoLeak(ctx.logs.text(), messageSecrets(code, TO), 'the log');
  assert.ok(ctx.logs.text().includes('+33 •••••••••'));
});

send('an outbox that cannot be written is a Transient error that names no path content', async (ctx) => {
  const gateway = createGateway(bundle('console', {}), {}, { console: { outboxPath: ctx.dir, print: () => undefined } });
  const { msg, code } = message();
  const error = (await settled(gateway.send(msg))).error as GatewayError;
  assert.instance(error, GatewayError);
  assert.is(error.code, 'Transient');
  assert.match(error.message, /EISDIR/);
  assertNoLeak(errorText(error), messageSecrets(code, TO), 'the error');
});

send('without an outbox it only prints', async (ctx) => {
  const gateway = createGateway(bundle('console', {}), {}, { console: { print: (line) => ctx.printed.push(line) } });
  const result = await gateway.send(message().msg);
  assert.match(result.messageId, /^console-/);
  assert.is(ctx.printed.length, 1);
});

send.run();

const others = suite('testCredentials and readReceipt (console)');

others('has no credentials to check and accepts no receipts', async () => {
  const gateway = createGateway(bundle('console', {}), {}, { console: { print: () => undefined } });
  await gateway.testCredentials();
  assert.is(gateway.readReceipt({ url: 'http://x/', method: 'POST', headers: {}, body: Buffer.from('{}') }), undefined);
});

others.run();
