import { createHash, createHmac } from 'node:crypto';
import type { SmsSize } from '../core/sms-text.ts';
import { callbackParams, firstParam, receiptOf, receiptStatus, safeEqual, type CallbackParams } from './callback-params.ts';
import type { GatewayError } from './gateway.ts';
import {
  GatewayErrorCode,
  type CallbackRequest,
  type DeliveryReceipt,
  type DeliveryStatus,
  type OutboundMessage,
  type SendResult,
  type SmsGateway,
} from './gateway.ts';
import { apiRoot, requireCredential, requireSetting, type AdapterContext } from './gateway-config.ts';
import { gatewayLogger, type GatewayLog } from './gateway-logger.ts';
import { asGatewayError, codeForHttpStatus, gatewayError, providerRequest, type ProviderResponse } from './provider-request.ts';
import { retryAfterMs } from '../core/retry-after.ts';

const PROVIDER = 'vonage';
const DEFAULT_BASE_URL = 'https://rest.nexmo.com';
// The SMS API's ttl is in milliseconds, from 20 seconds to 7 days.
const TTL_MIN_MS = 20_000;
const TTL_MAX_MS = 604_800_000;

// The SMS API answers HTTP 200 with a status per message part
// (https://developer.vonage.com/en/messaging/sms/guides/troubleshooting-sms).
const SEND_STATUSES: Readonly<Record<string, GatewayErrorCode>> = {
  '1': GatewayErrorCode.RateLimited, // Throttled
  '2': GatewayErrorCode.Rejected, // Missing Parameters
  '3': GatewayErrorCode.Rejected, // Invalid Parameters
  '4': GatewayErrorCode.AuthFailed, // Invalid Credentials
  '5': GatewayErrorCode.Transient, // Internal Error
  '6': GatewayErrorCode.InvalidNumber, // Invalid Message: unrecognised number prefix
  '7': GatewayErrorCode.Rejected, // Number Barred
  '8': GatewayErrorCode.Forbidden, // Partner Account Barred
  '9': GatewayErrorCode.InsufficientFunds, // Partner Quota Violation: not enough credit
  '10': GatewayErrorCode.Transient, // Too Many Existing Binds
  '11': GatewayErrorCode.Forbidden, // Account Not Enabled For HTTP
  '12': GatewayErrorCode.Rejected, // Message Too Long
  '14': GatewayErrorCode.AuthFailed, // Invalid Signature
  '15': GatewayErrorCode.Rejected, // Invalid Sender Address
  '22': GatewayErrorCode.Rejected, // Invalid Network Code
  '23': GatewayErrorCode.Rejected, // Invalid Callback URL
  '29': GatewayErrorCode.Forbidden, // Non-Whitelisted Destination (demo accounts)
  '32': GatewayErrorCode.AuthFailed, // Signature And API Secret Disallowed
  '33': GatewayErrorCode.InvalidNumber, // Number De-activated
};

const STATUSES: Readonly<Record<string, DeliveryStatus>> = {
  accepted: 'sent',
  buffered: 'sent',
  unknown: 'sent',
  delivered: 'delivered',
  expired: 'undelivered',
  failed: 'failed',
  rejected: 'failed',
};

/**
 * createVonageGateway sends through Vonage's SMS API (`POST /sms/json` with api_key and
 * api_secret, `type=unicode` when the text needs UCS-2, ttl from the code's lifetime and
 * status-report-req with the callback URL), checks credentials with the account balance, and
 * reads delivery receipts signed with the signature secret (`sig`, any of Vonage's md5hash or
 * HMAC methods). Without a signature secret every receipt is refused.
 */
export function createVonageGateway(ctx: AdapterContext): SmsGateway {
  const account = vonageAccount(ctx);
  const log = gatewayLogger(ctx.logger, PROVIDER, ctx.bundle.name);

  return {
    provider: 'vonage',
    send(message: OutboundMessage, signal?: AbortSignal): Promise<SendResult> {
      return log.send(message, (size) => sendToVonage(account, message, size, signal), asGatewayError(PROVIDER, 'send'));
    },

    testCredentials(signal?: AbortSignal): Promise<void> {
      return log.checkCredentials(() => checkVonageCredentials(account, signal), asGatewayError(PROVIDER, 'credential check'));
    },

    readReceipt(request: CallbackRequest): DeliveryReceipt[] | undefined {
      return readVonageReceipt(account, log, request);
    },
  };
}

// The account as the gateway's steps use it: the wiring, the API key and secrets, the sender and the API root.
interface VonageAccount {
  ctx: AdapterContext;
  apiKey: string;
  apiSecret: string;
  signatureSecret: string | undefined;
  from: string;
  root: string;
}

function vonageAccount(ctx: AdapterContext): VonageAccount {
  const apiKey = requireCredential(ctx, 'apiKey');
  const apiSecret = requireCredential(ctx, 'apiSecret');
  const signatureSecret = ctx.credentials.signatureSecret;
  const from = requireSetting(ctx, 'from');
  const root = apiRoot(ctx, DEFAULT_BASE_URL);
  return { ctx, apiKey, apiSecret, signatureSecret, from, root };
}

async function sendToVonage(account: VonageAccount, message: OutboundMessage, size: SmsSize, signal: AbortSignal | undefined): Promise<SendResult> {
  const { ctx } = account;
  const form = messageForm(account, message, size);
  const res = await providerRequest({
    provider: PROVIDER,
    action: 'send',
    fetch: ctx.fetch,
    method: 'POST',
    url: `${account.root}/sms/json`,
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body: form.toString(),
    timeoutMs: ctx.bundle.timeoutMs,
    signal,
  });
  if (res.status < 200 || res.status >= 300) throw httpFailure(res, 'send', ctx.now());
  return readSendAnswer(res, size.segments);
}

function messageForm(account: VonageAccount, message: OutboundMessage, size: SmsSize): URLSearchParams {
  const { apiKey, apiSecret, from } = account;
  const form = new URLSearchParams({ api_key: apiKey, api_secret: apiSecret, from, to: message.to.replace(/^\+/, ''), text: message.text });
  if (size.encoding === 'UCS-2') form.set('type', 'unicode');
  form.set('ttl', String(Math.min(TTL_MAX_MS, Math.max(TTL_MIN_MS, Math.floor(message.validitySeconds) * 1000))));
  form.set('client-ref', message.reference.slice(0, 100));
  if (account.ctx.bundle.statusCallbackUrl !== undefined) {
    form.set('status-report-req', '1');
    form.set('callback', account.ctx.bundle.statusCallbackUrl);
  }
  return form;
}

async function checkVonageCredentials(account: VonageAccount, signal: AbortSignal | undefined): Promise<void> {
  const { ctx } = account;
  const query = new URLSearchParams({ api_key: account.apiKey, api_secret: account.apiSecret });
  const res = await providerRequest({
    provider: PROVIDER,
    action: 'credential check',
    fetch: ctx.fetch,
    method: 'GET',
    url: `${account.root}/account/get-balance?${query.toString()}`,
    headers: { accept: 'application/json' },
    timeoutMs: ctx.bundle.timeoutMs,
    signal,
  });
  if (res.status < 200 || res.status >= 300) throw httpFailure(res, 'credential check', ctx.now());
}

function readVonageReceipt(account: VonageAccount, log: GatewayLog, request: CallbackRequest): DeliveryReceipt[] | undefined {
  const { signatureSecret } = account;
  if (signatureSecret === undefined || signatureSecret.length === 0) return log.receiptRefused('the account has no signatureSecret to check receipts with');
  const params = callbackParams(request);
  const problem = signedReceiptProblem(signatureSecret, params, () => account.ctx.now());
  if (problem !== undefined) return log.receiptRefused(problem);
  return receiptOf(firstParam(params, 'messageId'), receiptStatus(STATUSES, firstParam(params, 'status')), firstParam(params, 'err-code'), ['0']);
}

// Why a delivery receipt's sig or timestamp is refused; undefined when it is signed and recent.
function signedReceiptProblem(signatureSecret: string, params: CallbackParams, now: () => number): string | undefined {
  const sig = firstParam(params, 'sig');
  if (sig === undefined) return 'no sig parameter';
  if (!vonageSignatureMatches(signatureSecret, params, sig)) return 'wrong sig parameter';
  // The signed timestamp bounds replays, as the webhook adapter's does.
  const signedAt = Number(firstParam(params, 'timestamp'));
  if (!Number.isFinite(signedAt) || Math.abs(now() / 1000 - signedAt) > RECEIPT_TOLERANCE_SECONDS) return 'timestamp missing or more than 5 minutes away';
  return undefined;
}

/** How far a signed receipt's timestamp may be from now. */
const RECEIPT_TOLERANCE_SECONDS = 300;

/** VonageSignatureMethod is a signing method an account's dashboard can choose. */
export type VonageSignatureMethod = 'md5hash' | 'md5' | 'sha1' | 'sha256' | 'sha512';

/**
 * vonageSignature signs parameters the way Vonage signs SMS API requests and webhooks: every
 * parameter but `sig`, sorted by name, each value with `&` and `=` replaced by `_`, joined as
 * `&name=value...`; then md5 of that text followed by the secret (md5hash), or an HMAC under the
 * secret, in hex.
 */
export function vonageSignature(secret: string, params: CallbackParams, method: VonageSignatureMethod): string {
  let base = '';
  for (const name of Object.keys(params).sort()) {
    if (name === 'sig') continue;
    base += `&${name}=${(params[name]?.[0] ?? '').replace(/[&=]/g, '_')}`;
  }
  if (method === 'md5hash')
    return createHash('md5')
      .update(base + secret, 'utf8')
      .digest('hex');
  return createHmac(method, secret).update(base, 'utf8').digest('hex');
}

// The method is an account-wide dashboard setting the resource does not name, so each method whose
// digest has the signature's length is tried; hex case differs between Vonage's libraries.
function vonageSignatureMatches(secret: string, params: CallbackParams, sig: string): boolean {
  const given = sig.toLowerCase();
  const methods: VonageSignatureMethod[] =
    given.length === 32 ? ['md5hash', 'md5'] : given.length === 40 ? ['sha1'] : given.length === 64 ? ['sha256'] : given.length === 128 ? ['sha512'] : [];
  return methods.some((m) => safeEqual(vonageSignature(secret, params, m), given));
}

function readSendAnswer(res: ProviderResponse, measuredSegments: number): SendResult {
  const body = (res.json ?? {}) as { 'message-count'?: unknown; messages?: unknown };
  const parts = Array.isArray(body.messages) ? (body.messages as { status?: unknown; 'message-id'?: unknown }[]) : [];
  // A 200 is an accepted request: what it does not confirm is never sent again (a retry would send it twice).
  if (parts.length === 0)
    throw gatewayError(GatewayErrorCode.Rejected, PROVIDER, 'send', {
      httpStatus: res.status,
      detail: 'accepted, but the answer listed no message (not sent again)',
    });
  // A part sent means the message is on its way (parts of one SMS are joined by the phone): resending would send those parts again.
  const sent = parts.find((p) => String(p.status) === '0');
  if (sent === undefined) {
    const status = String(parts[0]!.status);
    return fail(SEND_STATUSES[status] ?? GatewayErrorCode.Rejected, status, res);
  }
  const id = sent['message-id'];
  if (typeof id !== 'string' || id.length === 0)
    throw gatewayError(GatewayErrorCode.Rejected, PROVIDER, 'send', {
      httpStatus: res.status,
      detail: 'accepted, but the answer had no message-id (not sent again)',
    });
  const count = Number(body['message-count']);
  return { provider: 'vonage', messageId: id, segments: Number.isInteger(count) && count > 0 ? count : Math.max(parts.length, measuredSegments) };
}

function fail(code: GatewayErrorCode, providerCode: string, res: ProviderResponse): never {
  throw gatewayError(code, PROVIDER, 'send', { httpStatus: res.status, providerCode });
}

function httpFailure(res: ProviderResponse, action: string, now: number): GatewayError {
  const code = codeForHttpStatus(res.status);
  return gatewayError(code, PROVIDER, action, {
    httpStatus: res.status,
    retryAfterMs: code === GatewayErrorCode.RateLimited ? retryAfterMs(res.headers.get('retry-after'), now) : undefined,
  });
}
