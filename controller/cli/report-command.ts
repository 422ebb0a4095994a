import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { stderrLog } from '../adapters/log-stream.ts';
import { displayPath } from '../adapters/files.ts';
import { reconcile } from '../core/reconciler.ts';
import type { Bundle, DirectoryBundle } from '../core/bundle.ts';
import { DirectoryUnavailableError } from '../directories/directory.ts';
import { DirectoryPool } from '../runtime/directory-pool.ts';
import { openStateStore, StoreOpenError } from '../runtime/open-state-store.ts';
import { desiredStateOf } from '../validate/desired-state.ts';
import { enrollmentCompliance, type ComplianceReport } from '../verifier/compliance.ts';
import { StartupError, UsageError, type CliIo } from './cli-io.ts';
import { FOLDER_FLAGS, FOLDER_USAGE, loadFolderWithSecrets } from './folder.ts';
import { checkRedisUrl, requireFile, requireStoreAnswers } from './startup.ts';
import { DEFAULT_NAMESPACE } from '../core/object-key.ts';

/** REPORT_USAGE is the help text of `smsauth report`. */
export const REPORT_USAGE = `Usage: smsauth report enrollment NAMESPACE/STORE [options]

Lists, role by role, the members of an identity store's security roles that enforce SMS who have
not enrolled a number (names only), for the "notify users to enroll" step. Who the members are
comes from the store's directory, read as smsauth reads it (its settings and Secrets from the
folder; nested groups included, a user counted under the role that decides for them); who has
enrolled comes from the state smsauth keeps (the SQLite file of smsauth run, or Redis).

Options:
${FOLDER_USAGE}
      --state FILE         the SQLite state (default .smsauth/state.sqlite, smsauth run's)
      --redis URL          read enrollments from Redis instead (or SMSAUTH_REDIS_URL)
      --role NAME          this role only
  -o, --output FORMAT      text (default), names (one per line, for a mailer) or json

Secrets also come from SMSAUTH_SECRETS. Exit status: 0 the report was made, 1 the directory or
the state could not be read, 2 usage error or no such store.
`;

/** runReport is `smsauth report`; it returns the exit status. */
export async function runReport(argv: string[], io: CliIo): Promise<number> {
  const args = await reportArgs(argv);
  const { namespace, name } = args;
  const { result, values: secretValues } = await loadFolderWithSecrets(args.dir, args.secretsDir);
  const state = reconcile(desiredStateOf(result), undefined, new Date().toISOString());
  const chosen = rolesToReport(state.bundles.get(`IdentityStore/${namespace}/${name}`), args);
  if (typeof chosen === 'string') {
    io.stderr(`smsauth report: ${chosen}\n`);
    return 2;
  }
  let opened;
  try {
    opened = openStateStore({ redisUrl: args.redis, sqlitePath: args.state });
  } catch (err) {
    if (err instanceof StoreOpenError) throw new StartupError(`cannot open the state file ${displayPath(args.state)}: ${err.message}`);
    throw err;
  }
  const { createDirectory } = await import('../directories/create-directory.ts');
  const pool = new DirectoryPool(createDirectory, pino({ level: 'warn' }, stderrLog()));
  let report: ComplianceReport;
  try {
    await requireStoreAnswers(opened, args.redis);
    const directory = pool.directory(namespace, name, chosen.directory, secretValues);
    report = await enrollmentCompliance({ namespace, store: name, roles: chosen.roles, directory, state: opened.store }, { now: Date.now(), unenrolled: true });
  } catch (err) {
    if (!(err instanceof DirectoryUnavailableError)) throw err;
    io.stderr(
      `smsauth report: the directory of ${namespace}/${name} did not answer: ${err.problem}${err.detail !== undefined ? ` (${err.detail})` : ''}${err.server !== undefined ? ` at ${err.server}` : ''}\n`,
    );
    return 1;
  } finally {
    await pool.close();
    await opened.store.close();
  }
  io.stdout(reportText(report, args));
  return 0;
}

interface ReportArgs {
  namespace: string;
  name: string;
  role: string | undefined;
  output: string;
  dir: string;
  secretsDir: string | undefined;
  state: string;
  redis: string | undefined;
}

/** reportArgs checks the command line: usage errors are thrown, and a --state that names no file is refused (the state is read, never made). */
async function reportArgs(argv: string[]): Promise<ReportArgs> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      ...FOLDER_FLAGS,
      state: { type: 'string', default: '.smsauth/state.sqlite' },
      redis: { type: 'string' },
      role: { type: 'string' },
      output: { type: 'string', short: 'o', default: 'text' },
    },
  });
  const [action, target] = positionals;
  if (action !== 'enrollment' || target === undefined || positionals.length !== 2) throw new UsageError('use: smsauth report enrollment NAMESPACE/STORE');
  const [namespace, name] = target.includes('/') ? (target.split('/', 2) as [string, string]) : [DEFAULT_NAMESPACE, target];
  if (!['text', 'names', 'json'].includes(values.output)) throw new UsageError('--output is text, names or json');
  const redis = values.redis ?? (process.env.SMSAUTH_REDIS_URL || undefined);
  if (redis !== undefined) checkRedisUrl(values.redis !== undefined ? '--redis' : 'SMSAUTH_REDIS_URL', redis);
  if (redis === undefined) await requireFile('--state', values.state);
  return { namespace, name, role: values.role, output: values.output, dir: values.dir, secretsDir: values['secrets-dir'], state: values.state, redis };
}

/** rolesToReport picks the store's directory and the roles to count (those deciding before --role, and it), or says why there is nothing to report. */
function rolesToReport(bundle: Bundle | undefined, args: ReportArgs): { directory: DirectoryBundle; roles: Bundle['roles'] } | string {
  const { namespace, name, role } = args;
  if (bundle === undefined) return `IdentityStore ${namespace}/${name} is not declared (or not valid) in ${args.dir}; run smsauth validate`;
  if (bundle.directory === null) return `IdentityStore ${namespace}/${name} names no directory (spec.directory): smsauth does not know its roles' members`;
  const roles = role === undefined ? bundle.roles : bundle.roles.slice(0, bundle.roles.findIndex((r) => r.name === role) + 1);
  if (role !== undefined && !roles.some((r) => r.name === role && r.enforced.includes('SMS'))) {
    const enforcing = bundle.roles.filter((r) => r.enforced.includes('SMS')).map((r) => r.name);
    return `${namespace}/${name} has no enabled role ${role} that enforces SMS (roles that do: ${enforcing.join(', ') || 'none'})`;
  }
  return { directory: bundle.directory, roles };
}

/** reportText prints the report as asked: JSON, the names not enrolled one per line, or a text per role. */
function reportText(report: ComplianceReport, args: ReportArgs): string {
  const { namespace, name } = args;
  const shown = report.roles.filter((r) => args.role === undefined || r.role === args.role);
  if (args.output === 'json') return `${JSON.stringify({ ...report, generatedAt: new Date(report.generatedAt).toISOString(), roles: shown }, null, 2)}\n`;
  if (args.output === 'names')
    return shown
      .flatMap((r) => r.unenrolled ?? [])
      .map((u) => `${u}\n`)
      .join('');
  const lines = shown.flatMap((r) => [
    `${namespace}/${name} role ${r.role}: ${r.enrolled} of ${r.members}${r.truncated ? '+' : ''} members enrolled SMS; ${r.members - r.enrolled} have not${r.members - r.enrolled > 0 ? ':' : ''}`,
    ...(r.unenrolled ?? []).map((u) => `  ${u}`),
  ]);
  return `${lines.length > 0 ? lines.join('\n') : `${namespace}/${name}: no enabled role enforces SMS`}\n`;
}
