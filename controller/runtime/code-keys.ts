import { randomBytes } from 'node:crypto';
import type { CodeKey } from '../verifier/code-hasher.ts';

/** CODE_KEY_PREFIX names the keys of the smsauth-code-keys Secret: key.<id>, the greatest id signs. */
export const CODE_KEY_PREFIX = 'key.';
/** DECOY_KEY is the Secret key of the decoy secret. */
export const DECOY_KEY = 'decoy';

/**
 * codeKeysFrom reads the files (or Secret data) of smsauth-code-keys: `key.<id>` holding 32 or more
 * random bytes in base64, the greatest id first (it signs), and `decoy`. It returns an error
 * sentence, naming keys and never values, when something is missing or short.
 */
export function codeKeysFrom(files: ReadonlyMap<string, string>): { ok: true; codeKeys: CodeKey[]; decoySecret: Buffer } | { ok: false; error: string } {
  const codeKeys: CodeKey[] = [];
  for (const [name, text] of files) {
    if (!name.startsWith(CODE_KEY_PREFIX)) continue;
    const secret = Buffer.from(text.trim(), 'base64');
    if (secret.length < 32) return { ok: false, error: `${name} holds fewer than 32 bytes (base64 of 32 random bytes expected)` };
    codeKeys.push({ id: name.slice(CODE_KEY_PREFIX.length), secret });
  }
  if (codeKeys.length === 0) return { ok: false, error: `holds no ${CODE_KEY_PREFIX}<id> file: mount the smsauth-code-keys Secret there` };
  const decoy = files.get(DECOY_KEY);
  if (decoy === undefined || Buffer.from(decoy.trim(), 'base64').length < 32) return { ok: false, error: `${DECOY_KEY} is missing or shorter than 32 bytes` };
  codeKeys.sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
  return { ok: true, codeKeys, decoySecret: Buffer.from(decoy.trim(), 'base64') };
}

/** freshCodeKeys is the data of a new smsauth-code-keys Secret: one key named after the time, and a decoy secret. */
export function freshCodeKeys(now: Date = new Date()): Record<string, string> {
  const id = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  return { [`${CODE_KEY_PREFIX}${id}`]: randomBytes(32).toString('base64'), [DECOY_KEY]: randomBytes(32).toString('base64') };
}
