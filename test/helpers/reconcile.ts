import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Generations } from '../../controller/core/generations.ts';
import { objectKey } from '../../controller/core/object-key.ts';
import { reconcile, type ReconcileState } from '../../controller/core/reconciler.ts';
import { desiredStateOf } from '../../controller/validate/desired-state.ts';
import { validateFiles } from '../../controller/validate/validate-files.ts';
import { ROOT, fixtureBytes, schemaValidator } from './fixtures.ts';

/** runScenario reconciles each step file of test/fixtures/reconcile/NAME in order, each from the state before. */
export async function runScenario(name: string): Promise<ReconcileState[]> {
  const dir = join(ROOT, 'test', 'fixtures', 'reconcile', name);
  const steps = readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .sort();
  const generations = new Generations();
  const states: ReconcileState[] = [];
  let previous: ReconcileState | undefined;
  for (const [i, file] of steps.entries()) {
    const result = validateFiles([{ path: `${name}/${file}`, bytes: fixtureBytes(`reconcile/${name}/${file}`) }], await schemaValidator());
    const desired = desiredStateOf(result, (kind, ns, n, object) => generations.generationOf(objectKey(kind, ns, n), object.spec));
    previous = reconcile(desired, previous, `2026-01-01T00:0${i}:00Z`);
    states.push(previous);
  }
  return states;
}
