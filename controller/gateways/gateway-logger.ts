import type { Logger } from 'pino';
import { maskNumber } from '../core/phone.ts';
import { smsSize, type SmsSize } from '../core/sms-text.ts';
import type { GatewayError, OutboundMessage, SendResult } from './gateway.ts';

/**
 * GatewayLog is the one place a gateway adapter writes log lines, so that what may be logged is
 * decided once: the masked number, the reference, sizes, ids and error codes. Never the text
 * (it carries the code), the full number or a credential.
 */
export interface GatewayLog {
  /**
   * send measures the message and logs it (a warning when it needs more than one segment), runs
   * the provider call with the size, and logs the outcome with its duration. A failure becomes a
   * GatewayError through toError, is logged by its code and rethrown.
   */
  send(message: OutboundMessage, call: (size: SmsSize) => Promise<SendResult>, toError: (err: unknown) => GatewayError): Promise<SendResult>;
  /** checkCredentials runs the provider's credential check and logs its outcome; a failure becomes a GatewayError through toError and is rethrown. */
  checkCredentials(check: () => Promise<void>, toError: (err: unknown) => GatewayError): Promise<void>;
  /** receiptRefused records a delivery callback whose signature was missing or wrong; it answers no receipts (undefined), for the reader to return. */
  receiptRefused(reason: string): undefined;
}

/** gatewayLogger returns the GatewayLog of one account; without a logger it still measures messages but logs nothing. */
export function gatewayLogger(logger: Logger | undefined, provider: string, account: string): GatewayLog {
  const log = logger?.child({ provider, account });
  const about = (m: OutboundMessage): Record<string, unknown> => ({ namespace: m.namespace, reference: m.reference, to: maskNumber(m.to) });
  const sending = (message: OutboundMessage): SmsSize => {
    const size = smsSize(message.text);
    if (log !== undefined) {
      const fields = { ...about(message), encoding: size.encoding, segments: size.segments };
      if (size.segments > 1) log.warn(fields, `SMS needs ${size.segments} segments (${size.encoding}); the provider bills each one`);
      else log.debug(fields, 'sending SMS');
    }
    return size;
  };
  return {
    async send(message, call, toError) {
      const startedAt = Date.now();
      const size = sending(message);
      try {
        const result = await call(size);
        log?.info({ ...about(message), messageId: result.messageId, segments: result.segments, ms: Date.now() - startedAt }, 'SMS accepted by the provider');
        return result;
      } catch (err) {
        const error = toError(err);
        log?.warn({ ...about(message), ...errorFields(error), ms: Date.now() - startedAt }, error.message);
        throw error;
      }
    },
    async checkCredentials(check, toError) {
      try {
        await check();
        log?.info('gateway credentials accepted');
      } catch (err) {
        const error = toError(err);
        log?.warn(errorFields(error), error.message);
        throw error;
      }
    },
    receiptRefused(reason) {
      log?.warn({ reason }, 'delivery receipt refused');
      return undefined;
    },
  };
}

function errorFields(error: GatewayError): Record<string, unknown> {
  return { code: error.code, ...error.details };
}
