import { randomBytes } from 'node:crypto';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { CodeHasher, generateCode, macMatches } from '../controller/verifier/code-hasher.js';

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
  ] as const) assert.not.ok(macMatches(stored, h.candidates(id, purpose, to, code)), `${id} ${purpose} ${to} ${code}`);
});

test('rotation: the newest key signs, every listed key verifies, a dropped key never does', () => {
  const old = new CodeHasher([k1]).mac('VEa', 'enroll', '+14155550101', '123456');
  const rotated = new CodeHasher([k2, k1]);
  assert.is(rotated.mac('VEa', 'enroll', '+14155550101', '123456').keyId, 'k2');
  assert.ok(macMatches(old, rotated.candidates('VEa', 'enroll', '+14155550101', '123456')));
  assert.not.ok(macMatches(old, new CodeHasher([k2]).candidates('VEa', 'enroll', '+14155550101', '123456')));
  assert.equal(rotated.candidates('VEa', 'enroll', '+1', 'x').map((c) => c.keyId), ['k2', 'k1'], 'every key is computed, whatever the input');
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
