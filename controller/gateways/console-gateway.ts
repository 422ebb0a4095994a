import { randomUUID } from 'node:crypto';
import { appendFile, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { maskNumber } from '../core/phone.ts';
import { GatewayErrorCode, type DeliveryReceipt, type OutboundMessage, type SendResult, type SmsGateway } from './gateway.ts';
import type { AdapterContext } from './gateway-config.ts';
import { gatewayLogger } from './gateway-logger.ts';
import { asGatewayError, gatewayError } from './provider-request.ts';

/** ConsoleOptions say where the console gateway shows messages. */
export interface ConsoleOptions {
  /** The outbox: a JSON-lines file each message is appended to, full number and text included. Omitted: no outbox. */
  outboxPath?: string;
  /**
   * Prints a message: line is one line, the text's line breaks escaped (for logs and pipes); parts
   * has the heading and the text as it is, for a view that shows several lines. Default: line to
   * standard error.
   */
  print?: (line: string, parts: PrintedMessage) => void;
  /** Told each message, as the outbox records it (the console page shows them). */
  onSent?: (entry: OutboxEntry) => void;
}

/** PrintedMessage is a console message for a terminal view: who it went to (masked), and its text as sent. */
export interface PrintedMessage {
  heading: string;
  text: string;
}

/** OutboxEntry is one line of the console outbox. */
export interface OutboxEntry {
  time: string;
  namespace: string;
  /** The identity store it is for (absent in entries written before it was recorded). */
  store?: string;
  /** The SmsGatewayAccount that "sent" it. */
  gateway: string;
  /** The full number, E.164. */
  to: string;
  /** The full text, code included. */
  text: string;
  messageId: string;
  /** The verification the message belongs to. */
  reference: string;
}

/**
 * createConsoleGateway is the development gateway: it sends nothing, prints each message with its
 * code visible and the number masked (the one place a code may show), and appends it, number and
 * text in full, to the outbox file (created 0600), which is the development inbox. It accepts no
 * delivery receipts.
 * WARNING: for local use only; the outbox holds live codes.
 */
export function createConsoleGateway(ctx: AdapterContext, options: ConsoleOptions = {}): SmsGateway {
  const print = options.print ?? ((line: string) => void process.stderr.write(`${line}\n`));
  const log = gatewayLogger(ctx.logger, 'console', ctx.bundle.name);
  let outboxReady: Promise<unknown> | undefined;

  return {
    provider: 'console',
    send(message: OutboundMessage): Promise<SendResult> {
      return log.send(
        message,
        async (size) => {
          const messageId = `console-${randomUUID()}`;
          const entry: OutboxEntry = {
            time: new Date(ctx.now()).toISOString(),
            namespace: message.namespace,
            ...(message.store !== undefined ? { store: message.store } : {}),
            gateway: ctx.bundle.name,
            to: message.to,
            text: message.text,
            messageId,
            reference: message.reference,
          };
          if (options.outboxPath !== undefined) {
            const path = options.outboxPath;
            try {
              outboxReady ??= mkdir(dirname(path), { recursive: true, mode: 0o700 });
              await outboxReady;
              await appendFile(path, `${JSON.stringify(entry)}\n`, { encoding: 'utf8', mode: 0o600 });
            } catch (err) {
              outboxReady = undefined;
              const reason = typeof (err as { code?: unknown }).code === 'string' ? (err as { code: string }).code : 'error';
              throw gatewayError(GatewayErrorCode.Transient, 'console', 'send', { detail: `could not append to the outbox (${reason})` });
            }
          }
          // One line per message, whatever the text holds (an origin-bound code adds a line of its own).
          const oneLine = message.text.replace(/\\/g, '\\\\').replace(/\r?\n/g, '\\n');
          const heading = `[smsauth console gateway] ${message.namespace}/${ctx.bundle.name} to ${maskNumber(message.to)} (${size.segments} segment${size.segments === 1 ? '' : 's'})`;
          print(`${heading}: ${oneLine}`, { heading, text: message.text });
          options.onSent?.(entry);
          return { provider: 'console', messageId, segments: size.segments };
        },
        asGatewayError('console', 'send'),
      );
    },

    testCredentials(): Promise<void> {
      return Promise.resolve();
    },

    readReceipt(): DeliveryReceipt[] | undefined {
      return undefined;
    },
  };
}
