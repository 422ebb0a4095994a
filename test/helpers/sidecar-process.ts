import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from './fixtures.ts';
import { logScan } from './log-scan.ts';

/** Sidecar is a running `smsauth sidecar` child. */
export interface Sidecar {
  url: string;
  /** The probe listener's URL (--health-probe-bind-address), or null without one. */
  probes: string | null;
  child: ChildProcess;
  stderr: () => string;
  stop(): Promise<number | null>;
}

/** startSidecar starts bin/smsauth.js sidecar with args and waits for its `serving` line. */
export async function startSidecar(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Sidecar> {
  const child = spawn(process.execPath, [join(ROOT, 'bin', 'smsauth.js'), 'sidecar', ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
    logScan.observe('smsauth sidecar (stderr)', d.toString());
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const { url, probes } = await new Promise<{ url: string; probes: string | null }>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      logScan.observe('smsauth sidecar (stdout)', d.toString());
      const line = out.split('\n').find((l) => l.includes('"event":"serving"'));
      if (line !== undefined) resolve(JSON.parse(line) as { url: string; probes: string | null });
    });
    void exited.then((code) => reject(new Error(`sidecar exited ${code}: ${stderr}`)));
  });
  return {
    url,
    probes,
    child,
    stderr: () => stderr,
    stop: async () => {
      child.kill('SIGTERM');
      return exited;
    },
  };
}
