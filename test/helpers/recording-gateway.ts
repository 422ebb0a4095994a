import { createHmac } from 'node:crypto';
import {
  GatewayError,
  type CallbackRequest,
  type DeliveryReceipt,
  type OutboundMessage,
  type SendResult,
  type SmsGateway,
} from '../../controller/gateways/gateway.ts';
import { logScan } from './log-scan.ts';

/** RecordingGateway is a fake of our own SmsGateway port: it keeps what it was asked to send, and can be told to fail. */
export class RecordingGateway implements SmsGateway {
  readonly provider = 'console' as const;
  readonly sent: OutboundMessage[] = [];
  /** Errors to throw on the next sends, in order. */
  failNext: GatewayError[] = [];
  private held: Promise<void> | undefined;
  private n = 0;

  readonly account: string;
  private readonly receiptSecret: string;

  constructor(account: string, receiptSecret = 'receipt-secret') {
    this.account = account;
    this.receiptSecret = receiptSecret;
  }

  /** hold keeps every send from here on waiting, as a slow gateway would, until the returned function is called. */
  hold(): () => void {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    this.held = held;
    return () => {
      if (this.held === held) this.held = undefined;
      release();
    };
  }

  async send(message: OutboundMessage): Promise<SendResult> {
    if (this.held !== undefined) await this.held;
    const err = this.failNext.shift();
    if (err !== undefined) throw err;
    this.sent.push(message);
    logScan.message(message.to, message.text);
    return { provider: this.provider, messageId: `${this.account}-msg-${++this.n}`, segments: 1 };
  }

  testCredentials(): Promise<void> {
    return Promise.resolve();
  }

  readReceipt(request: CallbackRequest): DeliveryReceipt[] | undefined {
    const expected = createHmac('sha256', this.receiptSecret).update(request.body).digest('hex');
    if (request.headers['x-test-signature'] !== expected) return undefined;
    return JSON.parse(request.body.toString('utf8')) as DeliveryReceipt[];
  }

  /** signReceipt signs a callback body as this gateway's provider would. */
  signReceipt(body: string): string {
    return createHmac('sha256', this.receiptSecret).update(body).digest('hex');
  }

  /** lastCode reads the code of the latest message to a number (the test plays the phone). */
  lastCode(to?: string): string {
    const m = [...this.sent].reverse().find((x) => to === undefined || x.to === to);
    const code = m === undefined ? undefined : /\b(\d{4,10})\b/.exec(m.text)?.[1];
    if (code === undefined) throw new Error(`no code sent${to !== undefined ? ` to ${to}` : ''}`);
    return code;
  }
}

/** gatewayError builds a GatewayError for tests. */
export function gatewayError(code: GatewayError['code']): GatewayError {
  return new GatewayError(code, `test gateway: ${code}`, { provider: 'console' });
}
