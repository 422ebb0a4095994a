import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { parse } from 'yaml';
import { runCli } from './helpers/cli.ts';
import { ROOT } from './helpers/fixtures.ts';

const plan = suite('smsauth plan');

plan('shows every example object Ready, and bundles with credentials redacted: exit 0', async () => {
  const r = await runCli(['plan', '--dir', 'examples', '-o', 'json']);
  assert.is(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { objects: { kind: string; name: string; status: { conditions: { type: string; status: string }[] } }[]; bundles: any[] };
  assert.is(out.objects.length, 20);
  for (const o of out.objects) assert.is(o.status.conditions.find((c) => c.type === 'Ready')!.status, 'True', `${o.kind} ${o.name}`);
  const partners = out.bundles.find((b) => b.identityStore === 'partners-entra');
  assert.equal(partners.sms.gateways[0].credentials.authToken, {
    secretRef: { name: 'plivo-credentials', key: 'authToken' },
    value: '<redacted>',
    resolved: true,
  });
  const secretValues = ['MAFAKEDEMOID00000000', 'fake-demo-token-not-a-real-credential'];
  for (const v of secretValues) assert.not.match(r.stdout + r.stderr, v);
});

plan('table output names every object and bundle', async () => {
  const r = await runCli(['plan', '--dir', 'examples']);
  assert.is(r.code, 0);
  assert.match(r.stdout, /^KIND\s+NAMESPACE\s+NAME\s+READY\s+REASON\s+MESSAGE$/m);
  assert.match(r.stdout, /IdentityStore\s+identity\s+corp-ad\s+True\s+SmsOffered\s+SMS is offered through dev-console/);
  assert.match(r.stdout, /identity\s+corp-ad\s+1\s+offered\s+dev-console\s+administrators\(1\), employees\(50\)/);
});

plan('yaml output parses to the same view as json', async () => {
  const [y, j] = await Promise.all([runCli(['plan', '--dir', 'examples', '-o', 'yaml']), runCli(['plan', '--dir', 'examples', '-o', 'json'])]);
  const strip = (v: any): unknown => JSON.parse(JSON.stringify(v, (k, x) => (k === 'lastTransitionTime' ? undefined : x)));
  assert.equal(strip(parse(y.stdout)), strip(JSON.parse(j.stdout)));
});

plan('carries the pinned default and generations across runs with --write-status and --previous', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'smsauth-plan-'));
  const gateways = (def: string): string =>
    ['a', 'b']
      .map(
        (n) => `apiVersion: smsauth.io/v1alpha1
kind: SmsGatewayAccount
metadata: {name: ${n}, namespace: t}
spec: {provider: console, default: ${n === def}}
---
`,
      )
      .join('');
  const store = (name: string): string => `apiVersion: smsauth.io/v1alpha1
kind: IdentityStore
metadata: {name: ${name}, namespace: t}
spec: {type: ActiveDirectory, authenticationTypes: [SMS], sms: {textMessage: "Code [Code]"}}
---
`;
  writeFileSync(join(dir, 'r.yaml'), gateways('a') + store('first'));
  const status = join(dir, 'status.json');
  // The same command every run, the first included: a --previous that does not exist yet is no previous.
  const one = await runCli(['plan', '--dir', dir, '-o', 'json', '--previous', status, '--write-status', status]);
  assert.is(one.code, 0, one.stderr);
  assert.is(one.stderr, `smsauth plan: note: --previous ${status} does not exist yet (a first run): starting with no earlier status\n`);
  writeFileSync(join(dir, 'r.yaml'), gateways('b') + store('first') + store('second'));
  const two = await runCli(['plan', '--dir', dir, '-o', 'json', '--previous', status, '--write-status', status]);
  assert.is(two.code, 0, two.stderr);
  const objects = (JSON.parse(two.stdout) as { objects: any[] }).objects;
  const sms = (name: string): unknown => objects.find((o) => o.name === name).status.sms;
  assert.equal(sms('first'), { offered: true, gatewayAccount: 'a', selectedBy: 'Default', encoding: 'GSM-7', segments: 1 });
  assert.equal(sms('second'), { offered: true, gatewayAccount: 'b', selectedBy: 'Default', encoding: 'GSM-7', segments: 1 });
  const written = JSON.parse(readFileSync(status, 'utf8')) as { objects: { name: string; generation: number }[] };
  assert.equal(
    written.objects.filter((o) => ['a', 'b', 'first'].includes(o.name)).map((o) => [o.name, o.generation]),
    [
      ['first', 1],
      ['a', 2],
      ['b', 2],
    ],
    'a changed spec bumps the generation; an unchanged one keeps it',
  );
  // Without --previous, the same folder pins the current default instead.
  const fresh = await runCli(['plan', '--dir', dir, '-o', 'json']);
  assert.is((JSON.parse(fresh.stdout) as { objects: any[] }).objects.find((o) => o.name === 'first').status.sms.gatewayAccount, 'b');
});

plan('exits 1 when anything is not Ready, naming why', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'smsauth-plan-'));
  cpSync(join(ROOT, 'examples'), dir, { recursive: true });
  writeFileSync(
    join(dir, 'secrets', 'plivo-credentials.yaml'),
    'apiVersion: v1\nkind: Secret\nmetadata: {name: plivo-credentials, namespace: identity}\nstringData: {authId: x}\n',
  );
  const r = await runCli(['plan', '--dir', dir]);
  assert.is(r.code, 1);
  assert.match(r.stdout, /SmsGatewayAccount\s+identity\s+plivo\s+False\s+SecretKeyNotFound/);
  assert.match(r.stdout, /IdentityStore\s+identity\s+partners-entra\s+False\s+GatewayAccountNotReady/);
});

plan('reports a refused removal as an error naming both objects: exit 1', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'smsauth-plan-'));
  cpSync(join(ROOT, 'test/fixtures/reconcile/in-use-removal/1.yaml'), join(dir, 'r.yaml'));
  const status = join(dir, 'status.json');
  await runCli(['plan', '--dir', dir, '--write-status', status]);
  cpSync(join(ROOT, 'test/fixtures/reconcile/in-use-removal/2.yaml'), join(dir, 'r.yaml'));
  const r = await runCli(['plan', '--dir', dir, '--previous', status]);
  assert.is(r.code, 1);
  assert.match(r.stderr, 'error: SmsGatewayAccount u/primary was removed but IdentityStore u/a, u/b link it; the removal is refused');
  assert.match(r.stdout, /SmsGatewayAccount\s+u\s+primary\s+True\s+DeletionBlocked/, 'the account stays live, and its row says why');
  assert.match(r.stdout, /IdentityStore\s+u\s+a\s+True\s+SmsOffered/, 'the store keeps serving');
});

plan('keeps serving the last valid generation of a now-invalid object across runs', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'smsauth-plan-'));
  const status = join(dir, 'status.json');
  cpSync(join(ROOT, 'test/fixtures/reconcile/last-known-good/1.yaml'), join(dir, 'r.yaml'));
  await runCli(['plan', '--dir', dir, '--write-status', status]);
  cpSync(join(ROOT, 'test/fixtures/reconcile/last-known-good/2.yaml'), join(dir, 'r.yaml'));
  const r = await runCli(['plan', '--dir', dir, '--previous', status, '-o', 'json']);
  assert.is(r.code, 1);
  assert.match(r.stderr, /r\.yaml:\d+:\d+: error code-placeholder-missing/);
  const out = JSON.parse(r.stdout) as { objects: any[]; bundles: any[] };
  const store = out.objects.find((o) => o.name === 'corp').status;
  assert.equal([store.observedGeneration, store.liveGeneration], [2, 1]);
  assert.match(
    store.conditions[0].message,
    /generation 2 is invalid: .*r\.yaml:\d+:\d+: spec\.sms\.code\.length must be between 6 and 10; generation 1 stays live/,
  );
  assert.is(out.bundles[0].sms.texts.default, 'Version one: [Code]');
});

plan('a --previous that does not exist, other than the file it writes, is warned about: a typo would drop pinned defaults', async () => {
  const r = await runCli(['plan', '--dir', 'examples', '--previous', 'no/such/status.json', '--format', 'json']);
  assert.is(r.code, 0, r.stderr);
  assert.is(
    r.stderr.split('\n')[0],
    'smsauth plan: warning: --previous no/such/status.json does not exist: starting with no earlier status, so pinned default accounts and generations start afresh; check the path',
  );
  assert.ok(Array.isArray((JSON.parse(r.stdout) as { objects: unknown }).objects), '--format is --output by its other name');
});

plan("a static directory's numbers are printed masked, in the bundles and in the versions statuses copy", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'smsauth-plan-'));
  cpSync(join(ROOT, 'examples'), dir, { recursive: true });
  const status = join(dir, 'status.json');
  await runCli(['plan', '--dir', dir, '--write-status', status]);
  // A newer generation that names an account that does not exist: the one before is held, and its status copies its spec.
  const file = join(dir, 'identity', 'branch-office.yaml');
  writeFileSync(file, readFileSync(file, 'utf8').replace('gatewayAccountRef: { name: dev-console }', 'gatewayAccountRef: { name: dev-consol }'));
  for (const output of ['json', 'yaml']) {
    const r = await runCli(['plan', '--dir', dir, '--previous', status, '-o', output]);
    assert.match(r.stdout, 'liveVersion', 'a status copies the spec that serves');
    assert.match(r.stdout, '+1 ••••••••••');
    for (const whole of ['415 555 0142', '4155550142', '7700 900123', '7700900123']) assert.not.match(r.stdout, whole, `${output}: no whole number`);
  }
});

plan('usage and unreadable files exit 2', async () => {
  assert.is((await runCli(['plan'])).code, 2);
  assert.is((await runCli(['plan', '--dir', 'examples', '-o', 'xml'])).code, 2);
  assert.is(
    (await runCli(['plan', '--dir', 'examples', '--output', 'json', '--format', 'yaml'])).stderr,
    'smsauth plan: --output json and --format yaml are the same option; give one; see smsauth plan --help\n',
  );
  assert.is((await runCli(['plan', '--dir', 'no/such/dir'])).code, 2);
  const bad = join(mkdtempSync(join(tmpdir(), 'smsauth-plan-')), 'bad.json');
  writeFileSync(bad, '{"kind": "Something"}');
  const r = await runCli(['plan', '--dir', 'examples', '--previous', bad]);
  assert.is(r.code, 2);
  assert.match(r.stderr, 'not a status snapshot');
  // A --previous that is not JSON is said so, without quoting it (it might be anything, a secret too).
  const secretish = join(mkdtempSync(join(tmpdir(), 'smsauth-plan-')), 'token');
  writeFileSync(secretish, 's3cr3t-t0ken-value\n');
  const notJson = await runCli(['plan', '--dir', 'examples', '--previous', secretish]);
  assert.is(notJson.code, 2);
  assert.is(notJson.stderr, `smsauth plan: --previous ${secretish}: not JSON\n`);
  // A --write-status that is a folder: refused before planning, in one line.
  const refused = await runCli(['plan', '--dir', 'examples', '--write-status', 'examples']);
  assert.is(refused.code, 2);
  assert.is(refused.stderr, 'smsauth plan: --write-status examples is a folder; name a file to write; see smsauth plan --help\n');
  assert.is(refused.stdout, '', 'nothing planned');
});

plan.run();
