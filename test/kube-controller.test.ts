import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readSchemaSet } from '../controller/adapters/files.ts';
import { connectCluster, loadKubeConfig } from '../controller/adapters/kubernetes.ts';
import { FINALIZER, SmsauthController } from '../controller/kube/controller.ts';
import { createSchemaValidator } from '../controller/validate/schema-validator.ts';
import { ROOT } from './helpers/fixtures.ts';
import { logScan } from './helpers/log-scan.ts';
import { waitUntil } from './helpers/wait.ts';
import { startApiServer, type ApiServer } from './kube/api-server.ts';

// The controller in this process (the e2e suite runs it as a command), for what happens across its restarts.

function kubectl(kubeconfig: string, ...args: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile('/usr/bin/kubectl', ['--kubeconfig', kubeconfig, ...args], { cwd: ROOT }, (err, stdout, stderr) =>
      err ? reject(new Error(`kubectl ${args.join(' ')}: ${stderr}`)) : resolve(stdout),
    ),
  );
}

/** The cluster of the running test: its writes are the events `until` waits on. */
let cluster: ApiServer | undefined;

function until<T>(what: string, fn: () => T | undefined | false, ms = 20_000): Promise<T> {
  return waitUntil(what, fn, () => cluster!.changed(), ms);
}

async function startController(kubeconfig: string): Promise<SmsauthController> {
  const log = pino({ level: 'info' }, logScan.stream('controller'));
  const validator = createSchemaValidator(await readSchemaSet(join(ROOT, 'schemas')));
  const c = new SmsauthController(connectCluster(loadKubeConfig(kubeconfig), { requestTimeoutMs: 5000 }), {
    identity: 'test',
    log,
    registry: new Registry(),
    validator,
    workers: 2,
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
  await kubectl(kubeconfig, 'apply', '-f', 'charts/smsauth/crds/');
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
      await kubectl(kubeconfig, 'patch', 'smstpl', 'sign-in-code', '-n', 'identity', '--type', 'merge', '-p', '{"spec":{"text":"No placeholder here"}}');
      await kubectl(
        kubeconfig,
        'patch',
        'smsgw',
        'dev-console',
        '-n',
        'identity',
        '--type',
        'merge',
        '-p',
        '{"spec":{"fallbackGatewayAccountRef":{"name":"dev-console"}}}',
      );
      await until(
        'the account invalid',
        () => account(server, 'dev-console')?.status?.conditions?.find((x: any) => x.type === 'Ready')?.reason === 'InvalidSpec',
      );
      assert.is(offered(), true);
      await c.stop(2000);

      c = await startController(kubeconfig);
      await c.idle();
      assert.is(offered(), true, 'the published bundle still offers SMS');
      assert.equal(account(server, 'dev-console').metadata.finalizers, [FINALIZER], 'the linked account keeps its finalizer');
      // The store's own change for the worse is published, whatever else is invalid.
      await kubectl(kubeconfig, 'patch', 'idstore', 'corp-ad', '-n', 'identity', '--type', 'merge', '-p', '{"spec":{"authenticationTypes":["Email"]}}');
      await until('the store to stop offering SMS', () => offered() === false);
    } finally {
      await c.stop(2000);
      await server.close();
    }
  },
);

restart.run();
