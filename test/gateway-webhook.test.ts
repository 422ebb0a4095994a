import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createGateway, GatewayConfigError } from '../controller/gateways/create-gateway.ts';
import { GatewayError, type SmsGateway } from '../controller/gateways/gateway.ts';
import { signWebhook, webhookSignatureProblem } from '../controller/gateways/webhook-signature.ts';
import type { Behaviour } from './gateways/fake-http.ts';
import { bundle, message, settled, TO } from './gateways/fixtures.ts';
import { assertNoLeak, captureLogs, errorText, messageSecrets, type CapturedLogs } from './gateways/leak-check.ts';
import { startWebhookPlugin, type FakePlugin } from './gateways/webhook-plugin.ts';

const SECRET = 'webhook-signing-secret-5Tg7';
const CALLBACK_URL = 'https://smsauth.example.com/v1/callbacks/default/webhook-main';

interface Ctx {
  plugin: FakePlugin;
  logs: CapturedLogs;
  gateway: SmsGateway;
}

async function setup(ctx: Ctx): Promise<void> {
  ctx.plugin = await startWebhookPlugin(SECRET);
  ctx.logs = captureLogs();
  ctx.gateway = createGateway(bundle('webhook', { url: ctx.plugin.url }), { signingSecret: SECRET }, { logger: ctx.logs.logger });
}

const send = suite<Ctx>('send (webhook plug-in)');
send.before.each(setup);
send.after.each((ctx) => ctx.plugin.close());

send('POSTs the documented JSON, signed so that a plug-in written from the docs accepts it', async (ctx) => {
  const { msg, code } = message({ validitySeconds: 480 });
  const result = await ctx.gateway.send(msg);
  assert.match(result.messageId, /^plugin-/);
  assert.equal(ctx.plugin.refusals, []);
  assert.equal(ctx.plugin.messages, [{ to: TO, text: msg.text, reference: msg.reference, namespace: 'default', account: 'main', validitySeconds: 480 }]);
  const request = ctx.plugin.requests[0]!;
  assert.is(request.url, '/sms');
  assert.is(request.headers['content-type'], 'application/json');
  assert.match(String(request.headers['x-smsauth-signature']), /^v1=[0-9a-f]{64}$/);
  assertNoLeak(ctx.logs.text(), { secret: SECRET, ...messageSecrets(code, TO) }, 'the log');
});

send('a plug-in with another secret refuses the request: AuthFailed', async (ctx) => {
  const gateway = createGateway(bundle('webhook', { url: ctx.plugin.url }), { signingSecret: 'not-the-secret' });
  const error = (await settled(gateway.send(message().msg))).error as GatewayError;
  assert.is(error.code, 'AuthFailed');
  assert.equal(ctx.plugin.refusals, ['bad signature']);
});

send('a clock more than 5 minutes off is refused by the plug-in', async (ctx) => {
  const gateway = createGateway(bundle('webhook', { url: ctx.plugin.url }), { signingSecret: SECRET }, { now: () => Date.now() - 301_000 });
  assert.is(((await settled(gateway.send(message().msg))).error as GatewayError).code, 'AuthFailed');
  assert.equal(ctx.plugin.refusals, ['stale timestamp']);
});

const errorCases: [Behaviour, string, number][] = [
  ['invalid-number', 'InvalidNumber', 422],
  ['forbidden', 'Forbidden', 403],
  ['insufficient-funds', 'InsufficientFunds', 402],
  ['rate-limited', 'RateLimited', 429],
  ['server-error', 'Transient', 502],
  ['rejected', 'Rejected', 400],
  [{ status: 418, body: { error: { code: 'NotOneOfOurs' } } }, 'Rejected', 418],
  [{ status: 503, body: 'down' }, 'Transient', 503],
  [{ status: 200, body: { ok: true } }, 'Rejected', 200],
];
for (const [behaviour, code, status] of errorCases) {
  send(`an answer ${status} ${JSON.stringify(behaviour)} is ${code}`, async (ctx) => {
    ctx.plugin.behaviours.then(behaviour);
    const { msg, code: secretCode } = message();
    const error = (await settled(ctx.gateway.send(msg))).error as GatewayError;
    assert.instance(error, GatewayError);
    assert.is(error.code, code);
    assert.is(error.details.httpStatus, status);
    if (code === 'RateLimited') assert.is(error.details.retryAfterMs, 1000);
    assertNoLeak(errorText(error) + ctx.logs.text(), { secret: SECRET, ...messageSecrets(secretCode, TO) }, 'the error and the log');
  });
}

send('times out a hanging plug-in', async (ctx) => {
  const gateway = createGateway(bundle('webhook', { url: ctx.plugin.url }, { timeoutMs: 200 }), { signingSecret: SECRET });
  ctx.plugin.behaviours.then('hang');
  const out = await settled(gateway.send(message().msg));
  assert.is((out.error as GatewayError).code, 'Transient');
  assert.match((out.error as GatewayError).message, /no answer within 200 ms/, "the account's timeout ended the wait");
});

send('refuses a url with credentials in it and a proxy without a proxy-aware fetch', () => {
  assert.throws(
    () => createGateway(bundle('webhook', { url: 'https://user:pw@sms.example.com/' }), { signingSecret: SECRET }),
    (e: unknown) => e instanceof GatewayConfigError && !e.message.includes('pw@'),
  );
  assert.throws(
    () => createGateway(bundle('webhook', { url: 'https://sms.example.com/' }, { proxy: { url: 'http://proxy:3128' } }), { signingSecret: SECRET }),
    (e: unknown) => e instanceof GatewayConfigError && e.field === 'spec.proxy',
  );
});

send('sends through the proxy-aware fetch it is given', async (ctx) => {
  const seen: { url: string; proxy: unknown }[] = [];
  const gateway = createGateway(
    bundle(
      'webhook',
      { url: ctx.plugin.url },
      { proxy: { url: 'http://proxy.internal:3128', username: { name: 'p', key: 'u' }, password: { name: 'p', key: 'p' } } },
    ),
    { signingSecret: SECRET, 'proxy.username': 'u1', 'proxy.password': 'p1' },
    { proxyFetch: (proxy) => (url, init) => (seen.push({ url, proxy }), fetch(url, init)) },
  );
  await gateway.send(message().msg);
  assert.equal(seen, [{ url: ctx.plugin.url, proxy: { url: 'http://proxy.internal:3128', username: 'u1', password: 'p1' } }]);
});

send.run();

const credentials = suite<Ctx>('testCredentials (webhook)');
credentials.before.each(setup);
credentials.after.each((ctx) => ctx.plugin.close());

credentials('a signed GET that the plug-in accepts', async (ctx) => {
  await ctx.gateway.testCredentials();
  assert.is(ctx.plugin.requests.at(-1)!.method, 'GET');
  assert.equal(ctx.plugin.refusals, []);
});

credentials('a wrong secret is AuthFailed', async (ctx) => {
  const gateway = createGateway(bundle('webhook', { url: ctx.plugin.url }), { signingSecret: 'wrong' });
  assert.is(((await settled(gateway.testCredentials())).error as GatewayError).code, 'AuthFailed');
});

credentials.run();

const signatures = suite('webhookSignatureProblem');

signatures('accepts its own signature, any of several v1 values, and refuses the rest with a reason', () => {
  const now = 1_700_000_000_000;
  const body = '{"messageId":"m1","status":"delivered"}';
  const headers = signWebhook(SECRET, body, now);
  const ts = headers['X-Smsauth-Timestamp'];
  const sig = headers['X-Smsauth-Signature']!;
  assert.is(webhookSignatureProblem(SECRET, body, ts, sig, now), null);
  assert.is(webhookSignatureProblem(SECRET, body, ts, `v1=${'0'.repeat(64)}, ${sig}`, now + 299_000), null);
  assert.is(webhookSignatureProblem(SECRET, body, ts, sig, now + 301_000), 'timestamp outside the 5-minute tolerance');
  assert.is(webhookSignatureProblem(SECRET, body, ts, sig, now - 301_000), 'timestamp outside the 5-minute tolerance');
  assert.is(webhookSignatureProblem(SECRET, `${body} `, ts, sig, now), 'wrong signature');
  assert.is(webhookSignatureProblem('other', body, ts, sig, now), 'wrong signature');
  assert.is(webhookSignatureProblem(SECRET, body, undefined, sig, now), 'no signature headers');
  assert.is(webhookSignatureProblem(SECRET, body, 'soon', sig, now), 'unreadable timestamp');
});

signatures.run();

const receipts = suite<Ctx>('readReceipt (webhook)');
receipts.before.each(setup);
receipts.after.each((ctx) => ctx.plugin.close());

receipts('reads one receipt or a list, signed the same way', (ctx) => {
  assert.equal(ctx.gateway.readReceipt(ctx.plugin.callback(CALLBACK_URL, { messageId: 'plugin-1', status: 'delivered' })), [
    { messageId: 'plugin-1', status: 'delivered' },
  ]);
  assert.equal(
    ctx.gateway.readReceipt(
      ctx.plugin.callback(CALLBACK_URL, [
        { messageId: 'plugin-2', status: 'failed', errorCode: 'E42' },
        { messageId: 'plugin-3', status: 'bogus' },
        { status: 'sent' },
      ]),
    ),
    [{ messageId: 'plugin-2', status: 'failed', errorCode: 'E42' }],
  );
});

receipts('refuses replays older than 5 minutes, other secrets and unsigned callbacks', (ctx) => {
  assert.is(
    ctx.gateway.readReceipt(ctx.plugin.callback(CALLBACK_URL, { messageId: 'm', status: 'delivered' }, { timestamp: Math.floor(Date.now() / 1000) - 400 })),
    undefined,
  );
  assert.is(ctx.gateway.readReceipt(ctx.plugin.callback(CALLBACK_URL, { messageId: 'm', status: 'delivered' }, { secret: 'other' })), undefined);
  const good = ctx.plugin.callback(CALLBACK_URL, { messageId: 'm', status: 'failed' });
  assert.is(ctx.gateway.readReceipt({ ...good, headers: { 'content-type': 'application/json' } }), undefined);
  assert.is(ctx.gateway.readReceipt({ ...good, body: Buffer.from(good.body.toString().replace('failed', 'delivered')) }), undefined);
});

receipts('a signed body that is not JSON reads as no receipt', (ctx) => {
  assert.equal(ctx.gateway.readReceipt(ctx.plugin.callback(CALLBACK_URL, null, { rawBody: 'not json' })), []);
});

receipts.run();
