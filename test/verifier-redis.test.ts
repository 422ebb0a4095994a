import { randomBytes } from 'node:crypto';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { RedisStore } from '../controller/adapters/redis-store.ts';
import type { RecordingGateway } from './helpers/recording-gateway.ts';
import { startRedis, type RedisServer } from './helpers/redis-server.ts';
import { startStack, type Stack } from './helpers/verifier-stack.ts';

const BASE = '/v1/acme/corp';
const test = suite('verifier on Redis');
let redis: RedisServer | undefined;
let n = 0;
const store = async (prefix: string): Promise<RedisStore> => {
  const s = new RedisStore(redis!.url, { keyPrefix: prefix });
  await s.ready();
  return s;
};

test.before(async () => {
  redis = await startRedis();
});
test.after(async () => {
  await redis?.stop();
});

test('200 parallel checks with the right code approve exactly once', async () => {
  const s = await startStack({ store: await store(`p${n++}:`) });
  try {
    const v = (await s.api('POST', `${BASE}/verifications`, { to: '+14155550101', purpose: 'enroll', user: 'alice' })).body;
    const code = s.gateways.get('primary')!.lastCode();
    const answers = await Promise.all(Array.from({ length: 200 }, () => s.api('POST', `${BASE}/verifications/${v.id}/check`, { code })));
    assert.is(answers.filter((a) => a.status === 200 && a.body.status === 'approved').length, 1);
    assert.is((await s.api('GET', `${BASE}/users/alice/enrollments`)).body.enrollments.length, 1);
  } finally {
    await s.close();
  }
});

test('two replicas sharing Redis share attempts, limits and lockouts', async () => {
  const prefix = `p${n++}:`;
  const codeKey = randomBytes(32);
  const decoySecret = randomBytes(32);
  const gateways = new Map<string, RecordingGateway>();
  const a: Stack = await startStack({ store: await store(prefix), codeKey, decoySecret, gateways });
  const b: Stack = await startStack({ store: await store(prefix), codeKey, decoySecret, gateways });
  try {
    const v = (await a.api('POST', `${BASE}/verifications`, { to: '+14155550101', purpose: 'enroll', user: 'alice' })).body;
    const code = gateways.get('primary')!.lastCode();
    const wrong = code === '000000' ? '111111' : '000000';
    await a.api('POST', `${BASE}/verifications/${v.id}/check`, { code: wrong });
    await b.api('POST', `${BASE}/verifications/${v.id}/check`, { code: wrong });
    const third = await a.api('POST', `${BASE}/verifications/${v.id}/check`, { code: wrong });
    assert.is(third.body.status, 'max_attempts_reached', 'attempts counted across replicas');
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++)
      statuses.push((await (i % 2 === 0 ? a : b).api('POST', `${BASE}/verifications`, { to: '+14155550102', purpose: 'enroll', user: `u${i}` })).status);
    assert.equal(statuses, [201, 201, 201, 201, 201, 429], 'the per-number limit holds across replicas');
  } finally {
    await a.close();
    await b.close();
  }
});

test('a verifier restart keeps pending verifications, enrollments and history', async () => {
  const prefix = `p${n++}:`;
  const codeKey = randomBytes(32);
  const gateways = new Map<string, RecordingGateway>();
  const first = await startStack({ store: await store(prefix), codeKey, gateways });
  const e = (await first.api('POST', `${BASE}/verifications`, { to: '+14155550101', purpose: 'enroll', user: 'alice' })).body;
  await first.api('POST', `${BASE}/verifications/${e.id}/check`, { code: gateways.get('primary')!.lastCode() });
  const pending = (await first.api('POST', `${BASE}/users/alice/challenges`, { type: 'SMS', lastDigits: '0101' })).body;
  await first.verifier.drain();
  const code = gateways.get('primary')!.lastCode();
  await first.close();
  const second = await startStack({ store: await store(prefix), codeKey, gateways });
  try {
    const checked = await second.api('POST', `${BASE}/verifications/${pending.id}/check`, { code });
    assert.is(checked.body.status, 'approved');
    assert.equal(
      (await second.api('GET', `${BASE}/history?user=alice`)).body.events.map((x: any) => x.type),
      ['authenticate', 'enroll'],
    );
  } finally {
    await second.close();
  }
});

test('while Redis is down requests fail cleanly with 503, and succeed once it is back', async () => {
  const s = await startStack({ store: await store(`p${n++}:`) });
  try {
    await redis!.stop();
    const r = await s.api('POST', `${BASE}/verifications`, { to: '+14155550101', purpose: 'enroll', user: 'alice' });
    assert.equal([r.status, r.body.error.code, r.headers.get('retry-after')], [503, 'store_unavailable', '1']);
    assert.is((await s.api('GET', '/readyz')).status, 503);
    assert.equal(s.gateways.get('primary')?.sent ?? [], [], 'nothing was sent');
    await redis!.start();
    await (s.store as RedisStore).ready(10_000);
    assert.is((await s.api('POST', `${BASE}/verifications`, { to: '+14155550101', purpose: 'enroll', user: 'alice' })).status, 201);
  } finally {
    await s.close();
  }
});

test.run();
