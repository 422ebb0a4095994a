import { spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { connect as tlsConnect } from 'node:tls';
import { join } from 'node:path';
import { kubectlResult, mergePatch } from './helpers/kubectl.ts';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { parseAllDocuments } from 'yaml';
import { decideAdmission, needsReview } from '../controller/core/admission.ts';
import { validateFiles } from '../controller/validate/validate-files.ts';
import { ownChild, stopChild } from './helpers/child-process.ts';
import { runCli } from './helpers/cli.ts';
import { ROOT, schemaValidator } from './helpers/fixtures.ts';
import { logScan } from './helpers/log-scan.ts';
import { Signal } from './helpers/wait.ts';
import { startApiServer, type ApiServer, type ApiServerOptions } from './kube/api-server.ts';
import { renderChart } from './helm/renderer.ts';
import { isRe2 } from './kube/re2.ts';
import { selfSignedCertificate } from './kube/tls.ts';
import { freePort } from './helpers/redis-server.ts';

// Admission as on a real cluster: the CRDs' CEL rules, evaluated by the in-process API server with
// a CEL library, and `smsauth webhook` as the validating admission webhook the server calls over
// HTTPS. kubectl is the client; what it prints is what a platform team reads.

const fixture = (name: string): string => join('test', 'fixtures', 'invalid', `${name}.yaml`);

/** validatorErrors: what `smsauth validate` says of a fixture, error by error, with the object it is about. */
async function validatorErrors(name: string): Promise<{ name: string; message: string }[]> {
  const bytes = readFileSync(join(ROOT, fixture(name)));
  const result = validateFiles([{ path: fixture(name), bytes }], await schemaValidator());
  return result.diagnostics.filter((d) => d.severity === 'error').map((d) => ({ name: d.name ?? '', message: d.message }));
}

/** assertValidatorWords asserts that kubectl's output holds every error message the validator gives for a fixture, and returns those errors. */
async function assertValidatorWords(name: string, out: string): Promise<{ name: string; message: string }[]> {
  const errors = await validatorErrors(name);
  for (const e of errors) assert.ok(out.includes(e.message), `${name}: the validator's words for ${e.name}: ${e.message}\n${out}`);
  return errors;
}

interface Cluster {
  server: ApiServer;
  kubeconfig: string;
}

async function cluster(options: ApiServerOptions = {}): Promise<Cluster> {
  const server = await startApiServer(options);
  const kubeconfig = join(mkdtempSync(join(tmpdir(), 'smsauth-admission-')), 'kubeconfig');
  await server.writeKubeconfig(kubeconfig);
  const crds = await kubectlResult(kubeconfig, 'apply', '-f', 'charts/smsauth/files/crds/');
  assert.ok(crds.ok, crds.out);
  return { server, kubeconfig };
}

async function inNamespace(c: Cluster, ns: string): Promise<void> {
  const made = await kubectlResult(c.kubeconfig, 'create', 'namespace', ns);
  assert.ok(made.ok, made.out);
}

const cel = suite('CEL rules in the CRDs');

// Fixtures whose every error is a rule of the object alone that CEL says.
const CEL_FIXTURES = [
  'code-placeholder-missing',
  'code-placeholder-repeated',
  'duration-range',
  'provider-settings-mismatch',
  'text-source-conflict',
  'text-source-missing',
  'directory-type-mismatch',
  'directory-insecure',
];

cel('kubectl apply --dry-run=server refuses each object-only fixture with the validator message, before any webhook', async () => {
  const c = await cluster();
  try {
    for (const name of CEL_FIXTURES) {
      await inNamespace(c, name);
      const applied = await kubectlResult(c.kubeconfig, 'apply', '--dry-run=server', '-f', fixture(name));
      assert.not.ok(applied.ok, `${name}: refused`);
      const errors = await assertValidatorWords(name, applied.out);
      assert.ok(errors.length > 0, name);
      for (const e of errors) assert.match(applied.out, `"${e.name}" is invalid`, `${name}: ${e.name} refused`);
      assert.not.match(applied.out, 'rule evaluation failed', name);
      assert.equal(c.server.list('smsauth.io/v1alpha1', 'IdentityStore', name), [], 'a dry run stores nothing');
    }
  } finally {
    await c.server.close();
  }
});

cel('the examples pass the rules; a rule that does not compile, or a pattern only JavaScript reads, makes the CRD itself refused', async () => {
  const c = await cluster();
  try {
    for (const ns of ['identity', 'helpdesk', 'app']) await inNamespace(c, ns);
    const examples = await kubectlResult(c.kubeconfig, 'apply', '--dry-run=server', '-R', '-f', 'examples/', '--validate=false');
    assert.ok(examples.ok, examples.out);
    assert.match(examples.out, 'identitystore.smsauth.io/corp-ad created (server dry run)');

    const dir = mkdtempSync(join(tmpdir(), 'smsauth-crd-'));
    const crd = (schema: object): string => {
      const file = join(dir, `crd-${Math.random().toString(36).slice(2)}.json`);
      writeFileSync(
        file,
        JSON.stringify({
          apiVersion: 'apiextensions.k8s.io/v1',
          kind: 'CustomResourceDefinition',
          metadata: { name: 'widgets.example.com' },
          spec: {
            group: 'example.com',
            scope: 'Namespaced',
            names: { plural: 'widgets', singular: 'widget', kind: 'Widget', listKind: 'WidgetList' },
            versions: [{ name: 'v1', served: true, storage: true, schema: { openAPIV3Schema: { type: 'object', properties: { spec: schema } } } }],
          },
        }),
      );
      return file;
    };
    const lookahead = await kubectlResult(
      c.kubeconfig,
      'apply',
      '-f',
      crd({ type: 'object', properties: { name: { type: 'string', pattern: '^(?!admin).*$' } } }),
    );
    assert.not.ok(lookahead.ok, 'a lookahead is JavaScript, not RE2');
    assert.match(lookahead.out, 'must be a valid regular expression');
    const broken = await kubectlResult(
      c.kubeconfig,
      'apply',
      '-f',
      crd({ type: 'object', properties: { n: { type: 'integer' } }, 'x-kubernetes-validations': [{ rule: 'self.n >' }] }),
    );
    assert.not.ok(broken.ok);
    assert.match(broken.out, 'compilation failed');
  } finally {
    await c.server.close();
  }
});

cel('every pattern of the schemas and the CRDs is RE2, the dialect Kubernetes reads them in', () => {
  const patterns: string[] = [];
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) node.forEach(visit);
    else if (node !== null && typeof node === 'object') {
      for (const [k, v] of Object.entries(node)) {
        if (k === 'pattern' && typeof v === 'string') patterns.push(v);
        else visit(v);
      }
    }
  };
  for (const kind of ['identitystores', 'securityroles', 'smsgatewayaccounts', 'smstemplates']) {
    for (const doc of parseAllDocuments(readFileSync(join(ROOT, 'charts', 'smsauth', 'files', 'crds', `${kind}.smsauth.io.yaml`), 'utf8'))) visit(doc.toJS());
  }
  assert.ok(patterns.length >= 8, 'the CRDs carry their patterns');
  for (const p of patterns) assert.ok(isRe2(p), p);
  assert.not.ok(isRe2('^(?!admin)'), 'and the check can fail');
});

cel.run();

const webhook = suite('smsauth webhook');

interface Webhook {
  child: ChildProcess;
  url: string;
  caPem: string;
  /** logged resolves once the webhook's log matches. */
  logged(pattern: RegExp): Promise<void>;
}

function writeCertificate(certDir: string): string {
  const tls = selfSignedCertificate('smsauth-webhook');
  writeFileSync(join(certDir, 'tls.crt'), tls.certPem);
  writeFileSync(join(certDir, 'tls.key'), tls.keyPem);
  return tls.certPem;
}

async function startWebhook(kubeconfig: string, certDir = mkdtempSync(join(tmpdir(), 'smsauth-webhook-tls-'))): Promise<Webhook> {
  const caPem = writeCertificate(certDir);
  return spawnWebhook(['--bind-address', '127.0.0.1:0', '--cert-dir', certDir, '--kubeconfig', kubeconfig], caPem);
}

/** spawnWebhook runs `smsauth webhook` with these flags and resolves once it listens. */
async function spawnWebhook(flags: string[], caPem: string): Promise<Webhook> {
  const child = spawn(process.execPath, [join(ROOT, 'bin', 'smsauth.js'), 'webhook', ...flags], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  ownChild(child);
  const printed = new Signal();
  let out = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    printed.fire();
  });
  child.stderr.on('data', (d: Buffer) => {
    logScan.observe('smsauth webhook', d.toString());
    stderr += d.toString();
    printed.fire();
  });
  const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`smsauth webhook exited ${String(code)}: ${out}`))));
  exited.catch(() => undefined);
  for (;;) {
    const line = out.split('\n').find((l) => l.startsWith('{"event":"listening"'));
    if (line !== undefined) {
      const url = (JSON.parse(line) as { url: string }).url;
      return {
        child,
        url,
        caPem,
        logged: async (pattern) => {
          while (!pattern.test(stderr)) await printed.next();
        },
      };
    }
    await Promise.race([printed.next(), exited]);
  }
}

async function register(c: Cluster, hook: Webhook, failurePolicy: 'Fail' | 'Ignore' = 'Fail'): Promise<void> {
  const file = join(mkdtempSync(join(tmpdir(), 'smsauth-vwc-')), 'webhook.json');
  writeFileSync(
    file,
    JSON.stringify({
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingWebhookConfiguration',
      metadata: { name: 'smsauth' },
      webhooks: [
        {
          name: 'validate.smsauth.io',
          clientConfig: { url: `${hook.url}/validate`, caBundle: Buffer.from(hook.caPem).toString('base64') },
          rules: [{ apiGroups: ['smsauth.io'], apiVersions: ['v1alpha1'], operations: ['CREATE', 'UPDATE'], resources: ['*'], scope: 'Namespaced' }],
          failurePolicy,
          sideEffects: 'None',
          admissionReviewVersions: ['v1'],
          timeoutSeconds: 10,
        },
      ],
    }),
  );
  const applied = await kubectlResult(c.kubeconfig, 'apply', '-f', file);
  assert.ok(applied.ok, applied.out);
}

// Fixtures whose errors CEL cannot say (Unicode look-alikes, BCP 47, country suggestions) or that
// need other objects: applied for real, in order, so that what comes first is there for the rest.
const WEBHOOK_FIXTURES = [
  'placeholder-misspelled',
  'placeholder-unknown',
  'locale-invalid',
  'country-unknown',
  'default-gateway-conflict',
  'priority-conflict',
  'auth-type-not-enabled',
  'chosen-by-end-user-too-many',
  'enrollment-disabled',
  'member-invalid',
  'fallback-cycle',
  'limit-never-binds',
];

webhook('kubectl apply refuses each fixture CEL cannot judge through the webhook, with every message the validator gives', async () => {
  const c = await cluster();
  const hook = await startWebhook(c.kubeconfig);
  try {
    await register(c, hook);
    for (const name of WEBHOOK_FIXTURES) {
      await inNamespace(c, name);
      const applied = await kubectlResult(c.kubeconfig, 'apply', '-f', fixture(name));
      assert.not.ok(applied.ok, `${name}: refused`);
      // kubectl words a 422 Invalid with causes as its own ("is invalid", field by field), others as the webhook's line.
      assert.match(applied.out, /admission webhook "validate\.smsauth\.io" denied the request|" is invalid: /, `${name}: ${applied.out}`);
      await assertValidatorWords(name, applied.out);
    }
  } finally {
    await stopChild(hook.child);
    await c.server.close();
  }
});

webhook('a valid set is admitted; a dangling reference is a warning; a webhook that cannot be reached fails closed', async () => {
  const c = await cluster();
  let hook: Webhook | undefined = await startWebhook(c.kubeconfig);
  try {
    await register(c, hook);
    for (const ns of ['identity', 'helpdesk', 'app']) await inNamespace(c, ns);
    // A whole folder dry-run first, as GitOps tools do: nothing exists yet, so references only warn.
    const dry = await kubectlResult(c.kubeconfig, 'apply', '--dry-run=server', '-R', '-f', 'examples/', '--validate=false');
    assert.ok(dry.ok, dry.out);
    assert.match(dry.out, /Warning: spec\.sms\.gatewayAccountRef\.name: SmsGatewayAccount \S+ not found in namespace identity/);
    const real = await kubectlResult(c.kubeconfig, 'apply', '-R', '-f', 'examples/', '--validate=false');
    assert.ok(real.ok, real.out);
    assert.is(c.server.list('smsauth.io/v1alpha1', 'IdentityStore', 'identity').length, 6);

    await inNamespace(c, 'reference-not-found');
    const dangling = await kubectlResult(c.kubeconfig, 'apply', '-f', fixture('reference-not-found'));
    assert.ok(dangling.ok, dangling.out);
    await assertValidatorWords('reference-not-found', dangling.out);

    // An edit that breaks another object names it: the store stops enabling SMS that its roles enforce.
    const breaking = await kubectlResult(c.kubeconfig, ...mergePatch('idstore', 'corp-ad', 'identity', { spec: { authenticationTypes: ['Email'] } }));
    assert.not.ok(breaking.ok);
    assert.match(breaking.out, /SecurityRole \S+: /);

    await stopChild(hook.child);
    hook = undefined;
    await inNamespace(c, 'placeholder-unknown');
    const down = await kubectlResult(c.kubeconfig, 'apply', '--dry-run=server', '-f', fixture('placeholder-unknown'));
    assert.not.ok(down.ok, 'failurePolicy Fail');
    assert.match(down.out, 'failed calling webhook "validate.smsauth.io"');
  } finally {
    await stopChild(hook?.child);
    await c.server.close();
  }
});

webhook('a missing certificate stops it at start with one line; a renewed one serves new connections without a restart', async () => {
  const missing = await runCli(['webhook', '--cert-dir', join(tmpdir(), 'no-such-smsauth-certs'), '--bind-address', '127.0.0.1:0']);
  assert.is(missing.code, 1);
  assert.is(missing.stderr.trim().split('\n').length, 1, missing.stderr);
  assert.match(missing.stderr, /--cert-dir \S+ has no tls\.crt and tls\.key/);
  const garbled = mkdtempSync(join(tmpdir(), 'smsauth-webhook-tls-'));
  writeFileSync(join(garbled, 'tls.crt'), 'not a certificate');
  writeFileSync(join(garbled, 'tls.key'), 'not a key');
  const bad = await runCli(['webhook', '--cert-dir', garbled, '--bind-address', '127.0.0.1:0']);
  assert.is(bad.code, 1);
  assert.is(bad.stderr.trim().split('\n').length, 1, bad.stderr);
  assert.match(bad.stderr, 'are not a PEM certificate and its private key');
  // An API server that does not answer: one line, before it says it listens (it would refuse every admission).
  const port = await freePort();
  const kubeconfig = join(mkdtempSync(join(tmpdir(), 'smsauth-webhook-kube-')), 'config');
  writeFileSync(
    kubeconfig,
    `apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "https://127.0.0.1:${port}"}}]\nusers: [{name: u, user: {token: t0ken-never-printed}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n`,
  );
  const certs = mkdtempSync(join(tmpdir(), 'smsauth-webhook-tls-'));
  writeCertificate(certs);
  const away = await runCli(['webhook', '--cert-dir', certs, '--bind-address', '127.0.0.1:0', '--kubeconfig', kubeconfig]);
  assert.is(away.code, 1, away.stderr);
  assert.is(
    away.stderr,
    `smsauth webhook: cannot reach the Kubernetes API server at https://127.0.0.1:${port} (ECONNREFUSED): check --kubeconfig (or the in-cluster service account) and that the cluster is up\n`,
  );
  assert.not.match(away.stdout, 'listening');

  const c = await cluster();
  const certDir = mkdtempSync(join(tmpdir(), 'smsauth-webhook-tls-'));
  const hook = await startWebhook(c.kubeconfig, certDir);
  try {
    const served = (): Promise<string> =>
      new Promise((resolve, reject) => {
        const u = new URL(hook.url);
        const socket = tlsConnect({ host: u.hostname, port: Number(u.port), rejectUnauthorized: false }, () => {
          resolve(socket.getPeerX509Certificate()?.fingerprint256 ?? '');
          socket.end();
        });
        socket.once('error', reject);
      });
    const first = await served();
    assert.is(first, new X509Certificate(hook.caPem).fingerprint256);
    const renewed = writeCertificate(certDir);
    await hook.logged(/serving certificate reloaded/);
    assert.is(await served(), new X509Certificate(renewed).fingerprint256);
  } finally {
    await stopChild(hook.child);
    await c.server.close();
  }
});

webhook(
  "the chart's webhook: its generated certificate, Service and configuration, and the flags it renders, make the API server call smsauth webhook",
  async () => {
    const namespace = 'smsauth-system';
    const rendered = (await renderChart(join(ROOT, 'charts', 'smsauth'), { releaseName: 'auth', namespace })).map((m) => m.object as Record<string, any>);
    const secret = rendered.find((o) => o['kind'] === 'Secret')!;
    const service = rendered.find((o) => o['kind'] === 'Service' && o['metadata'].name.endsWith('-webhook'))!;
    const configuration = rendered.find((o) => o['kind'] === 'ValidatingWebhookConfiguration')!;
    const pod = rendered.find((o) => o['kind'] === 'Deployment')!['spec'].template.spec;
    const container = pod.containers.find((c: { name: string }) => c.name === 'webhook');
    // The Secret mounted where the container's --cert-dir points, as the kubelet would.
    const mount = container.volumeMounts.find((m: { name: string }) => m.name === 'tls');
    const volume = pod.volumes.find((v: { name: string }) => v.name === 'tls');
    assert.is(volume.secret.secretName, secret['metadata'].name);
    const certDir = mkdtempSync(join(tmpdir(), 'smsauth-chart-tls-'));
    for (const [k, v] of Object.entries(secret['data'] as Record<string, string>)) writeFileSync(join(certDir, k), Buffer.from(v, 'base64'));
    const flags = (container.args as string[]).slice(1).map((a) => {
      if (a === `--cert-dir=${String(mount.mountPath)}`) return `--cert-dir=${certDir}`;
      return a.startsWith('--bind-address=') ? '--bind-address=127.0.0.1:0' : a;
    });
    assert.ok(flags.includes(`--cert-dir=${certDir}`), 'the container reads the mounted Secret');

    let hook: Webhook | undefined;
    const c = await cluster({
      resolveService: (ns, name, port) =>
        ns === namespace && name === service['metadata'].name && port === service['spec'].ports[0].port && hook !== undefined
          ? { host: '127.0.0.1', port: Number(new URL(hook.url).port) }
          : undefined,
    });
    try {
      hook = await spawnWebhook([...flags, `--kubeconfig=${c.kubeconfig}`], Buffer.from(secret['data']['ca.crt'], 'base64').toString());
      await inNamespace(c, namespace);
      const file = join(mkdtempSync(join(tmpdir(), 'smsauth-chart-')), 'webhook.json');
      writeFileSync(file, JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [secret, service, configuration] }));
      const applied = await kubectlResult(c.kubeconfig, 'apply', '--validate=false', '-f', file);
      assert.ok(applied.ok, applied.out);

      // The certificate names the Service as the API server dials it, signed by the caBundle's CA.
      await inNamespace(c, 'placeholder-misspelled');
      const refused = await kubectlResult(c.kubeconfig, 'apply', '--dry-run=server', '-f', fixture('placeholder-misspelled'));
      assert.not.ok(refused.ok, refused.out);
      assert.match(refused.out, /admission webhook "validate\.smsauth\.io" denied the request|" is invalid: /);
      await assertValidatorWords('placeholder-misspelled', refused.out);
      for (const ns of ['identity', 'helpdesk', 'app']) await inNamespace(c, ns);
      const examples = await kubectlResult(c.kubeconfig, 'apply', '-R', '-f', 'examples/', '--validate=false');
      assert.ok(examples.ok, examples.out);
    } finally {
      await stopChild(hook?.child);
      await c.server.close();
    }
  },
);

webhook('a namespaced install registers the webhook for its namespace alone', async () => {
  const rendered = await renderChart(join(ROOT, 'charts', 'smsauth'), { namespace: 'ops', values: { namespaced: true, watchNamespace: 'identity' } });
  const configuration = rendered.map((m) => m.object as Record<string, any>).find((o) => o['kind'] === 'ValidatingWebhookConfiguration')!;
  const caPem = Buffer.from(configuration['webhooks'][0].clientConfig.caBundle, 'base64').toString();
  let hook: Webhook | undefined;
  const c = await cluster({ resolveService: () => (hook === undefined ? undefined : { host: '127.0.0.1', port: Number(new URL(hook.url).port) }) });
  try {
    const certDir = mkdtempSync(join(tmpdir(), 'smsauth-chart-tls-'));
    const secret = rendered.map((m) => m.object as Record<string, any>).find((o) => o['kind'] === 'Secret')!;
    for (const [k, v] of Object.entries(secret['data'] as Record<string, string>)) writeFileSync(join(certDir, k), Buffer.from(v, 'base64'));
    hook = await spawnWebhook(['--bind-address=127.0.0.1:0', `--cert-dir=${certDir}`, `--kubeconfig=${c.kubeconfig}`], caPem);
    const file = join(mkdtempSync(join(tmpdir(), 'smsauth-chart-')), 'webhook.json');
    writeFileSync(file, JSON.stringify(configuration));
    const applied = await kubectlResult(c.kubeconfig, 'apply', '-f', file);
    assert.ok(applied.ok, applied.out);
    // The same bad store: refused in the watched namespace, left to the controller of another.
    for (const ns of ['identity', 'elsewhere']) await inNamespace(c, ns);
    const bad = (ns: string): Promise<{ ok: boolean; out: string }> => {
      const template = {
        apiVersion: 'smsauth.io/v1alpha1',
        kind: 'SmsTemplate',
        metadata: { name: 'shouting', namespace: ns },
        spec: { text: 'Code: [CODE]' },
      };
      const at = join(mkdtempSync(join(tmpdir(), 'smsauth-chart-')), 'template.json');
      writeFileSync(at, JSON.stringify(template));
      return kubectlResult(c.kubeconfig, 'apply', '--dry-run=server', '-f', at);
    };
    const watched = await bad('identity');
    assert.not.ok(watched.ok, watched.out);
    assert.match(watched.out, 'placeholder "[CODE]" is not spelled exactly', watched.out);
    const other = await bad('elsewhere');
    assert.ok(other.ok, other.out);
  } finally {
    await stopChild(hook?.child);
    await c.server.close();
  }
});

webhook.run();

const decide = suite('admission decisions');

decide('Deny refuses a reference to what is not there; Warn admits it with the words', async () => {
  const validator = await schemaValidator();
  const schema = (kind: Parameters<typeof validator.validate>[0], o: unknown): ReturnType<typeof validator.validate> =>
    validator.validate(kind, o as Record<string, unknown>);
  const role = {
    apiVersion: 'smsauth.io/v1alpha1',
    kind: 'SecurityRole',
    metadata: { name: 'staff', namespace: 'x' },
    spec: {
      identityStoreRef: { name: 'nowhere' },
      priority: 1,
      members: { containers: ['OU=People,DC=example'] },
      authenticationPolicy: { enforced: ['SMS'] },
    },
  };
  const warned = decideAdmission({ kind: 'SecurityRole', object: role, namespaceObjects: [] }, schema, 'Warn');
  const denied = decideAdmission({ kind: 'SecurityRole', object: role, namespaceObjects: [] }, schema, 'Deny');
  assert.ok(warned.allowed, JSON.stringify(warned));
  assert.match(warned.warnings.join('\n'), 'IdentityStore nowhere not found in namespace x');
  assert.not.ok(denied.allowed);
  assert.match(denied.causes[0]!.message, 'IdentityStore nowhere not found in namespace x');
  assert.is(denied.causes[0]!.field, 'spec.identityStoreRef.name');
});

decide('an update that leaves the spec alone, or of an object being deleted, is not judged: finalizers and labels stay possible', () => {
  const account = { metadata: { name: 'a', finalizers: ['smsauth.io/in-use'] }, spec: { provider: 'console' } };
  assert.ok(needsReview('CREATE', account, undefined));
  assert.ok(needsReview('UPDATE', { ...account, spec: { provider: 'plivo' } }, account));
  assert.not.ok(needsReview('UPDATE', { ...account, metadata: { name: 'a', finalizers: [] } }, account), 'the finalizer removed');
  assert.not.ok(
    needsReview('UPDATE', { ...account, metadata: { ...account.metadata, deletionTimestamp: '2026-12-03T00:00:00Z' }, spec: { provider: 'plivo' } }, account),
  );
});

decide.run();
