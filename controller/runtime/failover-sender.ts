import type { Logger } from 'pino';
import { sendWithFailover } from '../gateways/send-with-failover.ts';
import type { Sender } from '../verifier/verifier.ts';

/** failoverSender is the production Sender: sendWithFailover over the store's chain, each account within its own timeout. */
export function failoverSender(logger: Logger, now: () => number = Date.now): Sender {
  return async (chain, message, deadlineMs) => {
    const result = await sendWithFailover(
      chain.map((c) => ({ account: c.account, gateway: c.gateway, ...(c.budgetMs !== undefined ? { budgetMs: c.budgetMs } : {}) })),
      message,
      { deadline: now() + deadlineMs, logger, now },
    );
    if (result.ok) return { ok: true, account: result.account, result: result.result };
    const last = result.attempts.at(-1)?.account;
    return { ok: false, error: result.error, ...(last !== undefined ? { account: last } : {}) };
  };
}
