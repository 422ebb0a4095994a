import type { GatewayBundle } from '../core/bundle.ts';

/** The stable error codes of a failed send; callers branch on them, never on messages. */
export const GatewayErrorCode = {
  InvalidNumber: 'InvalidNumber',
  AuthFailed: 'AuthFailed',
  Forbidden: 'Forbidden',
  RateLimited: 'RateLimited',
  InsufficientFunds: 'InsufficientFunds',
  Transient: 'Transient',
  Rejected: 'Rejected',
} as const;
/** A gateway error code. */
export type GatewayErrorCode = (typeof GatewayErrorCode)[keyof typeof GatewayErrorCode];

/**
 * looksLikeCode tells whether a provider's error code looks like one: a short token (Twilio's are
 * five digits, Vonage's one or two, others words), never six digits in a row, which could be a
 * confirmation code or part of a number echoed by a server.
 */
export function looksLikeCode(code: string): boolean {
  return /^[A-Za-z0-9_.-]{1,32}$/.test(code) && !/\d{6}/.test(code);
}

/**
 * GatewayError is a failed send or credential check. Its message names the provider and the
 * problem, never the message text, the code or the full number; `providerCode` is the provider's
 * own error code when it gave one. Transient errors may be retried; the others may not.
 */
export class GatewayError extends Error {
  override readonly name = 'GatewayError';
  /** `providerCode` is kept only when it looks like a code (a compatible server could answer anything there, a number included). */
  readonly details: { provider: string; providerCode?: string; httpStatus?: number; retryAfterMs?: number };
  readonly code: GatewayErrorCode;

  constructor(
    code: GatewayErrorCode,
    message: string,
    details: { provider: string; providerCode?: string; httpStatus?: number; retryAfterMs?: number },
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.code = code;
    const { providerCode, ...rest } = details;
    this.details = providerCode !== undefined && looksLikeCode(providerCode) ? { ...rest, providerCode } : rest;
  }

  /** retryable tells whether trying again (or the fallback account) may succeed. */
  get retryable(): boolean {
    return this.code === GatewayErrorCode.Transient || this.code === GatewayErrorCode.RateLimited;
  }
}

/** OutboundMessage is one SMS to send. `text` carries the code: it is never logged. */
export interface OutboundMessage {
  /** The number in E.164 (+14155550100). */
  to: string;
  text: string;
  namespace: string;
  /** The identity store it is for (the development outbox shows it; providers are not told). */
  store?: string;
  /** The SmsGatewayAccount sending it. */
  account: string;
  /** Correlates delivery receipts with the verification. */
  reference: string;
  /** How long the message is worth delivering (the code's remaining lifetime), in seconds. */
  validitySeconds: number;
}

/** SendResult is the provider's acceptance of a message. */
export interface SendResult {
  provider: GatewayBundle['provider'];
  messageId: string;
  segments: number;
}

/** DeliveryStatus is the normalised state of a sent message. */
export type DeliveryStatus = 'queued' | 'sent' | 'delivered' | 'undelivered' | 'failed';

/** DeliveryReceipt is a provider's report on a message, after its signature was checked. */
export interface DeliveryReceipt {
  messageId: string;
  status: DeliveryStatus;
  /** The provider's error code for undelivered and failed messages. */
  errorCode?: string;
}

/** CallbackRequest is an HTTP request to the delivery-receipt route, as the adapter needs it to check and read it. */
export interface CallbackRequest {
  /** The full public URL the provider called (signatures cover it). */
  url: string;
  method: string;
  headers: Readonly<Record<string, string | undefined>>;
  /** The raw body. */
  body: Buffer;
}

/** SmsGateway is the port every provider adapter implements. */
export interface SmsGateway {
  readonly provider: GatewayBundle['provider'];
  /** send sends one message; it rejects with a GatewayError only. The signal aborts at the request's deadline. */
  send(message: OutboundMessage, signal?: AbortSignal): Promise<SendResult>;
  /** testCredentials checks the credentials against the provider without sending (Plivo: its account endpoint). */
  testCredentials(signal?: AbortSignal): Promise<void>;
  /** readReceipt checks a delivery callback's signature and reads it; undefined when the signature is missing or wrong. */
  readReceipt(request: CallbackRequest): DeliveryReceipt[] | undefined;
}

/** Credentials are the resolved secret values of an account, by setting name (authId, authToken, ...). Never logged. */
export type Credentials = Readonly<Record<string, string>>;
