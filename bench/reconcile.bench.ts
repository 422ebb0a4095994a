import { join } from 'node:path';
import { readSchemaSet } from '../controller/adapters/files.ts';
import { canonicalJson } from '../controller/core/bundle.ts';
import { Reconciler, reconcile, type DesiredState } from '../controller/core/reconciler.ts';
import type { SmsObject } from '../controller/generated/kinds.ts';
import { createSchemaValidator } from '../controller/validate/schema-validator.ts';
import { validateFiles } from '../controller/validate/validate-files.ts';
import { medianOf, row, type BenchRow } from './harness.ts';
import { manifests } from './validate.bench.ts';

function heapUsed(): number {
  (globalThis as { gc?: () => void }).gc?.();
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage().heapUsed;
}

/** benchReconcile measures a full reconcile and one-object incremental edits at 100, 1,000 and 10,000 objects. */
export async function benchReconcile(root: string): Promise<BenchRow[]> {
  const validator = createSchemaValidator(await readSchemaSet(join(root, 'schemas')));
  const rows: BenchRow[] = [];
  for (const n of [100, 1000, 10_000]) {
    const result = validateFiles([{ path: 'bench.yaml', bytes: new TextEncoder().encode(manifests(n)) }], validator, {
      maxFileBytes: 1e9,
      maxAliasCount: 100,
      maxDepth: 64,
      maxDocuments: 1e6,
    });
    const secrets = new Map<string, string[]>();
    for (let i = 0; i < 20; i++) secrets.set(`team-${i}/plivo`, ['authId', 'authToken']);
    const desired: DesiredState = { objects: result.valid.map((v) => v.object), invalid: [], secrets };
    if (desired.objects.length !== n) throw new Error(`expected ${n} objects, got ${desired.objects.length}`);

    const baseline = await medianOf(5, () => desired.objects.map((o) => canonicalJson(o)));
    const full = await medianOf(5, () => reconcile(desired, undefined, '2026-01-01T00:00:00Z'));
    rows.push(
      row(
        `full reconcile, ${n} objects`,
        full,
        'ms',
        { name: 'canonical JSON of every object', value: baseline },
        `${((full / n) * 1000).toFixed(1)} µs/object`,
      ),
    );

    // One changed object at a time, each a different one, after a full reconcile.
    const r = new Reconciler();
    r.apply(
      desired.objects.map((object) => ({ type: 'upsert', object })),
      '2026-01-01T00:00:00Z',
      true,
    );
    const templates = desired.objects.filter((o) => o.kind === 'SmsTemplate');
    const stores = desired.objects.filter((o) => o.kind === 'IdentityStore');
    let i = 0;
    const editOne = (): void => {
      const pick = i % 2 === 0 ? templates[i % templates.length]! : stores[i % stores.length]!;
      const edited = structuredClone(pick) as SmsObject & { spec: Record<string, unknown> };
      edited.metadata.generation = 2 + i;
      if (edited.kind === 'SmsTemplate') edited.spec.text = `[Code] is your code (edit ${i}).`;
      else (edited.spec.authenticationTypes as string[]).reverse();
      r.apply([{ type: 'upsert', object: edited }], `2026-01-01T00:00:${String(i % 60).padStart(2, '0')}Z`);
      i++;
    };
    const incremental = await medianOf(51, editOne);
    rows.push(row(`one changed object, ${n} objects`, incremental, 'ms', { name: 'full reconcile', value: full }));

    const before = heapUsed();
    const kept = reconcile(desired, undefined, '2026-01-01T00:00:00Z');
    const retained = heapUsed() - before;
    rows.push(row(`memory retained by the state, ${n} objects`, retained / 1024 / 1024, 'MiB', undefined, `${Math.round(retained / n)} bytes/object`));
    if (kept.statuses.size !== n) throw new Error('reconcile lost objects');
  }
  return rows;
}
