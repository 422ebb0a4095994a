import { pino } from 'pino';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ManualClock } from '../controller/core/clock.ts';
import type { HttpRequest } from '../controller/core/http-route.ts';
import type { AccessReview } from '../controller/adapters/kubernetes.ts';
import { metricsGuard } from '../controller/runtime/metrics-auth.ts';

// The guard of --metrics-secure alone, with a review function that counts its calls: what is
// remembered, for how long, and what is never remembered. The cluster path is in controller-e2e.

const request = (authorization?: string): HttpRequest => ({
  method: 'GET',
  url: '/metrics',
  path: '/metrics',
  query: new URLSearchParams(),
  headers: authorization === undefined ? {} : { authorization },
  body: Buffer.alloc(0),
  ip: '127.0.0.1',
  userAgent: 'test',
});

const guard = suite('metrics guard');

guard('an allowed token is reviewed once a minute, a refused one every 10 s, a failed review never remembered', async () => {
  const clock = new ManualClock(0);
  const answers: Record<string, AccessReview> = { good: { user: 'prometheus', allowed: true }, other: { user: 'web', allowed: false } };
  const asked: string[] = [];
  let failing = false;
  const check = metricsGuard(
    (token) => {
      asked.push(token);
      if (failing) return Promise.reject(new Error('connection refused'));
      return Promise.resolve(answers[token] ?? { user: undefined, allowed: false });
    },
    clock,
    pino({ level: 'silent' }),
  );
  assert.is((await check(request()))?.status, 401);
  assert.is((await check(request('Basic Zm9vOmJhcg==')))?.status, 401, 'a bearer token only');
  assert.equal(asked, [], 'no token, no review');
  assert.is(await check(request('Bearer good')), undefined);
  assert.is(await check(request('Bearer good')), undefined);
  assert.is((await check(request('Bearer other')))?.status, 403);
  assert.is((await check(request('Bearer other')))?.status, 403);
  assert.is((await check(request('Bearer forged')))?.status, 401);
  assert.equal(asked, ['good', 'other', 'forged']);
  await clock.advance(10_001);
  await check(request('Bearer good'));
  await check(request('Bearer other'));
  assert.equal(asked, ['good', 'other', 'forged', 'other'], 'a refusal is asked again after 10 s');
  await clock.advance(50_000);
  failing = true;
  assert.is((await check(request('Bearer good')))?.status, 503, 'a minute on: asked again, and the API server does not answer');
  failing = false;
  assert.is(await check(request('Bearer good')), undefined, 'the failure was not remembered');
  assert.equal(asked.slice(4), ['good', 'good']);
});

guard.run();
