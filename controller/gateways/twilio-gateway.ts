import { createHmac } from 'node:crypto';
import type { SmsSize } from '../core/sms-text.ts';
import { bodyParams, callbackParams, firstParam, headerOf, receiptOf, receiptStatus, safeEqual, type CallbackParams } from './callback-params.ts';
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
import { apiRoot, GatewayConfigError, requireCredential, type AdapterContext } from './gateway-config.ts';
import { gatewayLogger, type GatewayLog } from './gateway-logger.ts';
import { asGatewayError, basicAuth, codeForHttpStatus, gatewayError, providerRequest, type ProviderResponse } from './provider-request.ts';
import { retryAfterMs } from '../core/retry-after.ts';

const PROVIDER = 'twilio';
const DEFAULT_BASE_URL = 'https://api.twilio.com';
// Twilio accepts ValidityPeriod from 1 to 36000 seconds.
const VALIDITY_MAX = 36_000;

// Twilio's REST error codes that say more than the HTTP status (https://www.twilio.com/docs/api/errors).
const ERROR_CODES: Readonly<Record<string, GatewayErrorCode>> = {
  '20003': GatewayErrorCode.AuthFailed, // Authenticate
  '20005': GatewayErrorCode.InsufficientFunds, // Account not active (out of funds)
  '10001': GatewayErrorCode.InsufficientFunds, // Account is not active (lack of funds)
  '20429': GatewayErrorCode.RateLimited, // Too Many Requests
  '21211': GatewayErrorCode.InvalidNumber, // Invalid 'To' Phone Number
  '21214': GatewayErrorCode.InvalidNumber, // 'To' phone number cannot be reached
  '21217': GatewayErrorCode.InvalidNumber, // Phone number does not appear to be valid
  '21401': GatewayErrorCode.InvalidNumber, // Invalid Phone Number
  '21407': GatewayErrorCode.InvalidNumber, // This Phone Number type does not support SMS
  '21614': GatewayErrorCode.InvalidNumber, // 'To' number is not a valid mobile number
  '21408': GatewayErrorCode.Forbidden, // Permission to send an SMS has not been enabled for the region
  '21608': GatewayErrorCode.Forbidden, // Trial accounts send only to verified numbers
  '21612': GatewayErrorCode.Rejected, // Cannot route between this To and From
  '21610': GatewayErrorCode.Rejected, // The recipient unsubscribed (STOP) from this sender
  '21606': GatewayErrorCode.Rejected, // The From number is not SMS-capable for this account
};

const STATUSES: Readonly<Record<string, DeliveryStatus>> = {
  accepted: 'queued',
  scheduled: 'queued',
  queued: 'queued',
  sending: 'sent',
  sent: 'sent',
  delivered: 'delivered',
  read: 'delivered',
  undelivered: 'undelivered',
  failed: 'failed',
  canceled: 'failed',
};

/**
 * createTwilioGateway sends through Twilio's Programmable Messaging REST API
 * (`POST /2010-04-01/Accounts/{AccountSid}/Messages.json`, form-encoded, Basic auth) with
 * ValidityPeriod and StatusCallback, checks credentials with the Account resource, and reads
 * status callbacks signed with X-Twilio-Signature (HMAC-SHA1 of the URL and sorted POST
 * parameters under the Auth Token).
 */
export function createTwilioGateway(ctx: AdapterContext): SmsGateway {
  const account = twilioAccount(ctx);
  const log = gatewayLogger(ctx.logger, PROVIDER, ctx.bundle.name);

  return {
    provider: 'twilio',
    send(message: OutboundMessage, signal?: AbortSignal): Promise<SendResult> {
      return log.send(message, (size) => sendToTwilio(account, message, size, signal), asGatewayError(PROVIDER, 'send'));
    },

    testCredentials(signal?: AbortSignal): Promise<void> {
      return log.checkCredentials(() => checkTwilioCredentials(account, signal), asGatewayError(PROVIDER, 'credential check'));
    },

    readReceipt(request: CallbackRequest): DeliveryReceipt[] | undefined {
      return readTwilioReceipt(account.authToken, log, request);
    },
  };
}

// The account as the gateway's steps use it: the wiring, the sender, the Account resource's URL and its auth.
interface TwilioAccount {
  ctx: AdapterContext;
  from: string | undefined;
  service: string | undefined;
  authToken: string;
  accountUrl: string;
  headers: { authorization: string; accept: string };
}

function twilioAccount(ctx: AdapterContext): TwilioAccount {
  const accountSid = requireCredential(ctx, 'accountSid');
  const authToken = requireCredential(ctx, 'authToken');
  const from = ctx.bundle.settings.from;
  const service = ctx.bundle.settings.messagingServiceSid;
  if ((from === undefined) === (service === undefined)) {
    throw new GatewayConfigError(ctx.bundle.name, 'spec.twilio.from', 'give exactly one of from and messagingServiceSid');
  }
  const root = apiRoot(ctx, DEFAULT_BASE_URL);
  const accountUrl = `${root}/2010-04-01/Accounts/${encodeURIComponent(accountSid)}`;
  const headers = { authorization: basicAuth(accountSid, authToken), accept: 'application/json' };
  return { ctx, from, service, authToken, accountUrl, headers };
}

async function sendToTwilio(account: TwilioAccount, message: OutboundMessage, size: SmsSize, signal: AbortSignal | undefined): Promise<SendResult> {
  const { ctx } = account;
  const form = messageForm(account, message);
  const res = await providerRequest({
    provider: PROVIDER,
    action: 'send',
    fetch: ctx.fetch,
    method: 'POST',
    url: `${account.accountUrl}/Messages.json`,
    headers: { ...account.headers, 'content-type': 'application/x-www-form-urlencoded' },
    body: form.toString(),
    timeoutMs: ctx.bundle.timeoutMs,
    signal,
  });
  if (res.status < 200 || res.status >= 300) throw twilioFailure(res, 'send', ctx.now());
  return readSendAnswer(res, size.segments);
}

function messageForm(account: TwilioAccount, message: OutboundMessage): URLSearchParams {
  const form = new URLSearchParams({ To: message.to, Body: message.text });
  if (account.service !== undefined) form.set('MessagingServiceSid', account.service);
  else if (account.from !== undefined) form.set('From', account.from);
  form.set('ValidityPeriod', String(Math.min(VALIDITY_MAX, Math.max(1, Math.floor(message.validitySeconds)))));
  if (account.ctx.bundle.statusCallbackUrl !== undefined) form.set('StatusCallback', account.ctx.bundle.statusCallbackUrl);
  return form;
}

function readSendAnswer(res: ProviderResponse, measuredSegments: number): SendResult {
  const body = (res.json ?? {}) as { sid?: unknown; num_segments?: unknown };
  // A 2xx is an accepted message, sid or not: never sent again (a retry would send it twice).
  if (typeof body.sid !== 'string' || body.sid.length === 0)
    throw gatewayError(GatewayErrorCode.Rejected, PROVIDER, 'send', {
      httpStatus: res.status,
      detail: 'accepted, but the answer had no message sid (not sent again)',
    });
  const segments = Number(body.num_segments);
  return { provider: 'twilio', messageId: body.sid, segments: Number.isInteger(segments) && segments > 0 ? segments : measuredSegments };
}

async function checkTwilioCredentials(account: TwilioAccount, signal: AbortSignal | undefined): Promise<void> {
  const { ctx } = account;
  const res = await providerRequest({
    provider: PROVIDER,
    action: 'credential check',
    fetch: ctx.fetch,
    method: 'GET',
    url: `${account.accountUrl}.json`,
    headers: account.headers,
    timeoutMs: ctx.bundle.timeoutMs,
    signal,
  });
  if (res.status < 200 || res.status >= 300) throw twilioFailure(res, 'credential check', ctx.now());
}

function readTwilioReceipt(authToken: string, log: GatewayLog, request: CallbackRequest): DeliveryReceipt[] | undefined {
  const problem = twilioSignatureProblem(authToken, request);
  if (problem !== undefined) return log.receiptRefused(problem);
  const params = callbackParams(request);
  const messageId = firstParam(params, 'MessageSid') ?? firstParam(params, 'SmsSid');
  const status = receiptStatus(STATUSES, firstParam(params, 'MessageStatus') ?? firstParam(params, 'SmsStatus'));
  return receiptOf(messageId, status, firstParam(params, 'ErrorCode'));
}

// Why a status callback's X-Twilio-Signature is refused; undefined when it matches one spelling of the URL.
function twilioSignatureProblem(authToken: string, request: CallbackRequest): string | undefined {
  const signature = headerOf(request, 'x-twilio-signature');
  if (signature === undefined) return 'no X-Twilio-Signature header';
  const signed = request.method.toUpperCase() === 'POST' ? bodyParams(request) : {};
  if (!urlVariants(request.url).some((url) => safeEqual(twilioSignature(authToken, url, signed), signature))) return 'wrong X-Twilio-Signature';
  return undefined;
}

/** twilioSignature computes X-Twilio-Signature: base64 HMAC-SHA1 under the Auth Token of the URL followed by each POST parameter's name and value, sorted by name. */
export function twilioSignature(authToken: string, url: string, params: CallbackParams): string {
  let data = url;
  for (const name of Object.keys(params).sort()) for (const value of params[name] ?? []) data += name + value;
  return createHmac('sha1', authToken).update(data, 'utf8').digest('base64');
}

// Twilio signs the URL as it called it; a proxy in front of the verifier may add or drop the
// default port, so both spellings are tried, as Twilio's own libraries do.
function urlVariants(raw: string): string[] {
  try {
    const url = new URL(raw);
    const defaultPort = url.protocol === 'https:' ? '443' : url.protocol === 'http:' ? '80' : '';
    if (defaultPort === '' || (url.port !== '' && url.port !== defaultPort)) return [raw];
    const rest = `${url.pathname}${url.search}`;
    return [...new Set([raw, `${url.protocol}//${url.hostname}:${defaultPort}${rest}`, `${url.protocol}//${url.hostname}${rest}`])];
  } catch {
    return [raw];
  }
}

function twilioFailure(res: ProviderResponse, action: string, now: number): GatewayError {
  const body = (res.json ?? {}) as { code?: unknown };
  const providerCode = typeof body.code === 'number' || typeof body.code === 'string' ? String(body.code) : undefined;
  const code = (providerCode !== undefined ? ERROR_CODES[providerCode] : undefined) ?? codeForHttpStatus(res.status);
  const retry = code === GatewayErrorCode.RateLimited ? retryAfterMs(res.headers.get('retry-after'), now) : undefined;
  return gatewayError(code, PROVIDER, action, { httpStatus: res.status, providerCode, retryAfterMs: retry });
}
