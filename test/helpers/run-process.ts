import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from './fixtures.ts';
import { logScan } from './log-scan.ts';

/** RunEvent is one JSON line of `smsauth run` on a pipe. */
export interface RunEvent {
  event: 'applied' | 'refused' | 'note' | 'compliance' | 'idle';
  /** What started a reload: the changes the watcher saw. */
  reason?: string;
  revision?: string;
  refused?: string;
  message?: string;
  diagnostics?: string[];
  problems?: string[];
  swapped?: string[];
  objects?: { kind: string; namespace: string; name: string; ready: string; reason: string; message: string; observedGeneration: number }[];
  /** A compliance event's store and its enforcing roles. */
  namespace?: string;
  store?: string;
  roles?: { role: string; members: number; enrolled: number }[];
}

/** RunProcess is a running `smsauth run` child, its events and its stderr (console-gateway prints, logs). */
export interface RunProcess {
  url: string;
  events: RunEvent[];
  stderr: () => string;
  child: ChildProcess;
  /** stderrMatch waits until stderr matches (a line the child printed reaches this process a little after what it wrote elsewhere). */
  stderrMatch(pattern: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
  /** next waits for an event after those seen so far that satisfies the predicate. */
  next(predicate: (e: RunEvent) => boolean, timeoutMs?: number): Promise<RunEvent>;
  /** stop sends a signal and waits for the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** startRun starts bin/smsauth.js run with args (cwd: the repository, or the given one) and waits until it serves. */
export async function startRun(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; command?: string[] } = {}): Promise<RunProcess> {
  const command = options.command ?? [process.execPath, join(ROOT, 'bin', 'smsauth.js'), 'run'];
  // Its own process group, so that stop reaches `npm start`'s child too (npm does not forward signals).
  const child = spawn(command[0]!, [...command.slice(1), ...args], {
    cwd: options.cwd ?? ROOT,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const events: RunEvent[] = [];
  let stderr = '';
  let buffer = '';
  const waiters: { from: number; predicate: (e: RunEvent) => boolean; resolve: (e: RunEvent) => void }[] = [];
  let consumed = 0;
  const check = (): void => {
    for (const w of [...waiters]) {
      const found = events.slice(w.from).find(w.predicate);
      if (found !== undefined) {
        waiters.splice(waiters.indexOf(w), 1);
        consumed = events.indexOf(found) + 1;
        w.resolve(found);
      }
    }
  };
  child.stdout.on('data', (d: Buffer) => {
    logScan.observe('smsauth run (stdout)', d.toString('utf8'));
    buffer += d.toString('utf8');
    let nl: number;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      if (line.trim().startsWith('{')) {
        try {
          events.push(JSON.parse(line) as RunEvent);
        } catch {
          // npm's own banner lines and the like
        }
      }
    }
    check();
  });
  const stderrWaiters = new Set<() => void>();
  child.stderr.on('data', (d: Buffer) => {
    logScan.observe('smsauth run (stderr)', d.toString('utf8'));
    stderr += d.toString('utf8');
    for (const w of [...stderrWaiters]) w();
  });
  const stderrMatch = (pattern: RegExp, timeoutMs = 10_000): Promise<RegExpExecArray> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        stderrWaiters.delete(look);
        reject(new Error(`stderr did not match ${pattern} within ${timeoutMs} ms: ${stderr.slice(-2000)}`));
      }, timeoutMs);
      function look(): void {
        const m = pattern.exec(stderr);
        if (m === null) return;
        clearTimeout(timer);
        stderrWaiters.delete(look);
        resolve(m);
      }
      stderrWaiters.add(look);
      look();
    });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const next = (predicate: (e: RunEvent) => boolean, timeoutMs = 15_000): Promise<RunEvent> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new Error(
              `no matching event within ${timeoutMs} ms; events: ${JSON.stringify(events.slice(consumed)).slice(0, 2000)}; stderr: ${stderr.slice(-2000)}`,
            ),
          ),
        timeoutMs,
      );
      waiters.push({
        from: consumed,
        predicate,
        resolve: (e) => {
          clearTimeout(timer);
          resolve(e);
        },
      });
      check();
    });
  const serving = await Promise.race([
    next((e) => e.event === 'note' && (e.message ?? '').startsWith('serving '), 30_000),
    exited.then((code) => {
      throw new Error(`smsauth run exited ${code}: ${stderr}`);
    }),
  ]);
  const url = /serving (\S+)/.exec(serving.message ?? '')![1]!;
  return {
    url,
    events,
    stderr: () => stderr,
    stderrMatch,
    child,
    next,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null) return child.exitCode;
      process.kill(-child.pid!, signal);
      return exited;
    },
  };
}
