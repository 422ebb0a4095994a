import { execFile } from 'node:child_process';
import { ROOT } from './fixtures.ts';

/** KUBECTL is the machine's kubectl, which the cluster tests run against the in-process API server. */
export const KUBECTL = '/usr/bin/kubectl';

/** kubectlResult runs kubectl in the repository root; it resolves with stdout and stderr together, and whether it succeeded. */
export function kubectlResult(kubeconfig: string, ...args: string[]): Promise<{ ok: boolean; out: string }> {
  return new Promise((resolve) =>
    execFile(KUBECTL, ['--kubeconfig', kubeconfig, ...args], { cwd: ROOT }, (err, stdout, stderr) => resolve({ ok: err === null, out: `${stdout}${stderr}` })),
  );
}

/** kubectl runs kubectl in the repository root and resolves with its stdout; it rejects with its stderr when it fails. */
export function kubectl(kubeconfig: string, ...args: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(KUBECTL, ['--kubeconfig', kubeconfig, ...args], { cwd: ROOT }, (err, stdout, stderr) =>
      err ? reject(new Error(`kubectl ${args.join(' ')}: ${stderr}`)) : resolve(stdout),
    ),
  );
}

/** mergePatch is the arguments of `kubectl patch KIND NAME -n NS --type merge -p PATCH`. */
export function mergePatch(kind: string, name: string, namespace: string, patch: object): string[] {
  return ['patch', kind, name, '-n', namespace, '--type', 'merge', '-p', JSON.stringify(patch)];
}

/**
 * BREAK_TEMPLATE breaks the examples' template in a way the CRD's CEL rules admit and smsauth does
 * not ([Company] is no placeholder): what the controller must then report, keeping the last good one.
 */
export const BREAK_TEMPLATE = mergePatch('smstpl', 'sign-in-code', 'identity', { spec: { text: 'Your code is [Code] at [Company]' } });
