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
import { gatewayLogger } from './gateway-logger.ts';
import { asGatewayError, codeForHttpStatus, gatewayError, providerRequest, retryAfterMs, type ProviderResponse } from './provider-request.ts';
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
  const log = gatewayLogger(ctx.logger, PROVIDER, ctx.bundle.name);

  return {
    provider: 'webhook',
    send(message: OutboundMessage, signal?: AbortSignal): Promise<SendResult> {
      return log.send(
        message,
        async (size) => {
          const payload: WebhookMessage = {
            to: message.to,
            text: message.text,
            reference: message.reference,
            namespace: message.namespace,
            account: message.account,
            validitySeconds: Math.floor(message.validitySeconds),
          };
          const body = JSON.stringify(payload);
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
          const answer = (res.json ?? {}) as { messageId?: unknown; segments?: unknown };
          if (typeof answer.messageId !== 'string' || answer.messageId.length === 0) {
            throw gatewayError(GatewayErrorCode.Rejected, PROVIDER, 'send', { httpStatus: res.status, detail: 'the plug-in answered without a messageId' });
          }
          const segments = Number(answer.segments);
          return { provider: 'webhook', messageId: answer.messageId, segments: Number.isInteger(segments) && segments > 0 ? segments : size.segments };
        },
        asGatewayError(PROVIDER, 'send'),
      );
    },

    testCredentials(signal?: AbortSignal): Promise<void> {
      return log.checkCredentials(
        async () => {
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
        },
        asGatewayError(PROVIDER, 'credential check'),
      );
    },

    readReceipt(request: CallbackRequest): DeliveryReceipt[] | undefined {
      const problem = webhookSignatureProblem(
        secret,
        request.body,
        headerOf(request, WEBHOOK_TIMESTAMP_HEADER),
        headerOf(request, WEBHOOK_SIGNATURE_HEADER),
        ctx.now(),
      );
      if (problem !== null) {
        log.receiptRefused(problem);
        return undefined;
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse(request.body.toString('utf8'));
      } catch {
        return [];
      }
      const items = Array.isArray(parsed) ? (parsed as unknown[]) : [parsed];
      const receipts: DeliveryReceipt[] = [];
      for (const item of items) {
        if (typeof item !== 'object' || item === null) continue;
        const { messageId, status, errorCode } = item as { messageId?: unknown; status?: unknown; errorCode?: unknown };
        if (typeof messageId !== 'string' || messageId.length === 0 || typeof status !== 'string' || !DELIVERY_STATUSES.has(status)) continue;
        const receipt: DeliveryReceipt = { messageId, status: status as DeliveryStatus };
        if ((typeof errorCode === 'string' || typeof errorCode === 'number') && /^[\w.-]{1,32}$/.test(String(errorCode))) receipt.errorCode = String(errorCode);
        receipts.push(receipt);
      }
      return receipts;
    },
  };
}

function webhookFailure(res: ProviderResponse, action: string, now: number): GatewayError {
  // Only a code from our own list is taken from the plug-in's answer: free text could hold the number.
  const named = ((res.json ?? {}) as { error?: { code?: unknown } }).error?.code;
  const known = typeof named === 'string' && ERROR_CODES.has(named) ? (named as GatewayErrorCode) : undefined;
  const code = known ?? codeForHttpStatus(res.status);
  const retry = code === GatewayErrorCode.RateLimited ? retryAfterMs(res.headers.get('retry-after'), now) : undefined;
  return gatewayError(code, PROVIDER, action, { httpStatus: res.status, providerCode: known, retryAfterMs: retry });
}
