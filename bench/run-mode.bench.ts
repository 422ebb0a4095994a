import { watch } from 'node:fs';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRun } from '../test/helpers/run-process.ts';
import { row, type BenchRow } from './harness.ts';

const FILES = (text: string): Record<string, string> => ({
  'gateway.yaml':
    'apiVersion: smsauth.io/v1alpha1\nkind: SmsGatewayAccount\nmetadata: {name: console, namespace: b}\nspec: {provider: console, default: true}\n',
  'template.yaml': `apiVersion: smsauth.io/v1alpha1\nkind: SmsTemplate\nmetadata: {name: text, namespace: b}\nspec: {text: "${text}"}\n`,
  'store.yaml':
    'apiVersion: smsauth.io/v1alpha1\nkind: IdentityStore\nmetadata: {name: corp, namespace: b}\nspec: {type: ActiveDirectory, authenticationTypes: [SMS], sms: {templateRef: {name: text}}}\n',
});

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** benchRunMode measures, for `smsauth run`, the time from a file write to the new bundle serving, against the bare fs.watch notification of the same write. */
export async function benchRunMode(): Promise<BenchRow[]> {
  const base = mkdtempSync(join(tmpdir(), 'smsauth-bench-run-'));
  const dir = join(base, 'config');
  mkdirSync(dir);
  for (const [name, content] of Object.entries(FILES('Version 0: [Code]'))) writeFileSync(join(dir, name), content);
  const rounds = 21;

  // Baseline: how long the operating system takes to tell a watcher about the same write.
  const notified: number[] = [];
  let resolveNotice: (() => void) | undefined;
  const w = watch(dir, () => resolveNotice?.());
  for (let i = 0; i < rounds; i++) {
    const seen = new Promise<void>((r) => (resolveNotice = r));
    const t0 = performance.now();
    writeFileSync(join(dir, 'other.txt'), `round ${i}`);
    await seen;
    notified.push(performance.now() - t0);
    await new Promise((r) => setTimeout(r, 20));
  }
  w.close();

  const run = await startRun(['--dir', dir, '--state-dir', join(base, 'state'), '--port', '0']);
  const latencies: number[] = [];
  try {
    for (let i = 1; i <= rounds; i++) {
      const t0 = performance.now();
      writeFileSync(join(dir, 'template.yaml'), FILES(`Version ${i}: [Code]`)['template.yaml']!);
      await run.next((e) => e.event === 'applied' && (e.swapped ?? []).includes('IdentityStore/b/corp'));
      latencies.push(performance.now() - t0);
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    await run.stop();
  }
  const ours = median(latencies);
  return [
    row(
      'file write → new bundle serving (median)',
      ours,
      'ms',
      { name: 'fs.watch notification', value: median(notified) },
      `p90 ${[...latencies].sort((a, b) => a - b)[Math.floor(rounds * 0.9)]!.toFixed(0)} ms over ${rounds} writes; 150 ms of it is the debounce`,
    ),
  ];
}
