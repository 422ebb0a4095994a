import { createRequire } from 'node:module';
import type { SmsSize } from '../core/sms-text.ts';
import { bodyParams, callbackParams, firstParam, headerOf, receiptOf, receiptStatus } from './callback-params.ts';
import {
  GatewayError,
  GatewayErrorCode,
  type CallbackRequest,
  type DeliveryReceipt,
  type DeliveryStatus,
  type OutboundMessage,
  type SendResult,
  type SmsGateway,
} from './gateway.ts';
import { apiRoot, GatewayConfigError, requireCredential, requireSetting, type AdapterContext } from './gateway-config.ts';
import { gatewayLogger, type GatewayLog } from './gateway-logger.ts';
import { codeForHttpStatus, gatewayError } from './provider-request.ts';

// The parts of the plivo SDK (4.x, CommonJS) this adapter uses.
interface PlivoSdk {
  Client: new (authId: string, authToken: string, options: PlivoClientOptions) => PlivoClient;
  validateV3Signature(method: string, uri: string, nonce: string, authToken: string, signature: string, params?: Record<string, string | string[]>): boolean;
}
interface PlivoClientOptions {
  /** The account's API root: `<baseUrl>/v1/Account/<authId>`; requests go to `<url>/<action>`. */
  url: string;
  /** axios' timeout for each request, in milliseconds. */
  timeout: number;
  /** A proxy URL, credentials inside; the SDK applies it (https-proxy-agent) to https requests only. */
  proxy?: string;
}
interface PlivoClient {
  messages: { create(src: string, dst: string, text: string, params: Record<string, unknown>): Promise<{ messageUuid?: unknown; invalid_number?: unknown }> };
  accounts: { get(): Promise<unknown> };
}

let sdk: PlivoSdk | undefined;

// WARNING: loading the SDK replaces axios' global default agents, so it is loaded here, on first
// use, and nowhere else. createRequire keeps it synchronous for readReceipt.
function plivoSdk(): PlivoSdk {
  sdk ??= createRequire(import.meta.url)('plivo') as PlivoSdk;
  return sdk;
}

const PROVIDER = 'plivo';
const DEFAULT_BASE_URL = 'https://api.plivo.com';
// Plivo accepts message_expiry from 5 to 10799 seconds.
const EXPIRY_MIN = 5;
const EXPIRY_MAX = 10_799;

const STATUSES: Readonly<Record<string, DeliveryStatus>> = {
  queued: 'queued',
  sent: 'sent',
  delivered: 'delivered',
  read: 'delivered',
  undelivered: 'undelivered',
  failed: 'failed',
  rejected: 'failed',
};

/**
 * createPlivoGateway sends through the real plivo SDK (`messages.create`) against the account's
 * baseUrl, with an explicit timeout, `log: false` (Plivo keeps neither the text nor the full
 * number), `message_expiry` set to the code's remaining lifetime and the delivery-report url.
 * SDK failures are rebuilt as GatewayErrors from their status alone: the SDK's errors carry the
 * request body (text and number) and its network failures are bare strings.
 */
export function createPlivoGateway(ctx: AdapterContext): SmsGateway {
  const account = plivoAccount(ctx);
  const log = gatewayLogger(ctx.logger, PROVIDER, ctx.bundle.name);

  return {
    provider: 'plivo',
    send(message: OutboundMessage, signal?: AbortSignal): Promise<SendResult> {
      return log.send(
        message,
        (size) => sendToPlivo(account, message, size, signal),
        (err) => plivoFailure(err, 'send'),
      );
    },

    testCredentials(signal?: AbortSignal): Promise<void> {
      return log.checkCredentials(
        () => checkPlivoCredentials(account, signal),
        (err) => plivoFailure(err, 'credential check'),
      );
    },

    readReceipt(request: CallbackRequest): DeliveryReceipt[] | undefined {
      return readPlivoReceipt(account.authToken, log, request);
    },
  };
}

// The account as the gateway's steps use it: the wiring, the sender, the Auth Token and the SDK client, made on first use.
interface PlivoAccount {
  ctx: AdapterContext;
  source: string;
  authToken: string;
  client: () => PlivoClient;
}

function plivoAccount(ctx: AdapterContext): PlivoAccount {
  const authId = requireCredential(ctx, 'authId');
  const authToken = requireCredential(ctx, 'authToken');
  const source = requireSetting(ctx, 'source');
  const options = clientOptions(ctx, authId);
  let client: PlivoClient | undefined;
  return { ctx, source, authToken, client: () => (client ??= new (plivoSdk().Client)(authId, authToken, options)) };
}

function clientOptions(ctx: AdapterContext, authId: string): PlivoClientOptions {
  const root = apiRoot(ctx, DEFAULT_BASE_URL);
  const options: PlivoClientOptions = { url: `${root}/v1/Account/${encodeURIComponent(authId)}`, timeout: ctx.bundle.timeoutMs };
  const proxy = ctx.bundle.proxy;
  if (proxy !== undefined) {
    if (!root.startsWith('https:')) {
      throw new GatewayConfigError(
        ctx.bundle.name,
        'spec.proxy',
        'the plivo SDK sends only https requests through a proxy; use an https baseUrl or remove the proxy',
      );
    }
    options.proxy = proxyUrl(ctx, proxy.url);
  }
  return options;
}

async function sendToPlivo(account: PlivoAccount, message: OutboundMessage, size: SmsSize, signal: AbortSignal | undefined): Promise<SendResult> {
  const params = messageParams(account.ctx, message);
  // Positional arguments: the one-object form drops `log: false` (it copies only truthy options).
  const answer = await untilAborted(() => account.client().messages.create(account.source, message.to.replace(/^\+/, ''), message.text, params), signal);
  const uuid = Array.isArray(answer.messageUuid) ? (answer.messageUuid[0] as unknown) : answer.messageUuid;
  if (typeof uuid !== 'string' || uuid.length === 0) {
    const invalid = Array.isArray(answer.invalid_number) && answer.invalid_number.length > 0;
    throw gatewayError(invalid ? GatewayErrorCode.InvalidNumber : GatewayErrorCode.Rejected, PROVIDER, 'send', { detail: 'Plivo queued no message' });
  }
  return { provider: 'plivo', messageId: uuid, segments: size.segments };
}

function messageParams(ctx: AdapterContext, message: OutboundMessage): Record<string, unknown> {
  const params: Record<string, unknown> = {
    type: 'sms',
    log: false,
    message_expiry: Math.min(EXPIRY_MAX, Math.max(EXPIRY_MIN, Math.floor(message.validitySeconds))),
  };
  if (ctx.bundle.statusCallbackUrl !== undefined) {
    params.url = ctx.bundle.statusCallbackUrl;
    params.method = 'POST';
  }
  return params;
}

async function checkPlivoCredentials(account: PlivoAccount, signal: AbortSignal | undefined): Promise<void> {
  await untilAborted(() => account.client().accounts.get(), signal);
}

function readPlivoReceipt(authToken: string, log: GatewayLog, request: CallbackRequest): DeliveryReceipt[] | undefined {
  const problem = plivoSignatureProblem(authToken, request);
  if (problem !== undefined) return log.receiptRefused(problem);
  const params = callbackParams(request);
  return receiptOf(firstParam(params, 'MessageUUID'), receiptStatus(STATUSES, firstParam(params, 'Status')), firstParam(params, 'ErrorCode'), ['000']);
}

// Why a delivery report's X-Plivo-Signature-V3 is refused; undefined when the SDK accepts it.
function plivoSignatureProblem(authToken: string, request: CallbackRequest): string | undefined {
  const signature = headerOf(request, 'x-plivo-signature-v3');
  const nonce = headerOf(request, 'x-plivo-signature-v3-nonce');
  if (signature === undefined || nonce === undefined) return 'no X-Plivo-Signature-V3 or nonce header';
  const method = request.method.toUpperCase();
  let valid: boolean;
  try {
    // The SDK signs the URL (with its query) and, for POST, the sorted form parameters.
    const params = method === 'POST' ? flatten(bodyParams(request)) : {};
    valid = method === 'GET' || method === 'POST' ? plivoSdk().validateV3Signature(method, request.url, nonce, authToken, signature, params) : false;
  } catch {
    valid = false;
  }
  return valid ? undefined : 'wrong X-Plivo-Signature-V3';
}

function proxyUrl(ctx: AdapterContext, raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new GatewayConfigError(ctx.bundle.name, 'spec.proxy.url', 'is not a valid URL');
  }
  const username = ctx.credentials['proxy.username'];
  const password = ctx.credentials['proxy.password'];
  if (username !== undefined) url.username = encodeURIComponent(username);
  if (password !== undefined) url.password = encodeURIComponent(password);
  return url.toString();
}

function flatten(params: Record<string, string[]>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(params)) out[k] = v.length === 1 ? (v[0] ?? '') : v;
  return out;
}

class AbandonedAtDeadline extends Error {}

// Waits for the SDK call or the caller's deadline, whichever comes first. The SDK cannot cancel its
// request: it ends at the client's own timeout, and its late outcome is ignored.
async function untilAborted<T>(call: () => Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal?.aborted === true) throw new AbandonedAtDeadline();
  const pending = Promise.resolve().then(call);
  if (signal === undefined) return pending;
  pending.catch(() => undefined);
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(new AbandonedAtDeadline());
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([pending, aborted]);
  } finally {
    if (onAbort !== undefined) signal.removeEventListener('abort', onAbort);
  }
}

/**
 * plivoFailure turns whatever the SDK rejected with into a GatewayError built from safe facts only.
 * WARNING: never keep the SDK's error as a cause: its `moreInfo` is the request body (text, code,
 * number), and axios errors hold the Authorization header.
 */
function plivoFailure(err: unknown, action: string): GatewayError {
  if (err instanceof GatewayError) return err;
  if (err instanceof AbandonedAtDeadline) return gatewayError(GatewayErrorCode.Transient, PROVIDER, action, { detail: 'abandoned at the send deadline' });
  // Network failures and timeouts: the SDK rejects with the axios error's stack, a plain string.
  if (typeof err === 'string') return gatewayError(GatewayErrorCode.Transient, PROVIDER, action, { detail: networkKind(err) });
  if (!(err instanceof Error)) return gatewayError(GatewayErrorCode.Transient, PROVIDER, action, { detail: 'unexpected failure' });
  const status = httpStatusOf(err);
  if (status === undefined) return gatewayError(GatewayErrorCode.Rejected, PROVIDER, action, { detail: 'the plivo SDK refused the request' });
  return gatewayError(plivoCode(status, err.message), PROVIDER, action, { httpStatus: status });
}

// PlivoRestError carries `status`; statuses the SDK has no class for (429, 502, 503, non-geo 403
// with a JSON body) become a bare Error whose message is axios' "Request failed with status code N".
function httpStatusOf(err: Error): number | undefined {
  const status = (err as { status?: unknown }).status;
  if (typeof status === 'number') return status;
  const match = /status code (\d{3})\b/.exec(err.message);
  return match?.[1] !== undefined ? Number(match[1]) : undefined;
}

// Plivo answers 400 for every refused parameter with a sentence and no code; the destination and
// credit problems are told apart by their words, the only signal the API gives.
function plivoCode(status: number, providerText: string): GatewayErrorCode {
  if (status === 400) {
    if (/insufficient|balance|credit/i.test(providerText)) return GatewayErrorCode.InsufficientFunds;
    if (/\b(dst|destination)\b/i.test(providerText) && /invalid|not valid|not a valid/i.test(providerText)) return GatewayErrorCode.InvalidNumber;
    return GatewayErrorCode.Rejected;
  }
  return codeForHttpStatus(status);
}

function networkKind(stack: string): string {
  if (/timeout of \d+ms exceeded|ETIMEDOUT|ECONNABORTED/.test(stack)) return 'no answer within the timeout';
  const code = /\b(E[A-Z]{3,20})\b/.exec(stack)?.[1];
  return code !== undefined ? `network error (${code})` : 'network error';
}
