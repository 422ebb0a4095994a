import { mkdirSync, mkdtempSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { pino } from 'pino';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createGateway } from '../controller/gateways/create-gateway.ts';
import { GatewayPool } from '../controller/runtime/gateway-pool.ts';
import { LocalRun, type Report } from '../controller/runtime/local-run.ts';
import { BundleRegistry } from '../controller/verifier/bundle-registry.ts';
import { schemaValidator } from './helpers/fixtures.ts';
import { startPlivoServer, type FakePlivo } from './gateways/plivo-server.ts';
import { logScan } from './helpers/log-scan.ts';

/** The resources of both suites: a Plivo account, a store and the account's Secret, in namespace c. */
const ACCOUNT = `apiVersion: smsauth.io/v1alpha1
kind: SmsGatewayAccount
metadata: {name: plivo, namespace: c}
spec:
  provider: plivo
  default: true
  plivo:
    authId: {secretRef: {name: plivo, key: authId}}
    authToken: {secretRef: {name: plivo, key: authToken}}
    source: "+14155550100"
`;
const STORE = (text: string): string => `apiVersion: smsauth.io/v1alpha1
kind: IdentityStore
metadata: {name: corp, namespace: c}
spec: {type: ActiveDirectory, authenticationTypes: [SMS], sms: {textMessage: "${text}"}}
`;
const secret = (authId: string, authToken: string): string => `apiVersion: v1
kind: Secret
metadata: {name: plivo, namespace: c}
stringData: {authId: ${authId}, authToken: ${authToken}}
`;
const SECRET = secret('MAID', 'a-token');

const ready = (r: Report, name: string): string => {
  const e = [...r.state.statuses.values()].find((x) => x.ref.name === name)!;
  const c = e.status.conditions!.find((x) => x.type === 'Ready')!;
  return `${c.status} ${c.reason}`;
};

const checks = suite<{ plivo: FakePlivo; dir: string; run: LocalRun; registry: BundleRegistry }>('credential checks', {} as never);
checks.before.each(async (ctx) => {
  ctx.plivo = await startPlivoServer({ authId: 'MAGOOD', authToken: 'good-token' });
  const base = mkdtempSync(join(tmpdir(), 'smsauth-localrun-'));
  ctx.dir = join(base, 'config');
  mkdirSync(ctx.dir);
  // The account with Plivo's address and a credential check, the store, and a Secret with a wrong token.
  writeFileSync(
    join(ctx.dir, 'all.yaml'),
    `${ACCOUNT}    baseUrl: ${ctx.plivo.baseUrl}\n  credentialCheck: {interval: 1m}\n---\n${STORE('Code [Code]')}---\n${secret('MAGOOD', 'wrong-token')}`,
  );
  const log = pino({ level: 'debug' }, logScan.stream('local run'));
  ctx.registry = new BundleRegistry();
  ctx.run = new LocalRun(
    { dir: ctx.dir, snapshotPath: join(base, 'status.json'), allowEmpty: false, envSecrets: new Map() },
    { validator: await schemaValidator(), registry: ctx.registry, pool: new GatewayPool((gw, creds) => createGateway(gw, creds, { logger: log }), log), log },
  );
});
checks.after.each(async (ctx) => {
  await ctx.plivo.close();
});

checks('a refused check makes the account and its stores not ready; a fixed Secret is checked again at once and clears it', async (ctx) => {
  const first = await ctx.run.reload();
  assert.is(ready(first, 'plivo'), 'True Reconciled', 'the keys exist: nothing is known of the values yet');
  assert.is(ctx.registry.get('c', 'corp')!.bundle.sms.offered, true);

  const t0 = Date.parse('2026-05-01T00:00:00Z');
  const refused = await ctx.run.checkCredentialsDue(t0);
  assert.ok(refused !== undefined, 'a new verdict reloads');
  assert.is(ready(refused, 'plivo'), 'False CredentialsRejected');
  assert.match(
    JSON.stringify(refused.state.statuses.get('SmsGatewayAccount/c/plivo')),
    'the provider refused the credentials at 2026-05-01T00:00:00.000Z (AuthFailed)',
  );
  assert.is(ready(refused, 'corp'), 'False GatewayAccountNotReady');
  assert.is(ctx.registry.get('c', 'corp')!.bundle.sms.offered, false, 'the verifier stops offering SMS through it');
  assert.ok(
    ctx.plivo.requests.some((r) => r.url.startsWith('/v1/Account/MAGOOD/')),
    'the check asked Plivo, through the SDK',
  );

  assert.is(await ctx.run.checkCredentialsDue(t0 + 30_000), undefined, 'not again before the interval');

  const data = readFileSync(join(ctx.dir, 'all.yaml'), 'utf8').replace('wrong-token', 'good-token');
  writeFileSync(join(ctx.dir, 'all.yaml'), data);
  await ctx.run.reload();
  const fixed = await ctx.run.checkCredentialsDue(t0 + 31_000);
  assert.ok(fixed !== undefined);
  assert.is(ready(fixed, 'plivo'), 'True Reconciled');
  assert.is(ready(fixed, 'corp'), 'True SmsOffered');
  assert.not.match(JSON.stringify([...fixed.state.statuses.values()]), /good-token|wrong-token/);
});

checks('a transient failure of the check changes nothing', async (ctx) => {
  await ctx.run.reload();
  await ctx.plivo.close();
  assert.is(await ctx.run.checkCredentialsDue(Date.parse('2026-05-01T00:00:00Z')), undefined);
  assert.is(ctx.registry.get('c', 'corp')!.bundle.sms.offered, true);
  ctx.plivo = await startPlivoServer({ authId: 'MAGOOD', authToken: 'good-token' });
});

checks.run();

// ---- files that cannot be read ------------------------------------------------------------------

const unreadable = suite('files that cannot be read');

unreadable("a YAML syntax error takes nothing down: the file's objects and Secrets keep their last valid versions, also after a restart", async () => {
  const base = mkdtempSync(join(tmpdir(), 'smsauth-unreadable-'));
  const dir = join(base, 'config');
  const secretsDir = join(base, 'secrets');
  mkdirSync(dir);
  mkdirSync(secretsDir);
  writeFileSync(join(dir, 'account.yaml'), ACCOUNT);
  writeFileSync(join(dir, 'store.yaml'), STORE('One [Code]'));
  writeFileSync(join(secretsDir, 'plivo.yaml'), SECRET);
  const log = pino({ level: 'debug' }, logScan.stream('local run'));
  const open = async (registry: BundleRegistry): Promise<LocalRun> =>
    new LocalRun(
      { dir, secretsDir, snapshotPath: join(base, 'status.json'), allowEmpty: false, envSecrets: new Map() },
      { validator: await schemaValidator(), registry, pool: new GatewayPool((gw, creds) => createGateway(gw, creds, { logger: log }), log), log },
    );
  const registry = new BundleRegistry();
  const run = await open(registry);
  const served = (r: BundleRegistry): string | undefined =>
    r.get('c', 'corp')?.bundle.sms.offered === true ? r.get('c', 'corp')!.bundle.sms.texts.default : undefined;
  assert.is(ready(await run.reload(), 'corp'), 'True SmsOffered');
  assert.is(served(registry), 'One [Code]');

  writeFileSync(join(dir, 'store.yaml'), `${STORE('Two [Code]')}  broken: [\n`);
  let r = await run.reload();
  assert.match(ready(r, 'corp'), /^False InvalidSpec/);
  assert.match(
    [...r.state.statuses.values()].find((x) => x.ref.name === 'corp')!.status.conditions![0]!.message,
    /store\.yaml:\d+:\d+: .*could not be read.*generation 1 stays live/,
  );
  assert.is(served(registry), 'One [Code]', 'the store keeps serving its last valid version');

  writeFileSync(join(secretsDir, 'plivo.yaml'), `${SECRET}  : : bad\n`);
  r = await run.reload();
  assert.is(ready(r, 'plivo'), 'True Reconciled', "the account keeps its Secret's keys");
  assert.is(served(registry), 'One [Code]');

  // A restart while the store's file is still broken: the saved state keeps serving. (Secret
  // values are never saved, so a Secret's file must be readable when a process starts.)
  writeFileSync(join(secretsDir, 'plivo.yaml'), SECRET);
  const again = new BundleRegistry();
  const restarted = await open(again);
  r = await restarted.reload();
  assert.is(served(again), 'One [Code]', 'after a restart too');
  assert.match(ready(r, 'corp'), /^False InvalidSpec/);

  // Fixed: the new version serves.
  writeFileSync(join(dir, 'store.yaml'), STORE('Three [Code]'));
  assert.is(ready(await restarted.reload(), 'corp'), 'True SmsOffered');
  assert.is(served(again), 'Three [Code]');

  // A secrets folder that is gone is refused, as a missing --dir is.
  renameSync(secretsDir, `${secretsDir}.away`);
  r = await restarted.reload();
  assert.match(r.refused ?? '', /cannot be read; the last configuration stays live/);
  assert.is(served(again), 'Three [Code]');
});

/**
 * folderRun writes a config folder (the files given, by path) and opens smsauth run's loop on it;
 * each open is a process start on the same folder and saved state (a second one is a restart).
 */
async function folderRun(
  prefix: string,
  files: Record<string, string>,
  maxFileBytes?: number,
): Promise<{ dir: string; open: (registry: BundleRegistry) => Promise<LocalRun>; served: (registry: BundleRegistry) => string | undefined }> {
  const base = mkdtempSync(join(tmpdir(), prefix));
  const dir = join(base, 'config');
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  const log = pino({ level: 'debug' }, logScan.stream('local run'));
  const validator = await schemaValidator();
  return {
    dir,
    open: (registry) =>
      Promise.resolve(
        new LocalRun(
          { dir, snapshotPath: join(base, 'status.json'), allowEmpty: false, envSecrets: new Map(), ...(maxFileBytes !== undefined ? { maxFileBytes } : {}) },
          { validator, registry, pool: new GatewayPool((gw, creds) => createGateway(gw, creds, { logger: log }), log), log },
        ),
      ),
    served: (registry) => (registry.get('c', 'corp')?.bundle.sms.offered === true ? registry.get('c', 'corp')!.bundle.sms.texts.default : undefined),
  };
}

const corpMessage = (r: Report): string => [...r.state.statuses.values()].find((x) => x.ref.name === 'corp')!.status.conditions![0]!.message;

unreadable('an emptied file and one grown past the size limit take nothing down; deleting the file deletes its objects', async () => {
  const { dir, open, served } = await folderRun('smsauth-emptied-', { 'account.yaml': `${ACCOUNT}---\n${SECRET}`, 'store.yaml': STORE('One [Code]') }, 4096);
  const registry = new BundleRegistry();
  const run = await open(registry);
  assert.is(ready(await run.reload(), 'corp'), 'True SmsOffered');

  // As a shell's `>` leaves it while the new content is on its way.
  writeFileSync(join(dir, 'store.yaml'), '');
  let r = await run.reload();
  assert.is(served(registry), 'One [Code]', 'an empty file takes nothing down');
  assert.ok(r.diagnostics.some((d) => d.code === 'file-empty' && d.file?.endsWith('store.yaml') === true && d.severity === 'warning'));
  assert.match(corpMessage(r), /store\.yaml:1:1: the file is empty .*delete the file to delete its objects/);

  writeFileSync(join(dir, 'store.yaml'), `${STORE('Two [Code]')}# ${'x'.repeat(5000)}\n`);
  r = await run.reload();
  assert.is(served(registry), 'One [Code]', 'nor does a file over the size limit, which is not read');
  assert.ok(r.diagnostics.some((d) => d.code === 'file-too-large' && d.file?.endsWith('store.yaml') === true));
  assert.match(corpMessage(r), /store\.yaml:1:1: .*over the limit of 4096.*what it declared before stays/);

  writeFileSync(join(dir, 'store.yaml'), STORE('Three [Code]'));
  assert.is(ready(await run.reload(), 'corp'), 'True SmsOffered');
  assert.is(served(registry), 'Three [Code]');

  unlinkSync(join(dir, 'store.yaml'));
  r = await run.reload();
  assert.is(registry.get('c', 'corp'), undefined, 'a deleted file deletes its objects');
  assert.ok(![...r.state.statuses.values()].some((x) => x.ref.name === 'corp'));
});

unreadable("a store's account misspelled keeps its last version serving, also after a restart, until the name is right", async () => {
  const linked = (account: string, text: string): string => STORE(text).replace('sms: {', `sms: {gatewayAccountRef: {name: ${account}}, `);
  const { dir, open, served } = await folderRun('smsauth-typo-', { 'account.yaml': `${ACCOUNT}---\n${SECRET}`, 'store.yaml': linked('plivo', 'One [Code]') });
  const registry = new BundleRegistry();
  const run = await open(registry);
  assert.is(ready(await run.reload(), 'corp'), 'True SmsOffered');

  writeFileSync(join(dir, 'store.yaml'), linked('plivoo', 'Two [Code]'));
  assert.is(ready(await run.reload(), 'corp'), 'False GatewayAccountNotFound');
  assert.is(served(registry), 'One [Code]', 'the version that served keeps serving');

  const again = new BundleRegistry();
  const restarted = await open(again);
  assert.is(ready(await restarted.reload(), 'corp'), 'False GatewayAccountNotFound');
  assert.is(served(again), 'One [Code]', 'after a restart too');

  writeFileSync(join(dir, 'store.yaml'), linked('plivo', 'Two [Code]'));
  assert.is(ready(await restarted.reload(), 'corp'), 'True SmsOffered');
  assert.is(served(again), 'Two [Code]');
});

unreadable('a reference to an object of a file that cannot be read is no error of the referring file: it resolves to the version kept', async () => {
  const role = `apiVersion: smsauth.io/v1alpha1
kind: SecurityRole
metadata: {name: staff, namespace: c}
spec:
  identityStoreRef: {name: corp}
  priority: 1
  enabled: true
  members: {groups: ["CN=Staff,DC=c"]}
  authenticationPolicy: {enforced: [SMS], chosenByEndUser: 0, secondFactor: false}
`;
  const { dir, open } = await folderRun('smsauth-kept-reference-', {
    'account.yaml': `${ACCOUNT}---\n${SECRET}`,
    'store.yaml': STORE('One [Code]'),
    'role.yaml': role,
  });
  const run = await open(new BundleRegistry());
  assert.is(ready(await run.reload(), 'staff'), 'True Reconciled');
  writeFileSync(join(dir, 'store.yaml'), `${STORE('Two [Code]')}  broken: [\n`);
  const r = await run.reload();
  const errors = r.diagnostics.filter((d) => d.severity === 'error');
  assert.equal([...new Set(errors.map((d) => `${basename(d.file ?? '')} ${d.code}`))], ['store.yaml yaml-syntax'], "the errors are the broken file's alone");
  const note = r.diagnostics.find((d) => basename(d.file ?? '') === 'role.yaml')!;
  assert.equal([note.severity, note.code], ['info', 'reference-invalid']);
  assert.match(note.message, 'IdentityStore corp is declared in a file that cannot be read now; its last valid version serves');
  assert.is(ready(r, 'staff'), 'True Reconciled', 'the role stays applied');
});

unreadable('an empty placeholder file does not keep objects deleted while the process was stopped', async () => {
  const { dir, open } = await folderRun('smsauth-placeholder-', { 'account.yaml': `${ACCOUNT}---\n${SECRET}`, 'store.yaml': STORE('One [Code]') });
  assert.is(ready(await (await open(new BundleRegistry())).reload(), 'corp'), 'True SmsOffered');
  // Stopped; meanwhile the store's file is deleted and an empty file added.
  unlinkSync(join(dir, 'store.yaml'));
  writeFileSync(join(dir, 'placeholder.yaml'), '\n');
  const registry = new BundleRegistry();
  const r = await (await open(registry)).reload();
  assert.is(registry.get('c', 'corp'), undefined, 'the deleted store is gone');
  assert.ok(![...r.state.statuses.values()].some((x) => x.ref.name === 'corp'));
});

unreadable('a second copy of an object, in a file that sorts first, leaves the version that served serving until one copy goes', async () => {
  const { dir, open, served } = await folderRun('smsauth-duplicate-', {
    'identity/account.yaml': `${ACCOUNT}---\n${SECRET}`,
    'identity/store.yaml': STORE('One [Code]'),
  });
  const registry = new BundleRegistry();
  const run = await open(registry);
  assert.is(ready(await run.reload(), 'corp'), 'True SmsOffered');

  writeFileSync(join(dir, 'a.yaml'), STORE('Two [Code]'));
  const r = await run.reload();
  assert.is(served(registry), 'One [Code]', 'neither copy replaces what serves');
  assert.match(ready(r, 'corp'), /^False InvalidSpec/);
  assert.match(corpMessage(r), 'is already defined at');

  unlinkSync(join(dir, 'identity', 'store.yaml'));
  assert.is(ready(await run.reload(), 'corp'), 'True SmsOffered');
  assert.is(served(registry), 'Two [Code]', 'one copy left: it serves');
});

unreadable.run();

const suspended = suite('spec.suspend');

suspended(
  'a suspended store keeps serving the version that served, after a restart too; resumed, the file applies; created suspended, it is not served',
  async () => {
    const base = mkdtempSync(join(tmpdir(), 'smsauth-suspend-'));
    const dir = join(base, 'config');
    mkdirSync(dir);
    writeFileSync(join(dir, 'account.yaml'), `${ACCOUNT}---\n${SECRET}`);
    writeFileSync(join(dir, 'store.yaml'), STORE('One [Code]'));
    const log = pino({ level: 'debug' }, logScan.stream('local run'));
    const open = async (registry: BundleRegistry): Promise<LocalRun> =>
      new LocalRun(
        { dir, snapshotPath: join(base, 'status.json'), allowEmpty: false, envSecrets: new Map() },
        { validator: await schemaValidator(), registry, pool: new GatewayPool((gw, creds) => createGateway(gw, creds, { logger: log }), log), log },
      );
    const served = (r: BundleRegistry): string | undefined => r.get('c', 'corp')?.bundle.sms.texts.default;
    const suspendedStore = (text: string): string => STORE(text).replace('spec: {', 'spec: {suspend: true, ');
    const registry = new BundleRegistry();
    const run = await open(registry);
    await run.reload();
    assert.is(served(registry), 'One [Code]');

    writeFileSync(join(dir, 'store.yaml'), suspendedStore('Two [Code]'));
    assert.is(ready(await run.reload(), 'corp'), 'True SmsOffered');
    assert.is(served(registry), 'One [Code]', 'the edit waits');

    const again = new BundleRegistry();
    await (await open(again)).reload();
    assert.is(served(again), 'One [Code]', 'after a restart too');

    writeFileSync(join(dir, 'store.yaml'), STORE('Two [Code]'));
    const resumed = await open(again);
    await resumed.reload();
    assert.is(served(again), 'Two [Code]');

    writeFileSync(join(dir, 'store.yaml'), `${STORE('Two [Code]')}---\n${suspendedStore('Three [Code]').replace('name: corp', 'name: later')}`);
    const r = await resumed.reload();
    assert.is(again.get('c', 'later'), undefined, 'created suspended: not served');
    assert.not.ok([...r.state.statuses.values()].some((x) => x.ref.name === 'later'));
  },
);

suspended.run();

const adapters = suite('gateway adapters');

adapters('an account no store uses any more has its adapter let go', async () => {
  const base = mkdtempSync(join(tmpdir(), 'smsauth-adapters-'));
  const dir = join(base, 'config');
  mkdirSync(dir);
  const log = pino({ level: 'debug' }, logScan.stream('local run'));
  const built: string[] = [];
  const pool = new GatewayPool((gw, creds) => {
    built.push(gw.name);
    return createGateway(gw, creds, { logger: log });
  }, log);
  const run = new LocalRun(
    { dir, snapshotPath: join(base, 'status.json'), allowEmpty: true, envSecrets: new Map() },
    { validator: await schemaValidator(), registry: new BundleRegistry(), pool, log },
  );
  const linked = (account: string): string => STORE('One [Code]').replace('sms: {', `sms: {gatewayAccountRef: {name: ${account}}, `);
  writeFileSync(
    join(dir, 'accounts.yaml'),
    `${ACCOUNT}---\n${ACCOUNT.replace('name: plivo,', 'name: backup,').replace('default: true', 'default: false')}---\n${SECRET}`,
  );
  writeFileSync(join(dir, 'store.yaml'), linked('plivo'));
  assert.is(ready(await run.reload(), 'corp'), 'True SmsOffered');
  assert.is(pool.size, 1, 'the account the store uses');
  writeFileSync(join(dir, 'store.yaml'), linked('backup'));
  assert.is(ready(await run.reload(), 'corp'), 'True SmsOffered');
  assert.ok(built.includes('backup'));
  assert.is(pool.size, 1, 'plivo, which no store uses any more, is let go');
  unlinkSync(join(dir, 'store.yaml'));
  await run.reload();
  assert.is(pool.size, 0, 'no store, no adapter');
});

adapters.run();
