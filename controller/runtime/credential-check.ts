import type { Logger } from 'pino';
import type { CredentialCheck } from '../core/reconciler.ts';
import { GatewayError, type SmsGateway } from '../gateways/gateway.ts';

/** CREDENTIAL_CHECK_TIMEOUT_MS bounds one ask of the provider. */
const CREDENTIAL_CHECK_TIMEOUT_MS = 15_000;

/**
 * checkCredentials asks the provider whether an account's credentials are good (testCredentials):
 * a definitive answer is a verdict; a transient failure (the provider down, a timeout) is none
 * (undefined), and changes nothing. Shared by the local run and the cluster controller.
 */
export async function checkCredentials(gateway: SmsGateway, account: string, now: number, log: Logger): Promise<CredentialCheck | undefined> {
  const at = new Date(now).toISOString();
  try {
    await gateway.testCredentials(AbortSignal.timeout(CREDENTIAL_CHECK_TIMEOUT_MS));
    return { ok: true, at };
  } catch (err) {
    log.warn({ account, code: err instanceof GatewayError ? err.code : 'unknown' }, 'credential check failed');
    return err instanceof GatewayError && !err.retryable ? { ok: false, code: err.code, at } : undefined;
  }
}

/** isNewVerdict tells whether a check says something the last one did not: the time of an unchanged verdict is not worth a status write. */
export function isNewVerdict(before: CredentialCheck | undefined, result: CredentialCheck): boolean {
  return before?.ok !== result.ok || before.code !== result.code;
}
