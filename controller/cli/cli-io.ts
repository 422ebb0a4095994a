/** CliIo is where a command writes; main passes the process streams, tests pass buffers. */
export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
  /** Whether stdout is a terminal (tables and colours) or a pipe (JSON lines). */
  isTTY: boolean;
}

/** UsageError is a mistake on the command line; main prints it with the usage and exits 2. */
export class UsageError extends Error {
  readonly code = 'ERR_USAGE';
}

/** processIo writes to the process's own streams. */
export function processIo(): CliIo {
  // A reader gone (EPIPE: the command piped into head) ends what is written there, not the command.
  const gone = { stdout: false, stderr: false };
  for (const name of ['stdout', 'stderr'] as const) {
    process[name].on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE') throw err;
      gone[name] = true;
    });
  }
  return {
    stdout: (t) => void (gone.stdout || process.stdout.write(t)),
    stderr: (t) => void (gone.stderr || process.stderr.write(t)),
    isTTY: process.stdout.isTTY === true,
  };
}

/**
 * StartupError is a command that cannot start for a reason outside its command line (a port in use,
 * a file that cannot be read, a store that cannot be opened); main prints its message, one line that
 * names the thing and what to do, and exits 1.
 */
export class StartupError extends Error {
  readonly code = 'ERR_STARTUP';
}

/** LogLevel is a level the commands accept for --log-level. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** isLogLevel tells whether a --log-level value is one the commands accept. */
export function isLogLevel(level: string): level is LogLevel {
  return ['debug', 'info', 'warn', 'error'].includes(level);
}
