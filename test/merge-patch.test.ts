import fc from 'fast-check';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mergePatchFrom } from '../controller/kube/merge-patch.ts';
import { applyMergePatch } from './kube/patch.ts';

const patch = suite('mergePatchFrom');

patch('applied to the current document, the patch gives the desired one; equal documents give none', () => {
  // JSON objects without nulls (a merge patch cannot set a null member: null removes it).
  const value = fc.letrec((tie) => ({
    json: fc.oneof({ depthSize: 'small' }, fc.string(), fc.integer(), fc.boolean(), fc.array(tie('json'), { maxLength: 3 }), tie('object')),
    object: fc.dictionary(fc.constantFrom('a', 'b', 'c', 'status', 'conditions'), tie('json'), { maxKeys: 4, noNullPrototype: true }),
  }));
  fc.assert(
    fc.property(value.object, value.object, (current, desired) => {
      const p = mergePatchFrom(current, desired);
      if (JSON.stringify(current) === JSON.stringify(desired)) assert.is(p, undefined);
      assert.equal(applyMergePatch(current, p ?? {}), desired);
    }),
    { numRuns: 500 },
  );
});

patch('only what changed, nested; removed keys as null; arrays whole', () => {
  const current = { status: { conditions: [{ type: 'Ready', status: 'False' }], gone: { x: 1 }, same: { y: [1, 2] } } };
  const desired = { status: { conditions: [{ type: 'Ready', status: 'True' }], same: { y: [1, 2] } } };
  assert.equal(mergePatchFrom(current, desired), { status: { conditions: [{ type: 'Ready', status: 'True' }], gone: null } });
  assert.is(mergePatchFrom({ a: { b: 1, c: undefined } }, { a: { b: 1 } }), undefined, 'an undefined member is absent');
});

patch.run();
