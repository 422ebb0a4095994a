import { createHash, createHmac } from 'node:crypto';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createGateway } from '../controller/gateways/create-gateway.ts';
import { GatewayError, type SmsGateway } from '../controller/gateways/gateway.ts';
import { vonageSignature } from '../controller/gateways/vonage-gateway.ts';
import type { Behaviour } from './gateways/fake-http.ts';
import { bundle, message, settled, TO } from './gateways/fixtures.ts';
import { assertNoLeak, captureLogs, errorText, messageSecrets, type CapturedLogs } from './gateways/leak-check.ts';
import { startVonageServer, type FakeVonage } from './gateways/vonage-server.ts';

const API_KEY = 'a1b2c3d4';
const API_SECRET = 'vonage-secret-QW12er34';
const SIGNATURE_SECRET = 'vonage-signature-secret-Zy98';
const CALLBACK_URL = 'https://smsauth.example.com/v1/callbacks/default/vonage-main';
const SECRETS = { 'api secret': API_SECRET, 'signature secret': SIGNATURE_SECRET };

interface Ctx {
  vonage: FakeVonage;
  logs: CapturedLogs;
  gateway: SmsGateway;
}

async function setup(ctx: Ctx): Promise<void> {
  ctx.vonage = await startVonageServer({ apiKey: API_KEY, apiSecret: API_SECRET });
  ctx.logs = captureLogs();
  ctx.gateway = createGateway(
    bundle('vonage', { from: 'Smsauth', baseUrl: ctx.vonage.baseUrl }, { statusCallbackUrl: CALLBACK_URL }),
    { apiKey: API_KEY, apiSecret: API_SECRET, signatureSecret: SIGNATURE_SECRET },
    { logger: ctx.logs.logger },
  );
}

const send = suite<Ctx>('send (vonage SMS API)');
send.before.each(setup);
send.after.each((ctx) => ctx.vonage.close());

send('POSTs to /sms/json with ttl, client-ref and a delivery receipt request', async (ctx) => {
  const { msg, code } = message({ validitySeconds: 300 });
  const result = await ctx.gateway.send(msg);
  assert.match(result.messageId, /^[0-9a-f]{32}$/);
  assert.is(result.segments, 1);
  assert.is(ctx.vonage.requests.at(-1)!.url, '/sms/json');
  assert.equal(ctx.vonage.messages.at(-1), {
    api_key: API_KEY,
    from: 'Smsauth',
    to: TO.slice(1),
    text: msg.text,
    ttl: '300000',
    'client-ref': msg.reference,
    'status-report-req': '1',
    callback: CALLBACK_URL,
  });
  assertNoLeak(ctx.logs.text(), { ...SECRETS, ...messageSecrets(code, TO) }, 'the log');
});

send("asks for unicode when the text needs UCS-2, and counts Vonage's parts", async (ctx) => {
  const result = await ctx.gateway.send(message({ text: `Ваш код: ${'д'.repeat(80)}` }).msg);
  assert.is(ctx.vonage.messages.at(-1)!.type, 'unicode');
  assert.is(result.segments, 2);
});

send("keeps ttl within Vonage's 20 s minimum", async (ctx) => {
  await ctx.gateway.send(message({ validitySeconds: 5 }).msg);
  assert.is(ctx.vonage.messages.at(-1)!.ttl, '20000');
});

const errorCases: [string, Behaviour, string, string | undefined][] = [
  ['status 6 (unroutable)', 'invalid-number', 'InvalidNumber', '6'],
  ['status 29 (non-whitelisted destination)', 'forbidden', 'Forbidden', '29'],
  ['status 9 (quota)', 'insufficient-funds', 'InsufficientFunds', '9'],
  ['status 1 (throttled)', 'rate-limited', 'RateLimited', '1'],
  ['status 5 (internal error)', 'server-error', 'Transient', '5'],
  ['status 15 (invalid sender)', 'rejected', 'Rejected', '15'],
  ['HTTP 503', { status: 503, body: {} }, 'Transient', undefined],
  ['HTTP 429 with Retry-After', { status: 429, body: {}, headers: { 'retry-after': '3' } }, 'RateLimited', undefined],
  ['a dropped connection', 'reset', 'Transient', undefined],
];
for (const [name, behaviour, code, providerCode] of errorCases) {
  send(`maps ${name} to ${code} without repeating Vonage's error-text`, async (ctx) => {
    ctx.vonage.behaviours.then(behaviour);
    const { msg, code: secretCode } = message();
    const error = (await settled(ctx.gateway.send(msg))).error as GatewayError;
    assert.instance(error, GatewayError);
    assert.is(error.code, code);
    assert.is(error.details.providerCode, providerCode);
    if (name.includes('Retry-After')) assert.is(error.details.retryAfterMs, 3000);
    assertNoLeak(errorText(error), { ...SECRETS, ...messageSecrets(secretCode, TO) }, 'the error');
    assertNoLeak(ctx.logs.text(), { ...SECRETS, ...messageSecrets(secretCode, TO) }, 'the log');
  });
}

send('an accepted request is never retried: a part sent is a message sent, an answer without messages is not retryable', async (ctx) => {
  ctx.vonage.behaviours.then({
    status: 200,
    body: {
      'message-count': '2',
      messages: [
        { status: '0', 'message-id': 'PART1' },
        { status: '1', 'error-text': 'Throttled' },
      ],
    },
  });
  const partly = await settled(ctx.gateway.send(message().msg));
  assert.is(partly.error, undefined);
  assert.equal([partly.value?.messageId, partly.value?.segments], ['PART1', 2]);
  ctx.vonage.behaviours.then({ status: 200, body: { 'message-count': '0', messages: [] } });
  const empty = (await settled(ctx.gateway.send(message().msg))).error as GatewayError;
  assert.equal([empty.code, empty.retryable], ['Rejected', false]);
});

send('maps bad credentials (status 4) to AuthFailed', async (ctx) => {
  const gateway = createGateway(bundle('vonage', { from: 'X', baseUrl: ctx.vonage.baseUrl }), { apiKey: API_KEY, apiSecret: 'wrong-secret' });
  const error = (await settled(gateway.send(message().msg))).error as GatewayError;
  assert.is(error.code, 'AuthFailed');
  assert.is(error.details.providerCode, '4');
  assertNoLeak(errorText(error), { secret: 'wrong-secret' }, 'the error');
});

send('times out a hanging API', async (ctx) => {
  const gateway = createGateway(bundle('vonage', { from: 'X', baseUrl: ctx.vonage.baseUrl }, { timeoutMs: 200 }), { apiKey: API_KEY, apiSecret: API_SECRET });
  ctx.vonage.behaviours.then('hang');
  const out = await settled(gateway.send(message().msg));
  assert.is((out.error as GatewayError).code, 'Transient');
  assert.match((out.error as GatewayError).message, /no answer within 200 ms/, "the account's timeout ended the wait");
});

send.run();

const credentials = suite<Ctx>('testCredentials (vonage)');
credentials.before.each(setup);
credentials.after.each((ctx) => ctx.vonage.close());

credentials('reads the account balance', async (ctx) => {
  await ctx.gateway.testCredentials();
  assert.match(ctx.vonage.requests.at(-1)!.url, /^\/account\/get-balance\?api_key=/);
});

credentials('401 is AuthFailed, and the secret in the query stays out of the error and the log', async (ctx) => {
  const gateway = createGateway(
    bundle('vonage', { from: 'X', baseUrl: ctx.vonage.baseUrl }),
    { apiKey: API_KEY, apiSecret: 'wrong-secret' },
    { logger: ctx.logs.logger },
  );
  const out = await settled(gateway.testCredentials());
  assert.is((out.error as GatewayError).code, 'AuthFailed');
  assertNoLeak(errorText(out.error) + ctx.logs.text(), { secret: 'wrong-secret' }, 'error and log');
});

credentials.run();

const signature = suite('vonageSignature');

signature("signs as Vonage's libraries do: sorted &name=value with & and = replaced, md5hash appends the secret", () => {
  const params = { b: ['x&y=z'], a: ['1'], sig: ['ignored'] };
  const base = '&a=1&b=x_y_z';
  assert.is(vonageSignature('s3cret', params, 'md5hash'), createHash('md5').update(`${base}s3cret`).digest('hex'));
  assert.is(vonageSignature('s3cret', params, 'sha256'), createHmac('sha256', 's3cret').update(base).digest('hex'));
});

signature("matches a vector of Vonage's own library (vonage-python-sdk's test_signature): the signature is not only ours agreeing with itself", () => {
  // params a=1, b=2, timestamp=1461605396, signature secret "secret", md5hash: sig 6af838ef94998832dbfc29020b564830.
  const params = { a: ['1'], b: ['2'], timestamp: ['1461605396'] };
  assert.is(vonageSignature('secret', params, 'md5hash'), '6af838ef94998832dbfc29020b564830');
  assert.is.not(vonageSignature('secret', { ...params, b: ['3'] }, 'md5hash'), '6af838ef94998832dbfc29020b564830');
});

signature.run();

const receipts = suite<Ctx>('readReceipt (vonage signed delivery receipts)');
receipts.before.each(setup);
receipts.after.each((ctx) => ctx.vonage.close());

const dlr = (status: string, extra: Record<string, string> = {}): Record<string, string> => ({
  msisdn: TO.slice(1),
  to: 'Smsauth',
  'network-code': '20801',
  messageId: '0A0000001234567B',
  price: '0.03330000',
  status,
  scts: '2001011400',
  'err-code': '0',
  'api-key': API_KEY,
  'client-ref': 'ver_abc',
  'message-timestamp': '2020-01-01 12:00:00',
  nonce: 'ec11dd3e-1e7f-4db5-9467-82b02cd223b9',
  ...extra,
});

receipts("reads receipts signed with each of Vonage's methods, as GET, form POST and JSON POST", (ctx) => {
  for (const method of ['md5hash', 'md5', 'sha1', 'sha256', 'sha512'] as const) {
    for (const as of ['GET', 'POST', 'POST-JSON'] as const) {
      const got = ctx.gateway.readReceipt(
        ctx.vonage.callback(CALLBACK_URL, dlr('delivered'), { signatureSecret: SIGNATURE_SECRET, method, as, upperCase: method !== 'md5hash' }),
      );
      assert.equal(got, [{ messageId: '0A0000001234567B', status: 'delivered' }], `${method} ${as}`);
    }
  }
});

receipts('maps statuses and keeps err-code of failures', (ctx) => {
  const read = (s: string, extra: Record<string, string> = {}): unknown =>
    ctx.gateway.readReceipt(ctx.vonage.callback(CALLBACK_URL, dlr(s, extra), { signatureSecret: SIGNATURE_SECRET, method: 'sha256' }))?.[0];
  assert.equal(read('failed', { 'err-code': '6' }), { messageId: '0A0000001234567B', status: 'failed', errorCode: '6' });
  assert.equal(read('expired', { 'err-code': '5' }), { messageId: '0A0000001234567B', status: 'undelivered', errorCode: '5' });
  assert.equal(
    ['accepted', 'buffered', 'rejected'].map((s) => (read(s) as { status: string }).status),
    ['sent', 'sent', 'failed'],
  );
});

receipts('refuses receipts signed more than 5 minutes away from now, however well signed (replays)', (ctx) => {
  const at = (offsetSeconds: number): unknown =>
    ctx.gateway.readReceipt(
      ctx.vonage.callback(CALLBACK_URL, dlr('delivered'), {
        signatureSecret: SIGNATURE_SECRET,
        method: 'sha256',
        timestamp: Math.floor(Date.now() / 1000) + offsetSeconds,
      }),
    );
  assert.equal([at(-365 * 86400), at(-301), at(301), at(365 * 86400)], [undefined, undefined, undefined, undefined]);
  assert.equal(at(-200), [{ messageId: '0A0000001234567B', status: 'delivered' }]);
});

receipts('refuses receipts signed with another secret, tampered or unsigned, and all receipts without a signature secret', (ctx) => {
  assert.is(ctx.gateway.readReceipt(ctx.vonage.callback(CALLBACK_URL, dlr('delivered'), { signatureSecret: 'other', method: 'sha256' })), undefined);
  const good = ctx.vonage.callback(CALLBACK_URL, dlr('failed'), { signatureSecret: SIGNATURE_SECRET, method: 'md5hash' });
  assert.is(ctx.gateway.readReceipt({ ...good, url: good.url.replace('status=failed', 'status=delivered') }), undefined);
  assert.is(ctx.gateway.readReceipt({ ...good, url: good.url.replace(/&sig=[^&]+/, '') }), undefined);
  const noSecret = createGateway(bundle('vonage', { from: 'X', baseUrl: ctx.vonage.baseUrl }), { apiKey: API_KEY, apiSecret: API_SECRET });
  assert.is(noSecret.readReceipt(good), undefined);
});

receipts.run();
