import { timingSafeEqual } from 'node:crypto';
import type { CallbackRequest, DeliveryReceipt, DeliveryStatus } from './gateway.ts';

/** CallbackParams are a callback's parameters by name, each with every value it was given, in order. */
export type CallbackParams = Record<string, string[]>;

/**
 * callbackParams reads a delivery callback's parameters: the URL's query, then a form-encoded or
 * JSON-object body (JSON values other than strings are written as JSON). Unreadable bodies give
 * the query alone.
 */
export function callbackParams(request: CallbackRequest, options: { query?: boolean } = {}): CallbackParams {
  const out: CallbackParams = Object.create(null) as CallbackParams;
  const add = (k: string, v: string): void => {
    (out[k] ??= []).push(v);
  };
  if (options.query !== false) {
    try {
      for (const [k, v] of new URL(request.url).searchParams) add(k, v);
    } catch {
      // A URL the verifier could not rebuild: the signature check fails on it anyway.
    }
  }
  const type = (headerOf(request, 'content-type') ?? '').toLowerCase();
  const text = request.body.toString('utf8');
  if (type.includes('application/json')) {
    try {
      const parsed = JSON.parse(text) as unknown;
      if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) {
        for (const [k, v] of Object.entries(parsed)) add(k, typeof v === 'string' ? v : JSON.stringify(v));
      }
    } catch {
      // Not JSON after all: no body parameters.
    }
  } else if (text.length > 0) {
    for (const [k, v] of new URLSearchParams(text)) add(k, v);
  }
  return out;
}

/** bodyParams reads only a form-encoded or JSON body's parameters, not the query. */
export function bodyParams(request: CallbackRequest): CallbackParams {
  return callbackParams(request, { query: false });
}

/** firstParam returns a parameter's first value, or undefined. */
export function firstParam(params: CallbackParams, name: string): string | undefined {
  return params[name]?.[0];
}

/** headerOf finds a header whatever its case; the first value when a list was joined. */
export function headerOf(request: CallbackRequest, name: string): string | undefined {
  const wanted = name.toLowerCase();
  for (const [k, v] of Object.entries(request.headers)) if (k.toLowerCase() === wanted && v !== undefined) return v;
  return undefined;
}

/** safeEqual compares two strings in time that does not depend on where they differ. */
export function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** receiptStatus maps a provider's status word through its table; undefined for words the table lacks. */
export function receiptStatus(table: Readonly<Record<string, DeliveryStatus>>, word: string | undefined): DeliveryStatus | undefined {
  if (word === undefined) return undefined;
  return Object.hasOwn(table, word.toLowerCase()) ? table[word.toLowerCase()] : undefined;
}

/**
 * receiptOf is a provider's delivery receipt as the gateway port returns it: none when the message
 * or its status is unknown; the provider's error code kept only for a failure, and only when it
 * is not one of its codes for "no error".
 */
export function receiptOf(
  messageId: string | undefined,
  status: DeliveryStatus | undefined,
  errorCode: string | undefined,
  noError: readonly string[] = [],
): DeliveryReceipt[] {
  if (messageId === undefined || status === undefined) return [];
  const receipt: DeliveryReceipt = { messageId, status };
  const failed = status === 'failed' || status === 'undelivered';
  if (failed && errorCode !== undefined && errorCode !== '' && !noError.includes(errorCode)) receipt.errorCode = errorCode;
  return [receipt];
}
