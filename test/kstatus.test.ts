import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readYamlTree } from '../controller/adapters/files.ts';
import type { ConditionInput } from '../controller/core/conditions.ts';
import { progressConditions } from '../controller/core/kstatus.ts';
import { DEFAULT_LIMITS } from '../controller/load/yaml-documents.ts';
import { Reason } from '../controller/core/reasons.ts';
import { reconcile } from '../controller/core/reconciler.ts';
import type { Condition } from '../controller/generated/kinds.ts';
import { desiredStateOf } from '../controller/validate/desired-state.ts';
import { validateFiles } from '../controller/validate/validate-files.ts';
import { fixtureBytes, ROOT, schemaValidator } from './helpers/fixtures.ts';

// The status of every kind read as kstatus reads a custom resource (sigs.k8s.io/cli-utils,
// pkg/kstatus/status, the generic rules Flux's health checks and `kubectl wait` users rely on):
// deletion → Terminating; observedGeneration behind metadata.generation → InProgress;
// Reconciling=True → InProgress; Stalled=True → Failed; otherwise Current.

type KStatus = 'Current' | 'InProgress' | 'Failed' | 'Terminating';

function kstatusOf(obj: { generation: number; deleting?: boolean; status: { observedGeneration?: number; conditions?: Condition[] } }): KStatus {
  if (obj.deleting === true) return 'Terminating';
  if (obj.status.observedGeneration !== obj.generation) return 'InProgress';
  const isTrue = (type: string): boolean => obj.status.conditions?.some((c) => c.type === type && c.status === 'True') === true;
  if (isTrue('Reconciling')) return 'InProgress';
  if (isTrue('Stalled')) return 'Failed';
  return 'Current';
}

const statusFrom = (conditions: ConditionInput[]): { observedGeneration: number; conditions: Condition[] } => ({
  observedGeneration: 1,
  conditions: conditions.map((c) => ({ ...c, observedGeneration: 1, lastTransitionTime: '2026-01-01T00:00:00Z' })),
});

const rules = suite('progressConditions, read by kstatus');

const cases: { name: string; ready: ConditionInput; want: KStatus }[] = [
  { name: 'Ready True is Current', ready: { type: 'Ready', status: 'True', reason: Reason.SmsOffered, message: 'offered' }, want: 'Current' },
  { name: 'an invalid spec is Failed', ready: { type: 'Ready', status: 'False', reason: Reason.InvalidSpec, message: 'bad' }, want: 'Failed' },
  { name: 'a missing Secret is Failed', ready: { type: 'Ready', status: 'False', reason: Reason.SecretNotFound, message: 'x' }, want: 'Failed' },
  { name: 'a default conflict is Failed', ready: { type: 'Ready', status: 'False', reason: Reason.DefaultConflict, message: 'x' }, want: 'Failed' },
  {
    name: 'a directory not checked yet is InProgress',
    ready: { type: 'Ready', status: 'Unknown', reason: Reason.DirectoryNotChecked, message: 'x' },
    want: 'InProgress',
  },
  {
    name: 'an unreachable directory is InProgress (retried)',
    ready: { type: 'Ready', status: 'False', reason: Reason.DirectoryUnreachable, message: 'x' },
    want: 'InProgress',
  },
  {
    name: 'a dependency not ready is InProgress',
    ready: { type: 'Ready', status: 'False', reason: Reason.GatewayAccountNotReady, message: 'x' },
    want: 'InProgress',
  },
];
for (const c of cases) {
  rules(c.name, () => {
    const derived = progressConditions(c.ready);
    assert.equal(
      derived.map((d) => d.type),
      ['Reconciling', 'Stalled'],
    );
    for (const d of derived) assert.is(d.reason, c.ready.reason, 'each explains the Ready it comes from');
    assert.is(kstatusOf({ generation: 1, status: statusFrom([c.ready, ...derived]) }), c.want);
  });
}

rules.run();

const reconciled = suite('reconciled statuses, read by kstatus');

reconciled('every object of examples/ whose Ready is True is Current; none is Failed', async () => {
  const tree = await readYamlTree([join(ROOT, 'examples')], DEFAULT_LIMITS.maxFileBytes);
  const state = reconcile(desiredStateOf(validateFiles(tree.files, await schemaValidator())), undefined, '2026-01-01T00:00:00Z');
  assert.ok(state.statuses.size >= 10);
  for (const [key, entry] of state.statuses) {
    const status = kstatusOf({ generation: entry.status.observedGeneration ?? 1, status: entry.status });
    const ready = entry.status.conditions?.find((c) => c.type === 'Ready');
    if (ready?.status === 'True') assert.is(status, 'Current', key);
    assert.is.not(status, 'Failed', `${key}: ${ready?.reason ?? ''} ${ready?.message ?? ''}`);
  }
});

reconciled('every object of the invalid fixtures refused with InvalidSpec is Failed', async () => {
  const validator = await schemaValidator();
  let refused = 0;
  for (const file of readdirSync(join(ROOT, 'test', 'fixtures', 'invalid')).filter((f) => f.endsWith('.yaml'))) {
    const path = `invalid/${file}`;
    const state = reconcile(desiredStateOf(validateFiles([{ path, bytes: fixtureBytes(path) }], validator)), undefined, '2026-01-01T00:00:00Z');
    for (const [key, entry] of state.statuses) {
      const ready = entry.status.conditions?.find((c) => c.type === 'Ready');
      if (ready?.reason !== Reason.InvalidSpec) continue;
      refused += 1;
      assert.is(kstatusOf({ generation: entry.status.observedGeneration ?? 1, status: entry.status }), 'Failed', `${file}: ${key}`);
    }
  }
  assert.ok(refused >= 10, `${refused} objects refused`);
});

reconciled.run();
