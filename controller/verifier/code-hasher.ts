import { createHmac, createSecretKey, randomInt, timingSafeEqual, type KeyObject } from 'node:crypto';
import type { CodeMac, Purpose } from './types.ts';

/** CodeKey is a secret that signs codes; the first of a list signs, all verify (rotation). */
export interface CodeKey {
  id: string;
  secret: Buffer;
}

/** generateCode draws a code of `length` decimal digits from crypto.randomInt, each digit uniform. */
export function generateCode(length: number): string {
  let code = '';
  for (let i = 0; i < length; i++) code += String(randomInt(10));
  return code;
}

/**
 * CodeHasher stores codes as HMAC-SHA-256 bound to the verification, the purpose and the number, so
 * that a code is worth nothing for another verification, purpose or number. The newest key signs;
 * every key listed verifies; a code signed by a key no longer listed never verifies.
 */
export class CodeHasher {
  /** The keys, each with its secret as a key object (an HMAC keyed by one is several times cheaper than by bytes). */
  private keys: readonly (CodeKey & { object: KeyObject })[] = [];

  constructor(keys: readonly CodeKey[]) {
    this.setKeys(keys);
  }

  /** setKeys replaces the keys (rotation): the first signs from now on; codes signed by a key still listed keep verifying. */
  setKeys(keys: readonly CodeKey[]): void {
    if (keys.length === 0) throw new Error('CodeHasher needs at least one key');
    for (const k of keys) if (k.secret.length < 32) throw new Error(`code key ${k.id} is shorter than 32 bytes`);
    this.keys = keys.map((k) => ({ ...k, object: createSecretKey(k.secret) }));
  }

  /** mac signs a code with the newest key. */
  mac(verificationId: string, purpose: Purpose, to: string, code: string): CodeMac {
    const key = this.keys[0]!;
    return { keyId: key.id, mac: this.compute(key.object, verificationId, purpose, to, code).toString('hex') };
  }

  /**
   * candidates signs a code as the verification's code would be stored under each listed key, for
   * a store to compare with what it holds (macMatches) inside its own atomic step. Every key is
   * computed whatever the code, so that the work does not depend on the input.
   */
  candidates(verificationId: string, purpose: Purpose, to: string, code: string): CodeMac[] {
    return this.keys.map((k) => ({ keyId: k.id, mac: this.compute(k.object, verificationId, purpose, to, code).toString('hex') }));
  }

  private compute(secret: KeyObject, verificationId: string, purpose: Purpose, to: string, code: string): Buffer {
    return createHmac('sha256', secret).update(`smsauth-code-v1\n${verificationId}\n${purpose}\n${to}\n${code}`).digest();
  }
}

/** macMatches tells whether a stored code is among the candidates, comparing MACs in constant time. */
export function macMatches(stored: CodeMac, candidates: readonly CodeMac[]): boolean {
  const expected = Buffer.from(stored.mac, 'hex');
  let found = false;
  for (const c of candidates) {
    const actual = Buffer.from(c.mac, 'hex');
    if (c.keyId === stored.keyId && actual.length === expected.length && timingSafeEqual(actual, expected)) found = true;
  }
  return found;
}
