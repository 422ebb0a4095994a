import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createGateway, GatewayConfigError } from '../controller/gateways/create-gateway.ts';
import { gatewayError } from '../controller/gateways/provider-request.ts';
import { GatewayError, type SmsGateway } from '../controller/gateways/gateway.ts';
import { twilioSignature } from '../controller/gateways/twilio-gateway.ts';
import type { Behaviour } from './gateways/fake-http.ts';
import { bundle, message, settled, TO } from './gateways/fixtures.ts';
import { assertNoLeak, captureLogs, errorText, messageSecrets, type CapturedLogs } from './gateways/leak-check.ts';
import { startTwilioServer, type FakeTwilio } from './gateways/twilio-server.ts';

const SID = 'AC0123456789abcdef0123456789abcdef';
const TOKEN = 'twilio-token-9f8e7d6c5b4a';
const CALLBACK_URL = 'https://smsauth.example.com/v1/callbacks/default/twilio-main';
const SECRETS = { 'auth token': TOKEN, 'basic credentials': Buffer.from(`${SID}:${TOKEN}`).toString('base64') };

interface Ctx {
  twilio: FakeTwilio;
  logs: CapturedLogs;
  gateway: SmsGateway;
}

async function setup(ctx: Ctx): Promise<void> {
  ctx.twilio = await startTwilioServer({ accountSid: SID, authToken: TOKEN });
  ctx.logs = captureLogs();
  ctx.gateway = createGateway(
    bundle('twilio', { from: '+14155550100', baseUrl: ctx.twilio.baseUrl }, { statusCallbackUrl: CALLBACK_URL }),
    { accountSid: SID, authToken: TOKEN },
    { logger: ctx.logs.logger },
  );
}

const send = suite<Ctx>('send (twilio)');
send.before.each(setup);
send.after.each((ctx) => ctx.twilio.close());

send('POSTs a form to /2010-04-01/Accounts/{Sid}/Messages.json with ValidityPeriod and StatusCallback', async (ctx) => {
  const { msg, code } = message({ validitySeconds: 420 });
  const result = await ctx.gateway.send(msg);
  assert.match(result.messageId, /^SM[0-9a-f]{32}$/);
  assert.is(result.provider, 'twilio');
  assert.is(result.segments, 1);
  const request = ctx.twilio.requests.at(-1)!;
  assert.is(request.url, `/2010-04-01/Accounts/${SID}/Messages.json`);
  assert.is(request.headers['content-type'], 'application/x-www-form-urlencoded');
  assert.equal(ctx.twilio.messages.at(-1), { To: TO, Body: msg.text, From: '+14155550100', ValidityPeriod: '420', StatusCallback: CALLBACK_URL });
  assertNoLeak(ctx.logs.text(), { ...SECRETS, ...messageSecrets(code, TO) }, 'the log');
  assert.ok(ctx.logs.text().includes(result.messageId));
});

send('sends from a Messaging Service and caps ValidityPeriod at 36000 s', async (ctx) => {
  const service = 'MG0123456789abcdef0123456789abcdef';
  const gateway = createGateway(bundle('twilio', { messagingServiceSid: service, baseUrl: ctx.twilio.baseUrl }), { accountSid: SID, authToken: TOKEN });
  await gateway.send(message({ validitySeconds: 100_000 }).msg);
  const form = ctx.twilio.messages.at(-1)!;
  assert.is(form.MessagingServiceSid, service);
  assert.is(form.From, undefined);
  assert.is(form.ValidityPeriod, '36000');
  assert.is(form.StatusCallback, undefined);
});

send("takes the segment count from Twilio's answer", async (ctx) => {
  const result = await ctx.gateway.send(message({ text: 'y'.repeat(400) }).msg);
  assert.is(result.segments, 3);
});

const errorCases: [string, Behaviour, string, number, string | undefined][] = [
  ['21211 invalid To', 'invalid-number', 'InvalidNumber', 400, '21211'],
  ['21408 region not enabled', 'forbidden', 'Forbidden', 400, '21408'],
  ['20005 account not active', 'insufficient-funds', 'InsufficientFunds', 401, '20005'],
  ['20429 too many requests', 'rate-limited', 'RateLimited', 429, '20429'],
  ['20500 internal error', 'server-error', 'Transient', 500, '20500'],
  ['21606 From not SMS-capable', 'rejected', 'Rejected', 400, '21606'],
  ['503 without a body', { status: 503, body: '' }, 'Transient', 503, undefined],
  [
    '429 with Retry-After',
    { status: 429, body: { code: 20429, message: 'Too Many Requests', status: 429 }, headers: { 'retry-after': '2' } },
    'RateLimited',
    429,
    '20429',
  ],
];
for (const [name, behaviour, code, status, providerCode] of errorCases) {
  send(`maps ${name} to ${code} without repeating Twilio's message (which holds the number)`, async (ctx) => {
    ctx.twilio.behaviours.then(behaviour);
    const { msg, code: secretCode } = message();
    const out = await settled(ctx.gateway.send(msg));
    const error = out.error as GatewayError;
    assert.instance(error, GatewayError);
    assert.is(error.code, code);
    assert.is(error.details.httpStatus, status);
    assert.is(error.details.providerCode, providerCode);
    if (name.includes('Retry-After')) assert.is(error.details.retryAfterMs, 2000);
    assertNoLeak(errorText(error), { ...SECRETS, ...messageSecrets(secretCode, TO) }, 'the error');
    assertNoLeak(ctx.logs.text(), { ...SECRETS, ...messageSecrets(secretCode, TO) }, 'the log');
  });
}

send('keeps a provider code only when it looks like one: a compatible server could answer a number there', () => {
  const kept = (providerCode: string): string | undefined => new GatewayError('Rejected', 'refused', { provider: 'twilio', providerCode }).details.providerCode;
  assert.equal(['21211', 'INVALID_NUMBER', 'err.quota-1'].map(kept), ['21211', 'INVALID_NUMBER', 'err.quota-1']);
  assert.equal([TO, TO.slice(1), `code ${TO}`, 'x'.repeat(33), '123456'].map(kept), [undefined, undefined, undefined, undefined, undefined]);
  // Nor does the message quote it.
  const echoed = gatewayError('Rejected', 'twilio', 'send', { httpStatus: 400, providerCode: `${TO} Code 123456` });
  assert.not.match(echoed.message, /123456|612345678/);
  assert.match(gatewayError('Rejected', 'twilio', 'send', { providerCode: '21211' }).message, 'provider code 21211');
});

send('an accepted message (2xx) is never retried, even when the answer has no sid', async (ctx) => {
  ctx.twilio.behaviours.then({ status: 201, body: { status: 'queued' } });
  const error = (await settled(ctx.gateway.send(message().msg))).error as GatewayError;
  assert.equal([error.code, error.retryable], ['Rejected', false]);
});

send('maps wrong credentials (20003) to AuthFailed', async (ctx) => {
  const gateway = createGateway(bundle('twilio', { from: 'X', baseUrl: ctx.twilio.baseUrl }), { accountSid: SID, authToken: 'wrong' });
  const out = await settled(gateway.send(message().msg));
  assert.is((out.error as GatewayError).code, 'AuthFailed');
  assert.is((out.error as GatewayError).details.providerCode, '20003');
});

send("times out a hanging API at the account's timeout", async (ctx) => {
  const gateway = createGateway(bundle('twilio', { from: 'X', baseUrl: ctx.twilio.baseUrl }, { timeoutMs: 250 }), { accountSid: SID, authToken: TOKEN });
  ctx.twilio.behaviours.then('hang');
  const out = await settled(gateway.send(message().msg));
  assert.is((out.error as GatewayError).code, 'Transient');
  assert.match((out.error as GatewayError).message, /no answer within 250 ms/);
});

send('a reset connection and an unreachable API are Transient', async (ctx) => {
  ctx.twilio.behaviours.then('reset');
  assert.is(((await settled(ctx.gateway.send(message().msg))).error as GatewayError).code, 'Transient');
  await ctx.twilio.close();
  const out = await settled(ctx.gateway.send(message().msg));
  assert.is((out.error as GatewayError).code, 'Transient');
  assert.match((out.error as GatewayError).message, /ECONNREFUSED/);
});

send("stops at the caller's deadline", async (ctx) => {
  ctx.twilio.behaviours.then('hang');
  const out = await settled(ctx.gateway.send(message().msg, AbortSignal.timeout(100)));
  assert.match((out.error as GatewayError).message, /deadline/);
  assert.is((out.error as GatewayError).code, 'Transient');
});

send('needs exactly one of from and messagingServiceSid', () => {
  assert.throws(
    () => createGateway(bundle('twilio', {}), { accountSid: SID, authToken: TOKEN }),
    (e: unknown) => e instanceof GatewayConfigError && e.field === 'spec.twilio.from',
  );
  assert.throws(
    () => createGateway(bundle('twilio', { from: 'X' }), { accountSid: SID }),
    (e: unknown) => e instanceof GatewayConfigError && e.field === 'spec.twilio.authToken',
  );
});

send.run();

const credentials = suite<Ctx>('testCredentials (twilio)');
credentials.before.each(setup);
credentials.after.each((ctx) => ctx.twilio.close());

credentials('reads /2010-04-01/Accounts/{Sid}.json', async (ctx) => {
  await ctx.gateway.testCredentials();
  assert.is(ctx.twilio.requests.at(-1)!.url, `/2010-04-01/Accounts/${SID}.json`);
});

credentials('wrong token is AuthFailed', async (ctx) => {
  const gateway = createGateway(
    bundle('twilio', { from: 'X', baseUrl: ctx.twilio.baseUrl }),
    { accountSid: SID, authToken: 'nope-nope' },
    { logger: ctx.logs.logger },
  );
  const out = await settled(gateway.testCredentials());
  assert.is((out.error as GatewayError).code, 'AuthFailed');
  assertNoLeak(errorText(out.error) + ctx.logs.text(), { token: 'nope-nope' }, 'error and log');
});

credentials.run();

const signature = suite('twilioSignature');

signature("matches the example in Twilio's request-validation documentation", () => {
  const params = { CallSid: ['CA1234567890ABCDE'], Caller: ['+14158675309'], Digits: ['1234'], From: ['+14158675309'], To: ['+18005551212'] };
  assert.is(twilioSignature('12345', 'https://mycompany.com/myapp.php?foo=1&bar=2', params), 'RSOYDt4T1cUTdK1PDd93/VVr8B8=');
});

signature.run();

const receipts = suite<Ctx>('readReceipt (twilio)');
receipts.before.each(setup);
receipts.after.each((ctx) => ctx.twilio.close());

const status = (s: string, extra: Record<string, string> = {}): Record<string, string> => ({
  AccountSid: SID,
  ApiVersion: '2010-04-01',
  From: '+14155550100',
  To: TO,
  MessageSid: 'SM0123456789abcdef0123456789abcdef',
  SmsSid: 'SM0123456789abcdef0123456789abcdef',
  MessageStatus: s,
  SmsStatus: s,
  ...extra,
});

receipts('reads signed status callbacks', (ctx) => {
  assert.equal(ctx.gateway.readReceipt(ctx.twilio.callback(CALLBACK_URL, status('delivered'))), [
    { messageId: 'SM0123456789abcdef0123456789abcdef', status: 'delivered' },
  ]);
  assert.equal(ctx.gateway.readReceipt(ctx.twilio.callback(CALLBACK_URL, status('undelivered', { ErrorCode: '30003' }))), [
    { messageId: 'SM0123456789abcdef0123456789abcdef', status: 'undelivered', errorCode: '30003' },
  ]);
  const got = ['accepted', 'queued', 'sending', 'sent', 'failed', 'canceled', 'read'].map(
    (s) => ctx.gateway.readReceipt(ctx.twilio.callback(CALLBACK_URL, status(s)))?.[0]?.status,
  );
  assert.equal(got, ['queued', 'queued', 'sent', 'sent', 'failed', 'failed', 'delivered']);
});

receipts('accepts the URL signed with its default port spelled out', (ctx) => {
  const signed = ctx.twilio.callback('https://smsauth.example.com:443/v1/callbacks/default/twilio-main', status('sent'));
  assert.is(ctx.gateway.readReceipt({ ...signed, url: CALLBACK_URL })?.[0]?.status, 'sent');
});

receipts('refuses wrong, tampered and missing signatures', (ctx) => {
  assert.is(ctx.gateway.readReceipt(ctx.twilio.callback(CALLBACK_URL, status('delivered'), { authToken: 'other' })), undefined);
  const good = ctx.twilio.callback(CALLBACK_URL, status('failed'));
  assert.is(ctx.gateway.readReceipt({ ...good, body: Buffer.from(good.body.toString().replace('failed', 'delivered')) }), undefined);
  assert.is(ctx.gateway.readReceipt({ ...good, url: 'https://evil.example.com/v1/callbacks/default/twilio-main' }), undefined);
  assert.is(ctx.gateway.readReceipt({ ...good, headers: { 'content-type': 'application/x-www-form-urlencoded' } }), undefined);
});

receipts.run();
