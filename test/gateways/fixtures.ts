import { randomInt } from 'node:crypto';
import type { GatewayBundle } from '../../controller/core/bundle.ts';
import type { OutboundMessage } from '../../controller/gateways/gateway.ts';

/** TO is a French mobile number: valid for libphonenumber, so maskNumber masks it fully. */
export const TO = '+33612345678';

/** bundle builds a GatewayBundle for tests (credentials references are not used by adapters). */
export function bundle(provider: GatewayBundle['provider'], settings: Record<string, string>, extra: Partial<GatewayBundle> = {}): GatewayBundle {
  return { name: `${provider}-main`, provider, settings, credentials: {}, timeoutMs: 2000, ...extra };
}

/** message builds a message with a fresh random 6-digit code in its text; the code is returned too. */
export function message(overrides: Partial<OutboundMessage> = {}): { msg: OutboundMessage; code: string } {
  const code = String(randomInt(100_000, 1_000_000));
  const msg: OutboundMessage = {
    to: TO,
    text: `Your smsauth code is ${code}. It expires in 10 minutes.`,
    namespace: 'default',
    account: 'main',
    reference: `ver_${letters(12)}`,
    validitySeconds: 600,
    ...overrides,
  };
  if (overrides.text !== undefined && !overrides.text.includes(code)) msg.text = `${overrides.text} ${code}`;
  return { msg, code };
}

// Letters only, so that a reference (which is logged) can never contain the code by chance.
function letters(n: number): string {
  return Array.from({ length: n }, () => String.fromCharCode(97 + randomInt(26))).join('');
}

/** settled waits for a promise and gives its outcome: the value, or the error it was rejected with. */
export async function settled<T>(p: Promise<T>): Promise<{ value?: T; error?: unknown }> {
  try {
    return { value: await p };
  } catch (error) {
    return { error };
  }
}
