import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { stderrLog } from '../adapters/log-stream.ts';
import { buildBundle } from '../core/bundle.ts';
import type { IdentityStore } from '../generated/kinds.ts';
import { DirectoryPool } from '../runtime/directory-pool.ts';
import { UsageError, type CliIo } from './cli-io.ts';
import { FOLDER_FLAGS, FOLDER_USAGE, loadFolderWithSecrets, testTarget } from './folder.ts';

/** DIRECTORY_USAGE is the help text of `smsauth directory`. */
export const DIRECTORY_USAGE = `Usage: smsauth directory test NAMESPACE/STORE [--user NAME] [options]

Connects to an identity store's directory as smsauth would (its settings and Secrets from a
folder), binds and searches the base, and with --user looks the user up: their DN (or id), their
container, every group they are in (nested ones included) and whether the directory has a mobile
number for them (never the number).

Options:
${FOLDER_USAGE}
      --user NAME          look this user up, as the API would
  -o, --output FORMAT      text (default) or json

Secrets also come from SMSAUTH_SECRETS. Exit status: 0 the directory answered (and the user
exists), 1 it did not (or no such user), 2 usage error or no such store.
`;

/** runDirectory is `smsauth directory`; it returns the exit status. */
export async function runDirectory(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      ...FOLDER_FLAGS,
      user: { type: 'string' },
      output: { type: 'string', short: 'o', default: 'text' },
    },
  });
  const { namespace, name } = testTarget(positionals, 'smsauth directory test NAMESPACE/STORE [--user NAME]');
  if (values.output !== 'text' && values.output !== 'json') throw new UsageError('--output is text or json');

  const { result, values: secretValues } = await loadFolderWithSecrets(values.dir, values['secrets-dir']);
  const store = result.valid
    .map((v) => v.object)
    .find((o): o is IdentityStore => o.kind === 'IdentityStore' && o.metadata.namespace === namespace && o.metadata.name === name);
  if (store === undefined) {
    const invalid = result.rejected.some((r) => r.ref.kind === 'IdentityStore' && r.ref.namespace === namespace && r.ref.name === name);
    io.stderr(`smsauth directory: IdentityStore ${namespace}/${name} ${invalid ? 'is invalid; run smsauth validate' : `is not declared in ${values.dir}`}\n`);
    return 2;
  }
  const dir = buildBundle({ store, template: undefined, gateways: [], roles: [], smsOffered: false, smsReason: '' }).directory;
  if (dir === null) {
    io.stderr(`smsauth directory: IdentityStore ${namespace}/${name} names no directory (spec.directory): its callers vouch for their users\n`);
    return 2;
  }
  const { createDirectory } = await import('../directories/create-directory.ts');
  const log = pino({ level: 'warn' }, stderrLog());
  const pool = new DirectoryPool(createDirectory, log);
  const out: Record<string, unknown> = { store: `${namespace}/${name}`, directory: dir.kind };
  let code = 0;
  try {
    const directory = pool.directory(namespace, name, dir, secretValues);
    const health = await directory.check();
    out.check = health;
    if (!health.ok) code = 1;
    if (health.ok && values.user !== undefined) {
      try {
        const user = await directory.lookup(values.user);
        out.user =
          user === undefined ? null : { id: user.id, container: user.container, groups: user.groups, mobile: user.mobile === null ? 'none' : 'present' };
        if (user === undefined) code = 1;
      } catch (err) {
        out.user = { error: (err as Error).message };
        code = 1;
      }
    }
  } finally {
    await pool.close();
  }
  if (values.output === 'json') {
    io.stdout(`${JSON.stringify(out, null, 2)}\n`);
    return code;
  }
  const health = out.check as { ok: boolean; server?: string; problem?: string; code?: string };
  io.stdout(
    `${namespace}/${name}: ${dir.kind} directory ${health.ok ? `answered${health.server !== undefined ? ` (${health.server})` : ''}` : `did not answer: ${health.problem ?? ''}${health.code !== undefined ? ` (${health.code})` : ''}${health.server !== undefined ? ` at ${health.server}` : ''}`}\n`,
  );
  if (values.user !== undefined && health.ok) {
    const user = out.user as { id: string; container: string | null; groups: string[]; mobile: string } | { error: string } | null;
    if (user === null) io.stdout(`user ${values.user}: not in the directory\n`);
    else if ('error' in user) io.stdout(`user ${values.user}: the lookup failed: ${user.error}\n`);
    else
      io.stdout(
        [
          `user ${values.user}: ${user.id}`,
          `  container: ${user.container ?? 'none'}`,
          `  mobile number: ${user.mobile}`,
          `  groups (${user.groups.length}, nested included):`,
          ...user.groups.map((g) => `    ${g}`),
        ].join('\n') + '\n',
      );
  }
  return code;
}
