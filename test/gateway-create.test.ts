import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { GatewayBundle } from '../controller/core/bundle.ts';
import { createGateway, GatewayConfigError } from '../controller/gateways/create-gateway.ts';
import type { Credentials } from '../controller/gateways/gateway.ts';
import { proxyFetch } from '../controller/gateways/proxy-fetch.ts';
import { startConnectProxy } from './gateways/connect-proxy.ts';
import { bundle, message } from './gateways/fixtures.ts';
import { startTwilioServer } from './gateways/twilio-server.ts';

const create = suite('createGateway');

const valid: [GatewayBundle, Credentials][] = [
  [bundle('plivo', { source: '+14155550100' }), { authId: 'MA1', authToken: 't' }],
  [bundle('twilio', { from: '+14155550100' }), { accountSid: 'AC1', authToken: 't' }],
  [bundle('vonage', { from: 'Smsauth' }), { apiKey: 'k', apiSecret: 's' }],
  [bundle('webhook', { url: 'https://sms.example.com/send' }), { signingSecret: 's' }],
  [bundle('console', {}), {}],
];
for (const [b, credentials] of valid) {
  create(`builds the ${b.provider} adapter without I/O`, () => {
    assert.is(createGateway(b, credentials).provider, b.provider);
  });
}

const invalid: [string, GatewayBundle, Credentials, string][] = [
  ['a missing credential', bundle('plivo', { source: 'S' }), { authId: 'MA1' }, 'spec.plivo.authToken'],
  ['an empty credential', bundle('vonage', { from: 'S' }), { apiKey: '', apiSecret: 's' }, 'spec.vonage.apiKey'],
  ['a missing sender', bundle('plivo', {}), { authId: 'MA1', authToken: 't' }, 'spec.plivo.source'],
  ['a baseUrl that is not a URL', bundle('twilio', { from: 'F', baseUrl: 'api twilio' }), { accountSid: 'AC1', authToken: 't' }, 'spec.twilio.baseUrl'],
  ['a webhook url that is not http', bundle('webhook', { url: 'ftp://x/' }), { signingSecret: 's' }, 'spec.webhook.url'],
  [
    'a proxy password whose Secret did not resolve',
    bundle('plivo', { source: 'S', baseUrl: 'https://api.plivo.com' }, { proxy: { url: 'http://proxy:3128', password: { name: 'p', key: 'k' } } }),
    { authId: 'MA1', authToken: 't' },
    'spec.proxy.password',
  ],
];
for (const [name, b, credentials, field] of invalid) {
  create(`refuses ${name} with GatewayConfigError naming ${field}`, () => {
    let caught: unknown;
    try {
      createGateway(b, credentials);
    } catch (err) {
      caught = err;
    }
    assert.instance(caught, GatewayConfigError);
    const error = caught as GatewayConfigError;
    assert.is(error.field, field);
    assert.is(error.code, 'ERR_GATEWAY_CONFIG');
    assert.is(error.account, b.name);
    for (const value of Object.values(credentials)) if (value.length > 1) assert.not.ok(error.message.includes(value));
  });
}

create.run();

const proxied = suite('proxyFetch (undici)');
proxied('sends a twilio message through a real CONNECT tunnel with Basic proxy credentials', async () => {
  const sid = 'AC0123456789abcdef0123456789abcdef';
  const twilio = await startTwilioServer({ accountSid: sid, authToken: 'tok' });
  const proxy = await startConnectProxy('tunnel');
  try {
    const b = bundle(
      'twilio',
      { from: '+14155550100', baseUrl: twilio.baseUrl },
      { proxy: { url: proxy.url, username: { name: 'p', key: 'u' }, password: { name: 'p', key: 'w' } } },
    );
    const gateway = createGateway(b, { accountSid: sid, authToken: 'tok', 'proxy.username': 'proxy-user', 'proxy.password': 'proxy-pass' }, { proxyFetch });
    const result = await gateway.send(message().msg);
    assert.match(result.messageId, /^SM/);
    assert.is(twilio.messages.length, 1, 'the provider got the message through the tunnel');
    assert.is(proxy.connects.length, 1);
    assert.is(proxy.connects[0]!.target, new URL(twilio.baseUrl).host);
    assert.is(proxy.connects[0]!.headers['proxy-authorization'], `Basic ${Buffer.from('proxy-user:proxy-pass').toString('base64')}`);
  } finally {
    await proxy.close();
    await twilio.close();
  }
});
proxied.run();
