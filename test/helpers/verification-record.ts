import type { VerificationRecord } from '../../controller/verifier/types.ts';

/** T0 is the stores' tests' clock: records are created at it unless told otherwise. */
export const T0 = Date.parse('2026-03-01T10:00:00Z');

/** record is a pending enroll verification of alice's number, created at T0, as a store holds it; `over` changes any field. */
export function record(id: string, over: Partial<VerificationRecord> = {}): VerificationRecord {
  return {
    id,
    namespace: 'ns',
    store: 'st',
    purpose: 'enroll',
    user: 'alice',
    to: '+14155550101',
    locale: null,
    status: 'pending',
    createdAt: T0,
    expiresAt: T0 + 300_000,
    code: { keyId: 'k1', mac: 'ab'.repeat(32) },
    attempts: 0,
    maxAttempts: 3,
    sends: 1,
    maxSends: 3,
    lastSentAt: T0,
    resendCooldownMs: 30_000,
    lockout: { threshold: 3, durationMs: 600_000 },
    delivery: { status: 'sending', updatedAt: T0 },
    client: { ip: '127.0.0.1', userAgent: 'test' },
    ...over,
  };
}
