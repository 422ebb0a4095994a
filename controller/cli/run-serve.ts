import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pino, type Logger } from 'pino';
import { loadOrCreateLocalSecrets, packageRoot, readSchemaSet, displayPath } from '../adapters/files.ts';
import type { HttpListener } from '../adapters/http-server.ts';
import { watchTrees } from '../adapters/watcher.ts';
import { createGateway } from '../gateways/create-gateway.ts';
import { proxyFetch } from '../gateways/proxy-fetch.ts';
import type { SecretValues } from '../runtime/credentials.ts';
import type { OpenedStore } from '../runtime/open-state-store.ts';
import { LocalRun } from '../runtime/local-run.ts';
import { COMPLIANCE_REFRESH_MS, complianceOfAll } from '../runtime/compliance-refresh.ts';
import { serveVerifier } from '../runtime/verifier-server.ts';
import { createSchemaValidator } from '../validate/schema-validator.ts';
import { CodeHasher } from '../verifier/code-hasher.ts';
import { StartupError, type CliIo, type LogLevel } from './cli-io.ts';
import { fileProblem, redisDisplay, type Cleanup } from './startup.ts';
import { createStatusOutput } from './status-output.ts';
import { accessOf, wireVerifier } from './verifier-wiring.ts';
import type { AuditOptions } from './startup.ts';

/** RunOptions are `smsauth run`'s checked command line. */
export interface RunOptions {
  dir: string;
  stateDir: string;
  logLevel: LogLevel;
  allowEmpty: boolean;
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
  const stateDir = resolve(values.stateDir);
  try {
    await mkdir(stateDir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new StartupError(`cannot make the state folder ${displayPath(stateDir)} (${fileProblem(err)}): choose another with --state-dir`);
  }
  const outboxPath = values.outbox ?? join(stateDir, 'outbox.jsonl');
  const sqlitePath = values.state ?? join(stateDir, 'state.sqlite');
  let listening = '';
  let lastRevision = '…';
  const storeName = values.redis !== undefined ? `Redis ${redisDisplay(values.redis)}` : displayPath(sqlitePath);
  // On a terminal the status table owns the screen: logs go to a file, whose path the table shows,
  // and its warnings and errors (a lockout, a gateway failing) show in the table as notes too.
  const logFile = join(stateDir, 'run.log');
  const output = createStatusOutput(
    io,
    () => `smsauth run: ${displayPath(values.dir)} · ${listening} · revision ${lastRevision} · ${storeName}${io.isTTY ? ` · log ${displayPath(logFile)}` : ''}`,
  );
  const log: Logger = io.isTTY
    ? pino(
        { level: values.logLevel },
        pino.multistream([
          { level: values.logLevel, stream: pino.destination({ dest: logFile, mkdir: true, sync: false }) },
          { level: 'warn', stream: { write: (line: string) => output.note(logNote(line)) } },
        ]),
      )
    : pino({ level: values.logLevel }, pino.destination(2));
  cleanup.add(() => log.flush());

  const root = packageRoot();
  const validator = createSchemaValidator(await readSchemaSet(join(root, 'schemas')));
  const keys = await loadOrCreateLocalSecrets(join(stateDir, 'keys.json'));
  const { opened, store, registry, metrics, pool, verifier, contract } = await wireVerifier({
    log,
    cleanup,
    redisUrl: values.redis,
    sqlitePath: displayPath(sqlitePath),
    storeHint: 'choose another with --state',
    gatewayFactory: (gw, credentials) =>
      createGateway(gw, credentials, { logger: log, proxyFetch, console: { outboxPath, print: (line, parts) => output.message(line, parts) } }),
    hasher: new CodeHasher(keys.codeKeys),
    decoySecret: keys.decoySecret,
    historyRetentionMs: values.audit.historyRetentionMs,
  });
  // The listener was bound first (a port in use was told at once); until the folder is applied,
  // /readyz answers 503 and the stores are not there yet.
  const server = serveVerifier(
    listener,
    { verifier, store, contract, metrics },
    { log, ...(values.token !== undefined ? { token: values.token } : {}), ...accessOf(values.audit) },
  );
  // Stopping, the server closes first: no new request reaches a store or directory being closed.
  cleanup.add(() => server.close(10_000));
  listening = server.url;
  const run = new LocalRun(
    {
      dir: values.dir,
      ...(values.secretsDir !== undefined ? { secretsDir: values.secretsDir } : {}),
      snapshotPath: join(stateDir, values.redis !== undefined ? 'status-redis.json' : 'status.json'),
      ...(values.statusFile !== undefined ? { statusFile: values.statusFile } : {}),
      allowEmpty: values.allowEmpty,
      envSecrets: values.envSecrets,
    },
    { validator, registry, pool, log },
  );

  // How far the roles that enforce SMS have enrolled: the gauges, and a line per role.
  const countEnrollment = async (): Promise<void> => {
    try {
      const reports = await complianceOfAll(verifier, registry, log, (ns, store) => run.directoryAnswered(ns, store));
      if (reports.length > 0) output.compliance(reports);
    } catch (err) {
      log.error({ err: { name: (err as Error).name, message: (err as Error).message } }, 'enrollment count failed');
    }
  };

  const apply = async (reason: string): Promise<void> => {
    try {
      const report = await run.reload();
      lastRevision = report.revision;
      metrics.bundles.set(registry.storeKeys().length);
      log.info({ reason, revision: report.revision, swapped: report.swapped, refused: report.refused }, 'configuration reloaded');
      output.report(report, reason);
      // New or changed directories are checked now; the status follows, then the roles' enrollment.
      void run.checkDirectoriesDue().then(
        (checked) => {
          if (checked !== undefined) output.report(checked);
          return countEnrollment();
        },
        (err: unknown) =>
          log.error({ err: { name: (err as Error).name, message: (err as Error).message } }, 'directory check failed; the last configuration stays live'),
      );
    } catch (err) {
      log.error({ err: { name: (err as Error).name, message: (err as Error).message } }, 'reload failed; the last configuration stays live');
      output.note(`reload failed (${(err as Error).message}); the last configuration stays live`);
    }
  };

  // Watch first, read after: a change made while starting is never missed.
  // What this process writes is no news, even inside the watched folder (`--dir .` keeps .smsauth there).
  const ownFiles = [
    stateDir,
    outboxPath,
    ...(values.state !== undefined ? [values.state] : []),
    ...(values.statusFile !== undefined ? [values.statusFile] : []),
  ].map((p) => resolve(p));
  const watcher = watchTrees([values.dir, ...(values.secretsDir !== undefined ? [values.secretsDir] : [])], (reason) => void apply(reason), {
    ignore: ownFiles,
  });
  cleanup.add(() => watcher.close());
  await watcher.ready;
  await apply('start');
  output.note(`serving ${server.url} (GET /readyz); stop with Ctrl-C`);
  if (values.redis !== undefined) watchRedis(opened, redisDisplay(values.redis), (line) => output.note(line));
  // Accounts with spec.credentialCheck are checked no more often than their interval.
  const counter = setInterval(() => void countEnrollment(), COMPLIANCE_REFRESH_MS);
  cleanup.add(() => clearInterval(counter));
  const checker = setInterval(() => {
    void run.checkCredentialsDue().then(
      (report) => {
        if (report !== undefined) output.report(report);
      },
      (err: unknown) =>
        log.error({ err: { name: (err as Error).name, message: (err as Error).message } }, 'credential check failed; the last configuration stays live'),
    );
    void run.checkDirectoriesDue().then(
      (report) => {
        if (report !== undefined) output.report(report);
      },
      (err: unknown) =>
        log.error({ err: { name: (err as Error).name, message: (err as Error).message } }, 'directory check failed; the last configuration stays live'),
    );
  }, 5_000);
  cleanup.add(() => clearInterval(checker));

  // The first signal stops gracefully, and says so at once; a second one (Ctrl-C again, or a
  // signal forwarded twice, as npm does) ends the process there and then, instead of finding no
  // listener and killing it before the note is out.
  await new Promise<void>((done) => {
    let stopping = false;
    const stop = (signal: 'SIGINT' | 'SIGTERM'): void => {
      if (stopping) process.exit(signal === 'SIGINT' ? 130 : 143);
      stopping = true;
      output.note(`${signal}: finishing requests in flight and stopping`);
      done();
    };
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
  });
  return 0;
}

/** watchRedis says when Redis does not answer at start-up (the API answers 503 meanwhile) and when it does. */
function watchRedis(opened: OpenedStore, name: string, note: (line: string) => void): void {
  void opened.reachable(1000).then(async (reachable) => {
    if (reachable) return;
    note(`Redis at ${name} does not answer yet: the API answers 503 and /readyz says so until it does; start it, or fix --redis`);
    if (await opened.reachable(Infinity)) note(`Redis at ${name} answers: ready`);
  });
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
