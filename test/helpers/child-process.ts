import type { ChildProcess } from 'node:child_process';

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
