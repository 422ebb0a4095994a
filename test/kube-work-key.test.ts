import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { formatWorkKey, parseWorkKey, type WorkKey } from '../controller/kube/work-key.ts';

const keys = suite('controller work keys');

keys('every kind of work reads back as written', () => {
  const all: WorkKey[] = [
    { type: 'object', kind: 'IdentityStore', namespace: 'identity', name: 'corp-ad' },
    { type: 'object', kind: 'SmsGatewayAccount', namespace: 'default', name: 'plivo' },
    { type: 'secret', namespace: 'identity', name: 'plivo-credentials' },
    { type: 'bundle', namespace: 'identity' },
    { type: 'directory', namespace: 'identity', store: 'corp-ad' },
  ];
  for (const k of all) assert.equal(parseWorkKey(formatWorkKey(k)), k, formatWorkKey(k));
  assert.is(formatWorkKey(all[0]!), 'IdentityStore/identity/corp-ad', 'an object is keyed as the reconciler keys it');
});

keys('anything else is no work key, so the queue drops it instead of retrying it forever', () => {
  for (const key of ['', 'Bundle', 'Bundle/', 'Bundle/a/b', 'Secret/ns', 'Directory/ns/', 'Pod/ns/web', 'IdentityStore//x', 'identitystore/ns/x']) {
    assert.is(parseWorkKey(key), undefined, key);
  }
});

keys.run();
