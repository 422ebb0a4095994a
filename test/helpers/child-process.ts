import { execFile, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';

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
