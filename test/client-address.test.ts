import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { resolveClient, TrustedProxies } from '../controller/verifier/client-address.ts';

const client = suite("the end user's client, as history records it");
const trusted = new TrustedProxies(['10.0.0.0/8', '127.0.0.1', 'fd00::/8']);
const ua = { 'user-agent': 'Browser/1' };

client("the application's `client` wins: it holds the token", () => {
  assert.equal(resolveClient('127.0.0.1', { ...ua, 'x-forwarded-for': '6.6.6.6' }, { address: '203.0.113.7', userAgent: 'Portal/2' }, trusted), {
    ip: '203.0.113.7',
    userAgent: 'Portal/2',
  });
  assert.equal(
    resolveClient('127.0.0.1', ua, { address: '::ffff:203.0.113.7' }, trusted),
    { ip: '203.0.113.7', userAgent: 'Browser/1' },
    'IPv4-mapped written as IPv4',
  );
});

client('from a trusted peer, the nearest untrusted hop of X-Forwarded-For, read from the right', () => {
  const from = (peer: string, xff: string): string => resolveClient(peer, { ...ua, 'x-forwarded-for': xff }, undefined, trusted).ip;
  assert.is(from('127.0.0.1', '198.51.100.9'), '198.51.100.9');
  assert.is(
    from('::ffff:10.1.2.3', '6.6.6.6, 198.51.100.9, 10.0.0.5'),
    '198.51.100.9',
    'spoofed hops on the left are ignored; trusted proxies on the right skipped',
  );
  assert.is(from('127.0.0.1', '10.0.0.9, 10.0.0.5'), '10.0.0.9', 'all trusted: the leftmost');
  assert.is(from('fd00::1', '2001:db8::7'), '2001:db8::7');
  assert.is(from('127.0.0.1', '198.51.100.9, garbage, 10.0.0.5'), '127.0.0.1', 'a malformed hop: nothing left of it is believed');
});

client('from any other peer, X-Forwarded-For is ignored', () => {
  assert.is(resolveClient('192.0.2.4', { 'x-forwarded-for': '198.51.100.9' }, undefined, trusted).ip, '192.0.2.4');
  assert.is(resolveClient('127.0.0.1', { 'x-forwarded-for': '198.51.100.9' }, undefined, new TrustedProxies([])).ip, '127.0.0.1', 'nothing trusted');
  assert.is(
    resolveClient('127.0.0.2', { 'x-forwarded-for': '198.51.100.9' }, undefined, new TrustedProxies(['127.0.0.1'])).ip,
    '127.0.0.2',
    'an address is not its neighbours',
  );
});

client('a trusted list that is not addresses or ranges is refused, naming the entry', () => {
  for (const bad of ['10.0.0.0/33', 'example.com', '10.0.0.0/8/1', 'fd00::/129', '10.0.0.0/x'])
    assert.throws(() => new TrustedProxies([bad]), new RegExp(bad.replace(/[./]/g, '\\$&')));
});

client.run();
