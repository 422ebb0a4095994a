import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { SqliteStore } from '../controller/adapters/sqlite-store.ts';
import { Bindings } from '../controller/verifier/bindings.ts';
import type { VerificationRecord } from '../controller/verifier/types.ts';
import { startStack, type Stack } from './helpers/verifier-stack.ts';
import { record } from './helpers/verification-record.ts';

// Two verifier replicas on one state file, as two sidecars sharing it. A replica remembers what
// the verifications it started are bound to; what it remembers must never stand in for their state.

const BASE = '/v1/acme/corp';
const test = suite<{ a: Stack; b: Stack }>('two replicas on one store', {} as { a: Stack; b: Stack });

test.before.each(async (ctx) => {
  const file = join(mkdtempSync(join(tmpdir(), 'smsauth-replicas-')), 'state.sqlite');
  const shared = { codeKey: randomBytes(32), decoySecret: randomBytes(32) };
  ctx.a = await startStack({ store: new SqliteStore(file), ...shared });
  ctx.b = await startStack({ store: new SqliteStore(file), ...shared, gateways: ctx.a.gateways });
});

test.after.each(async ({ a, b }) => {
  await a.close();
  await b.close();
});

test('a verification canceled on the other replica is not approved by the replica that started it', async ({ a, b }) => {
  const start = await a.api('POST', `${BASE}/verifications`, { to: '+14155550101', purpose: 'enroll', user: 'alice' });
  assert.is(start.status, 201);
  assert.is((await b.api('DELETE', `${BASE}/verifications/${start.body.id}`)).body.status, 'canceled');
  const check = await a.api('POST', `${BASE}/verifications/${start.body.id}/check`, { code: a.gateways.get('primary')!.lastCode() });
  assert.is(check.status, 409);
  assert.is(check.body.error.code, 'verification_not_pending');
});

test('the other replica checks a verification it never saw, and attempts are counted once across both', async ({ a, b }) => {
  const start = await a.api('POST', `${BASE}/verifications`, { to: '+14155550101', purpose: 'enroll', user: 'alice' });
  const code = a.gateways.get('primary')!.lastCode();
  const wrong = code === '000000' ? '111111' : '000000';
  assert.is((await a.api('POST', `${BASE}/verifications/${start.body.id}/check`, { code: wrong })).body.attemptsLeft, start.body.attemptsLeft - 1);
  const right = await b.api('POST', `${BASE}/verifications/${start.body.id}/check`, { code });
  assert.is(right.body.status, 'approved');
  assert.is(right.body.attemptsLeft, start.body.attemptsLeft - 2);
  assert.is((await a.api('GET', `${BASE}/users/alice/enrollments`)).body.enrollments.length, 1);
});

test('an id from another identity store is not found, even when this replica knows the id', async ({ a }) => {
  const start = await a.api('POST', `${BASE}/verifications`, { to: '+14155550101', purpose: 'enroll', user: 'alice' });
  const other = await a.api('POST', `/v1/acme/nodigits/verifications/${start.body.id}/check`, { code: a.gateways.get('primary')!.lastCode() });
  assert.ok(other.status === 404, `status ${other.status}`);
});

test.run();

const unit = suite('Bindings');

const rec = (id: string): VerificationRecord => record(id, { user: `u-${id}` });

unit('past its capacity it forgets the oldest, and keeps at least the newest half', () => {
  const b = new Bindings(4);
  for (const id of ['V1', 'V2', 'V3', 'V4', 'V5']) b.remember(rec(id));
  assert.is(b.get('ns', 'st', 'V1'), undefined);
  assert.is(b.get('ns', 'st', 'V2'), undefined);
  assert.equal(b.get('ns', 'st', 'V3'), { purpose: 'enroll', to: '+14155550101', user: 'u-V3', actor: 'user', role: null });
  for (const id of ['V4', 'V5']) assert.is(b.get('ns', 'st', id)?.user, `u-${id}`);
  assert.is(b.get('ns', 'other', 'V5'), undefined);
});

unit('capacity 0 remembers nothing', () => {
  const b = new Bindings(0);
  b.remember(rec('V1'));
  assert.is(b.get('ns', 'st', 'V1'), undefined);
});

unit.run();
