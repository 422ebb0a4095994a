import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readYamlTree } from '../controller/adapters/files.ts';
import { DiagnosticCode } from '../controller/core/diagnostics.ts';
import type { IdentityStore, SecurityRole, SmsGatewayAccount } from '../controller/generated/kinds.ts';
import { DEFAULT_LIMITS } from '../controller/load/yaml-documents.ts';
import { validateFiles } from '../controller/validate/validate-files.ts';
import { ROOT, fixtureBytes, schemaValidator, utf8 } from './helpers/fixtures.ts';

const INVALID = join(ROOT, 'test', 'fixtures', 'invalid');
// Codes that need the file system or the command line rather than a committed file; tested below and in cli-validate.
// Codes of the file system, or of `smsauth run` alone (file-empty: local-run.test.ts).
const NOT_A_FIXTURE: string[] = [DiagnosticCode.PathNotFound, DiagnosticCode.FileUnreadable, DiagnosticCode.FileTooLarge, DiagnosticCode.FileEmpty];

const fixtures = suite('invalid fixtures');
for (const file of readdirSync(INVALID)
  .filter((f) => f.endsWith('.yaml'))
  .sort()) {
  fixtures(file, async () => {
    const result = validateFiles([{ path: file, bytes: fixtureBytes(`invalid/${file}`) }], await schemaValidator());
    const got = result.diagnostics.map((d) => `${d.range?.start.line}:${d.range?.start.column} ${d.severity} ${d.code}`);
    const want = readFileSync(join(INVALID, file.replace(/\.yaml$/, '.expected')), 'utf8')
      .trim()
      .split('\n');
    assert.equal(got, want);
    assert.ok(
      got.some((g) => g.endsWith(` ${file.replace(/\.yaml$/, '')}`)),
      'the fixture shows the code it is named after',
    );
  });
}
fixtures('every diagnostic code has a fixture or a test of its own', () => {
  const files = new Set(readdirSync(INVALID).map((f) => f.replace(/\.(yaml|expected)$/, '')));
  const missing = Object.values(DiagnosticCode).filter((c) => !files.has(c) && !NOT_A_FIXTURE.includes(c));
  assert.equal(missing, []);
});
fixtures('messages name the field and never echo a credential', async () => {
  const result = validateFiles(
    [
      { path: 'c.yaml', bytes: fixtureBytes('invalid/credential-inline.yaml') },
      { path: 's.yaml', bytes: fixtureBytes('invalid/secret-invalid.yaml') },
    ],
    await schemaValidator(),
  );
  const text = JSON.stringify(result.diagnostics);
  assert.not.match(text, 's3cr3t-t0ken-value');
  assert.not.match(text, 'hookP4ss');
  assert.not.match(text, 'hunter2');
  assert.not.match(text, 'this is not base64');
  assert.match(result.diagnostics.find((d) => d.code === 'credential-inline')!.message, 'spec.plivo.authToken');
});
fixtures('a quoted text never closed is reported where it opens, not at the end of the file', async () => {
  const text = [
    'apiVersion: smsauth.io/v1alpha1',
    'kind: SmsTemplate',
    'metadata: {name: first, namespace: q}',
    'spec: {text: "Code [Code]"}',
    '---',
    'apiVersion: smsauth.io/v1alpha1',
    'kind: SmsTemplate',
    'metadata: {name: second, namespace: q}',
    'spec:',
    '  text: "Your code is [Code]',
    '  locales: {fr: "Votre code est [Code]"}',
    '',
  ].join('\n');
  const result = validateFiles([{ path: 'q.yaml', bytes: utf8(text) }], await schemaValidator());
  assert.equal(
    result.diagnostics.map((d) => `${d.range?.start.line}:${d.range?.start.column} ${d.code} ${d.message}`),
    ['10:9 yaml-syntax Missing closing "quote: the quoted text opened here is never closed'],
  );
  assert.equal(
    result.valid.map((v) => v.object.metadata.name),
    ['first'],
    'the documents before it are read',
  );
});

fixtures.run();

const examples = suite('examples');
examples('validate with no error, one warning (the static directory npm start uses) and resolve every reference', async () => {
  const tree = await readYamlTree([join(ROOT, 'examples')], DEFAULT_LIMITS.maxFileBytes);
  assert.equal(tree.ioErrors, []);
  const result = validateFiles(tree.files, await schemaValidator());
  assert.equal(
    result.diagnostics.filter((d) => d.severity !== 'info').map((d) => `${d.file} ${d.severity} ${d.code}`),
    ['examples/identity/branch-office.yaml warning directory-static'],
  );
  assert.equal(result.rejected, []);
  const kinds = result.valid.map((v) => v.object.kind);
  for (const k of ['SmsGatewayAccount', 'IdentityStore', 'SmsTemplate', 'SecurityRole']) assert.ok(kinds.includes(k as never), `examples show ${k}`);
  assert.equal(new Set(result.valid.map((v) => v.object.metadata.namespace)), new Set(['identity', 'helpdesk']));
  assert.equal(
    result.secrets.map((s) => `${s.namespace}/${s.name}`),
    ['identity/directory-credentials', 'identity/plivo-credentials'],
  );
  const stores = result.valid.map((v) => v.object).filter((o): o is IdentityStore => o.kind === 'IdentityStore');
  assert.ok(
    stores.some((s) => s.spec.sms?.gatewayAccountRef !== undefined),
    'one store links explicitly',
  );
  assert.ok(
    stores.some((s) => s.spec.sms?.gatewayAccountRef === undefined),
    'one store links by default',
  );
  assert.ok(new Set(stores.map((s) => s.spec.type)).size >= 2, 'stores of two types');
});
examples.run();

const defaults = suite('defaults');
defaults('are applied as the API server would, nested ones included', async () => {
  const yaml = `apiVersion: smsauth.io/v1alpha1
kind: IdentityStore
metadata: {name: s}
spec:
  type: GenericLDAP
  authenticationTypes: [SMS]
  sms: {textMessage: "[Code]"}
---
apiVersion: smsauth.io/v1alpha1
kind: SecurityRole
metadata: {name: r}
spec: {identityStoreRef: {name: s}, priority: 2}
---
apiVersion: smsauth.io/v1alpha1
kind: SmsGatewayAccount
metadata: {name: g}
spec: {provider: console}
`;
  const result = validateFiles([{ path: 'd.yaml', bytes: utf8(yaml) }], await schemaValidator());
  const [store, role, gw] = result.valid.map((v) => v.object) as [IdentityStore, SecurityRole, SmsGatewayAccount];
  assert.is(store.metadata.namespace, 'default');
  assert.equal(store.spec.sms!.code, { length: 6, ttl: '10m', maxAttempts: 5, maxSends: 5, resendCooldown: '30s' });
  assert.is(store.spec.sms!.lastDigitsChallenge, true);
  assert.equal(store.spec.enrollment, { enabled: true });
  assert.equal(role.spec.authenticationPolicy, { enforced: [], chosenByEndUser: 0, secondFactor: false });
  assert.equal(role.spec.lockout, { failedAttemptsThreshold: 5, duration: '15m' });
  assert.is(role.spec.enabled, true);
  assert.equal([gw.spec.default, gw.spec.timeout], [false, '10s']);
});
defaults.run();

const placement = suite('objects');
placement('invalid on their own are rejected, with every diagnostic, while the rest stays valid', async () => {
  const result = validateFiles(
    [
      { path: 'a.yaml', bytes: fixtureBytes('invalid/schema-enum.yaml') },
      { path: 'b.yaml', bytes: fixtureBytes('invalid/reference-not-found.yaml') },
    ],
    await schemaValidator(),
  );
  assert.equal(
    result.rejected.map((r) => `${r.ref.kind}/${r.ref.name}`),
    ['SmsGatewayAccount/misspelled-provider'],
  );
  assert.equal(
    result.valid.map((v) => v.object.metadata.name),
    ['console', 'dangling'],
    'a dangling reference does not reject the referrer',
  );
});
placement('inside a v1 List are unpacked with positions inside the list', async () => {
  const yaml = `apiVersion: v1
kind: List
items:
  - apiVersion: smsauth.io/v1alpha1
    kind: SmsTemplate
    metadata: {name: t, namespace: x}
    spec:
      text: "no code"
`;
  const result = validateFiles([{ path: 'l.yaml', bytes: utf8(yaml) }], await schemaValidator());
  assert.equal(
    result.diagnostics.map((d) => `${d.range?.start.line}:${d.range?.start.column} ${d.code} ${d.pointer}`),
    ['8:13 code-placeholder-missing /items/0/spec/text'],
  );
});
placement('a Secret with data in base64 and stringData is decoded, stringData winning', async () => {
  const yaml = `apiVersion: v1
kind: Secret
metadata: {name: s, namespace: x}
data: {a: aGVsbG8=, b: d29ybGQ=}
stringData: {b: override}
`;
  const result = validateFiles([{ path: 's.yaml', bytes: utf8(yaml) }], await schemaValidator());
  assert.equal(
    [...result.secrets[0]!.data.entries()],
    [
      ['a', 'hello'],
      ['b', 'override'],
    ],
  );
});
placement.run();
