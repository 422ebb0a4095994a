import { parseArgs } from 'node:util';
import { toGatewayBundle } from '../core/bundle.ts';
import { maskNumber, normalizeNumber } from '../core/phone.ts';
import type { SmsGatewayAccount } from '../generated/kinds.ts';
import { createGateway } from '../gateways/create-gateway.ts';
import { GatewayError } from '../gateways/gateway.ts';
import { proxyFetch } from '../gateways/proxy-fetch.ts';
import { credentialsFor } from '../runtime/credentials.ts';
import { UsageError, type CliIo } from './cli-io.ts';
import { FOLDER_FLAGS, FOLDER_USAGE, loadFolderWithSecrets, testTarget } from './folder.ts';

/** GATEWAY_USAGE is the help text of `smsauth gateway`. */
export const GATEWAY_USAGE = `Usage: smsauth gateway test NAMESPACE/NAME --to NUMBER [options]
       smsauth gateway test NAMESPACE/NAME --credentials-only [options]

Tests a gateway account declared in a folder: sends a test message (no code in it) to a number,
or with --credentials-only asks the provider whether the credentials are good, without sending.

Options:
${FOLDER_USAGE}
      --to NUMBER          where to send the test message
      --credentials-only   check the credentials only (Plivo: its account endpoint)
      --outbox FILE        the console gateway's outbox (default: none, printed only)

Secrets also come from SMSAUTH_SECRETS. Exit status: 0 sent (or credentials accepted), 1 refused
by the provider or not sendable, 2 usage error or no such account.
`;

/** runGateway is `smsauth gateway`; it returns the exit status. */
export async function runGateway(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      ...FOLDER_FLAGS,
      to: { type: 'string' },
      'credentials-only': { type: 'boolean', default: false },
      outbox: { type: 'string' },
    },
  });
  const { namespace, name } = testTarget(positionals, 'smsauth gateway test NAMESPACE/NAME (--to NUMBER | --credentials-only)');
  if (!values['credentials-only'] && values.to === undefined) throw new UsageError('give --to NUMBER, or --credentials-only');

  const { result, ioErrors, values: values2 } = await loadFolderWithSecrets(values.dir, values['secrets-dir']);
  if (ioErrors > 0) throw new UsageError(`${values.dir} cannot be read`);
  const account = result.valid
    .map((v) => v.object)
    .find((o): o is SmsGatewayAccount => o.kind === 'SmsGatewayAccount' && o.metadata.namespace === namespace && o.metadata.name === name);
  if (account === undefined) {
    const invalid = result.rejected.some((r) => r.ref.kind === 'SmsGatewayAccount' && r.ref.namespace === namespace && r.ref.name === name);
    io.stderr(`smsauth gateway: SmsGatewayAccount ${namespace}/${name} ${invalid ? 'is invalid; run smsauth validate' : `is not declared in ${values.dir}`}\n`);
    return 2;
  }
  const bundle = toGatewayBundle(account);
  const credentials = credentialsFor(namespace, bundle, values2);
  if (!credentials.ok) {
    io.stderr(
      `smsauth gateway: ${namespace}/${name}: the Secret referenced by ${credentials.field} does not resolve; give it in the folder, --secrets-dir or SMSAUTH_SECRETS\n`,
    );
    return 1;
  }
  let gateway;
  try {
    gateway = createGateway(bundle, credentials.credentials, {
      proxyFetch,
      console: { ...(values.outbox !== undefined ? { outboxPath: values.outbox } : {}), print: (line) => io.stderr(`${line}\n`) },
    });
  } catch (err) {
    io.stderr(`smsauth gateway: ${namespace}/${name}: ${(err as Error).message}\n`);
    return 1;
  }
  try {
    if (values['credentials-only']) {
      await gateway.testCredentials(AbortSignal.timeout(bundle.timeoutMs));
      io.stdout(`${namespace}/${name}: ${bundle.provider} accepted the credentials\n`);
      return 0;
    }
    const number = normalizeNumber(values.to!, null);
    if (!number.ok) {
      io.stderr(`smsauth gateway: --to: ${number.message}\n`);
      return 1;
    }
    const sent = await gateway.send(
      {
        to: number.value.e164,
        text: `smsauth test message from SmsGatewayAccount ${namespace}/${name}.`,
        namespace,
        account: name,
        reference: `test-${Date.now()}`,
        validitySeconds: 300,
      },
      AbortSignal.timeout(bundle.timeoutMs),
    );
    io.stdout(
      `${namespace}/${name}: ${sent.provider} accepted the message to ${maskNumber(number.value.e164)}: id ${sent.messageId}, ${sent.segments} segment${sent.segments === 1 ? '' : 's'}\n`,
    );
    return 0;
  } catch (err) {
    const what = err instanceof GatewayError ? `${err.code}: ${err.message}` : 'the provider could not be reached';
    io.stderr(`smsauth gateway: ${namespace}/${name}: ${what}\n`);
    return 1;
  }
}
