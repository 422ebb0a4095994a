import type { DeliveryStatus } from '../gateways/gateway.ts';

/**
 * Why a code is being sent: to enroll a number, to authenticate a user, or for the helpdesk to
 * verify a caller's identity (a code to the user's number that the operator checks; it neither
 * enrolls nor counts toward the user's lockout).
 */
/** Purpose is what a code is for; possession: a number's holder confirmed, for the Twilio-compatible API (no user, no enrollment). */
export type Purpose = 'enroll' | 'authenticate' | 'helpdesk' | 'possession';

/** Actor is who acts: the end user (through the application), a helpdesk operator (`helpdesk:<id>`), or smsauth itself. */
export type Actor = 'user' | 'system' | `helpdesk:${string}`;

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
  /** The end user's client that started it, for history. */
  client: { ip: string; userAgent: string };
  /** Who started it; absent in records made before actors were recorded (the user). */
  actor?: Actor;
  /** The security role that decided for the user when it started (null: none). */
  role?: string | null;
  /**
   * The number an enrollment may replace: the one a fresh authentication proved the user holds
   * (the proof spent when it was created), or '*' when the helpdesk acts. Approved while the user
   * has another number, it replaces it only if that is still this one (NIST SP 800-63B §6.1).
   */
  replaces?: string;
  /** The helpdesk's stated reason, for a verification the helpdesk started. */
  reason?: string;
  /** The number as history shows it (calling code and last two digits), for enrollments. */
  maskedTo?: string;
  /** When the right code approved it. */
  approvedAt?: number;
  /** An approved authentication spent as proof for replacing the user's number (single use). */
  proofUsed?: true;
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
  /** The number as history shows it (calling code and last two digits); absent in older records. */
  masked?: string;
}

/** HistoryEventType lists what history records. */
export type HistoryEventType = 'enroll' | 'unenroll' | 'authenticate' | 'lockout' | 'unlock' | 'helpdesk_verify' | 'verify';

/** HISTORY_EVENT_TYPES are the event types, for filters. */
export const HISTORY_EVENT_TYPES: readonly HistoryEventType[] = ['enroll', 'unenroll', 'authenticate', 'lockout', 'unlock', 'helpdesk_verify', 'verify'];

/** HistoryResult is an event's outcome; refused: an enrollment the fraud guard stopped before any code was sent. */
export type HistoryResult = 'success' | 'failure' | 'locked' | 'refused';

/**
 * HistoryEvent is one line of the audit trail: who acted (actor), for which user, from which end
 * user client, under which role, with what outcome.
 */
export interface HistoryEvent {
  /** Increasing within a store; the paging cursor. */
  seq: number;
  namespace: string;
  store: string;
  user: string;
  type: HistoryEventType;
  result: HistoryResult;
  time: number;
  /** Absent in events recorded before actors were (read as 'user'). */
  actor?: Actor;
  /** The end user's client address and user agent ('' when unknown, as for the helpdesk's own actions). */
  clientIp: string;
  userAgent: string;
  /** The role that decided for the user (null: none, or not known to smsauth). */
  role?: string | null;
  verificationId?: string;
  /** The helpdesk's stated reason. */
  reason?: string;
  /** An enrollment change: the old and new numbers, masked (calling code and last two digits). */
  numbers?: { old: string | null; new: string | null };
  /** A wrong code that used the verification's last attempt: it ended max_attempts_reached. */
  exhausted?: true;
}

/** HistoryQuery selects events, newest first: by user, type, actor and time range, from a cursor. */
export interface HistoryQuery {
  user?: string;
  type?: HistoryEventType;
  actor?: string;
  /** Events at or after this time (ms). */
  since?: number;
  /** Events before this time (ms). */
  until?: number;
  /** Events with seq below this (the previous page's `next`). */
  before?: number;
  limit: number;
}

/** HistoryPage is a page of events and the cursor of the next (null: no more). */
export interface HistoryPage {
  events: HistoryEvent[];
  next: number | null;
}

/** LockoutState is where a user stands with respect to the lockout. */
export interface LockoutState {
  failures: number;
  lockedUntil: number | null;
}
