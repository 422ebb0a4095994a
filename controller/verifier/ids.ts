import { randomBytes } from 'node:crypto';

/** Random bytes drawn 4 KiB at a time: one system call for hundreds of ids. */
let pool: Buffer | undefined;
let offset = 0;

/**
 * verificationId names a new verification: VE and 32 hex digits, 12 of the creation time in
 * milliseconds and 20 random (80 bits from the system's CSPRNG, so ids cannot be guessed). Ids
 * made close in time sort together, so that the stores' indexes grow at one end instead of
 * touching a random page for every new verification.
 */
export function verificationId(now: number): string {
  if (pool === undefined || offset + 10 > pool.length) {
    pool = randomBytes(4096);
    offset = 0;
  }
  const random = pool.toString('hex', offset, offset + 10);
  // Each byte is used once: the pool never hands out the same randomness twice.
  pool.fill(0, offset, offset + 10);
  offset += 10;
  return `VE${Math.max(0, Math.floor(now)).toString(16).padStart(12, '0').slice(-12)}${random}`;
}
