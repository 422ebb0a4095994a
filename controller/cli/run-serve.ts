import { mkdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pino, type Logger } from 'pino';
import { stderrLog } from '../adapters/log-stream.ts';
import { repeat, systemClock } from '../core/clock.ts';
import { errorFields } from '../core/error-fields.ts';
import { loadOrCreateLocalSecrets, packageRoot, readSchemaSet, displayPath, takeLock } from '../adapters/files.ts';
import type { HttpListener } from '../adapters/http-server.ts';
import { watchTrees, type TreeWatcher } from '../adapters/watcher.ts';
import { createGateway } from '../gateways/create-gateway.ts';
import type { OutboxEntry } from '../gateways/console-gateway.ts';
import { proxyFetch } from '../gateways/proxy-fetch.ts';
import type { SecretValues } from '../runtime/credentials.ts';
import { LocalRun, type Report } from '../runtime/local-run.ts';
import { Activity } from '../runtime/activity.ts';
import { COMPLIANCE_REFRESH_MS, complianceOfAll } from '../runtime/compliance-refresh.ts';
import { serveVerifier } from '../runtime/verifier-server.ts';
import { createSchemaValidator } from '../validate/schema-validator.ts';
import { CodeHasher } from '../verifier/code-hasher.ts';
import type { ComplianceView } from '../verifier/verifier.ts';
import { StartupError, type CliIo, type LogLevel } from './cli-io.ts';
import { fileProblem, redisDisplay, requireCredentialsAccepted, requireOutputFile, untilSignalled, watchRedis, type Cleanup } from './startup.ts';
import { createStatusOutput, type StatusOutput } from './status-output.ts';
import { ConsoleHub } from '../runtime/console-hub.ts';
import { consoleRoutes, type ConsoleAssets } from '../runtime/console-routes.ts';
import { twilioRoutes } from '../verifier/twilio-api.ts';
import { accessOf, wireVerifier } from './verifier-wiring.ts';
import type { AuditOptions } from './startup.ts';

/** RunOptions are `smsauth run`'s checked command line. */
export interface RunOptions {
  dir: string;
  stateDir: string;
  logLevel: LogLevel;
  allowEmpty: boolean;
  /** Serve the console page at / (--no-console turns it off). */
  console: boolean;
  /** Serve the Twilio Verify-compatible API (/twilio/v2/). */
  twilioCompat: boolean;
  envSecrets: SecretValues;
  token?: string;
  audit: AuditOptions;
  state?: string;
  redis?: string;
  secretsDir?: string;
  outbox?: string;
  statusFile?: string;
}

/**
 * serveRun wires `smsauth run` behind a listener already bound, serves until SIGINT or SIGTERM and
 * returns the exit status; what it opens it registers with cleanup, which the caller runs.
 */
export async function serveRun(values: RunOptions, listener: HttpListener, io: CliIo, cleanup: Cleanup): Promise<number> {
  const paths = await runPaths(values);
  // One run per state folder: two would write its status and keys over each other.
  const lock = await takeLock(join(paths.stateDir, 'run.lock'));
  if (!lock.ok)
    throw new StartupError(
      `the state folder ${displayPath(paths.stateDir)} is in use by another smsauth run (process ${lock.holder}): stop it, or choose another with --state-dir`,
    );
  cleanup.add(() => lock.release());
  // Checked once the state folder is made: the status file may be in it.
  const statusFile = values.statusFile === undefined ? undefined : await requireOutputFile('--status-file', values.statusFile);
  if (values.outbox !== undefined) await requireOutputFile('--outbox', values.outbox);
  const shown = { listening: '', revision: '…' };
  const storeName = values.redis !== undefined ? `Redis ${redisDisplay(values.redis)}` : displayPath(paths.sqlite);
  const terminal = createStatusOutput(
    io,
    () =>
      `smsauth run: ${displayPath(values.dir)} · ${shown.listening} · revision ${shown.revision} · ${storeName}${io.isTTY ? ` · log ${displayPath(paths.logFile)}` : ''}`,
  );
  // The console page, fed what the terminal shows; registry is set once the verifier is wired.
  const late: { hub?: ConsoleHub } = {};
  const output: StatusOutput = {
    ...terminal,
    report: (report, reason) => {
      terminal.report(report, reason);
      late.hub?.report(report);
    },
  };
  const log = runLogger(io, values.logLevel, paths.logFile, output);
  cleanup.add(() => log.flush());

  const validator = createSchemaValidator(await readSchemaSet(join(packageRoot(), 'schemas')));
  const keysFile = join(paths.stateDir, 'keys.json');
  const keys = await loadOrCreateLocalSecrets(keysFile).catch((err: unknown) => {
    // An unreadable file that is not one (LocalSecretsError) says so itself; the file system's refusals are said here.
    if (typeof (err as NodeJS.ErrnoException).code !== 'string') throw err;
    throw new StartupError(`cannot read or write ${displayPath(keysFile)} (${fileProblem(err)}): choose another state folder with --state-dir`);
  });
  const { opened, store, registry, metrics, pool, verifier, contract } = await wireVerifier({
    log,
    cleanup,
    redisUrl: values.redis,
    sqlitePath: displayPath(paths.sqlite),
    storeHint: 'choose another with --state',
    gatewayFactory: (gw, credentials) =>
      createGateway(gw, credentials, {
        logger: log,
        proxyFetch,
        console: { outboxPath: paths.outbox, print: (line, parts) => output.message(line, parts), onSent: (entry) => late.hub?.message(entry) },
      }),
    hasher: new CodeHasher(keys.codeKeys),
    decoySecret: keys.decoySecret,
    historyRetentionMs: values.audit.historyRetentionMs,
  });
  await requireCredentialsAccepted(opened, values.redis);
  // The listener was bound first (a port in use was told at once); until the folder is applied,
  // /readyz answers 503 and the stores are not there yet.
  const assets = values.console ? await readConsoleAssets() : undefined;
  if (values.console && assets === undefined)
    output.note('the console page is not built (controller/generated/console): run npm run gen; the API serves without it');
  if (assets !== undefined) {
    late.hub = new ConsoleHub(registry, { helpdesk: values.audit.helpdeskToken !== undefined });
    late.hub.preload(await readOutbox(paths.outbox));
  }
  const consolePage =
    late.hub === undefined || assets === undefined
      ? []
      : consoleRoutes({
          hub: late.hub,
          verifier,
          store,
          assets,
          ...(values.token !== undefined ? { token: values.token } : {}),
          hosts: [new URL(listener.url).hostname.replace(/^\[|\]$/g, '')],
          ...(values.audit.helpdeskToken !== undefined ? { helpdeskToken: values.audit.helpdeskToken } : {}),
        });
  const server = serveVerifier(
    listener,
    { verifier, store, contract, metrics },
    { log, ...(values.token !== undefined ? { token: values.token } : {}), ...accessOf(values.audit) },
    [...consolePage, ...(values.twilioCompat ? twilioRoutes({ verifier, store, stores: registry, publicBase: `${listener.url}/twilio` }) : [])],
  );
  // Stopping, the server closes first: no new request reaches a store or directory being closed;
  // the console's feeds end before, so that an open page does not hold the close.
  cleanup.add(() => server.close(10_000));
  if (late.hub !== undefined) cleanup.add(() => late.hub?.close());
  shown.listening = server.url;
  const run = new LocalRun(
    {
      dir: values.dir,
      ...(values.secretsDir !== undefined ? { secretsDir: values.secretsDir } : {}),
      snapshotPath: join(paths.stateDir, values.redis !== undefined ? 'status-redis.json' : 'status.json'),
      ...(statusFile !== undefined ? { statusFile } : {}),
      allowEmpty: values.allowEmpty,
      envSecrets: values.envSecrets,
    },
    { validator, registry, pool, log },
  );
  const loop = new RunLoop({ run, output, log, onApplied: (revision) => ((shown.revision = revision), metrics.bundles.set(registry.storeKeys().length)) }, () =>
    complianceOfAll(verifier, registry, log, (ns, name) => run.directoryAnswered(ns, name)),
  );

  // Watch first, read after: a change made while starting is never missed.
  // What this process writes is no news, even inside the watched folder (`--dir .` keeps .smsauth there).
  const ownFiles = [
    paths.stateDir,
    paths.outbox,
    ...(values.state !== undefined ? [values.state] : []),
    ...(values.statusFile !== undefined ? [values.statusFile] : []),
    ...(statusFile !== undefined ? [statusFile] : []),
  ];
  const watcher = watchTrees([values.dir, ...(values.secretsDir !== undefined ? [values.secretsDir] : [])], (reason) => void loop.apply(reason), {
    ignore: ownFiles.map((p) => resolve(p)),
  });
  loop.watching(watcher);
  cleanup.add(() => watcher.close());
  await watcher.ready;
  await loop.apply('start');
  // Listen for signals before saying it serves: whoever reads that line may stop it at once.
  const signalled = untilSignalled((signal) => output.note(`${signal}: finishing requests in flight and stopping`));
  output.note(`serving ${server.url} (GET /readyz)${late.hub !== undefined ? `; console ${server.url}/` : ''}; stop with Ctrl-C`);
  if (values.redis !== undefined) {
    const name = redisDisplay(values.redis);
    watchRedis(
      opened,
      () => output.note(`Redis at ${name} does not answer yet: the API answers 503 and /readyz says so until it does; start it, or fix --redis`),
      () => output.note(`Redis at ${name} answers: ready`),
      (reply) =>
        output.note(
          `Redis at ${name} refused the credentials of --redis (${reply}): the API answers 503 until it accepts them; fix the user name and password in the URL`,
        ),
    );
  }
  loop.startPeriodicChecks(cleanup);
  await signalled;
  return 0;
}

/** runPaths makes the state folder (private) and names what goes in it. */
async function runPaths(values: RunOptions): Promise<{ stateDir: string; outbox: string; sqlite: string; logFile: string }> {
  const stateDir = resolve(values.stateDir);
  try {
    await mkdir(stateDir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new StartupError(`cannot make the state folder ${displayPath(stateDir)} (${fileProblem(err)}): choose another with --state-dir`);
  }
  return {
    stateDir,
    outbox: values.outbox ?? join(stateDir, 'outbox.jsonl'),
    sqlite: values.state ?? join(stateDir, 'state.sqlite'),
    logFile: join(stateDir, 'run.log'),
  };
}

/**
 * runLogger: on a terminal the status table owns the screen, so logs go to a file, whose path the
 * table shows, and its warnings and errors (a lockout, a gateway failing) show in the table as
 * notes too; on a pipe, logs go to stderr.
 */
function runLogger(io: CliIo, level: LogLevel, logFile: string, output: StatusOutput): Logger {
  if (!io.isTTY) return pino({ level }, stderrLog());
  return pino(
    { level },
    pino.multistream([
      { level, stream: pino.destination({ dest: logFile, mkdir: true, sync: false }) },
      { level: 'warn', stream: { write: (line: string) => output.note(logNote(line)) } },
    ]),
  );
}

/**
 * RunLoop applies the folder on each change and runs what follows (directory checks, the count of
 * the roles' enrollment, credential checks when due), reporting each; it says when it is idle.
 */
class RunLoop {
  private readonly activity: Activity;
  private watcher: TreeWatcher | undefined;
  private revision = '…';
  private readonly deps: { run: LocalRun; output: StatusOutput; log: Logger; onApplied: (revision: string) => void };
  private readonly countEnrollment: () => Promise<ComplianceView[]>;

  constructor(deps: RunLoop['deps'], countEnrollment: () => Promise<ComplianceView[]>) {
    this.deps = deps;
    this.countEnrollment = countEnrollment;
    this.activity = new Activity(
      () => this.watcher?.pending() === true,
      () => deps.output.idle(this.revision),
    );
  }

  watching(watcher: TreeWatcher): void {
    this.watcher = watcher;
  }

  /** apply reloads the folder; new or changed directories are checked then, and the roles' enrollment counted after. */
  apply(reason: string): Promise<void> {
    return this.activity.track(this.reload(reason), 'reload');
  }

  private async reload(reason: string): Promise<void> {
    const { run, output, log } = this.deps;
    try {
      const report = await run.reload();
      this.revision = report.revision;
      this.deps.onApplied(report.revision);
      log.info({ reason, revision: report.revision, swapped: report.swapped, refused: report.refused }, 'configuration reloaded');
      output.report(report, reason);
      if (report.snapshotProblem !== undefined) output.note(report.snapshotProblem);
      if (report.statusNotWritten !== undefined) {
        log.warn({ problem: report.statusNotWritten }, 'configuration applied; its status could not be saved');
        output.note(`configuration applied; its status could not be saved (${report.statusNotWritten}): a restart serves the last status saved`);
      }
      void this.activity.track(this.report(() => run.checkDirectoriesDue(), 'directory check').then(() => this.count()));
    } catch (err) {
      log.error({ err: errorFields(err) }, 'reload failed; the last configuration stays live');
      output.note(`reload failed (${(err as Error).message}); the last configuration stays live`);
    }
  }

  /** count shows how far the roles that enforce SMS have enrolled: the gauges, and a line per role. */
  private async count(): Promise<void> {
    try {
      const reports = await this.countEnrollment();
      if (reports.length > 0) this.deps.output.compliance(reports);
    } catch (err) {
      this.deps.log.error({ err: errorFields(err) }, 'enrollment count failed');
    }
  }

  /** report runs a check and shows its report, if it made one; a failure is logged and the last configuration stays live. */
  private async report(check: () => Promise<Report | undefined>, what: string): Promise<void> {
    try {
      const report = await check();
      if (report !== undefined) this.deps.output.report(report);
    } catch (err) {
      this.deps.log.error({ err: errorFields(err) }, `${what} failed; the last configuration stays live`);
    }
  }

  /** startPeriodicChecks counts enrollment every 10 minutes and checks credentials and directories when due (no more often than their interval). */
  startPeriodicChecks(cleanup: Cleanup): void {
    const { run } = this.deps;
    cleanup.add(repeat(systemClock, COMPLIANCE_REFRESH_MS, () => void this.activity.track(this.count())));
    cleanup.add(
      repeat(systemClock, 5_000, () => {
        void this.activity.track(this.report(() => run.checkCredentialsDue(), 'credential check'));
        void this.activity.track(this.report(() => run.checkDirectoriesDue(), 'directory check'));
      }),
    );
  }
}

const NOTE_FIELDS = ['namespace', 'store', 'account', 'user', 'reason', 'error'] as const;

/** logNote turns a warning or error of the log (a JSON line) into a line for the status table. */
export function logNote(line: string): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line.trim();
  }
  const level = typeof entry.level === 'number' && entry.level >= 50 ? 'error' : 'warning';
  const fields = NOTE_FIELDS.filter((f) => typeof entry[f] === 'string' || typeof entry[f] === 'number').map((f) => `${f} ${String(entry[f])}`);
  return `${level}: ${typeof entry.msg === 'string' ? entry.msg : ''}${fields.length > 0 ? ` (${fields.join(', ')})` : ''}`;
}

/** readConsoleAssets reads the console page's built script and style (npm run gen builds them), or undefined when they are not there. */
async function readConsoleAssets(): Promise<ConsoleAssets | undefined> {
  const dir = join(packageRoot(), 'controller', 'generated', 'console');
  try {
    const [js, css] = await Promise.all([readFile(join(dir, 'app.js'), 'utf8'), readFile(join(dir, 'app.css'), 'utf8')]);
    return { js, css };
  } catch {
    return undefined;
  }
}

/** readOutbox reads the console gateway's outbox file (none yet: nothing), skipping lines that are not entries. */
async function readOutbox(path: string): Promise<OutboxEntry[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return [];
  }
  const out: OutboxEntry[] = [];
  for (const line of text.split('\n')) {
    try {
      const e = JSON.parse(line) as Partial<OutboxEntry>;
      if (typeof e.to === 'string' && typeof e.text === 'string' && typeof e.namespace === 'string') out.push(e as OutboxEntry);
    } catch {
      // a torn last line
    }
  }
  return out;
}
