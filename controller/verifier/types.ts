import type { DeliveryStatus } from '../gateways/gateway.ts';

/** Why a code is being sent. */
export type Purpose = 'enroll' | 'authenticate';

/** The life of a verification: it starts pending and ends in exactly one of the others. */
export type VerificationStatus = 'pending' | 'approved' | 'canceled' | 'max_attempts_reached' | 'expired' | 'failed';

/** CodeMac is a code as stored: an HMAC-SHA-256 under a named key, never the code itself. */
export interface CodeMac {
  keyId: string;
  mac: string;
}

/** Delivery is the latest news of the SMS carrying the current code. */
export interface Delivery {
  status: DeliveryStatus | 'sending';
  account?: string;
  messageId?: string;
  errorCode?: string;
  updatedAt: number;
}

/** VerificationRecord is a verification as the state store keeps it. `to` is the full number: it never leaves the verifier unmasked. */
export interface VerificationRecord {
  id: string;
  namespace: string;
  store: string;
  purpose: Purpose;
  user: string;
  /** E.164, or '' for a decoy (an authentication for an unknown user or wrong digits). */
  to: string;
  locale: string | null;
  status: VerificationStatus;
  createdAt: number;
  expiresAt: number;
  code: CodeMac;
  attempts: number;
  maxAttempts: number;
  sends: number;
  maxSends: number;
  lastSentAt: number;
  resendCooldownMs: number;
  /** Consecutive authentication failures lock the user out at this threshold, for this long. */
  lockout: { threshold: number; durationMs: number };
  delivery: Delivery;
  /** Why the verification failed, when status is failed. */
  failure?: { code: string; message: string };
  /** The client that started it, for history. */
  client: { ip: string; userAgent: string };
  /**
   * 'directory': an authentication sent to the number of the user's directory entry (second-way
   * authentication), which no enrollment has to match when its code is checked.
   */
  numberFrom?: 'directory';
}

/** Enrollment is a user's SMS factor. */
export interface Enrollment {
  user: string;
  to: string;
  enrolledAt: number;
  verificationId: string;
}

/** HistoryEventType lists what history records. */
export type HistoryEventType = 'enroll' | 'unenroll' | 'authenticate' | 'lockout';

/** HistoryEvent is one line of a user's authentication history. */
export interface HistoryEvent {
  /** Increasing within a store; the paging cursor. */
  seq: number;
  namespace: string;
  store: string;
  user: string;
  type: HistoryEventType;
  result: 'success' | 'failure' | 'locked';
  time: number;
  clientIp: string;
  userAgent: string;
  verificationId?: string;
}

/** LockoutState is where a user stands with respect to the lockout. */
export interface LockoutState {
  failures: number;
  lockedUntil: number | null;
}

