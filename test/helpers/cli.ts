import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from './fixtures.ts';
import { logScan } from './log-scan.ts';

/** CliResult is what a run of the smsauth process printed and returned. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** runCli runs bin/smsauth.js as a child process in the repository root. */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(ROOT, 'bin', 'smsauth.js'), ...args],
      // A process that should have stopped and serves instead fails its test rather than holding the suite.
      { cwd: ROOT, env: { ...process.env, ...env }, maxBuffer: 64 * 1024 * 1024, timeout: 60_000, killSignal: 'SIGKILL' },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1;
        logScan.observe(`smsauth ${args[0] ?? ''} (stdout)`, stdout);
        logScan.observe(`smsauth ${args[0] ?? ''} (stderr)`, stderr);
        resolve({ code, stdout, stderr });
      },
    );
  });
}
