import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { BREAK_TEMPLATE, kubectl, mergePatch } from './helpers/kubectl.ts';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readSchemaSet } from '../controller/adapters/files.ts';
import { connectCluster, loadKubeConfig } from '../controller/adapters/kubernetes.ts';
import { FINALIZER, SmsauthController } from '../controller/kube/controller.ts';
import { createSchemaValidator } from '../controller/validate/schema-validator.ts';
import { createGateway } from '../controller/gateways/create-gateway.ts';
import { GatewayPool } from '../controller/runtime/gateway-pool.ts';
import { startPlivoServer } from './gateways/plivo-server.ts';
import { ROOT } from './helpers/fixtures.ts';
import { logScan } from './helpers/log-scan.ts';
import { waitUntil } from './helpers/wait.ts';
import { startApiServer, type ApiServer } from './kube/api-server.ts';

// The controller in this process (the e2e suite runs it as a command), for what happens across its restarts.

/** The cluster of the running test: its writes are the events `until` waits on. */
let cluster: ApiServer | undefined;

function until<T>(what: string, fn: () => T | undefined | false, ms = 20_000): Promise<T> {
  return waitUntil(what, fn, () => cluster!.changed(), ms);
}

async function startController(kubeconfig: string, registry = new Registry(), gateways?: GatewayPool): Promise<SmsauthController> {
  const log = pino({ level: 'info' }, logScan.stream('controller'));
  const validator = createSchemaValidator(await readSchemaSet(join(ROOT, 'schemas')));
  const c = new SmsauthController(connectCluster(loadKubeConfig(kubeconfig), { requestTimeoutMs: 5000 }), {
    identity: 'test',
    log,
    registry,
    validator,
    workers: 2,
    ...(gateways !== undefined ? { gateways } : {}),
  });
  await c.watch();
  c.run();
  return c;
}

/** clusterWithExamples starts the in-process API server with the CRDs and examples/ applied by kubectl. */
async function clusterWithExamples(): Promise<{ server: ApiServer; kubeconfig: string }> {
  const server = await startApiServer({ namespaces: ['identity', 'helpdesk'] });
  cluster = server;
  const kubeconfig = join(mkdtempSync(join(tmpdir(), 'smsauth-restart-')), 'kubeconfig');
  await server.writeKubeconfig(kubeconfig);
  await kubectl(kubeconfig, 'apply', '-f', 'charts/smsauth/files/crds/');
  await kubectl(kubeconfig, 'apply', '-R', '-f', 'examples/', '--validate=false');
  return { server, kubeconfig };
}

const account = (server: ApiServer, name: string): any =>
  server.get({ apiVersion: 'smsauth.io/v1alpha1', kind: 'SmsGatewayAccount', namespace: 'identity', name });
const ready = (server: ApiServer, name: string): string | undefined => {
  const c = (server.get({ apiVersion: 'smsauth.io/v1alpha1', kind: 'IdentityStore', namespace: 'identity', name }) as any)?.status?.conditions?.find(
    (x: any) => x.type === 'Ready',
  );
  return c === undefined ? undefined : `${c.status} ${c.reason}`;
};

/** corpAdBundle reads the published bundle of the examples' store corp-ad: its generation, whether it offers SMS, the accounts it sends through. */
function corpAdBundle(server: ApiServer): { generation: number; offered: boolean; gateways: string[] } | undefined {
  const data = (
    server.get({ apiVersion: 'v1', kind: 'Secret', namespace: 'identity', name: 'smsauth-bundle' }) as { data?: Record<string, string> } | undefined
  )?.data?.['corp-ad.json'];
  if (data === undefined) return undefined;
  const { bundle } = JSON.parse(Buffer.from(data, 'base64').toString('utf8')) as {
    bundle: { generation: number; sms: { offered: boolean; gateways: { name: string }[] } };
  };
  return { generation: bundle.generation, offered: bundle.sms.offered, gateways: bundle.sms.gateways.map((g) => g.name) };
}

/** corpAd is the examples' store corp-ad as the cluster has it. */
const corpAd = (server: ApiServer): any => server.get({ apiVersion: 'smsauth.io/v1alpha1', kind: 'IdentityStore', namespace: 'identity', name: 'corp-ad' });

/** createAccount creates a console account in the identity namespace. */
async function createAccount(kubeconfig: string, name: string): Promise<void> {
  const file = join(mkdtempSync(join(tmpdir(), 'smsauth-account-')), 'account.yaml');
  writeFileSync(
    file,
    JSON.stringify({
      apiVersion: 'smsauth.io/v1alpha1',
      kind: 'SmsGatewayAccount',
      metadata: { name, namespace: 'identity' },
      spec: { provider: 'console', console: {} },
    }),
  );
  await kubectl(kubeconfig, 'apply', '-f', file);
}

/** corpAdOnItsOwnAccount links corp-ad to an account of its own (corp-sms), so that nothing else holds that account. */
async function corpAdOnItsOwnAccount(kubeconfig: string): Promise<void> {
  await createAccount(kubeconfig, 'corp-sms');
  await kubectl(kubeconfig, ...mergePatch('idstore', 'corp-ad', 'identity', { spec: { sms: { gatewayAccountRef: { name: 'corp-sms' } } } }));
}

const restart = suite('controller restarts');

restart('an account whose deletion the finalizer holds stays held across a restart, and its store keeps sending', async () => {
  const { server, kubeconfig } = await clusterWithExamples();
  let c = await startController(kubeconfig);
  try {
    await until('corp-ad ready', () => ready(server, 'corp-ad') === 'True SmsOffered');
    await until('the finalizer', () => account(server, 'dev-console')?.metadata?.finalizers?.includes(FINALIZER));
    await kubectl(kubeconfig, 'delete', 'smsgw', 'dev-console', '-n', 'identity', '--wait=false');
    await until(
      'DeletionBlocked',
      () => account(server, 'dev-console')?.status?.conditions?.find((x: any) => x.type === 'InUse')?.reason === 'DeletionBlocked',
    );
    await c.stop(2000);

    c = await startController(kubeconfig);
    // The restarted controller's first full reconcile is over: whatever it would change, it has.
    await c.idle();
    const held = account(server, 'dev-console');
    assert.ok(held !== undefined, 'the account was not deleted');
    assert.equal(held.metadata.finalizers, [FINALIZER]);
    assert.is(held.status.conditions.find((x: any) => x.type === 'InUse').reason, 'DeletionBlocked');
    assert.is(ready(server, 'corp-ad'), 'True SmsOffered');
  } finally {
    await c.stop(2000);
    await server.close();
  }
});

restart(
  'a template or an account invalid since a restart takes nothing down: the published bundle keeps SMS, the linked account keeps its finalizer',
  async () => {
    const { server, kubeconfig } = await clusterWithExamples();
    const offered = (): boolean | undefined => {
      const data = (
        server.get({ apiVersion: 'v1', kind: 'Secret', namespace: 'identity', name: 'smsauth-bundle' }) as { data?: Record<string, string> } | undefined
      )?.data?.['corp-ad.json'];
      return data === undefined
        ? undefined
        : (JSON.parse(Buffer.from(data, 'base64').toString('utf8')) as { bundle: { sms: { offered: boolean } } }).bundle.sms.offered;
    };
    let c = await startController(kubeconfig);
    try {
      await until('corp-ad ready', () => ready(server, 'corp-ad') === 'True SmsOffered');
      await until('the finalizer', () => account(server, 'dev-console')?.metadata?.finalizers?.includes(FINALIZER));
      // Both broken while the controller runs: their last valid versions keep serving.
      await kubectl(kubeconfig, ...BREAK_TEMPLATE);
      await kubectl(kubeconfig, ...mergePatch('smsgw', 'dev-console', 'identity', { spec: { fallbackGatewayAccountRef: { name: 'plivo' } } }));
      // A cycle through two accounts: CEL refuses an account that falls back on itself at admission.
      await kubectl(kubeconfig, ...mergePatch('smsgw', 'plivo', 'identity', { spec: { fallbackGatewayAccountRef: { name: 'dev-console' } } }));
      await until(
        'the account invalid',
        () => account(server, 'dev-console')?.status?.conditions?.find((x: any) => x.type === 'Ready')?.reason === 'FallbackCycle',
      );
      assert.is(offered(), true);
      await c.stop(2000);

      c = await startController(kubeconfig);
      await c.idle();
      assert.is(offered(), true, 'the published bundle still offers SMS');
      assert.equal(account(server, 'dev-console').metadata.finalizers, [FINALIZER], 'the linked account keeps its finalizer');
      // A Secret rotated meanwhile reaches the kept bundle: it goes out with the values of now,
      // never with those it was published with.
      const kept = (): { bundle: { sms: { offered: boolean } }; credentials: Record<string, Record<string, string>> } =>
        JSON.parse(
          Buffer.from(
            (server.get({ apiVersion: 'v1', kind: 'Secret', namespace: 'identity', name: 'smsauth-bundle' }) as { data: Record<string, string> }).data[
              'corp-ad.json'
            ]!,
            'base64',
          ).toString('utf8'),
        );
      assert.ok(kept().credentials.plivo?.authToken !== undefined, "the kept bundle carries the fallback account's token");
      const rotated = `rotated-${randomBytes(8).toString('hex')}`;
      await kubectl(kubeconfig, ...mergePatch('secret', 'plivo-credentials', 'identity', { data: { authToken: Buffer.from(rotated).toString('base64') } }));
      await until('the rotated token in the kept bundle', () => kept().credentials.plivo?.authToken === rotated);
      assert.is(kept().bundle.sms.offered, true, 'still the kept bundle');
      // The store's own change for the worse is published, whatever else is invalid.
      await kubectl(kubeconfig, ...mergePatch('idstore', 'corp-ad', 'identity', { spec: { authenticationTypes: ['Email'] } }));
      await until('the store to stop offering SMS', () => offered() === false);
    } finally {
      await c.stop(2000);
      await server.close();
    }
  },
);

restart(
  'a store whose account is misspelled keeps the generation that served, across a restart too: its bundle, its status, the finalizer on its account; until the name is right',
  async () => {
    const { server, kubeconfig } = await clusterWithExamples();
    const published = (): ReturnType<typeof corpAdBundle> => corpAdBundle(server);
    const store = (): any => corpAd(server);
    const readyMessage = (): string => store().status.conditions.find((x: any) => x.type === 'Ready').message;
    await corpAdOnItsOwnAccount(kubeconfig);
    let c = await startController(kubeconfig);
    try {
      await until('corp-ad ready', () => ready(server, 'corp-ad') === 'True SmsOffered');
      await until('the finalizer', () => account(server, 'corp-sms')?.metadata?.finalizers?.includes(FINALIZER));
      const served = await until('the bundle published', () => (published()?.offered === true ? published() : undefined));
      await kubectl(kubeconfig, ...mergePatch('idstore', 'corp-ad', 'identity', { spec: { sms: { gatewayAccountRef: { name: 'corp-sm' } } } }));
      await until('the typo reported', () => ready(server, 'corp-ad') === 'False GatewayAccountNotFound');
      await c.idle();
      assert.equal(published(), served, 'the generation that served stays published');
      const held = { generation: served.generation, gatewayAccountRef: 'corp-sms' };
      assert.equal({ generation: store().status.liveVersion.generation, gatewayAccountRef: store().status.liveVersion.spec.sms.gatewayAccountRef.name }, held);
      assert.match(readyMessage(), `generation ${served.generation} stays live`);
      await c.stop(2000);

      c = await startController(kubeconfig);
      await c.idle();
      assert.is(ready(server, 'corp-ad'), 'False GatewayAccountNotFound');
      assert.equal(published(), served, 'after a restart too');
      assert.match(readyMessage(), `generation ${served.generation} stays live`, 'the status still says what serves');
      assert.equal(store().status.liveGeneration, served.generation);
      // The account the kept generation sends through is still held by its finalizer for this store.
      await kubectl(kubeconfig, 'delete', 'smsgw', 'corp-sms', '-n', 'identity', '--wait=false');
      await until('DeletionBlocked', () => account(server, 'corp-sms')?.status?.conditions?.find((x: any) => x.type === 'InUse')?.reason === 'DeletionBlocked');
      await c.idle();
      assert.equal(account(server, 'corp-sms').metadata.finalizers, [FINALIZER]);
      assert.equal(published(), served, 'the account being deleted still serves the kept generation');

      await kubectl(kubeconfig, ...mergePatch('idstore', 'corp-ad', 'identity', { spec: { sms: { gatewayAccountRef: { name: 'dev-console' } } } }));
      await until('the name right', () => ready(server, 'corp-ad') === 'True SmsOffered');
      await until('the newest generation published', () => (published()?.generation ?? 0) > served.generation && published()?.offered === true);
      assert.is(store().status.liveVersion, undefined, 'the newest serves: nothing held is recorded');
      await until('the account released and deleted', () => account(server, 'corp-sms') === undefined);
    } finally {
      await c.stop(2000);
      await server.close();
    }
  },
);

restart('a store invalid since a restart is served by the generation its status records: its bundle, its account held by the finalizer', async () => {
  const { server, kubeconfig } = await clusterWithExamples();
  const publishedGeneration = (): number | undefined => corpAdBundle(server)?.generation;
  const store = (): any => corpAd(server);
  await corpAdOnItsOwnAccount(kubeconfig);
  let c = await startController(kubeconfig);
  try {
    await until('corp-ad ready', () => ready(server, 'corp-ad') === 'True SmsOffered');
    await until('the finalizer', () => account(server, 'corp-sms')?.metadata?.finalizers?.includes(FINALIZER));
    const served = store().metadata.generation as number;
    await until('the bundle published', () => publishedGeneration() === served);
    // Admitted by the CRD (two capital letters), refused by smsauth: no such country.
    await kubectl(kubeconfig, ...mergePatch('idstore', 'corp-ad', 'identity', { spec: { sms: { allowedCountries: ['XX'] } } }));
    await until('the invalid generation reported', () => store().status.observedGeneration === served + 1 && ready(server, 'corp-ad')?.startsWith('False'));
    const invalid = ready(server, 'corp-ad');
    assert.is(store().status.liveVersion.generation, served);
    await c.stop(2000);

    c = await startController(kubeconfig);
    await c.idle();
    assert.is(ready(server, 'corp-ad'), invalid);
    assert.equal([store().status.observedGeneration, store().status.liveGeneration, store().status.liveVersion.generation], [served + 1, served, served]);
    assert.is(publishedGeneration(), served);
    await kubectl(kubeconfig, 'delete', 'smsgw', 'corp-sms', '-n', 'identity', '--wait=false');
    await until('DeletionBlocked', () => account(server, 'corp-sms')?.status?.conditions?.find((x: any) => x.type === 'InUse')?.reason === 'DeletionBlocked');
    await c.idle();
    assert.equal(account(server, 'corp-sms').metadata.finalizers, [FINALIZER], 'the account of the generation that serves stays held');
    assert.is(publishedGeneration(), served);
  } finally {
    await c.stop(2000);
    await server.close();
  }
});

restart(
  'a store suspended while held keeps the generation that served across a restart; a status older than what was published since is not believed',
  async () => {
    const { server, kubeconfig } = await clusterWithExamples();
    const published = (): ReturnType<typeof corpAdBundle> => corpAdBundle(server);
    const store = (): any => corpAd(server);
    await corpAdOnItsOwnAccount(kubeconfig);
    let c = await startController(kubeconfig);
    try {
      await until('corp-ad ready', () => ready(server, 'corp-ad') === 'True SmsOffered');
      const served = await until('the bundle published', () => (published()?.gateways[0] === 'corp-sms' ? published() : undefined));
      await kubectl(kubeconfig, ...mergePatch('idstore', 'corp-ad', 'identity', { spec: { sms: { gatewayAccountRef: { name: 'corp-sm' } } } }));
      await until('the typo reported', () => ready(server, 'corp-ad') === 'False GatewayAccountNotFound');
      await c.idle();
      // Suspended while held: status.suspended records the newest generation, the broken one.
      await kubectl(kubeconfig, ...mergePatch('idstore', 'corp-ad', 'identity', { spec: { suspend: true } }));
      await until('the suspension recorded', () => store().status.suspended?.generation === served.generation + 1);
      await c.idle();
      await c.stop(2000);

      c = await startController(kubeconfig);
      await c.idle();
      assert.equal(published(), served, 'the generation that served still serves');
      assert.equal(account(server, 'corp-sms').metadata.finalizers, [FINALIZER], 'and its account stays held');
      assert.equal(account(server, 'corp-sms').status.linkedIdentityStores, ['corp-ad']);

      // The missing account appears while the store is suspended: the suspended generation serves,
      // and the store's status (left alone while suspended) still records the one before.
      await createAccount(kubeconfig, 'corp-sm');
      await until('the suspended generation published', () => published()?.gateways[0] === 'corp-sm');
      await c.idle();
      const since = published()!;
      assert.is(store().status.liveVersion.generation, served.generation, 'the status is behind what was published');
      await c.stop(2000);
      await kubectl(kubeconfig, ...mergePatch('idstore', 'corp-ad', 'identity', { spec: { suspend: false, sms: { gatewayAccountRef: { name: 'nope' } } } }));

      c = await startController(kubeconfig);
      await c.idle();
      assert.is(ready(server, 'corp-ad'), 'False GatewayAccountNotFound');
      assert.equal(published(), since, 'what was published last keeps serving, not the older generation the status recorded');
    } finally {
      await c.stop(2000);
      await server.close();
    }
  },
);

restart.run();

const suspend = suite('spec.suspend');

suspend('a suspended object keeps serving what was last applied, across a restart, and its status alone; resumed, its edit applies', async () => {
  const { server, kubeconfig } = await clusterWithExamples();
  const store = (): any => server.get({ apiVersion: 'smsauth.io/v1alpha1', kind: 'IdentityStore', namespace: 'identity', name: 'partners-entra' });
  const published = (store = 'partners-entra'): string | undefined => {
    const data = (server.get({ apiVersion: 'v1', kind: 'Secret', namespace: 'identity', name: 'smsauth-bundle' }) as any)?.data?.[`${store}.json`];
    return data === undefined ? undefined : Buffer.from(data, 'base64').toString('utf8');
  };
  let c = await startController(kubeconfig);
  try {
    await until('partners-entra ready', () => ready(server, 'partners-entra') === 'True SmsOffered' && published()?.includes('Contoso partner portal'));
    const before = store();
    const accountBefore = account(server, 'plivo');
    const gen = before.metadata.generation as number;
    // Suspended with an edit, the store and the account it links: nothing of either edit applies.
    await kubectl(kubeconfig, ...mergePatch('idstore', 'partners-entra', 'identity', { spec: { suspend: true, sms: { textMessage: 'Held: [Code]' } } }));
    await kubectl(kubeconfig, ...mergePatch('smsgw', 'plivo', 'identity', { spec: { suspend: true, sendRateLimit: { messagesPerSecond: 1 } } }));
    // And a template that a store which is not suspended (corp-ad) uses.
    await kubectl(kubeconfig, ...mergePatch('smstpl', 'sign-in-code', 'identity', { spec: { suspend: true, text: 'Held template: [Code]' } }));
    const template = (): any => server.get({ apiVersion: 'smsauth.io/v1alpha1', kind: 'SmsTemplate', namespace: 'identity', name: 'sign-in-code' });
    await until(
      'the versions held recorded',
      () =>
        store()?.status?.suspended?.generation === gen &&
        account(server, 'plivo')?.status?.suspended !== undefined &&
        template()?.status?.suspended !== undefined,
    );
    await c.idle();
    assert.match(published()!, 'Contoso partner portal');
    assert.not.match(published()!, 'Held:');
    assert.is(store().status.observedGeneration, before.status.observedGeneration, 'its status is left alone');
    assert.equal(store().status.conditions, before.status.conditions);
    assert.equal(store().status.suspended.spec.sms.textMessage, before.spec.sms.textMessage);
    assert.equal(account(server, 'plivo').status.suspended.spec.sendRateLimit, accountBefore.spec.sendRateLimit);
    assert.is.not(accountBefore.spec.sendRateLimit.messagesPerSecond, 1);
    const listed = await kubectl(kubeconfig, 'get', 'idstore', 'partners-entra', '-n', 'identity');
    assert.match(listed, /SUSPENDED[\s\S]*partners-entra\s+\S+\s+True\s+SmsOffered\s+False\s+true/);
    await c.stop(2000);

    // A new controller has nothing in memory: it serves the versions recorded, so that corp-ad,
    // which is not suspended, still finds its template, as it was.
    c = await startController(kubeconfig);
    await c.idle();
    assert.is(ready(server, 'corp-ad'), 'True SmsOffered');
    assert.match(published('corp-ad')!, 'Contoso verification code');
    assert.not.match(published('corp-ad')!, 'Held template');
    assert.match(published()!, 'Contoso partner portal');
    assert.is(ready(server, 'partners-entra'), 'True SmsOffered');
    assert.is(store().status.observedGeneration, before.status.observedGeneration);

    // Resumed: the edit made while suspended applies, and the record goes.
    await kubectl(kubeconfig, ...mergePatch('idstore', 'partners-entra', 'identity', { spec: { suspend: false } }));
    await until('the held edit published', () => published()?.includes('Held:'));
    await until('the record gone', () => store().status.suspended === undefined && store().status.observedGeneration === store().metadata.generation);

    // Created suspended: never applied, no status; deleted while suspended: the deletion is not held.
    const fresh = join(mkdtempSync(join(tmpdir(), 'smsauth-suspend-')), 'template.json');
    writeFileSync(
      fresh,
      JSON.stringify({
        apiVersion: 'smsauth.io/v1alpha1',
        kind: 'SmsTemplate',
        metadata: { name: 'later', namespace: 'identity' },
        spec: { suspend: true, text: 'Later: [Code]' },
      }),
    );
    await kubectl(kubeconfig, 'apply', '-f', fresh);
    await kubectl(kubeconfig, 'delete', 'idstore', 'partners-entra', '-n', 'identity');
    await kubectl(kubeconfig, ...mergePatch('idstore', 'corp-ad', 'identity', { spec: { suspend: true } }));
    await until('the deleted store unpublished', () => published() === undefined);
    await c.idle();
    const later = server.get({ apiVersion: 'smsauth.io/v1alpha1', kind: 'SmsTemplate', namespace: 'identity', name: 'later' }) as any;
    assert.is(later.status, undefined, 'created suspended: not reconciled');
  } finally {
    await c.stop(2000);
    await server.close();
  }
});

suspend.run();

const secrets = suite('least-privilege Secrets');

const condition = (server: ApiServer, name: string, type: string): { status: string; reason: string; message: string } | undefined =>
  account(server, name)?.status?.conditions?.find((x: any) => x.type === type);

secrets(
  'the controller lists and watches only the labelled credential Secrets and its own: 400 unrelated 48 KiB Secrets never reach it, nor reconcile',
  async () => {
    const { server, kubeconfig } = await clusterWithExamples();
    const registry = new Registry();
    const c = await startController(kubeconfig, registry);
    const reconciles = async (): Promise<number> =>
      (await registry.getSingleMetric('controller_runtime_reconcile_total')!.get()).values.reduce((sum, v) => sum + v.value, 0);
    const secretRequests = (): typeof server.requests => server.requests.filter((r) => r.method === 'GET' && /\/secrets$/.test(r.path));
    const bytesToController = (): number => secretRequests().reduce((sum, r) => sum + r.bytes, 0);
    try {
      await until('corp-ad ready', () => ready(server, 'corp-ad') === 'True SmsOffered');
      await c.idle();
      assert.ok(secretRequests().length >= 4, 'two lists and two watches');
      for (const r of secretRequests()) {
        assert.ok(
          ['smsauth.io/credentials=true', 'app.kubernetes.io/managed-by=smsauth'].includes(r.query['labelSelector'] ?? ''),
          `${r.path} ${JSON.stringify(r.query)}`,
        );
      }
      // A barrier on the credentials' watch: an account waiting for a Secret that comes after the unrelated ones.
      server.create({
        apiVersion: 'smsauth.io/v1alpha1',
        kind: 'SmsGatewayAccount',
        metadata: { name: 'barrier', namespace: 'identity' },
        spec: {
          provider: 'twilio',
          twilio: {
            accountSid: { secretRef: { name: 'barrier', key: 'sid' } },
            authToken: { secretRef: { name: 'barrier', key: 'token' } },
            from: '+14155550100',
          },
        },
      });
      await until('the barrier account to miss its Secret', () => condition(server, 'barrier', 'CredentialsResolved')?.reason === 'SecretNotFound');
      await c.idle();
      const before = { reconciles: await reconciles(), bytes: bytesToController() };
      const value = randomBytes(36 * 1024).toString('base64'); // 48 KiB in the API
      for (let i = 0; i < 400; i++) {
        server.create({
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: { name: `unrelated-${i}`, namespace: i % 2 === 0 ? 'identity' : 'helpdesk' },
          data: { blob: value },
        });
      }
      server.create({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'barrier', namespace: 'identity', labels: { 'smsauth.io/credentials': 'true' } },
        stringData: { sid: 'ACbarrier', token: 'barrier-token' },
      });
      await until('the barrier account to find its Secret', () => condition(server, 'barrier', 'CredentialsResolved')?.status === 'True');
      await c.idle();
      const after = { reconciles: await reconciles(), bytes: bytesToController() };
      assert.ok(after.bytes - before.bytes < 48 * 1024, `${after.bytes - before.bytes} bytes of Secrets sent to the controller: none of the unrelated`);
      assert.ok(after.reconciles - before.reconciles < 40, `${after.reconciles - before.reconciles} reconciles: the barrier's, none for the unrelated`);
      assert.ok(after.reconciles > before.reconciles, 'the barrier was reconciled (the count counts)');

      // A referenced Secret without the label is not seen, and the status says what to do.
      await kubectl(kubeconfig, 'label', 'secret', 'plivo-credentials', '-n', 'identity', 'smsauth.io/credentials-');
      const missing = await until('plivo to miss its Secret', () => {
        const cond = condition(server, 'plivo', 'CredentialsResolved');
        return cond?.reason === 'SecretNotFound' ? cond : undefined;
      });
      assert.match(missing.message, 'kubectl label secret plivo-credentials -n identity smsauth.io/credentials=true');
      await kubectl(kubeconfig, 'label', 'secret', 'plivo-credentials', '-n', 'identity', 'smsauth.io/credentials=true');
      await until('plivo to find it again', () => condition(server, 'plivo', 'CredentialsResolved')?.status === 'True');
    } finally {
      await c.stop(2000);
      await server.close();
    }
  },
);

secrets.run();

const gitops = suite('status for GitOps: kstatus conditions and Events');

gitops('a problem is Stalled (kubectl wait ends on it) with one Warning Event per reason; a repeat is counted in its series, not created again', async () => {
  const { server, kubeconfig } = await clusterWithExamples();
  const registry = new Registry();
  const c = await startController(kubeconfig, registry);
  const readyGauge = async (kind: string, name: string): Promise<number | undefined> =>
    (await registry.getSingleMetric('smsauth_resource_ready')!.get()).values.find((v) => v.labels['kind'] === kind && v.labels['name'] === name)?.value;
  const eventsOf = (name: string, reason: string): any[] =>
    server.list('events.k8s.io/v1', 'Event', 'identity').filter((e: any) => e.regarding?.name === name && e.reason === reason);
  try {
    await until('plivo ready', () => condition(server, 'plivo', 'Ready')?.status === 'True');
    assert.is(condition(server, 'plivo', 'Stalled')?.status, 'False');
    assert.is(condition(server, 'plivo', 'Reconciling')?.status, 'False');

    await kubectl(kubeconfig, 'label', 'secret', 'plivo-credentials', '-n', 'identity', 'smsauth.io/credentials-');
    await kubectl(kubeconfig, 'wait', '--for=condition=Stalled', 'smsgw/plivo', '-n', 'identity', '--timeout=20s');
    assert.is(condition(server, 'plivo', 'Stalled')?.reason, 'SecretNotFound');
    const warned = await until('the Warning Event', () => (eventsOf('plivo', 'SecretNotFound').length > 0 ? eventsOf('plivo', 'SecretNotFound') : undefined));
    assert.equal(
      warned.map((e) => [e.type, e.reportingController]),
      [['Warning', 'smsauth.io/controller']],
      'one Event for Ready and CredentialsResolved, which share the reason',
    );

    await kubectl(kubeconfig, 'label', 'secret', 'plivo-credentials', '-n', 'identity', 'smsauth.io/credentials=true');
    await kubectl(kubeconfig, 'wait', '--for=condition=Stalled=false', 'smsgw/plivo', '-n', 'identity', '--timeout=20s');
    await until('the Normal Event', () => eventsOf('plivo', 'Reconciled').some((e) => e.type === 'Normal'));

    await kubectl(kubeconfig, 'label', 'secret', 'plivo-credentials', '-n', 'identity', 'smsauth.io/credentials-');
    const repeated = await until('the repeat counted', () => {
      const list = eventsOf('plivo', 'SecretNotFound');
      return list.length === 1 && list[0].series?.count === 2 ? list[0] : undefined;
    });
    assert.ok(repeated.series.lastObservedTime >= repeated.eventTime, 'observed again after it was first recorded');

    // An invalid spec: Stalled, with a Warning; a GitOps apply sees it fail at once.
    await kubectl(kubeconfig, ...BREAK_TEMPLATE);
    await kubectl(kubeconfig, 'wait', '--for=condition=Stalled', 'smstpl/sign-in-code', '-n', 'identity', '--timeout=20s');
    await c.idle();
    assert.is(await readyGauge('SmsTemplate', 'sign-in-code'), 0, 'smsauth_resource_ready follows Ready');
    assert.is(await readyGauge('IdentityStore', 'corp-ad'), 1);
    const reconciles = (await registry.getSingleMetric('controller_runtime_reconcile_total')!.get()).values;
    assert.ok(
      reconciles.some((v) => v.labels['controller'] === 'smstemplate' && v.labels['result'] === 'success' && v.value > 0),
      'a controller label per kind',
    );
    await until('the InvalidSpec Event', () => eventsOf('sign-in-code', 'InvalidSpec').some((e) => e.type === 'Warning'));
  } finally {
    await c.stop(2000);
    await server.close();
  }
});

gitops.run();

const checks = suite('spec.credentialCheck in the cluster');

checks('the controller asks the provider on its interval: refused credentials make the account Stalled, a fixed Secret is checked at once', async () => {
  const plivo = await startPlivoServer({ authId: 'MAGOOD', authToken: 'good-token' });
  const { server, kubeconfig } = await clusterWithExamples();
  const log = pino({ level: 'info' }, logScan.stream('controller gateways'));
  const c = await startController(kubeconfig, new Registry(), new GatewayPool((gw, creds) => createGateway(gw, creds, { logger: log }), log));
  const secret = (token: string): Record<string, unknown> => ({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'checked', namespace: 'identity', labels: { 'smsauth.io/credentials': 'true' } },
    stringData: { authId: 'MAGOOD', authToken: token },
  });
  try {
    server.create(secret('wrong-token'));
    server.create({
      apiVersion: 'smsauth.io/v1alpha1',
      kind: 'SmsGatewayAccount',
      metadata: { name: 'checked', namespace: 'identity' },
      spec: {
        provider: 'plivo',
        plivo: {
          authId: { secretRef: { name: 'checked', key: 'authId' } },
          authToken: { secretRef: { name: 'checked', key: 'authToken' } },
          source: '+14155550100',
          baseUrl: plivo.baseUrl,
        },
        credentialCheck: { interval: '1h' },
      },
    });
    const refused = await until('the check refused', () => {
      const cond = condition(server, 'checked', 'CredentialsResolved');
      return cond?.reason === 'CredentialsRejected' ? cond : undefined;
    });
    assert.match(refused.message, 'the provider refused the credentials');
    assert.is(condition(server, 'checked', 'Stalled')?.status, 'True');
    assert.ok(
      plivo.requests.some((r) => r.url.startsWith('/v1/Account/MAGOOD/')),
      'the check asked Plivo, through the SDK',
    );
    // Fixed: checked at once, not an hour later.
    server.apply(secret('good-token'));
    await until('the check passed', () => condition(server, 'checked', 'CredentialsResolved')?.status === 'True');
    assert.is(condition(server, 'checked', 'Ready')?.status, 'True');
    assert.not.match(JSON.stringify(server.list('events.k8s.io/v1', 'Event', 'identity')), /good-token|wrong-token/);
  } finally {
    await c.stop(2000);
    await server.close();
    await plivo.close();
  }
});

checks.run();
