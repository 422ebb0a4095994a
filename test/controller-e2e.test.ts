import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BREAK_TEMPLATE, kubectl, mergePatch } from './helpers/kubectl.ts';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Signal, waitUntil } from './helpers/wait.ts';
import { startApiServer, type ApiServer } from './kube/api-server.ts';
import { selfSignedCertificate } from './kube/tls.ts';
import { ROOT } from './helpers/fixtures.ts';
import { writeSecretVolume } from './helpers/secret-volume.ts';
import { runCli } from './helpers/cli.ts';
import { logScan } from './helpers/log-scan.ts';

interface Proc {
  child: ChildProcess;
  lines: () => Record<string, unknown>[];
  stderr: () => string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

function start(args: string[], env: NodeJS.ProcessEnv = {}): Proc {
  const child = spawn(process.execPath, [join(ROOT, 'bin', 'smsauth.js'), ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => {
    printed.fire();
    out += d.toString();
    logScan.observe(`smsauth ${args[0] ?? ''} (stdout)`, d.toString());
  });
  child.stderr.on('data', (d: Buffer) => {
    printed.fire();
    err += d.toString();
    logScan.observe(`smsauth ${args[0] ?? ''} (stderr)`, d.toString());
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  running.add(child);
  child.once('exit', () => running.delete(child));
  return {
    child,
    lines: () =>
      out
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>),
    stderr: () => err,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null) return child.exitCode;
      child.kill(signal);
      return exited;
    },
  };
}

/** What `until` waits on: the cluster of the running test, and the processes it started (their output). */
let cluster: ApiServer | undefined;
const running = new Set<ChildProcess>();
/** printed fires whenever a process this suite started prints something. */
const printed = new Signal();
const nextEvent = (): Promise<unknown> => Promise.race([...(cluster !== undefined ? [cluster.changed()] : []), printed.next()]);

function until<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined>, ms = 20_000, next = nextEvent): Promise<T> {
  return waitUntil(what, fn, next, ms);
}

/** logged resolves at the next stderr output of a process that holds the text (a log line, as `bundles synced`). */
function logged(child: ChildProcess, text: string): Promise<void> {
  return new Promise((resolve) => {
    const on = (d: Buffer): void => {
      if (!d.toString().includes(text)) return;
      child.stderr?.off('data', on);
      resolve();
    };
    child.stderr?.on('data', on);
  });
}

/** DOCUMENTED_APPLY are the kubectl commands of docs/operations.md ("Trying it without a cluster"), as written there. */
const DOCUMENTED_APPLY = (() => {
  const doc = readFileSync(join(ROOT, 'docs', 'operations.md'), 'utf8');
  const block = /## Trying it without a cluster[\s\S]*?```sh\n([\s\S]*?)```/.exec(doc)?.[1] ?? '';
  return block.split('\n').filter((line) => line.startsWith('kubectl apply '));
})();

/**
 * clusterWithExamples starts an empty in-process API server (no namespace but default) and runs the
 * documented kubectl commands, as a platform team would: the CRDs, then examples/ in one go.
 */
async function clusterWithExamples(): Promise<{ server: ApiServer; kubeconfig: string; dir: string }> {
  const server = await startApiServer();
  cluster = server;
  const dir = mkdtempSync(join(tmpdir(), 'smsauth-ctl-'));
  const kubeconfig = join(dir, 'kubeconfig');
  await server.writeKubeconfig(kubeconfig);
  assert.equal(DOCUMENTED_APPLY, ['kubectl apply -f charts/smsauth/files/crds/', 'kubectl apply -R -f examples/ --validate=false']);
  for (const line of DOCUMENTED_APPLY) await kubectl(kubeconfig, ...line.split(' ').slice(1));
  return { server, kubeconfig, dir };
}

const ready = (server: ApiServer, plural: string, kind: string, ns: string, name: string): string | undefined => {
  const o = server.get({ apiVersion: 'smsauth.io/v1alpha1', kind, namespace: ns, name }) as any;
  const c = o?.status?.conditions?.find((x: any) => x.type === 'Ready');
  void plural;
  return c === undefined ? undefined : `${c.status} ${c.reason}`;
};

/** kubelet copies a namespace's smsauth-bundle Secret into a folder the way the kubelet updates a mounted Secret. */
function kubelet(server: ApiServer, ns: string, dir: string): () => void {
  let last = '';
  const tick = (): void => {
    const s = server.get({ apiVersion: 'v1', kind: 'Secret', namespace: ns, name: 'smsauth-bundle' }) as { data?: Record<string, string> } | undefined;
    const text = JSON.stringify(s?.data ?? null);
    if (s?.data === undefined || text === last) return;
    last = text;
    writeSecretVolume(dir, Object.fromEntries(Object.entries(s.data).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')])));
  };
  // At each change in the cluster rather than on a timer: what it copies is there the moment it is written.
  let stopped = false;
  void (async () => {
    while (!stopped) {
      tick();
      await server.changed();
    }
  })();
  return () => {
    stopped = true;
  };
}

const e2e = suite('smsauth controller against the in-process API server');

e2e(
  'reconciles the examples applied with kubectl; a sidecar serves the published bundle and follows edits; a broken spec keeps the last good bundle; a linked account is held by the finalizer',
  async () => {
    const { server, kubeconfig, dir } = await clusterWithExamples();
    const controller = start(['controller', '--kubeconfig', kubeconfig, '--metrics-bind-address', '127.0.0.1:0', '--health-probe-bind-address', '127.0.0.1:0']);
    const stopKubelet: (() => void)[] = [];
    let sidecar: Proc | undefined;
    try {
      await kubectl(
        kubeconfig,
        'wait',
        '--for=condition=Ready',
        'idstore/corp-ad',
        'idstore/partners-entra',
        'smsgw/dev-console',
        'smstpl/sign-in-code',
        'secrole/administrators',
        '-n',
        'identity',
        '--timeout=30s',
      );
      await kubectl(kubeconfig, 'wait', '--for=condition=Ready', 'idstore/staff-directory', '-n', 'helpdesk', '--timeout=30s');
      const table = await kubectl(kubeconfig, 'get', 'idstore', '-n', 'identity');
      assert.match(table, /corp-ad\s+dev-console\s+True\s+SmsOffered/);
      const listening = await until('the listening line', () => controller.lines().find((l) => l.event === 'listening'));
      assert.is((await fetch(`${String(listening.probes)}/readyz`)).status, 200);
      const metrics = await (await fetch(`${String(listening.metrics)}/metrics`)).text();
      assert.match(metrics, /controller_runtime_reconcile_total\{controller="identitystore",result="success"\} [1-9]/);
      assert.match(metrics, /smsauth_resource_ready\{kind="IdentityStore",namespace="identity",name="corp-ad"\} 1/);
      for (const name of [
        'controller_runtime_reconcile_errors_total',
        'controller_runtime_reconcile_panics_total',
        'controller_runtime_active_workers',
        'workqueue_unfinished_work_seconds',
        'workqueue_longest_running_processor_seconds',
      ])
        assert.match(metrics, `# TYPE ${name} `);
      assert.match(metrics, /workqueue_depth\{name="smsauth"\}/);

      // A sidecar mounts the bundle (through our kubelet) and the code keys the controller created.
      const bundleDir = join(dir, 'bundle');
      const keysDir = join(dir, 'keys');
      await until('the bundle Secret', () => server.get({ apiVersion: 'v1', kind: 'Secret', namespace: 'identity', name: 'smsauth-bundle' }));
      const keys = await until(
        'the code keys Secret',
        () =>
          server.get({ apiVersion: 'v1', kind: 'Secret', namespace: 'identity', name: 'smsauth-code-keys' }) as { data: Record<string, string> } | undefined,
      );
      writeSecretVolume(keysDir, Object.fromEntries(Object.entries(keys.data).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')])));
      stopKubelet.push(kubelet(server, 'identity', bundleDir));
      const outbox = join(dir, 'outbox.jsonl');
      sidecar = start([
        'sidecar',
        '--bundle-dir',
        bundleDir,
        '--code-keys-dir',
        keysDir,
        '--state',
        join(dir, 'state.sqlite'),
        '--port',
        '0',
        '--allow-console',
        '--outbox',
        outbox,
      ]);
      const url = String((await until('the sidecar', () => sidecar!.lines().find((l) => l.event === 'serving'))).url);
      // A new number each time: the per-number send limit (5 in 10 minutes) would rightly refuse more.
      let n = 100;
      const enroll = async (user: string): Promise<number> =>
        (
          await fetch(`${url}/v1/identity/corp-ad/verifications`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ to: `+1415555${String(n++).padStart(4, '0')}`, purpose: 'enroll', user }),
          })
        ).status;
      const lastText = (): string => (JSON.parse(readFileSync(outbox, 'utf8').trim().split('\n').at(-1)!) as { text: string }).text;
      assert.is(await enroll('alice'), 201);
      assert.match(lastText(), /is your Contoso verification code/);

      // Edit the template: the bundle Secret and the sidecar follow.
      await kubectl(kubeconfig, ...mergePatch('smstpl', 'sign-in-code', 'identity', { spec: { text: 'Edited: [Code]' } }));
      // Tried again each time the sidecar syncs its bundles (a try itself logs, and would only try again).
      await until(
        'the sidecar to send the edited text',
        async () => ((await enroll('bob')) === 201 && /^Edited: \d{6}/.test(lastText()) ? true : undefined),
        20_000,
        () => logged(sidecar!.child, 'bundles synced'),
      );

      // Break it (admitted by the CRD's rules, invalid for smsauth): Ready=False, the last good bundle serves.
      await kubectl(kubeconfig, ...BREAK_TEMPLATE);
      await until('InvalidSpec', () => ready(server, 'smstemplates', 'SmsTemplate', 'identity', 'sign-in-code') === 'False InvalidSpec');
      const tpl = server.get({ apiVersion: 'smsauth.io/v1alpha1', kind: 'SmsTemplate', namespace: 'identity', name: 'sign-in-code' }) as any;
      assert.match(tpl.status.conditions[0].message, /spec\.text: unknown placeholder "\[Company\]".*generation 2 stays live/);
      assert.is(await enroll('carol'), 201);
      assert.match(lastText(), /^Edited: \d{6}/);
      const events = await kubectl(kubeconfig, 'get', 'events.events.k8s.io', '-n', 'identity', '-o', 'json');
      assert.match(events, /"reason": "InvalidSpec"/);

      // Delete the linked account: the finalizer holds it, InUse says why; relinking lets it go.
      await kubectl(kubeconfig, 'delete', 'smsgw', 'dev-console', '-n', 'identity', '--wait=false');
      await until('DeletionBlocked', () => {
        const gw = server.get({ apiVersion: 'smsauth.io/v1alpha1', kind: 'SmsGatewayAccount', namespace: 'identity', name: 'dev-console' }) as any;
        return gw?.metadata?.deletionTimestamp !== undefined && gw.status?.conditions?.find((c: any) => c.type === 'InUse')?.reason === 'DeletionBlocked';
      });
      assert.is(await enroll('dave'), 201, 'the held account still sends');
      await kubectl(kubeconfig, ...mergePatch('idstore', 'corp-ad', 'identity', { spec: { sms: { gatewayAccountRef: { name: 'plivo' } } } }));
      await kubectl(kubeconfig, ...mergePatch('idstore', 'branch-office', 'identity', { spec: { sms: { gatewayAccountRef: { name: 'plivo' } } } }));
      await until(
        'the account to be deleted',
        () => server.get({ apiVersion: 'smsauth.io/v1alpha1', kind: 'SmsGatewayAccount', namespace: 'identity', name: 'dev-console' }) === undefined,
      );

      // The reconcile annotation is handled and echoed.
      await kubectl(kubeconfig, 'annotate', 'idstore', 'partners-entra', '-n', 'identity', 'smsauth.io/reconcile-requested-at=now-1');
      await until(
        'lastHandledReconcileAt',
        () =>
          (server.get({ apiVersion: 'smsauth.io/v1alpha1', kind: 'IdentityStore', namespace: 'identity', name: 'partners-entra' }) as any)?.status
            ?.lastHandledReconcileAt === 'now-1',
      );

      // Deleting a namespace's last store empties its published bundle: its sidecars stop serving it, and its credentials leave the Secret.
      const helpdeskBundle = (): Record<string, string> | undefined =>
        (server.get({ apiVersion: 'v1', kind: 'Secret', namespace: 'helpdesk', name: 'smsauth-bundle' }) as { data?: Record<string, string> } | undefined)
          ?.data;
      await until('the helpdesk bundle', () => (Object.keys(helpdeskBundle() ?? {}).length > 0 ? true : undefined));
      await kubectl(kubeconfig, 'delete', 'idstore', 'staff-directory', '-n', 'helpdesk');
      await until('the helpdesk bundle to empty', () =>
        helpdeskBundle() !== undefined && Object.keys(helpdeskBundle() ?? {}).length === 0 ? true : undefined,
      );
    } finally {
      for (const s of stopKubelet) s();
      if (sidecar !== undefined) assert.is(await sidecar.stop(), 0);
      assert.is(await controller.stop(), 0);
      await server.close();
    }
  },
);

e2e('recovers from dropped watches, compaction (410), API errors, slow answers and answers that never come', async () => {
  const { server, kubeconfig } = await clusterWithExamples();
  const controller = start([
    'controller',
    '--kubeconfig',
    kubeconfig,
    '--metrics-bind-address',
    '0',
    '--health-probe-bind-address',
    '0',
    '--request-timeout',
    '2s',
  ]);
  try {
    await kubectl(kubeconfig, 'wait', '--for=condition=Ready', 'idstore/corp-ad', '-n', 'identity', '--timeout=30s');
    const edit = async (text: string): Promise<void> => {
      await kubectl(kubeconfig, 'patch', 'smstpl', 'sign-in-code', '-n', 'identity', '--type', 'merge', '-p', JSON.stringify({ spec: { text } }));
      await until(
        `the bundle with ${text}`,
        () => {
          const s = server.get({ apiVersion: 'v1', kind: 'Secret', namespace: 'identity', name: 'smsauth-bundle' }) as
            { data: Record<string, string> } | undefined;
          return s !== undefined && Buffer.from(s.data['corp-ad.json']!, 'base64').toString().includes(text.replace('[Code]', '')) ? true : undefined;
        },
        30_000,
      );
    };
    await until('watches to be open', () => server.openWatches() >= 5);
    server.faults.dropWatches({ abrupt: true });
    await edit('After a dropped watch: [Code]');
    server.faults.compact();
    server.faults.dropWatches();
    await edit('After compaction: [Code]');
    // Only the controller's writes fail: the template's status and the bundle Secret.
    server.faults.failNext({
      method: 'PATCH',
      pathPrefix: '/apis/smsauth.io/v1alpha1/namespaces/identity/smstemplates/sign-in-code/status',
      status: 500,
      count: 3,
    });
    server.faults.failNext({ method: 'PUT', pathPrefix: '/api/v1/namespaces/identity/secrets/smsauth-bundle', status: 500, count: 2 });
    await edit('After errors: [Code]');
    assert.match(controller.stderr(), /reconcile failed; retrying with backoff/);
    // Slow: every write of the controller waits a second, and still lands.
    const slow = server.faults.delay({ pathPrefix: '/api/v1/namespaces/identity/secrets/smsauth-bundle', ms: 1000 });
    await edit('After slow answers: [Code]');
    slow();
    // Never: the next bundle write is held for a minute; the 2 s request timeout abandons it and the retry lands.
    server.faults.delay({ method: 'PUT', pathPrefix: '/api/v1/namespaces/identity/secrets/smsauth-bundle', ms: 60_000, count: 1 });
    await edit('After a hung request: [Code]');
    assert.ok(
      server.faults.requestsMatching({ method: 'PUT', pathPrefix: '/api/v1/namespaces/identity/secrets/smsauth-bundle' }).length >= 2,
      'the hung write was retried',
    );
  } finally {
    assert.is(await controller.stop(), 0);
    await server.close();
  }
});

e2e('with --leader-elect exactly one of two controllers leads; the other takes over when the first stops', async () => {
  const { server, kubeconfig } = await clusterWithExamples();
  const args = ['controller', '--kubeconfig', kubeconfig, '--leader-elect', '--metrics-bind-address', '0', '--health-probe-bind-address', '0'];
  const a = start(args);
  const b = start(args);
  try {
    const leading = (p: Proc): boolean => p.lines().some((l) => l.event === 'leading');
    const first = await until('a leader', () => (leading(a) ? a : leading(b) ? b : undefined));
    const second = first === a ? b : a;
    // The other has tried the Lease and found it held: it says who leads, and does not lead itself.
    const firstIdentity = first.lines().find((l) => l.event === 'leading')!.identity;
    await until('the other to see the leader', () => second.lines().some((l) => l.event === 'leader' && l.leader === firstIdentity));
    assert.not.ok(leading(second), 'only one leads');
    const lease = server.get({ apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', namespace: 'default', name: 'smsauth-controller' }) as any;
    assert.match(lease.spec.renewTime, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/, 'MicroTime, six digits');
    assert.is(await first.stop('SIGTERM'), 0);
    await until('the other to lead', () => leading(second), 10_000);
    await kubectl(kubeconfig, ...mergePatch('smstpl', 'sign-in-code', 'identity', { spec: { text: 'New leader: [Code]' } }));
    await until('the new leader to reconcile', () => {
      const s = server.get({ apiVersion: 'v1', kind: 'Secret', namespace: 'identity', name: 'smsauth-bundle' }) as { data: Record<string, string> } | undefined;
      return s !== undefined && Buffer.from(s.data['corp-ad.json']!, 'base64').toString().includes('New leader:') ? true : undefined;
    });
  } finally {
    await a.stop();
    await b.stop();
    await server.close();
  }
});

const secure = suite('--metrics-secure');

/** scrape GETs a URL over HTTPS, verifying the server against ca, with an optional bearer token. */
function scrape(url: string, ca: string, token?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { ca, headers: token === undefined ? {} : { authorization: `Bearer ${token}` } }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.once('error', reject);
    req.end();
  });
}

secure(
  'metrics over HTTPS to callers the API server authenticates and allows: 401 without a token, 403 without the right, and a renewed certificate serves',
  async () => {
    const prometheus = 'system:serviceaccount:monitoring:prometheus';
    const server = await startApiServer({
      users: { 'prometheus-token': { username: prometheus }, 'app-token': { username: 'system:serviceaccount:app:web' } },
      authorizeNonResource: (u, path, verb) => u.username === prometheus && path === '/metrics' && verb === 'get',
    });
    cluster = server;
    const dir = mkdtempSync(join(tmpdir(), 'smsauth-metrics-'));
    const kubeconfig = join(dir, 'kubeconfig');
    await server.writeKubeconfig(kubeconfig);
    await kubectl(kubeconfig, 'apply', '-f', 'charts/smsauth/files/crds/');
    const certDir = mkdtempSync(join(tmpdir(), 'smsauth-metrics-tls-'));
    const first = selfSignedCertificate('smsauth-metrics');
    writeFileSync(join(certDir, 'tls.crt'), first.certPem);
    writeFileSync(join(certDir, 'tls.key'), first.keyPem);
    const args = ['controller', '--kubeconfig', kubeconfig, '--metrics-bind-address', '127.0.0.1:0', '--health-probe-bind-address', '127.0.0.1:0'];
    const controller = start([...args, '--metrics-secure', '--metrics-cert-dir', certDir]);
    try {
      const listening = await until('listening', () => controller.lines().find((l) => l['event'] === 'listening'));
      const url = `${String(listening['metrics']).replace(/^http:/, 'https:')}/metrics`;
      assert.match(String(listening['metrics']), /^https:/);
      assert.is((await scrape(url, first.certPem)).status, 401, 'no token');
      assert.is((await scrape(url, first.certPem, 'forged')).status, 401, 'a token the API server does not know');
      const refused = await scrape(url, first.certPem, 'app-token');
      assert.is(refused.status, 403);
      assert.match(refused.body, 'system:serviceaccount:app:web');
      const allowed = await scrape(url, first.certPem, 'prometheus-token');
      assert.is(allowed.status, 200);
      assert.match(allowed.body, '# TYPE controller_runtime_reconcile_total counter');
      // The probes stay plain HTTP, for the kubelet.
      assert.is((await fetch(`${String(listening['probes'])}/healthz`)).status, 200);

      const renewed = selfSignedCertificate('smsauth-metrics');
      writeFileSync(join(certDir, 'tls.crt'), renewed.certPem);
      writeFileSync(join(certDir, 'tls.key'), renewed.keyPem);
      await logged(controller.child, 'serving certificate reloaded');
      assert.is((await scrape(url, renewed.certPem, 'prometheus-token')).status, 200);
    } finally {
      await controller.stop();
      await server.close();
    }
    // A secure endpoint needs its certificate: told at start, on one line.
    const without = await runCli([...args, '--metrics-secure']);
    assert.is(without.code, 2);
    assert.is(without.stderr.trim().split('\n').length, 1, without.stderr);
    assert.match(without.stderr, '--metrics-secure needs --metrics-cert-dir');
  },
);

secure.run();

e2e.run();
