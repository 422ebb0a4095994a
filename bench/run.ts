// `npm run bench [-- NAME...]`: runs the benchmarks and prints a table with ratios to their baselines.
import { packageRoot } from '../controller/adapters/files.ts';
import type { BenchRow } from './harness.ts';
import { benchAudit } from './audit.bench.ts';
import { benchConsole } from './console.bench.ts';
import { benchController } from './controller.bench.ts';
import { benchDirectory } from './directory.bench.ts';
import { benchMemory } from './memory.bench.ts';
import { benchReconcile } from './reconcile.bench.ts';
import { benchRedisCluster } from './redis-cluster.bench.ts';
import { benchRunMode } from './run-mode.bench.ts';
import { benchValidate } from './validate.bench.ts';
import { benchVerifier } from './verifier.bench.ts';

const BENCHES: Record<string, (root: string) => Promise<BenchRow[]>> = {
  validate: benchValidate,
  reconcile: benchReconcile,
  controller: benchController,
  verifier: benchVerifier,
  'run-mode': benchRunMode,
  directory: benchDirectory,
  audit: benchAudit,
  console: benchConsole,
  memory: benchMemory,
  'redis-cluster': benchRedisCluster,
};

async function main(): Promise<void> {
  const wanted = process.argv.slice(2);
  const root = packageRoot();
  console.log(`node ${process.version}, ${new Date().toISOString()}`);
  console.log('| benchmark | value | baseline (same run) | ratio | note |');
  console.log('| --- | --- | --- | --- | --- |');
  for (const [name, bench] of Object.entries(BENCHES)) {
    if (wanted.length > 0 && !wanted.includes(name)) continue;
    for (const r of await bench(root)) {
      const base = r.baseline ? `${r.baseline.name}: ${r.baseline.value.toFixed(1)} ${r.unit}` : '';
      const ratio = r.ratio === undefined ? '' : r.unit === 'req/s' ? `${(r.ratio * 100).toFixed(0)}%` : `${r.ratio.toFixed(2)}×`;
      console.log(`| ${r.name} | ${r.value.toFixed(1)} ${r.unit} | ${base} | ${ratio} | ${r.note ?? ''} |`);
    }
  }
}

await main();
