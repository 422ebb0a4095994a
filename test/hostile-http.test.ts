import { connect, type Socket } from 'node:net';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { isLoopback } from '../controller/adapters/http-server.ts';
import { startStack, type Stack } from './helpers/verifier-stack.ts';

const BASE = '/v1/acme/corp';
const ALICE_NUMBER = '+14155550101';

/** rawClient opens a TCP connection and collects what the server answers until it closes the connection. */
function rawClient(url: string): { socket: Socket; answer: Promise<string> } {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  const answer = new Promise<string>((resolve, reject) => {
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (text += d));
    socket.on('close', () => resolve(text));
    socket.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNRESET' || err.code === 'EPIPE' ? resolve(text) : reject(err)));
    // A bound on the test itself, far above the 300 ms header timeout: a server that never hangs up fails here.
    setTimeout(() => reject(new Error(`the server kept the connection open: ${text.slice(0, 80)}`)), 15_000).unref();
  });
  return { socket, answer };
}

/** trickle writes one byte at a time with a pause, as a slowloris client does, until the socket closes. */
function trickle(socket: Socket, text: string, everyMs: number): void {
  let i = 0;
  const timer = setInterval(() => {
    if (socket.destroyed || i >= text.length) return clearInterval(timer);
    socket.write(text[i++]!);
  }, everyMs);
  socket.on('close', () => clearInterval(timer));
}

const test = suite<{ s: Stack }>('hostile HTTP', { s: undefined as unknown as Stack });
test.before.each(async (ctx) => {
  ctx.s = await startStack({ timeouts: { headersMs: 300, requestMs: 600 } });
});
test.after.each(async (ctx) => {
  await ctx.s.close();
});

test('only loopback addresses count as loopback: a host name that starts like one needs a token', () => {
  for (const host of ['127.0.0.1', '127.1.2.3', '::1', 'localhost']) assert.ok(isLoopback(host), host);
  for (const host of ['127.evil.example', '127.0.0.1.nip.io', '0.0.0.0', '::', '10.0.0.1', '1270.0.0.1']) assert.not.ok(isLoopback(host), host);
});

test('a client that trickles its headers is answered 408 and cut off, and changes nothing', async ({ s }) => {
  const { socket, answer } = rawClient(s.url);
  socket.write(`POST ${BASE}/verifications HTTP/1.1\r\nHost: x\r\n`);
  trickle(socket, `X-Slow: ${'a'.repeat(200)}\r\n`, 50);
  const text = await answer;
  assert.match(text, /^HTTP\/1\.1 408 /);
  assert.equal(s.gateways.get('primary')?.sent ?? [], []);
});

test('a client that stalls in its body is answered 408 and cut off, and nothing is sent or recorded', async ({ s }) => {
  const body = JSON.stringify({ to: ALICE_NUMBER, purpose: 'enroll', user: 'alice' });
  const { socket, answer } = rawClient(s.url);
  socket.write(
    `POST ${BASE}/verifications HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, 10)}`,
  );
  const text = await answer;
  assert.match(text, /^HTTP\/1\.1 408 /);
  await s.verifier.drain();
  assert.equal(s.gateways.get('primary')?.sent ?? [], []);
  assert.equal((await s.api('GET', `${BASE}/history`)).body.events, []);
});

test('slow clients do not hold up others: a normal request is served while ten of them stall', async ({ s }) => {
  const stalled = Array.from({ length: 10 }, () => {
    const c = rawClient(s.url);
    c.socket.write(`POST ${BASE}/verifications HTTP/1.1\r\nHost: x\r\n`);
    return c;
  });
  const ok = await s.api('POST', `${BASE}/verifications`, { to: ALICE_NUMBER, purpose: 'enroll', user: 'alice' });
  assert.is(ok.status, 201);
  for (const c of stalled) assert.match(await c.answer, /^HTTP\/1\.1 408 /);
});

test('path traversal and odd bytes in store, user and id segments are refused with the field named', async ({ s }) => {
  const cases: [string, number, string?][] = [
    ['/v1/acme/..%2Fcorp/users/alice/enrollments', 400, 'store'],
    ['/v1/acme/..%2F..%2F..%2Fetc%2Fpasswd/users/alice/enrollments', 400, 'store'],
    ['/v1/acme/corp%00/users/alice/enrollments', 400, 'store'],
    ['/v1/..%2Facme/corp/users/alice/enrollments', 400, 'ns'],
    ['/v1/acme/corp/users/alice%0d%0aX-Injected:%201/enrollments', 400, 'user'],
    ['/v1/acme/corp/verifications/..%2F..%2Fhistory', 400, 'id'],
    ['/v1/acme/corp/users/%E0%A4%A/enrollments', 400],
  ];
  for (const [path, status, field] of cases) {
    const r = await s.api('GET', path);
    assert.is(r.status, status, path);
    assert.type(r.body.error?.code, 'string', path);
    if (field !== undefined) assert.is(r.body.error.field, field, path);
  }
  // fetch would resolve dot segments before sending; a raw client sends them as they are.
  for (const path of [
    '/v1/acme/../acme/corp/users/alice/enrollments',
    '/v1/../v1/acme/corp/users/alice/enrollments',
    '/v1/acme/./corp/users/alice/enrollments',
  ]) {
    const { socket, answer } = rawClient(s.url);
    socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    assert.match(await answer, /^HTTP\/1\.1 (400|404) /, path);
  }
  // A user name is opaque data (never a path or a key prefix): `../bob` is another user, not bob.
  const bob = await s.api('POST', `${BASE}/verifications`, { to: ALICE_NUMBER, purpose: 'enroll', user: 'bob' });
  await s.verifier.drain();
  const code = /\d{6}/.exec(s.gateways.get('primary')!.sent[0]!.text)![0];
  assert.is((await s.api('POST', `${BASE}/verifications/${bob.body.id}/check`, { code })).body.status, 'approved');
  assert.is((await s.api('GET', `${BASE}/users/bob/enrollments`)).body.enrollments.length, 1);
  assert.equal((await s.api('GET', `${BASE}/users/..%2Fbob/enrollments`)).body.enrollments, []);
  assert.equal((await s.api('GET', `${BASE}/users/x%2F..%2Fbob/enrollments`)).body.enrollments, []);
  const sent = s.gateways.get('primary')!.sent.length;
  const write = await s.api('POST', '/v1/acme/..%2Fcorp/verifications', { to: ALICE_NUMBER, purpose: 'enroll', user: 'alice' });
  assert.is(write.status, 400);
  assert.is(s.gateways.get('primary')!.sent.length, sent);
});

test('a wrong or missing bearer token off loopback changes nothing', async () => {
  const s = await startStack({ host: '0.0.0.0', token: 'a-long-enough-bearer-token' });
  try {
    for (const authorization of [undefined, 'Bearer ', 'Bearer wrong-token-of-some-length', 'Basic YTpi', 'bearer a-long-enough-bearer-token-and-more']) {
      const r = await s.api(
        'POST',
        `${BASE}/verifications`,
        { to: ALICE_NUMBER, purpose: 'enroll', user: 'alice' },
        authorization === undefined ? {} : { authorization },
      );
      assert.equal([r.status, r.body.error.code, r.body.error.field], [401, 'unauthorized', 'Authorization'], String(authorization));
    }
    assert.equal(s.gateways.get('primary')?.sent ?? [], []);
    assert.equal((await s.api('GET', `${BASE}/history`, undefined, { authorization: 'Bearer a-long-enough-bearer-token' })).body.events, []);
  } finally {
    await s.close();
  }
});

test.run();
