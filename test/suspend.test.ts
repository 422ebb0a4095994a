import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { heldVersion } from '../controller/core/suspend.ts';

const suspended = suite('spec.suspend: the version held');

suspended('the recorded version; else, for an object reconciled before, the version found; else none', () => {
  const recorded = {
    metadata: { generation: 5 },
    spec: { suspend: true, text: 'new' },
    status: { observedGeneration: 3, suspended: { generation: 3, spec: { text: 'old' } } },
  };
  assert.equal(heldVersion(recorded), { metadata: { generation: 3 }, spec: { text: 'old' }, status: recorded.status });
  const unrecorded = { metadata: { generation: 4 }, spec: { suspend: true, text: 'found' }, status: { observedGeneration: 3 } };
  assert.equal(heldVersion(unrecorded)?.spec, { text: 'found' }, 'suspended while no controller ran');
  assert.is(heldVersion({ metadata: { generation: 1 }, spec: { suspend: true, text: 'x' } }), undefined, 'created suspended');
});

suspended.run();
