import { execFile, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { Signal, waitUntil } from './wait.ts';

/**
 * ownChild ties a server the tests started to this process: it does not keep the process alive
 * (a suite that forgets to stop it cannot hang the run; stopping it refs it while waiting for its
 * exit), and it is killed when the process exits
 * (it is never left running for the next suite or the next run).
 */
export function ownChild(child: ChildProcess): void {
  const kill = (): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  process.once('exit', kill);
  child.once('exit', () => process.off('exit', kill));
  child.unref();
  for (const stream of [child.stdout, child.stderr]) (stream as { unref?: () => void } | null)?.unref?.();
}

/** runCommand runs a command to its end; it rejects with the command's own last words. */
export function runCommand(command: string, args: string[], cwd: string): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(command, args, { cwd, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) =>
      err === null ? resolve(stdout) : reject(new Error(`${command} ${args.slice(0, 3).join(' ')}: ${(stderr || err.message).slice(-2000)}`)),
    ),
  );
}

/** listening tells whether something accepts connections on a loopback port. */
export function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** stopChild signals a server the tests started and waits until it has exited (nothing when it has). */
export async function stopChild(child: ChildProcess | undefined, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
  // Waited for: it keeps this process alive until it has exited (ownChild unref'd it).
  child.ref();
  const gone = new Promise((resolve) => child.once('exit', resolve));
  child.kill(signal);
  await gone;
}

/**
 * untilServing waits for a server the tests started to serve: `serves` is asked again each time
 * the server writes on its output streams that are piped (or `said` fires, for another sign of
 * it). It fails, the server killed and the end of its output quoted, when the server exits or
 * cannot be run, or after `ms`: a server that runs and never serves fails its suite instead of
 * holding it.
 */
export async function untilServing(
  child: ChildProcess,
  options: { name: string; install: string; what: string; serves: () => Promise<boolean>; ms: number; said?: Signal },
): Promise<void> {
  let output = '';
  const said = options.said ?? new Signal();
  for (const stream of [child.stdout, child.stderr]) {
    stream?.on('data', (d: Buffer) => {
      output = (output + d.toString()).slice(-8000);
      said.fire();
    });
  }
  const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`${options.name} exited ${String(code)}`))));
  const failed = new Promise<never>((_, reject) =>
    child.once('error', (e) => reject(new Error(`cannot start ${options.name} (${e.message}); npm test installs it: ${options.install}`))),
  );
  const serving = waitUntil(`${options.name} to ${options.what}`, options.serves, () => said.next(), options.ms);
  try {
    await Promise.race([serving, exited, failed]);
  } catch (e) {
    exited.catch(() => undefined); // the kill below ends it: not a failure of its own
    child.kill('SIGKILL');
    throw new Error(`${(e as Error).message}: ${output.slice(-2000)}`, { cause: e });
  }
}
