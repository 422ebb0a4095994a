import { randomBytes } from 'node:crypto';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { CodeHasher, generateCode, macMatches } from '../controller/verifier/code-hasher.ts';

const test = suite('code MACs');
const k1 = { id: 'k1', secret: randomBytes(32) };
const k2 = { id: 'k2', secret: randomBytes(32) };

test('a code is bound to its verification, purpose and number', () => {
  const h = new CodeHasher([k1]);
  const stored = h.mac('VEa', 'enroll', '+14155550101', '123456');
  assert.ok(macMatches(stored, h.candidates('VEa', 'enroll', '+14155550101', '123456')));
  for (const [id, purpose, to, code] of [
    ['VEb', 'enroll', '+14155550101', '123456'],
    ['VEa', 'authenticate', '+14155550101', '123456'],
    ['VEa', 'enroll', '+14155550102', '123456'],
    ['VEa', 'enroll', '+14155550101', '123457'],
    ['VEa', 'enroll', '+14155550101', '0123456'],
  ] as const)
    assert.not.ok(macMatches(stored, h.candidates(id, purpose, to, code)), `${id} ${purpose} ${to} ${code}`);
});

test('rotation: the newest key signs, every listed key verifies, a dropped key never does', () => {
  const old = new CodeHasher([k1]).mac('VEa', 'enroll', '+14155550101', '123456');
  const rotated = new CodeHasher([k2, k1]);
  assert.is(rotated.mac('VEa', 'enroll', '+14155550101', '123456').keyId, 'k2');
  assert.ok(macMatches(old, rotated.candidates('VEa', 'enroll', '+14155550101', '123456')));
  assert.not.ok(macMatches(old, new CodeHasher([k2]).candidates('VEa', 'enroll', '+14155550101', '123456')));
  assert.equal(
    rotated.candidates('VEa', 'enroll', '+1', 'x').map((c) => c.keyId),
    ['k2', 'k1'],
    'every key is computed, whatever the input',
  );
});

test('keys shorter than 32 bytes and an empty list are refused', () => {
  assert.throws(() => new CodeHasher([]), /at least one key/);
  assert.throws(() => new CodeHasher([{ id: 'short', secret: randomBytes(16) }]), /shorter than 32 bytes/);
});

test('codes are uniform decimal digits of the asked length', () => {
  const counts = Array(10).fill(0) as number[];
  for (let i = 0; i < 2000; i++) {
    const c = generateCode(8);
    assert.match(c, /^\d{8}$/);
    for (const d of c) counts[Number(d)]! += 1;
  }
  // 16,000 digits: each about 1,600; a skewed generator (modulo bias, Math.random) would stray further.
  for (const n of counts) assert.ok(n > 1400 && n < 1800, `digit counts ${counts.join(',')}`);
});

test.run();

const ids = suite('verification ids');

ids('VE and 32 hex digits, sorting by creation time, never repeating, 80 random bits each', async () => {
  const { verificationId } = await import('../controller/verifier/ids.ts');
  const t = Date.parse('2026-03-01T10:00:00Z');
  const made = Array.from({ length: 5000 }, (_, i) => verificationId(t + Math.floor(i / 10)));
  for (const id of made) assert.match(id, /^VE[0-9a-f]{32}$/);
  assert.equal(
    [...made].sort((a, b) => a.slice(0, 14).localeCompare(b.slice(0, 14))).map((id) => id.slice(0, 14)),
    made.map((id) => id.slice(0, 14)),
    'the time part sorts by creation',
  );
  assert.is(new Set(made).size, made.length);
  assert.is(new Set(made.map((id) => id.slice(14))).size, made.length, 'the random parts never repeat (the pool is not reused)');
  assert.is(made[0]!.slice(2, 14), t.toString(16).padStart(12, '0'));
});

ids.run();
