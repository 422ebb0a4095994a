import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { changeOf } from '../controller/kube/object-change.ts';
import { schemaValidator } from './helpers/fixtures.ts';

const store = (spec: Record<string, unknown>): Record<string, unknown> => ({
  apiVersion: 'smsauth.io/v1alpha1',
  kind: 'IdentityStore',
  metadata: { name: 's', namespace: 'n', generation: 3, uid: 'u-1', managedFields: [{}] },
  spec,
  status: { conditions: [] },
});

test('an invalid object: its messages name each field once, whether the finding named it or not', async () => {
  const schema = changeOf('IdentityStore', 'n', 's', store({ type: 'Bogus', authenticationTypes: ['SMS'] }), await schemaValidator());
  assert.equal(schema, {
    type: 'invalid',
    version: {
      ref: { kind: 'IdentityStore', namespace: 'n', name: 's' },
      generation: 3,
      messages: ['spec.type must be one of: ActiveDirectory, MicrosoftEntraID, GenericLDAP, GoogleWorkspace'],
    },
  });
  const own = changeOf(
    'SmsTemplate',
    'n',
    't',
    { apiVersion: 'smsauth.io/v1alpha1', kind: 'SmsTemplate', metadata: { name: 't', namespace: 'n' }, spec: { text: 'Your code is [Code] at [Company]' } },
    await schemaValidator(),
  );
  assert.equal(own.type === 'invalid' ? own.version.messages : own, [
    'spec.text: unknown placeholder "[Company]"; the placeholders are [Code], [User] and [Minutes]',
  ]);
});

test('a valid object: only what the schema knows, without the status; one being deleted is a deletion', async () => {
  const valid = changeOf(
    'IdentityStore',
    'n',
    's',
    store({ type: 'ActiveDirectory', authenticationTypes: ['SMS'], sms: { textMessage: 'Code [Code]' } }),
    await schemaValidator(),
  );
  assert.is(valid.type, 'upsert');
  const object = (valid as { object: Record<string, any> }).object;
  assert.equal(object['metadata'], { name: 's', namespace: 'n', generation: 3 });
  assert.is(object['status'], undefined);
  const deleting = {
    ...store({ type: 'ActiveDirectory', authenticationTypes: ['SMS'], sms: { textMessage: 'Code [Code]' } }),
    metadata: { name: 's', deletionTimestamp: '2026-01-01T00:00:00Z' },
  };
  assert.equal(changeOf('IdentityStore', 'n', 's', deleting, await schemaValidator()), {
    type: 'delete',
    ref: { kind: 'IdentityStore', namespace: 'n', name: 's' },
  });
});

test.run();
