import type { SmsSize } from '../core/sms-text.ts';
import { headerOf } from './callback-params.ts';
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
import { GatewayConfigError, requireCredential, requireSetting, type AdapterContext } from './gateway-config.ts';
import { gatewayLogger, type GatewayLog } from './gateway-logger.ts';
import { asGatewayError, codeForHttpStatus, gatewayError, providerRequest, type ProviderResponse } from './provider-request.ts';
import { retryAfterMs } from '../core/retry-after.ts';
import { signWebhook, WEBHOOK_SIGNATURE_HEADER, WEBHOOK_TIMESTAMP_HEADER, webhookSignatureProblem } from './webhook-signature.ts';

const PROVIDER = 'webhook';
const DELIVERY_STATUSES: ReadonlySet<string> = new Set<DeliveryStatus>(['queued', 'sent', 'delivered', 'undelivered', 'failed']);
const ERROR_CODES: ReadonlySet<string> = new Set(Object.values(GatewayErrorCode));

/** WebhookMessage is the JSON body the webhook plug-in receives for each message. */
export interface WebhookMessage {
  to: string;
  text: string;
  reference: string;
  namespace: string;
  account: string;
  validitySeconds: number;
}

/**
 * createWebhookGateway is the plug-in API for any other SMS provider: it POSTs each message as
 * JSON ({@link WebhookMessage}) to the account's url, signed with HMAC-SHA-256 under
 * signingSecret (X-Smsauth-Timestamp, X-Smsauth-Signature: v1=...), and expects a 2xx answer with
 * `{messageId}`; an error answer may name a GatewayErrorCode as `{error: {code}}`. A credential
 * check is a signed GET of the url. Delivery callbacks are signed the same way and refused
 * outside a 5-minute window.
 */
export function createWebhookGateway(ctx: AdapterContext): SmsGateway {
  const plugin = webhookPlugin(ctx);
  const log = gatewayLogger(ctx.logger, PROVIDER, ctx.bundle.name);

  return {
    provider: 'webhook',
    send(message: OutboundMessage, signal?: AbortSignal): Promise<SendResult> {
      return log.send(message, (size) => sendToWebhook(plugin, message, size, signal), asGatewayError(PROVIDER, 'send'));
    },

    testCredentials(signal?: AbortSignal): Promise<void> {
      return log.checkCredentials(() => checkWebhookCredentials(plugin, signal), asGatewayError(PROVIDER, 'credential check'));
    },

    readReceipt(request: CallbackRequest): DeliveryReceipt[] | undefined {
      return readWebhookReceipt(plugin, log, request);
    },
  };
}

// The account's plug-in as the gateway's steps use it: the wiring, the url and the signing secret.
interface WebhookPlugin {
  ctx: AdapterContext;
  url: string;
  secret: string;
}

function webhookPlugin(ctx: AdapterContext): WebhookPlugin {
  const secret = requireCredential(ctx, 'signingSecret');
  const url = requireSetting(ctx, 'url');
  try {
    const parsed = new URL(url);
    if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') throw new TypeError('not http');
    if (parsed.username !== '' || parsed.password !== '') throw new TypeError('credentials in URL');
  } catch {
    throw new GatewayConfigError(
      ctx.bundle.name,
      'spec.webhook.url',
      'must be an http or https URL without credentials (the signature authenticates requests)',
    );
  }
  return { ctx, url, secret };
}

async function sendToWebhook(plugin: WebhookPlugin, message: OutboundMessage, size: SmsSize, signal: AbortSignal | undefined): Promise<SendResult> {
  const { ctx, url, secret } = plugin;
  const body = JSON.stringify(webhookMessage(message));
  const res = await providerRequest({
    provider: PROVIDER,
    action: 'send',
    fetch: ctx.fetch,
    method: 'POST',
    url,
    headers: { 'content-type': 'application/json', accept: 'application/json', ...signWebhook(secret, body, ctx.now()) },
    body,
    timeoutMs: ctx.bundle.timeoutMs,
    signal,
  });
  if (res.status < 200 || res.status >= 300) throw webhookFailure(res, 'send', ctx.now());
  return readSendAnswer(res, size.segments);
}

function webhookMessage(message: OutboundMessage): WebhookMessage {
  return {
    to: message.to,
    text: message.text,
    reference: message.reference,
    namespace: message.namespace,
    account: message.account,
    validitySeconds: Math.floor(message.validitySeconds),
  };
}

function readSendAnswer(res: ProviderResponse, measuredSegments: number): SendResult {
  const answer = (res.json ?? {}) as { messageId?: unknown; segments?: unknown };
  if (typeof answer.messageId !== 'string' || answer.messageId.length === 0) {
    throw gatewayError(GatewayErrorCode.Rejected, PROVIDER, 'send', { httpStatus: res.status, detail: 'the plug-in answered without a messageId' });
  }
  const segments = Number(answer.segments);
  return { provider: 'webhook', messageId: answer.messageId, segments: Number.isInteger(segments) && segments > 0 ? segments : measuredSegments };
}

async function checkWebhookCredentials(plugin: WebhookPlugin, signal: AbortSignal | undefined): Promise<void> {
  const { ctx, url, secret } = plugin;
  const res = await providerRequest({
    provider: PROVIDER,
    action: 'credential check',
    fetch: ctx.fetch,
    method: 'GET',
    url,
    headers: { accept: 'application/json', ...signWebhook(secret, '', ctx.now()) },
    timeoutMs: ctx.bundle.timeoutMs,
    signal,
  });
  if (res.status < 200 || res.status >= 300) throw webhookFailure(res, 'credential check', ctx.now());
}

function readWebhookReceipt(plugin: WebhookPlugin, log: GatewayLog, request: CallbackRequest): DeliveryReceipt[] | undefined {
  const problem = webhookSignatureProblem(
    plugin.secret,
    request.body,
    headerOf(request, WEBHOOK_TIMESTAMP_HEADER),
    headerOf(request, WEBHOOK_SIGNATURE_HEADER),
    plugin.ctx.now(),
  );
  if (problem !== null) return log.receiptRefused(problem);
  let parsed: unknown;
  try {
    parsed = JSON.parse(request.body.toString('utf8'));
  } catch {
    return [];
  }
  const items = Array.isArray(parsed) ? (parsed as unknown[]) : [parsed];
  const receipts: DeliveryReceipt[] = [];
  for (const item of items) {
    const receipt = webhookReceipt(item);
    if (receipt !== undefined) receipts.push(receipt);
  }
  return receipts;
}

// One item of a delivery callback as a receipt; undefined for an item without a messageId or a known status.
function webhookReceipt(item: unknown): DeliveryReceipt | undefined {
  if (typeof item !== 'object' || item === null) return undefined;
  const { messageId, status, errorCode } = item as { messageId?: unknown; status?: unknown; errorCode?: unknown };
  if (typeof messageId !== 'string' || messageId.length === 0 || typeof status !== 'string' || !DELIVERY_STATUSES.has(status)) return undefined;
  const receipt: DeliveryReceipt = { messageId, status: status as DeliveryStatus };
  if ((typeof errorCode === 'string' || typeof errorCode === 'number') && /^[\w.-]{1,32}$/.test(String(errorCode))) receipt.errorCode = String(errorCode);
  return receipt;
}

function webhookFailure(res: ProviderResponse, action: string, now: number): GatewayError {
  // Only a code from our own list is taken from the plug-in's answer: free text could hold the number.
  const named = ((res.json ?? {}) as { error?: { code?: unknown } }).error?.code;
  const known = typeof named === 'string' && ERROR_CODES.has(named) ? (named as GatewayErrorCode) : undefined;
  const code = known ?? codeForHttpStatus(res.status);
  const retry = code === GatewayErrorCode.RateLimited ? retryAfterMs(res.headers.get('retry-after'), now) : undefined;
  return gatewayError(code, PROVIDER, action, { httpStatus: res.status, providerCode: known, retryAfterMs: retry });
}
