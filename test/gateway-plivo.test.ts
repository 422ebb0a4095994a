import { execFile } from 'node:child_process';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createGateway, GatewayConfigError } from '../controller/gateways/create-gateway.ts';
import { GatewayError, type SmsGateway } from '../controller/gateways/gateway.ts';
import { deliver, startCallbackReceiver } from './gateways/callback-receiver.ts';
import { startConnectProxy } from './gateways/connect-proxy.ts';
import type { Behaviour } from './gateways/fake-http.ts';
import { bundle, message, settled, TO } from './gateways/fixtures.ts';
import { assertNoLeak, captureLogs, errorText, messageSecrets, type CapturedLogs } from './gateways/leak-check.ts';
import { startPlivoServer, type FakePlivo } from './gateways/plivo-server.ts';

const AUTH_ID = 'MAFAKEAUTHID0000001';
const AUTH_TOKEN = 'plivo-token-Zx81kq0w';
const CALLBACK_URL = 'https://smsauth.example.com/v1/callbacks/default/plivo-main';
const SECRETS = { 'auth token': AUTH_TOKEN, 'basic credentials': Buffer.from(`${AUTH_ID}:${AUTH_TOKEN}`).toString('base64') };

interface Ctx {
  plivo: FakePlivo;
  logs: CapturedLogs;
  gateway: SmsGateway;
}

async function setup(ctx: Ctx, timeoutMs = 2000, token = AUTH_TOKEN): Promise<void> {
  ctx.plivo = await startPlivoServer({ authId: AUTH_ID, authToken: AUTH_TOKEN });
  ctx.logs = captureLogs();
  ctx.gateway = createGateway(
    bundle('plivo', { source: '+14155550100', baseUrl: ctx.plivo.baseUrl }, { timeoutMs, statusCallbackUrl: CALLBACK_URL }),
    { authId: AUTH_ID, authToken: token },
    { logger: ctx.logs.logger },
  );
}

async function sendFails(gateway: SmsGateway, code: string, msg = message()): Promise<GatewayError> {
  const out = await settled(gateway.send(msg.msg));
  const error = out.error;
  assert.ok(error instanceof GatewayError, out.error === undefined ? 'expected a GatewayError, the send succeeded' : 'expected a GatewayError');
  assert.is(error.code, code, error.message);
  assertNoLeak(errorText(error), { ...SECRETS, ...messageSecrets(msg.code, msg.msg.to) }, `the ${code} error`);
  return error;
}

const send = suite<Ctx>('send (plivo, through the plivo SDK)');
send.before.each((ctx) => setup(ctx));
send.after.each((ctx) => ctx.plivo.close());

send('sends through POST /v1/Account/{authId}/Message/ with log off, message_expiry and the delivery-report url', async (ctx) => {
  const { msg, code } = message({ validitySeconds: 540 });
  const result = await ctx.gateway.send(msg);
  assert.is(result.provider, 'plivo');
  assert.is(result.segments, 1);
  const request = ctx.plivo.requests.at(-1)!;
  assert.is(request.method, 'POST');
  assert.is(request.url, `/v1/Account/${AUTH_ID}/Message/`);
  const sent = ctx.plivo.messages.at(-1)!;
  assert.is(sent.src, '+14155550100');
  assert.is(sent.dst, TO.slice(1));
  assert.ok(sent.text.includes(code));
  assert.is(sent.log, false, 'Plivo must be asked not to log the text');
  assert.is(sent.message_expiry, 540);
  assert.is(sent.url, CALLBACK_URL);
  assert.is(sent.method, 'POST');
  const logs = ctx.logs.text();
  assert.ok(logs.includes(result.messageId), 'the message id is logged');
  assert.ok(logs.includes('+33 •••••••••'), 'the masked number is logged');
  assertNoLeak(logs, { ...SECRETS, ...messageSecrets(code, TO) }, 'the log');
});

send("keeps message_expiry within Plivo's 5 to 10799 seconds", async (ctx) => {
  await ctx.gateway.send(message({ validitySeconds: 2 }).msg);
  await ctx.gateway.send(message({ validitySeconds: 86_400 }).msg);
  assert.equal(
    ctx.plivo.messages.map((m) => m.message_expiry),
    [5, 10_799],
  );
});

send('reports a text longer than one segment before sending', async (ctx) => {
  const { msg } = message({ text: 'x'.repeat(200) });
  const result = await ctx.gateway.send(msg);
  assert.is(result.segments, 2);
  const warning = ctx.logs.lines().find((l) => l.level === 40 && l.segments === 2);
  assert.ok(warning, 'a warning names the segment count');
  assert.is(warning.encoding, 'GSM-7');
});

const errorCases: [string, Behaviour, string, number | undefined][] = [
  ['an invalid destination', 'invalid-number', 'InvalidNumber', 400],
  ['geo permissions (403 on /Message/)', 'forbidden', 'Forbidden', 403],
  ['insufficient credit', 'insufficient-funds', 'InsufficientFunds', 400],
  ['429 rate limiting', 'rate-limited', 'RateLimited', 429],
  ['503 (no SDK class: a bare axios message)', 'server-error', 'Transient', 503],
  ['500 with a JSON body (ServerError)', { status: 500, body: { api_id: 'x', error: 'internal error' } }, 'Transient', 500],
  ['another 400', 'rejected', 'Rejected', 400],
  ['402', { status: 402, body: { api_id: 'x', error: 'payment required' } }, 'InsufficientFunds', 402],
  ['a dropped connection', 'reset', 'Transient', undefined],
];
for (const [name, behaviour, code, status] of errorCases) {
  send(`maps ${name} to ${code}, keeping no text, code, number or secret`, async (ctx) => {
    ctx.plivo.behaviours.then(behaviour);
    const error = await sendFails(ctx.gateway, code);
    assert.is(error.details.httpStatus, status);
    assert.is(error.details.provider, 'plivo');
    assert.is(error.cause, undefined, 'the SDK error (which holds the request body) is not kept as a cause');
    assertNoLeak(ctx.logs.text(), SECRETS, 'the log');
  });
}

send('maps wrong credentials to AuthFailed', async (ctx) => {
  const gateway = createGateway(
    bundle('plivo', { source: '+14155550100', baseUrl: ctx.plivo.baseUrl }),
    { authId: AUTH_ID, authToken: 'wrong-token' },
    { logger: ctx.logs.logger },
  );
  const error = await sendFails(gateway, 'AuthFailed');
  assert.is(error.details.httpStatus, 401);
  assertNoLeak(errorText(error), { 'wrong token': 'wrong-token' }, 'the AuthFailed error');
});

send('an unreachable API is Transient', async (ctx) => {
  await ctx.plivo.close();
  await sendFails(createGateway(bundle('plivo', { source: 'X', baseUrl: ctx.plivo.baseUrl }), { authId: AUTH_ID, authToken: AUTH_TOKEN }), 'Transient');
});

send("a hanging API times out at the account's timeout, as Transient", async (ctx) => {
  const gateway = createGateway(bundle('plivo', { source: 'X', baseUrl: ctx.plivo.baseUrl }, { timeoutMs: 300 }), { authId: AUTH_ID, authToken: AUTH_TOKEN });
  ctx.plivo.behaviours.then('hang');
  const { msg } = message();
  const out = await settled(gateway.send(msg));
  assert.instance(out.error, GatewayError);
  assert.is((out.error as GatewayError).code, 'Transient');
  assert.match((out.error as GatewayError).message, /no answer within the timeout/, "the account's timeout ended the wait");
});

send('a slow answer within the timeout succeeds', async (ctx) => {
  ctx.plivo.behaviours.then({ slowMs: 150 });
  const result = await ctx.gateway.send(message().msg);
  assert.ok(result.messageId.length > 0);
});

send("the caller's deadline abandons the wait before the timeout", async (ctx) => {
  const gateway = createGateway(bundle('plivo', { source: 'X', baseUrl: ctx.plivo.baseUrl }, { timeoutMs: 10_000 }), {
    authId: AUTH_ID,
    authToken: AUTH_TOKEN,
  });
  ctx.plivo.behaviours.then('hang');
  const out = await settled(gateway.send(message().msg, AbortSignal.timeout(150)));
  assert.is((out.error as GatewayError).code, 'Transient');
  assert.match((out.error as GatewayError).message, /deadline/);
});

send('goes through the proxy, with its credentials, for an https API', async (ctx) => {
  const proxy = await startConnectProxy(502);
  try {
    const gateway = createGateway(
      bundle(
        'plivo',
        { source: 'X', baseUrl: 'https://api.plivo.invalid' },
        { proxy: { url: proxy.url, username: { name: 'p', key: 'u' }, password: { name: 'p', key: 'p' } } },
      ),
      { authId: AUTH_ID, authToken: AUTH_TOKEN, 'proxy.username': 'proxy-user', 'proxy.password': 'proxy-pa$$' },
    );
    const { msg, code } = message();
    const out = await settled(gateway.send(msg));
    assert.instance(out.error, GatewayError);
    assert.is(proxy.connects.length, 1);
    assert.is(proxy.connects[0]!.target, 'api.plivo.invalid:443');
    assert.is(proxy.connects[0]!.headers['proxy-authorization'], `Basic ${Buffer.from('proxy-user:proxy-pa$$').toString('base64')}`);
    assert.is(ctx.plivo.requests.length, 0);
    assertNoLeak(
      errorText(out.error),
      { ...SECRETS, ...messageSecrets(code, TO), 'proxy password': 'proxy-pa$$', 'encoded proxy password': 'proxy-pa%24%24' },
      'the error',
    );
  } finally {
    await proxy.close();
  }
});

send('refuses a proxy with an http API, which the SDK would bypass', () => {
  assert.throws(
    () =>
      createGateway(bundle('plivo', { source: 'X', baseUrl: 'http://127.0.0.1:9' }, { proxy: { url: 'http://127.0.0.1:3128' } }), {
        authId: AUTH_ID,
        authToken: AUTH_TOKEN,
      }),
    (err: unknown) => err instanceof GatewayConfigError && err.field === 'spec.proxy',
  );
});

send.run();

const credentials = suite<Ctx>('testCredentials (plivo)');
credentials.before.each((ctx) => setup(ctx));
credentials.after.each((ctx) => ctx.plivo.close());

credentials('reads the account resource', async (ctx) => {
  await ctx.gateway.testCredentials();
  const request = ctx.plivo.requests.at(-1)!;
  assert.is(request.method, 'GET');
  assert.match(request.url, new RegExp(`^/v1/Account/${AUTH_ID}/+$`));
  assert.ok(ctx.logs.text().includes('credentials accepted'));
});

credentials('wrong credentials are AuthFailed', async (ctx) => {
  await ctx.plivo.close();
  await setup(ctx, 2000, 'not-the-token');
  const out = await settled(ctx.gateway.testCredentials());
  assert.is((out.error as GatewayError).code, 'AuthFailed');
  assertNoLeak(errorText(out.error) + ctx.logs.text(), { token: 'not-the-token' }, 'the error and log');
});

credentials.run();

const receipts = suite<Ctx>('readReceipt (plivo, X-Plivo-Signature-V3 through the SDK)');
receipts.before.each((ctx) => setup(ctx));
receipts.after.each((ctx) => ctx.plivo.close());

const report = (status: string, extra: Record<string, string> = {}): Record<string, string> => ({
  MessageUUID: 'db3ce55a-7f1d-11e1-8ea7-1231380bc196',
  To: TO.slice(1),
  From: '14155550100',
  Status: status,
  Units: '1',
  TotalRate: '0.0050',
  TotalAmount: '0.0050',
  MCC: '208',
  MNC: '01',
  ...extra,
});

receipts('reads a signed delivered report', (ctx) => {
  assert.equal(ctx.gateway.readReceipt(ctx.plivo.callback(CALLBACK_URL, report('delivered'))), [
    { messageId: 'db3ce55a-7f1d-11e1-8ea7-1231380bc196', status: 'delivered' },
  ]);
});

receipts('keeps the error code of an undelivered report', (ctx) => {
  assert.equal(ctx.gateway.readReceipt(ctx.plivo.callback(CALLBACK_URL, report('undelivered', { ErrorCode: '200' }))), [
    { messageId: 'db3ce55a-7f1d-11e1-8ea7-1231380bc196', status: 'undelivered', errorCode: '200' },
  ]);
});

receipts('maps Plivo statuses', (ctx) => {
  const got = ['queued', 'sent', 'failed', 'rejected', 'read'].map((s) => ctx.gateway.readReceipt(ctx.plivo.callback(CALLBACK_URL, report(s)))?.[0]?.status);
  assert.equal(got, ['queued', 'sent', 'failed', 'failed', 'delivered']);
});

receipts('reads a signed GET report and a URL with a query', (ctx) => {
  assert.is(ctx.gateway.readReceipt(ctx.plivo.callback(CALLBACK_URL, report('sent'), { method: 'GET' }))?.[0]?.status, 'sent');
  assert.is(ctx.gateway.readReceipt(ctx.plivo.callback(`${CALLBACK_URL}?tenant=a`, report('sent')))?.[0]?.status, 'sent');
});

receipts('refuses a report signed with another token, tampered, re-addressed or unsigned', (ctx) => {
  assert.is(ctx.gateway.readReceipt(ctx.plivo.callback(CALLBACK_URL, report('delivered'), { authToken: 'someone-else' })), undefined);
  const good = ctx.plivo.callback(CALLBACK_URL, report('failed'));
  assert.is(ctx.gateway.readReceipt({ ...good, body: Buffer.from(good.body.toString().replace('failed', 'delivered')) }), undefined);
  assert.is(ctx.gateway.readReceipt({ ...good, url: `${CALLBACK_URL}-other` }), undefined);
  assert.is(ctx.gateway.readReceipt({ ...good, headers: { 'content-type': 'application/x-www-form-urlencoded' } }), undefined);
  assert.is(ctx.gateway.readReceipt({ ...good, headers: { ...good.headers, 'x-plivo-signature-v3-nonce': '12345' } }), undefined);
  assert.ok(ctx.logs.text().includes('delivery receipt refused'));
});

receipts('a signed report with an unknown status reads as no receipt', (ctx) => {
  assert.equal(ctx.gateway.readReceipt(ctx.plivo.callback(CALLBACK_URL, report('exploded'))), []);
});

receipts('reads a report delivered over HTTP', async (ctx) => {
  const receiver = await startCallbackReceiver();
  try {
    const url = `${receiver.origin}/v1/callbacks/default/plivo-main`;
    assert.is(await deliver(ctx.plivo.callback(url, report('delivered'))), 204);
    assert.is(ctx.gateway.readReceipt(receiver.received[0]!)?.[0]?.status, 'delivered');
  } finally {
    await receiver.close();
  }
});

receipts.run();

const loading = suite('plivo SDK loading (STYLE rule 3)');

loading("the SDK, which replaces axios' global agents, loads only when a plivo gateway is used", async () => {
  const script = `
    import { createRequire } from 'node:module';
    const require = createRequire(import.meta.url);
    const loaded = () => Object.keys(require.cache).some((k) => k.includes('/node_modules/plivo/'));
    const { createGateway } = await import('./controller/gateways/create-gateway.ts');
    const before = loaded();
    const bundle = (provider, settings) => ({ name: 'a', provider, settings, credentials: {}, timeoutMs: 100 });
    createGateway(bundle('twilio', { from: 'X' }), { accountSid: 'AC1', authToken: 't' });
    const plivo = createGateway(bundle('plivo', { source: 'X', baseUrl: 'http://127.0.0.1:9' }), { authId: 'MA', authToken: 't' });
    const afterCreate = loaded();
    await plivo.testCredentials().catch(() => undefined);
    console.log(JSON.stringify({ before, afterCreate, afterUse: loaded() }));
  `;
  const out = await new Promise<string>((resolve, reject) => {
    execFile(process.execPath, ['--input-type=module', '-e', script], { cwd: process.cwd() }, (err, stdout, stderr) =>
      err ? reject(new Error(stderr)) : resolve(stdout),
    );
  });
  assert.equal(JSON.parse(out.trim().split('\n').at(-1)!), { before: false, afterCreate: false, afterUse: true });
});

loading.run();
