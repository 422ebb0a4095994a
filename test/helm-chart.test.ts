// charts/smsauth rendered as Helm would (test/helm/renderer.ts) and checked: Kubernetes schemas,
// the restricted Pod Security profile, values and their schema, RBAC derived from the controller's
// code, the smsauth.sidecar template and the example application that uses it.
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CustomResourceDefinition } from 'kubernetes-models/apiextensions.k8s.io/v1/CustomResourceDefinition';
import { ClusterRole } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole';
import { ClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { Role } from 'kubernetes-models/rbac.authorization.k8s.io/v1/Role';
import { RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding';
import { Service } from 'kubernetes-models/v1/Service';
import { Secret } from 'kubernetes-models/v1/Secret';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { ValidatingWebhookConfiguration } from 'kubernetes-models/admissionregistration.k8s.io/v1/ValidatingWebhookConfiguration';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { isMap, isScalar, parse, parseAllDocuments, parseDocument, type YAMLMap } from 'yaml';
import { readSchemaSet } from '../controller/adapters/files.ts';
import { CONTROLLER_USAGE } from '../controller/cli/controller-command.ts';
import { SIDECAR_USAGE } from '../controller/cli/sidecar-command.ts';
import { WEBHOOK_USAGE } from '../controller/cli/webhook-command.ts';
import { GROUP, KINDS } from '../controller/core/kinds.ts';
import * as bundleSecret from '../controller/runtime/bundle-secret.ts';
import { generatedFiles } from '../controller/tools/generated-files.ts';
import { ROOT } from './helpers/fixtures.ts';
import { renderChart, validateValues, type RenderOptions, type RenderedManifest } from './helm/renderer.ts';

type Json = Record<string, any>;

const CHART = join(ROOT, 'charts', 'smsauth');
const SIDECAR_APP = join(ROOT, 'test', 'fixtures', 'helm', 'sidecar-app');
const EXAMPLE_APP = join(ROOT, 'examples', 'app', 'deployment.yaml');
const read = (path: string): string => readFileSync(path, 'utf8');
const valuesYaml = (): Json => parse(read(join(CHART, 'values.yaml'))) as Json;
const valuesSchema = (): Json => JSON.parse(read(join(CHART, 'values.schema.json'))) as Json;

function ofKind(manifests: RenderedManifest[], kind: string): Json[] {
  return manifests.filter((m) => m.object['kind'] === kind).map((m) => m.object as Json);
}

function one(manifests: RenderedManifest[], kind: string): Json {
  const found = ofKind(manifests, kind);
  assert.is(found.length, 1, `expected one ${kind}, got ${found.length}`);
  return found[0]!;
}

function fail(message: string): never {
  throw new Error(message);
}

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    assert.instance(err, Error);
    return err as Error;
  }
  assert.unreachable('expected a rejection');
  throw new Error('unreachable');
}

// ---------------------------------------------------------------------------
// Kubernetes schemas (kubernetes-models) and the restricted Pod Security profile

const MODELS: Record<string, (o: Json) => { validate(): void }> = {
  'apps/v1 Deployment': (o) => new Deployment(o),
  'v1 ServiceAccount': (o) => new ServiceAccount(o),
  'v1 Service': (o) => new Service(o),
  'v1 Secret': (o) => new Secret(o),
  'apiextensions.k8s.io/v1 CustomResourceDefinition': (o) => new CustomResourceDefinition(o as never),
  'admissionregistration.k8s.io/v1 ValidatingWebhookConfiguration': (o) => new ValidatingWebhookConfiguration(o),
  'rbac.authorization.k8s.io/v1 ClusterRole': (o) => new ClusterRole(o),
  'rbac.authorization.k8s.io/v1 ClusterRoleBinding': (o) => new ClusterRoleBinding(o as never),
  'rbac.authorization.k8s.io/v1 Role': (o) => new Role(o),
  'rbac.authorization.k8s.io/v1 RoleBinding': (o) => new RoleBinding(o as never),
  'networking.k8s.io/v1 NetworkPolicy': (o) => new NetworkPolicy(o),
  'policy/v1 PodDisruptionBudget': (o) => new PodDisruptionBudget(o),
};

/** schemaViolations validates a manifest with kubernetes-models; kinds it lacks (ServiceMonitor) get a structural check here. */
function schemaViolations(o: Json): string[] {
  const key = `${String(o.apiVersion)} ${String(o.kind)}`;
  if (key === 'monitoring.coreos.com/v1 ServiceMonitor') {
    const out: string[] = [];
    if (typeof o.metadata?.name !== 'string') out.push('metadata.name');
    if (typeof o.spec?.selector?.matchLabels !== 'object') out.push('spec.selector.matchLabels');
    if (!Array.isArray(o.spec?.endpoints) || o.spec.endpoints.length === 0) out.push('spec.endpoints');
    for (const e of o.spec?.endpoints ?? [])
      if (typeof e.port !== 'string' || !/^[0-9]+[smh]$/.test(String(e.interval))) out.push(`bad endpoint ${JSON.stringify(e)}`);
    return out;
  }
  if (key === 'cert-manager.io/v1 Issuer') {
    const kinds = ['selfSigned', 'ca'].filter((k) => o.spec?.[k] !== undefined);
    return kinds.length === 1 && (o.spec.ca === undefined || typeof o.spec.ca.secretName === 'string')
      ? []
      : [`Issuer ${o.metadata?.name}: one of selfSigned, ca`];
  }
  if (key === 'cert-manager.io/v1 Certificate') {
    const out: string[] = [];
    if (typeof o.spec?.secretName !== 'string') out.push('spec.secretName');
    if (typeof o.spec?.issuerRef?.name !== 'string' || !['Issuer', 'ClusterIssuer'].includes(o.spec.issuerRef.kind)) out.push('spec.issuerRef');
    for (const d of ['duration', 'renewBefore']) if (o.spec?.[d] !== undefined && !/^([0-9]+(ms|s|m|h))+$/.test(o.spec[d])) out.push(`spec.${d}`);
    if (o.spec?.isCA !== true && !(o.spec?.dnsNames?.length > 0)) out.push('spec.dnsNames');
    return out;
  }
  const model = MODELS[key];
  if (model === undefined) return [`no schema for ${key}: add it to MODELS`];
  try {
    model(o).validate();
    return [];
  } catch (err) {
    return [(err as Error).message];
  }
}

const ALLOWED_VOLUMES = ['configMap', 'csi', 'downwardAPI', 'emptyDir', 'ephemeral', 'persistentVolumeClaim', 'projected', 'secret'];

/**
 * restrictedViolations lists how a pod spec breaks the restricted Pod Security profile and this
 * chart's own rules (non-zero user and group, read-only root with an emptyDir /tmp, resources).
 */
function restrictedViolations(pod: Json): string[] {
  const out: string[] = [];
  const psc: Json = pod.securityContext ?? {};
  for (const host of ['hostNetwork', 'hostPID', 'hostIPC']) if (pod[host] === true) out.push(`pod: ${host}`);
  const volumes = new Map<string, Json>((pod.volumes ?? []).map((v: Json) => [v.name, v]));
  for (const v of volumes.values()) {
    const type = Object.keys(v).find((k) => k !== 'name');
    if (type === undefined || !ALLOWED_VOLUMES.includes(type)) out.push(`volume ${v.name}: type ${type} not allowed`);
  }
  for (const c of [...(pod.initContainers ?? []), ...(pod.containers ?? [])] as Json[]) {
    const at = `container ${c.name}`;
    const sc: Json = c.securityContext ?? {};
    if ((sc.runAsNonRoot ?? psc.runAsNonRoot) !== true) out.push(`${at}: runAsNonRoot is not true`);
    for (const id of ['runAsUser', 'runAsGroup']) {
      const value = sc[id] ?? psc[id];
      if (!Number.isInteger(value) || value <= 0) out.push(`${at}: ${id} is not a non-zero ID`);
    }
    if (sc.readOnlyRootFilesystem !== true) out.push(`${at}: readOnlyRootFilesystem is not true`);
    if (sc.allowPrivilegeEscalation !== false) out.push(`${at}: allowPrivilegeEscalation is not false`);
    if (sc.privileged === true) out.push(`${at}: privileged`);
    if (!(sc.capabilities?.drop ?? []).includes('ALL')) out.push(`${at}: capabilities do not drop ALL`);
    if ((sc.capabilities?.add ?? []).length > 0) out.push(`${at}: capabilities added`);
    const seccomp = (sc.seccompProfile ?? psc.seccompProfile)?.type;
    if (seccomp !== 'RuntimeDefault') out.push(`${at}: seccompProfile is ${String(seccomp)}, not RuntimeDefault`);
    for (const r of ['requests', 'limits'])
      for (const q of ['cpu', 'memory']) if (c.resources?.[r]?.[q] === undefined) out.push(`${at}: no resources.${r}.${q}`);
    for (const p of c.ports ?? []) if (p.hostPort !== undefined) out.push(`${at}: hostPort`);
    const tmp = (c.volumeMounts ?? []).find((m: Json) => m.mountPath === '/tmp');
    if (tmp === undefined || volumes.get(tmp.name)?.emptyDir === undefined) out.push(`${at}: no emptyDir mounted at /tmp`);
  }
  return out;
}

function podSpecs(manifests: RenderedManifest[]): Json[] {
  return manifests
    .map((m) => m.object as Json)
    .filter((o) => o.spec?.template?.spec !== undefined)
    .map((o) => o.spec.template.spec as Json);
}

/** The four CRDs, rendered with the release (crds.enabled). */
const CRDS = KINDS.map(() => 'CustomResourceDefinition');

/**
 * The RBAC of a cluster-wide install: the two ClusterRoles aggregated into view/edit/admin, the
 * controller's, the metrics reviews' (metrics.secure) and the metrics reader's (for scrapers);
 * the bindings of the controller's two; the Lease's Role and binding.
 */
const CLUSTER_RBAC = [...Array<string>(5).fill('ClusterRole'), 'ClusterRoleBinding', 'ClusterRoleBinding', 'Role', 'RoleBinding'];

/** What the default values render, in Helm's install order. */
const DEFAULT_KINDS = [
  'NetworkPolicy',
  'ServiceAccount',
  'Secret',
  ...CRDS,
  ...CLUSTER_RBAC,
  'Service',
  'Service',
  'Deployment',
  'ValidatingWebhookConfiguration',
];

const CASES: { name: string; opts: RenderOptions; kinds: string[] }[] = [
  {
    name: 'default values',
    opts: {},
    kinds: DEFAULT_KINDS,
  },
  {
    name: 'namespaced install',
    opts: { namespace: 'smsauth-system', values: { namespaced: true, watchNamespace: 'identity' } },
    kinds: [
      'NetworkPolicy',
      'ServiceAccount',
      'Secret',
      ...CRDS,
      'ClusterRole',
      'ClusterRole',
      'ClusterRoleBinding',
      'Role',
      'Role',
      'RoleBinding',
      'RoleBinding',
      'Service',
      'Service',
      'Deployment',
      'ValidatingWebhookConfiguration',
    ],
  },
  {
    name: 'ServiceMonitor on, with monitoring.coreos.com/v1',
    opts: { values: { metrics: { serviceMonitor: { enabled: true, labels: { release: 'prometheus' } } } }, apiVersions: ['monitoring.coreos.com/v1'] },
    kinds: [...DEFAULT_KINDS.slice(0, -1), 'ServiceMonitor', 'ValidatingWebhookConfiguration'],
  },
  {
    name: 'ServiceMonitor on, without monitoring.coreos.com/v1',
    opts: { values: { metrics: { serviceMonitor: { enabled: true } } } },
    kinds: DEFAULT_KINDS,
  },
  {
    name: 'PodDisruptionBudget on',
    opts: { values: { controller: { podDisruptionBudget: { enabled: true } } } },
    kinds: ['NetworkPolicy', 'PodDisruptionBudget', ...DEFAULT_KINDS.slice(1)],
  },
  {
    name: 'one replica',
    opts: { values: { controller: { replicas: 1 } } },
    kinds: DEFAULT_KINDS,
  },
  {
    name: 'custom resources, ports, scheduling and metadata',
    opts: {
      values: {
        image: { repository: 'registry.example.com/smsauth', digest: `sha256:${'a'.repeat(64)}` },
        imagePullSecrets: ['regcred'],
        controller: {
          resources: { requests: { cpu: '100m', memory: '200Mi' }, limits: { cpu: 1, memory: '1Gi' } },
          ports: { metrics: 9090, health: 9091 },
          podAnnotations: { 'example.com/team': 'identity' },
          podLabels: { team: 'identity' },
          nodeSelector: { 'kubernetes.io/os': 'linux' },
          tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'platform', effect: 'NoSchedule' }],
          priorityClassName: 'system-cluster-critical',
          securityContext: { runAsUser: 2000, runAsGroup: 3000 },
          affinity: {
            nodeAffinity: {
              requiredDuringSchedulingIgnoredDuringExecution: {
                nodeSelectorTerms: [{ matchExpressions: [{ key: 'pool', operator: 'In', values: ['platform'] }] }],
              },
            },
          },
          podSecurityContext: { fsGroupChangePolicy: 'OnRootMismatch', supplementalGroups: [4000] },
          extraArgs: ['--request-timeout=10s'],
          extraEnv: [{ name: 'HTTPS_PROXY', value: 'http://proxy.example.com:3128' }],
        },
        networkPolicy: {
          ingressFrom: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }],
          apiServer: { cidrs: ['10.0.0.1/32'], ports: [6443] },
        },
      },
    },
    kinds: DEFAULT_KINDS,
  },
  {
    name: 'no NetworkPolicy, RBAC or service account of its own',
    opts: { values: { networkPolicy: { enabled: false }, rbac: { create: false }, serviceAccount: { create: false, name: 'platform-smsauth' } } },
    kinds: ['Secret', ...CRDS, 'Service', 'Service', 'Deployment', 'ValidatingWebhookConfiguration'],
  },
  {
    name: 'no webhook',
    opts: { values: { webhook: { enabled: false } } },
    kinds: ['NetworkPolicy', 'ServiceAccount', 'Secret', ...CRDS, ...CLUSTER_RBAC, 'Service', 'Deployment'],
  },
  {
    name: 'CRDs applied by hand',
    opts: { values: { crds: { enabled: false } } },
    kinds: ['NetworkPolicy', 'ServiceAccount', 'Secret', ...CLUSTER_RBAC, 'Service', 'Service', 'Deployment', 'ValidatingWebhookConfiguration'],
  },
  {
    name: "webhook certificate from cert-manager, with a CA of the release's own",
    opts: { values: { webhook: { certManager: { enabled: true } } }, apiVersions: ['cert-manager.io/v1'] },
    kinds: [
      'NetworkPolicy',
      'ServiceAccount',
      ...CRDS,
      ...CLUSTER_RBAC,
      'Service',
      'Service',
      'Deployment',
      'Certificate',
      'Certificate',
      'Issuer',
      'Issuer',
      'ValidatingWebhookConfiguration',
    ],
  },
  {
    name: 'webhook certificate from a cert-manager ClusterIssuer',
    opts: {
      values: { webhook: { certManager: { enabled: true, issuerRef: { name: 'corporate-ca', kind: 'ClusterIssuer' } } } },
      apiVersions: ['cert-manager.io/v1'],
    },
    kinds: ['NetworkPolicy', 'ServiceAccount', ...CRDS, ...CLUSTER_RBAC, 'Service', 'Service', 'Deployment', 'Certificate', 'ValidatingWebhookConfiguration'],
  },
  {
    name: 'controller disabled (a dependency for the sidecar template only)',
    opts: { values: { controller: { enabled: false } } },
    kinds: [],
  },
];

const manifests = suite('chart manifests');

for (const c of CASES) {
  manifests(`${c.name}: the expected kinds, each valid for its Kubernetes schema, every pod restricted`, async () => {
    const rendered = await renderChart(CHART, c.opts);
    assert.equal(
      rendered.map((m) => m.object['kind']),
      c.kinds,
    );
    for (const m of rendered) assert.equal(schemaViolations(m.object), [], `${m.template} ${String(m.object['kind'])}`);
    for (const pod of podSpecs(rendered)) assert.equal(restrictedViolations(pod), []);
    for (const o of rendered.map((m) => m.object as Json)) {
      const clusterScoped = ['ClusterRole', 'ClusterRoleBinding', 'ValidatingWebhookConfiguration', 'CustomResourceDefinition'].includes(o.kind);
      assert.is(o.metadata.namespace === undefined, clusterScoped, `${o.kind} ${o.metadata.name} namespace`);
    }
  });
}

manifests('the controller Deployment: replicas, leader election, POD_NAMESPACE, flags matching the ports, probes', async () => {
  const values = valuesYaml();
  const d = one(await renderChart(CHART), 'Deployment');
  assert.is(d.spec.replicas, 2);
  const pod = d.spec.template.spec;
  assert.equal(
    pod.containers.map((x: Json) => x.name),
    ['controller', 'webhook'],
  );
  const c = pod.containers[0];
  assert.is(c.args[0], 'controller');
  assert.ok(c.args.includes('--leader-elect'));
  assert.not.ok(
    c.args.some((a: string) => a.startsWith('--namespace')),
    'cluster-wide by default',
  );
  assert.equal(c.env.find((e: Json) => e.name === 'POD_NAMESPACE').valueFrom, { fieldRef: { fieldPath: 'metadata.namespace' } });
  const port = (name: string): number => c.ports.find((p: Json) => p.name === name).containerPort;
  assert.is(port('metrics'), values.controller.ports.metrics);
  assert.is(port('health'), values.controller.ports.health);
  assert.ok(c.args.includes(`--metrics-bind-address=:${port('metrics')}`));
  assert.ok(c.args.includes(`--health-probe-bind-address=:${port('health')}`));
  assert.equal(c.livenessProbe.httpGet, { path: '/healthz', port: 'health' });
  assert.equal(c.readinessProbe.httpGet, { path: '/readyz', port: 'health' });
  assert.is(c.image, 'smsauth:0.1.0');
  assert.is(pod.serviceAccountName, 'release-name-smsauth');
  assert.is(pod.automountServiceAccountToken, true, 'the controller needs its token');
});

manifests('the webhook: a container in each controller pod, a Service to it, and a configuration whose caBundle signed the certificate it serves', async () => {
  const values = valuesYaml();
  assert.is(`:${values.webhook.port}`, /--bind-address ADDR\s+default (:\d+)/.exec(WEBHOOK_USAGE)?.[1]);
  const rendered = await renderChart(CHART, {
    releaseName: 'auth',
    namespace: 'smsauth-system',
    values: { webhook: { failurePolicy: 'Ignore', timeoutSeconds: 4, danglingReferences: 'Deny' } },
  });
  const d = one(rendered, 'Deployment');
  const pod = d.spec.template.spec;
  const c = pod.containers.find((x: Json) => x.name === 'webhook') ?? fail('no webhook container');
  assert.is(c.image, pod.containers[0].image);
  const flags = parseCliArgs(WEBHOOK_USAGE, c.args.slice(1));
  assert.is(c.args[0], 'webhook');
  assert.is(flags['dangling-references'], 'Deny');
  assert.is(flags['request-timeout'], '3200ms', 'answers before the API server gives up');
  assert.equal(c.readinessProbe.httpGet, { path: '/readyz', port: 'webhook', scheme: 'HTTPS' });
  const service = ofKind(rendered, 'Service').find((x) => x.spec.ports[0].name === 'webhook') ?? fail('no webhook Service');
  assert.equal(service.spec.selector, d.spec.selector.matchLabels);
  assert.ok(c.ports.some((p: Json) => p.name === service.spec.ports[0].targetPort));
  const conf = one(rendered, 'ValidatingWebhookConfiguration');
  const hook = conf.webhooks[0];
  assert.equal(hook.clientConfig.service, { namespace: 'smsauth-system', name: service.metadata.name, path: '/validate', port: service.spec.ports[0].port });
  assert.equal([hook.failurePolicy, hook.timeoutSeconds, hook.sideEffects], ['Ignore', 4, 'None']);
  assert.equal([...hook.rules[0].resources].sort(), KINDS.map((k) => k.plural).sort());
  assert.is(hook.namespaceSelector, undefined, 'every namespace, as the controller watches');
  // The Secret the container mounts: a certificate for the Service's DNS name, signed by the caBundle's CA.
  const secret = one(rendered, 'Secret');
  const volume = pod.volumes.find((v: Json) => v.name === 'tls');
  assert.is(volume.secret.secretName, secret.metadata.name);
  assert.ok(c.args.includes(`--cert-dir=${String(c.volumeMounts.find((m: Json) => m.name === 'tls').mountPath)}`));
  assert.is(secret.type, 'kubernetes.io/tls');
  assert.is(secret.data['ca.crt'], hook.clientConfig.caBundle);
  const ca = new X509Certificate(Buffer.from(hook.clientConfig.caBundle, 'base64'));
  const cert = new X509Certificate(Buffer.from(secret.data['tls.crt'], 'base64'));
  assert.ok(cert.verify(ca.publicKey), 'signed by the CA');
  assert.ok(cert.checkHost(`${String(service.metadata.name)}.smsauth-system.svc`) !== undefined);
  const metricsService = ofKind(rendered, 'Service').find((x) => x.spec.ports[0].name === 'metrics')!;
  assert.ok(cert.checkHost(`${String(metricsService.metadata.name)}.smsauth-system.svc`) !== undefined, 'and /metrics (metrics.secure)');
  const controller = pod.containers.find((x: Json) => x.name === 'controller');
  assert.ok(controller.args.includes('--metrics-secure'));
  assert.ok(controller.args.includes(`--metrics-cert-dir=${String(c.volumeMounts.find((m: Json) => m.name === 'tls').mountPath)}`));
  parseCliArgs(CONTROLLER_USAGE, controller.args.slice(1));
  assert.ok(cert.checkPrivateKey(createPrivateKey(Buffer.from(secret.data['tls.key'], 'base64'))));

  // cert-manager: no Secret of the chart's; the Certificate's Secret is the one mounted, and the CA injector fills caBundle.
  const managed = await renderChart(CHART, {
    namespace: 'smsauth-system',
    values: { webhook: { certManager: { enabled: true, issuerRef: { name: 'corporate-ca', kind: 'ClusterIssuer' } } } },
  });
  assert.equal(ofKind(managed, 'Secret'), []);
  const certificate = one(managed, 'Certificate');
  const managedConf = one(managed, 'ValidatingWebhookConfiguration');
  assert.is(managedConf.metadata.annotations['cert-manager.io/inject-ca-from'], `smsauth-system/${String(certificate.metadata.name)}`);
  assert.is(managedConf.webhooks[0].clientConfig.caBundle, undefined);
  assert.equal(certificate.spec.issuerRef, { name: 'corporate-ca', kind: 'ClusterIssuer', group: 'cert-manager.io' });
  const managedPod = one(managed, 'Deployment').spec.template.spec;
  assert.is(managedPod.volumes.find((v: Json) => v.name === 'tls').secret.secretName, certificate.spec.secretName);
  const managedService = ofKind(managed, 'Service').find((x) => x.spec.ports[0].name === 'webhook')!;
  assert.ok(certificate.spec.dnsNames.includes(`${String(managedService.metadata.name)}.smsauth-system.svc`));
  // Without an issuer named, a self-signed CA of the release's own issues it.
  const own = await renderChart(CHART, { values: { webhook: { certManager: { enabled: true } } } });
  const [caCert, serving] = ofKind(own, 'Certificate');
  const caIssuer = ofKind(own, 'Issuer').find((i) => i.spec.ca !== undefined)!;
  assert.is(caCert!.spec.isCA, true);
  assert.is(caIssuer.spec.ca.secretName, caCert!.spec.secretName);
  assert.equal(serving!.spec.issuerRef, { name: caIssuer.metadata.name, kind: 'Issuer', group: 'cert-manager.io' });

  assert.equal(ofKind(await renderChart(CHART, { values: { webhook: { enabled: false } } }), 'ValidatingWebhookConfiguration'), []);
  assert.equal(
    one(await renderChart(CHART, { values: { webhook: { enabled: false } } }), 'Deployment').spec.template.spec.containers.map((x: Json) => x.name),
    ['controller'],
  );
});

manifests('the chart defaults are the CLI defaults, and every flag the chart passes is one the CLI knows', async () => {
  const values = valuesYaml();
  assert.is(`:${values.controller.ports.metrics}`, /--metrics-bind-address ADDR\s+default (:\d+)/.exec(CONTROLLER_USAGE)?.[1]);
  assert.is(`:${values.controller.ports.health}`, /--health-probe-bind-address ADDR\s+[^\n]*default (:\d+)/.exec(CONTROLLER_USAGE)?.[1]);
  assert.is(String(values.controller.workers), /--workers N[^\n]*\(default (\d+)\)/.exec(CONTROLLER_USAGE)?.[1]);
  assert.is(String(values.sidecar.port), /--port N\s+default (\d+)/.exec(SIDECAR_USAGE)?.[1]);
  for (const c of [{}, { values: { namespaced: true } }]) {
    const args = one(await renderChart(CHART, c), 'Deployment').spec.template.spec.containers[0].args as string[];
    assert.is(args[0], 'controller');
    parseCliArgs(CONTROLLER_USAGE, args.slice(1));
  }
});

manifests('a namespaced install watches one namespace: --namespace, nothing cluster-wide', async () => {
  const ns = one(await renderChart(CHART, { namespace: 'ops', values: { namespaced: true } }), 'Deployment');
  assert.ok(ns.spec.template.spec.containers[0].args.includes('--namespace=ops'), 'default: the release namespace');
  const rendered = await renderChart(CHART, { namespace: 'ops', values: { namespaced: true, watchNamespace: 'identity' } });
  assert.ok(one(rendered, 'Deployment').spec.template.spec.containers[0].args.includes('--namespace=identity'));
  // Nothing cluster-wide but what secure metrics need: the reviews are cluster-scoped.
  assert.equal(
    ofKind(rendered, 'ClusterRole').map((r) => r.metadata.name),
    ['release-name-smsauth-metrics-auth', 'release-name-smsauth-metrics-reader'],
  );
  assert.equal(
    ofKind(rendered, 'ClusterRoleBinding').map((r) => r.metadata.name),
    ['release-name-smsauth-metrics-auth'],
  );
  const plain = await renderChart(CHART, { namespace: 'ops', values: { namespaced: true, metrics: { secure: false } } });
  assert.equal([...ofKind(plain, 'ClusterRole'), ...ofKind(plain, 'ClusterRoleBinding')], []);
  assert.equal(
    ofKind(rendered, 'Role')
      .map((r) => r.metadata.namespace)
      .sort(),
    ['identity', 'ops'],
  );
});

manifests('the metrics Service, the ServiceMonitor and the PodDisruptionBudget', async () => {
  const rendered = await renderChart(CHART, {
    values: { metrics: { serviceMonitor: { enabled: true, interval: '15s' } }, controller: { podDisruptionBudget: { enabled: true, minAvailable: 1 } } },
    apiVersions: ['monitoring.coreos.com/v1'],
  });
  const d = one(rendered, 'Deployment');
  const service = ofKind(rendered, 'Service').find((s) => s.spec.ports[0].name === 'metrics') ?? fail('no metrics Service');
  assert.equal(service.spec.selector, d.spec.selector.matchLabels);
  assert.equal(service.spec.ports, [{ name: 'metrics', port: 8080, targetPort: 'metrics', protocol: 'TCP' }]);
  const monitor = one(rendered, 'ServiceMonitor');
  for (const [k, v] of Object.entries(monitor.spec.selector.matchLabels as Json))
    assert.is(service.metadata.labels[k], v, `the ServiceMonitor selects the Service by ${k}`);
  assert.equal(monitor.spec.endpoints[0], {
    port: 'metrics',
    path: '/metrics',
    scheme: 'https',
    bearerTokenFile: '/var/run/secrets/kubernetes.io/serviceaccount/token',
    tlsConfig: { serverName: `${String(service.metadata.name)}.default.svc`, ca: { secret: { name: one(rendered, 'Secret').metadata.name, key: 'ca.crt' } } },
    interval: '15s',
    scrapeTimeout: '10s',
  });
  const plainMonitor = one(
    await renderChart(CHART, { values: { metrics: { secure: false, serviceMonitor: { enabled: true } } }, apiVersions: ['monitoring.coreos.com/v1'] }),
    'ServiceMonitor',
  );
  assert.equal(plainMonitor.spec.endpoints[0], { port: 'metrics', path: '/metrics', scheme: 'http', interval: '30s', scrapeTimeout: '10s' });
  const pdb = one(rendered, 'PodDisruptionBudget');
  assert.is(pdb.spec.minAvailable, 1);
  assert.equal(pdb.spec.selector.matchLabels, d.spec.selector.matchLabels);
  const err = await rejection(renderChart(CHART, { values: { controller: { replicas: 1, podDisruptionBudget: { enabled: true, minAvailable: 1 } } } }));
  assert.match(err.message, /minAvailable \(1\) must be lower than controller\.replicas \(1\)/);
  assert.is(
    one(
      await renderChart(CHART, { values: { controller: { replicas: 1, podDisruptionBudget: { enabled: true, minAvailable: '50%' } } } }),
      'PodDisruptionBudget',
    ).spec.minAvailable,
    '50%',
  );
});

manifests('the NetworkPolicy: ingress only to the metrics, probe and webhook ports; egress only to the API server and DNS', async () => {
  for (const values of [{}, { controller: { ports: { metrics: 9090, health: 9091 } }, networkPolicy: { apiServer: { cidrs: ['10.0.0.1/32'] } } }]) {
    const rendered = await renderChart(CHART, { values });
    const d = one(rendered, 'Deployment');
    const np = one(rendered, 'NetworkPolicy');
    assert.equal(np.spec.podSelector.matchLabels, d.spec.selector.matchLabels);
    assert.equal(np.spec.policyTypes, ['Ingress', 'Egress']);
    const [controller, webhook] = d.spec.template.spec.containers as Json[];
    assert.is(np.spec.ingress.length, 2);
    assert.equal(np.spec.ingress[0].ports.map((p: Json) => p.port).sort(), controller!.ports.map((p: Json) => p.containerPort).sort());
    assert.equal(np.spec.ingress[1].ports, [{ port: webhook!.ports[0].containerPort, protocol: 'TCP' }], 'the webhook port, from the API server');
    assert.is(np.spec.ingress[1].from, undefined, 'from any address by default: where the API server calls from depends on the cluster');
    const egress = np.spec.egress as Json[];
    assert.is(egress.length, 2);
    assert.equal(
      egress[0]!.ports.map((p: Json) => [p.port, p.protocol]),
      [
        [443, 'TCP'],
        [6443, 'TCP'],
      ],
    );
    assert.equal(
      egress[1]!.ports.map((p: Json) => [p.port, p.protocol]),
      [
        [53, 'UDP'],
        [53, 'TCP'],
      ],
    );
    assert.equal(egress[1]!.to[0].podSelector.matchLabels, { 'k8s-app': 'kube-dns' });
  }
  const pinned = one(await renderChart(CHART, { values: { networkPolicy: { apiServer: { cidrs: ['10.0.0.1/32', '10.0.0.2/32'] } } } }), 'NetworkPolicy');
  assert.equal(pinned.spec.egress[0].to, [{ ipBlock: { cidr: '10.0.0.1/32' } }, { ipBlock: { cidr: '10.0.0.2/32' } }]);
  // The controller's checks (providers, directories) get the egress they are given, and no other.
  const checks = one(
    await renderChart(CHART, {
      values: { networkPolicy: { checksTo: [{ ports: [443] }, { ports: [636, 389], to: [{ ipBlock: { cidr: '10.1.0.0/16' } }] }] } },
    }),
    'NetworkPolicy',
  );
  assert.equal(
    checks.spec.egress.slice(1, 3).map((e: Json) => [e.ports.map((p: Json) => `${p.port}/${p.protocol}`), e.to ?? 'any']),
    [
      [['443/TCP'], 'any'],
      [['636/TCP', '389/TCP'], [{ ipBlock: { cidr: '10.1.0.0/16' } }]],
    ],
  );
  assert.is(checks.spec.egress.length, 4, 'the API server, the two checks, DNS');
  assert.is(one(await renderChart(CHART), 'NetworkPolicy').spec.egress.length, 2, 'none by default');
});

manifests('custom values reach the pod', async () => {
  const c = CASES.find((x) => x.name.startsWith('custom'))!;
  const d = one(await renderChart(CHART, c.opts), 'Deployment');
  const pod = d.spec.template.spec;
  const container = pod.containers[0];
  assert.equal(container.resources, { requests: { cpu: '100m', memory: '200Mi' }, limits: { cpu: 1, memory: '1Gi' } });
  assert.is(container.image, `registry.example.com/smsauth@sha256:${'a'.repeat(64)}`);
  assert.equal(pod.imagePullSecrets, [{ name: 'regcred' }]);
  assert.is(pod.securityContext.runAsUser, 2000);
  assert.is(container.securityContext.runAsGroup, 3000);
  assert.is(d.spec.template.metadata.labels.team, 'identity');
  assert.is(d.spec.template.metadata.annotations['example.com/team'], 'identity');
  assert.ok(container.args.includes('--metrics-bind-address=:9090'));
  assert.is(pod.priorityClassName, 'system-cluster-critical');
  assert.is(pod.tolerations[0].key, 'dedicated');
});

manifests('extraArgs, extraEnv, affinity and podSecurityContext reach the controller, over the restricted profile', async () => {
  const d = one(
    await renderChart(CHART, {
      values: {
        controller: {
          extraArgs: ['--request-timeout=10s'],
          extraEnv: [{ name: 'HTTPS_PROXY', value: 'http://proxy.example.com:3128' }],
          affinity: { podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [] } },
          podSecurityContext: { fsGroupChangePolicy: 'OnRootMismatch', supplementalGroups: [4000] },
        },
      },
    }),
    'Deployment',
  );
  const pod = d.spec.template.spec;
  const c = pod.containers[0];
  assert.is(c.args.at(-1), '--request-timeout=10s');
  assert.ok(parseCliArgs(CONTROLLER_USAGE, c.args.slice(1))['request-timeout'] === '10s', 'a flag the controller knows');
  assert.equal(c.env.at(-1), { name: 'HTTPS_PROXY', value: 'http://proxy.example.com:3128' });
  assert.equal(c.env[0].name, 'POD_NAMESPACE');
  assert.equal(pod.affinity, { podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [] } });
  assert.equal([pod.securityContext.fsGroupChangePolicy, pod.securityContext.supplementalGroups], ['OnRootMismatch', [4000]]);
  assert.equal([pod.securityContext.runAsNonRoot, pod.securityContext.seccompProfile], [true, { type: 'RuntimeDefault' }]);
  assert.equal(restrictedViolations(pod), []);
  // What the restricted profile sets is not a podSecurityContext value: root is refused, not merged.
  assert.match((await rejection(renderChart(CHART, { values: { controller: { podSecurityContext: { runAsUser: 0 } } } }))).message, 'runAsUser');
});

manifests('the PrometheusRule alerts on metrics the code exports, where the operator is served', async () => {
  const values = { metrics: { prometheusRule: { enabled: true, for: '10m', labels: { release: 'prometheus' } } } };
  assert.equal(ofKind(await renderChart(CHART, { values }), 'PrometheusRule'), [], 'nothing without monitoring.coreos.com/v1');
  const rule = one(await renderChart(CHART, { values, apiVersions: ['monitoring.coreos.com/v1'] }), 'PrometheusRule');
  assert.is(rule.metadata.labels.release, 'prometheus');
  const rules = (rule.spec.groups as Json[]).flatMap((g) => g.rules as Json[]);
  assert.ok(rules.length >= 8);
  const exported = new Set<string>();
  for (const f of readdirSync(join(ROOT, 'controller'), { recursive: true }) as string[]) {
    if (!f.endsWith('.ts')) continue;
    for (const m of read(join(ROOT, 'controller', f)).matchAll(/name: '([a-z_]+)'/g)) exported.add(m[1]!);
  }
  for (const r of rules) {
    assert.ok(typeof r.alert === 'string' && r.alert.startsWith('Smsauth'), JSON.stringify(r));
    assert.ok(r.labels.severity === 'warning' || r.labels.severity === 'critical');
    const metrics = [...String(r.expr).matchAll(/\b((?:controller_runtime|workqueue|leader_election|smsauth)_[a-z_]+)/g)].map((m) => m[1]!);
    assert.ok(metrics.length > 0, r.alert);
    for (const m of metrics) assert.ok(exported.has(m), `${r.alert}: ${m} is exported by the code`);
  }
  assert.ok(
    rules.some((r) => r.for === '10m'),
    'for follows the value',
  );
});

manifests.run();

// ---------------------------------------------------------------------------

const restricted = suite('restricted profile checks');

const MUTATIONS: { name: string; mutate: (pod: Json) => void; want: RegExp }[] = [
  {
    name: 'runAsNonRoot unset',
    mutate: (p) => {
      delete p.securityContext.runAsNonRoot;
      delete p.containers[0].securityContext.runAsNonRoot;
    },
    want: /runAsNonRoot/,
  },
  {
    name: 'root user',
    mutate: (p) => {
      p.containers[0].securityContext.runAsUser = 0;
    },
    want: /runAsUser/,
  },
  {
    name: 'root group',
    mutate: (p) => {
      p.containers[0].securityContext.runAsGroup = 0;
    },
    want: /runAsGroup/,
  },
  {
    name: 'writable root',
    mutate: (p) => {
      delete p.containers[0].securityContext.readOnlyRootFilesystem;
    },
    want: /readOnlyRootFilesystem/,
  },
  {
    name: 'privilege escalation',
    mutate: (p) => {
      p.containers[0].securityContext.allowPrivilegeEscalation = true;
    },
    want: /allowPrivilegeEscalation/,
  },
  {
    name: 'capabilities kept',
    mutate: (p) => {
      p.containers[0].securityContext.capabilities = { drop: ['NET_RAW'] };
    },
    want: /drop ALL/,
  },
  {
    name: 'capability added',
    mutate: (p) => {
      p.containers[0].securityContext.capabilities.add = ['SYS_ADMIN'];
    },
    want: /added/,
  },
  {
    name: 'unconfined seccomp',
    mutate: (p) => {
      p.securityContext.seccompProfile = { type: 'Unconfined' };
      p.containers[0].securityContext.seccompProfile = { type: 'Unconfined' };
    },
    want: /seccompProfile/,
  },
  {
    name: 'no limits',
    mutate: (p) => {
      delete p.containers[0].resources.limits;
    },
    want: /resources\.limits\.cpu/,
  },
  {
    name: 'no /tmp emptyDir',
    mutate: (p) => {
      p.volumes = [];
    },
    want: /\/tmp/,
  },
  {
    name: 'hostPath volume',
    mutate: (p) => {
      p.volumes.push({ name: 'h', hostPath: { path: '/' } });
    },
    want: /hostPath not allowed/,
  },
  {
    name: 'host network',
    mutate: (p) => {
      p.hostNetwork = true;
    },
    want: /hostNetwork/,
  },
];

for (const m of MUTATIONS) {
  restricted(`catch a pod spec with ${m.name}`, async () => {
    const pod = one(await renderChart(CHART), 'Deployment').spec.template.spec;
    assert.equal(restrictedViolations(pod), []);
    m.mutate(pod);
    const found = restrictedViolations(pod);
    assert.ok(
      found.some((v) => m.want.test(v)),
      found.join('; ') || 'no violation found',
    );
  });
}

restricted.run();

// ---------------------------------------------------------------------------

const values = suite('values.yaml and values.schema.json');

/** leafPaths lists the dotted paths of the scalars, lists and empty maps of a values tree. */
function leafPaths(v: unknown, prefix = ''): string[] {
  if (typeof v !== 'object' || v === null || Array.isArray(v) || Object.keys(v).length === 0) return [prefix];
  return Object.entries(v).flatMap(([k, x]) => leafPaths(x, prefix === '' ? k : `${prefix}.${k}`));
}

function hasPath(v: unknown, path: string): boolean {
  let current = v;
  for (const key of path.split('.')) {
    if (typeof current !== 'object' || current === null || !(key in current)) return false;
    current = (current as Json)[key];
  }
  return true;
}

function resolveRef(schema: Json, node: Json): Json {
  let n = node;
  while (typeof n.$ref === 'string')
    n = n.$ref
      .replace(/^#\//, '')
      .split('/')
      .reduce((o: Json, k: string) => o[k], schema);
  return n;
}

function schemaHasPath(schema: Json, path: string): boolean {
  let node = schema;
  for (const key of path.split('.')) {
    node = resolveRef(schema, node);
    const next = node.properties?.[key];
    if (next === undefined) return false;
    node = next;
  }
  return true;
}

function templateFiles(): { name: string; text: string }[] {
  const dir = join(CHART, 'templates');
  return readdirSync(dir).map((name) => ({ name, text: read(join(dir, name)) }));
}

// withoutComments drops the template comments (slash-star ... star-slash inside braces), whose examples are not reads.
function withoutComments(text: string): string {
  return text.replace(/\{\{-?\s*\/\*[\s\S]*?\*\/\s*-?\}\}/g, '');
}

/** valuesRead lists the .Values paths the chart's templates read. */
function valuesRead(): Set<string> {
  const paths = new Set<string>();
  for (const { text } of templateFiles()) for (const m of withoutComments(text).matchAll(/\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)/g)) paths.add(m[1]!.slice(1));
  return paths;
}

/** sidecarSettingsRead lists the settings of `$c` (the merged sidecar config) that _sidecar.tpl reads. */
function sidecarSettingsRead(): Set<string> {
  const paths = new Set<string>();
  for (const m of withoutComments(read(join(CHART, 'templates', '_sidecar.tpl'))).matchAll(/\$c((?:\.[A-Za-z_][A-Za-z0-9_]*)+)/g)) paths.add(m[1]!.slice(1));
  return paths;
}

values('values.yaml validates against values.schema.json, a draft-07 schema', async () => {
  const schema = valuesSchema();
  assert.is(schema.$schema, 'http://json-schema.org/draft-07/schema#');
  assert.equal(await validateValues(CHART, {}), []);
  assert.equal(await validateValues(CHART, valuesYaml()), []);
  // A long release name (Helm allows 53 characters) still gives names Kubernetes accepts: a Service's is a DNS label, at most 63.
  const long = await renderChart(CHART, { releaseName: 'payments-platform-identity-verify-prod-eu-west-1', namespace: 'identity' });
  const services = ofKind(long, 'Service');
  assert.ok(services.length > 0);
  for (const svc of services)
    assert.ok(String(svc.metadata.name).length <= 63 && /^[a-z]([-a-z0-9]*[a-z0-9])?$/.test(String(svc.metadata.name)), String(svc.metadata.name));
  // As a dependency, Helm adds `global` to every chart's values, and a parent's condition names `enabled`.
  assert.equal(await validateValues(CHART, { global: { imageRegistry: 'mirror.example' }, enabled: true }), []);
});

values('the schema is strict: additionalProperties false on every object with properties, a schema on every map, a type or enum everywhere', () => {
  const schema = valuesSchema();
  const problems: string[] = [];
  // Visits the subschemas only (not keywords such as required or enum); conditions (if/then) and
  // property-name rules may constrain without a type.
  const walk = (n: Json, at: string, typed: boolean): void => {
    if (typed && (n.type === 'object' || n.properties !== undefined)) {
      if (n.properties !== undefined && n.additionalProperties !== false) problems.push(`${at}: additionalProperties is not false`);
      if (n.properties === undefined && (typeof n.additionalProperties !== 'object' || n.additionalProperties.type === undefined))
        problems.push(`${at}: a map without a schema for its values`);
    }
    if (typed && ['type', 'enum', 'const', '$ref', 'anyOf'].every((k) => n[k] === undefined)) problems.push(`${at}: no type`);
    for (const [k, v] of Object.entries((n.properties ?? {}) as Json)) walk(v, `${at}/properties/${k}`, typed);
    for (const [k, v] of Object.entries((n.definitions ?? {}) as Json)) walk(v, `${at}/definitions/${k}`, true);
    if (typeof n.items === 'object') walk(n.items, `${at}/items`, typed);
    if (typeof n.additionalProperties === 'object') walk(n.additionalProperties, `${at}/additionalProperties`, typed);
    for (const [i, v] of ((n.anyOf ?? []) as Json[]).entries()) walk(v, `${at}/anyOf/${i}`, typed);
    for (const [i, v] of ((n.allOf ?? []) as Json[]).entries()) walk(v, `${at}/allOf/${i}`, false);
    for (const k of ['if', 'then', 'else', 'propertyNames']) if (typeof n[k] === 'object') walk(n[k], `${at}/${k}`, false);
  };
  walk(schema, '', true);
  assert.equal(problems, []);
  // Every key values.yaml has is required: a null override cannot remove one silently.
  for (const path of leafPaths(valuesYaml())) {
    const keys = path.split('.');
    let node = schema;
    for (const key of keys) {
      node = resolveRef(schema, node);
      assert.ok((node.required ?? []).includes(key), `${path}: ${key} is not required`);
      node = node.properties[key];
    }
  }
});

const BAD_VALUES: { name: string; values: Json; pointer: string; keyword: string }[] = [
  { name: 'an unknown top-level key', values: { replicaCount: 3 }, pointer: '/replicaCount', keyword: 'additionalProperties' },
  { name: 'a misspelt nested key', values: { controller: { replica: 3 } }, pointer: '/controller/replica', keyword: 'additionalProperties' },
  { name: 'zero replicas', values: { controller: { replicas: 0 } }, pointer: '/controller/replicas', keyword: 'minimum' },
  { name: 'replicas as a string', values: { controller: { replicas: '2' } }, pointer: '/controller/replicas', keyword: 'type' },
  { name: 'a port out of range', values: { controller: { ports: { metrics: 70000 } } }, pointer: '/controller/ports/metrics', keyword: 'maximum' },
  {
    name: 'running as root',
    values: { controller: { securityContext: { runAsUser: 0 } } },
    pointer: '/controller/securityContext/runAsUser',
    keyword: 'minimum',
  },
  {
    name: 'the sidecar as root',
    values: { sidecar: { securityContext: { runAsGroup: 0 } } },
    pointer: '/sidecar/securityContext/runAsGroup',
    keyword: 'minimum',
  },
  { name: 'a bad pull policy', values: { image: { pullPolicy: 'Sometimes' } }, pointer: '/image/pullPolicy', keyword: 'enum' },
  { name: 'a bad log level', values: { controller: { logLevel: 'trace' } }, pointer: '/controller/logLevel', keyword: 'enum' },
  {
    name: 'a bad memory quantity',
    values: { controller: { resources: { limits: { memory: '1 GB' } } } },
    pointer: '/controller/resources/limits/memory',
    keyword: 'pattern',
  },
  { name: 'removing the limits', values: { controller: { resources: { limits: null } } }, pointer: '/controller/resources/limits', keyword: 'required' },
  {
    name: 'an unknown resource',
    values: { controller: { resources: { requests: { gpu: 1 } } } },
    pointer: '/controller/resources/requests/gpu',
    keyword: 'additionalProperties',
  },
  { name: 'a bad digest', values: { image: { digest: 'latest' } }, pointer: '/image/digest', keyword: 'pattern' },
  { name: 'a bad namespace name', values: { watchNamespace: 'Not_A_Namespace' }, pointer: '/watchNamespace', keyword: 'anyOf' },
  {
    name: 'a bad scrape interval',
    values: { metrics: { serviceMonitor: { interval: 'often' } } },
    pointer: '/metrics/serviceMonitor/interval',
    keyword: 'pattern',
  },
  { name: 'a bad CIDR', values: { networkPolicy: { apiServer: { cidrs: ['10.0.0.1'] } } }, pointer: '/networkPolicy/apiServer/cidrs/0', keyword: 'pattern' },
  {
    name: 'an unknown peer field',
    values: { networkPolicy: { ingressFrom: [{ namespace: 'monitoring' }] } },
    pointer: '/networkPolicy/ingressFrom/0/namespace',
    keyword: 'additionalProperties',
  },
  { name: 'a sidecar host beyond the two allowed', values: { sidecar: { host: '10.0.0.1' } }, pointer: '/sidecar/host', keyword: 'enum' },
  { name: 'the sidecar off loopback without a token', values: { sidecar: { host: '0.0.0.0' } }, pointer: '/sidecar/tokenSecretRef/name', keyword: 'pattern' },
  { name: 'a Redis URL that is not one', values: { sidecar: { redis: { url: 'localhost:6379' } } }, pointer: '/sidecar/redis/url', keyword: 'pattern' },
  {
    name: 'a bad PDB percentage',
    values: { controller: { podDisruptionBudget: { minAvailable: '150%' } } },
    pointer: '/controller/podDisruptionBudget/minAvailable',
    keyword: 'anyOf',
  },
];

for (const c of BAD_VALUES) {
  values(`refuses ${c.name}`, async () => {
    const errors = await validateValues(CHART, c.values);
    assert.ok(
      errors.some((e) => e.pointer === c.pointer && e.keyword === c.keyword),
      `expected ${c.keyword} at ${c.pointer}, got ${JSON.stringify(errors.map((e) => [e.pointer, e.keyword]))}`,
    );
  });
}

values('renderChart refuses bad values before rendering, as helm install does', async () => {
  const err = await rejection(renderChart(CHART, { values: { controller: { replicas: 0 } } }));
  assert.match(err.message, /values don't meet the specifications of the schema/);
  assert.match(err.message, '/controller/replicas');
});

values('every value the templates read exists in values.yaml and in the schema', () => {
  const defaults = valuesYaml();
  const schema = valuesSchema();
  const read = valuesRead();
  assert.ok(read.size > 20, `found ${read.size} paths`);
  for (const path of read) {
    assert.ok(hasPath(defaults, path), `.Values.${path} is not in values.yaml`);
    assert.ok(schemaHasPath(schema, path), `.Values.${path} is not in values.schema.json`);
  }
  for (const path of sidecarSettingsRead()) {
    assert.ok(hasPath(defaults.sidecar, path), `sidecar setting ${path} is not in values.yaml's sidecar block`);
    assert.ok(schemaHasPath(schema, `sidecar.${path}`), `sidecar setting ${path} is not in values.schema.json`);
  }
});

values('every value of values.yaml is read by a template (no dead values)', () => {
  const read = [...valuesRead()];
  const sidecar = [...sidecarSettingsRead()];
  const covered = (path: string, by: string[]): boolean => by.some((r) => path === r || path.startsWith(`${r}.`));
  for (const path of leafPaths(valuesYaml())) {
    if (path.startsWith('sidecar.')) assert.ok(covered(path.slice('sidecar.'.length), sidecar), `${path} is not read by _sidecar.tpl`);
    else assert.ok(covered(path, read), `${path} is read by no template`);
  }
});

values('every value of values.yaml is documented by a comment', () => {
  const doc = parseDocument(read(join(CHART, 'values.yaml')));
  const missing: string[] = [];
  const walk = (map: YAMLMap, prefix: string): void => {
    map.items.forEach((pair, i) => {
      const key = pair.key as { value?: unknown; commentBefore?: string | null };
      const path = `${prefix}${String(key.value)}`;
      const comment = key.commentBefore ?? (i === 0 ? map.commentBefore : undefined);
      if (!isScalar(pair.key) || comment === undefined || comment === null || comment.trim().length < 8) missing.push(path);
      if (isMap(pair.value)) walk(pair.value, `${path}.`);
    });
  };
  walk(doc.contents as YAMLMap, '');
  assert.equal(missing, []);
});

values.run();

// ---------------------------------------------------------------------------
// RBAC: exactly what controller/adapters/kubernetes.ts calls

interface Permission {
  group: string;
  resource: string;
  verb: string;
  /** Names the rule is limited to; undefined: any. */
  names?: string[];
}

const SMSAUTH_RESOURCES = KINDS.map((k) => k.plural);
const smsauth = (verb: string, suffix = ''): Permission[] => SMSAUTH_RESOURCES.map((r) => ({ group: GROUP, resource: `${r}${suffix}`, verb }));

/**
 * API_CALLS maps each client-node call (API class and method) to the permissions it needs. A call
 * the code makes that is missing here fails the test: a new API call cannot slip by.
 * Names: see expectedNames below.
 */
const API_CALLS: Record<string, Permission[]> = {
  'CustomObjectsApi.listClusterCustomObject': smsauth('list'),
  'CustomObjectsApi.listNamespacedCustomObject': smsauth('list'),
  'CustomObjectsApi.patchNamespacedCustomObjectStatus': smsauth('patch', '/status'),
  // setFinalizers: only gateway accounts carry the smsauth.io/in-use finalizer (checked below).
  'CustomObjectsApi.patchNamespacedCustomObject': [{ group: GROUP, resource: 'smsgatewayaccounts', verb: 'patch' }],
  'CoreV1Api.listSecretForAllNamespaces': [
    { group: '', resource: 'secrets', verb: 'list' },
    { group: '', resource: 'secrets', verb: 'watch' },
  ],
  'CoreV1Api.listNamespacedSecret': [
    { group: '', resource: 'secrets', verb: 'list' },
    { group: '', resource: 'secrets', verb: 'watch' },
  ],
  'CoreV1Api.createNamespacedSecret': [{ group: '', resource: 'secrets', verb: 'create' }],
  'CoreV1Api.replaceNamespacedSecret': [{ group: '', resource: 'secrets', verb: 'update', names: ['putSecret'] }],
  'CoreV1Api.readNamespacedSecret': [{ group: '', resource: 'secrets', verb: 'get', names: ['putSecret'] }],
  'EventsV1Api.createNamespacedEvent': [{ group: 'events.k8s.io', resource: 'events', verb: 'create' }],
  'EventsV1Api.patchNamespacedEvent': [{ group: 'events.k8s.io', resource: 'events', verb: 'patch' }],
  'CoordinationV1Api.readNamespacedLease': [{ group: 'coordination.k8s.io', resource: 'leases', verb: 'get', names: ['lease'] }],
  'CoordinationV1Api.createNamespacedLease': [{ group: 'coordination.k8s.io', resource: 'leases', verb: 'create' }],
  'CoordinationV1Api.replaceNamespacedLease': [{ group: 'coordination.k8s.io', resource: 'leases', verb: 'update', names: ['lease'] }],
  // Informers list (above) then watch.
  'k8s.makeInformer': smsauth('watch'),
  // --metrics-secure: who calls /metrics, and whether they may.
  'AuthenticationV1Api.createTokenReview': [{ group: 'authentication.k8s.io', resource: 'tokenreviews', verb: 'create' }],
  'AuthorizationV1Api.createSubjectAccessReview': [{ group: 'authorization.k8s.io', resource: 'subjectaccessreviews', verb: 'create' }],
  // The start-up check: /version is readable by every user (system:public-info-viewer), no rule needed.
  'VersionApi.getCode': [],
};

/** Helpers of client-node that make no API call (configuration, headers, types of values). */
const NO_API_CALL = new Set(['KubeConfig', 'setHeaderOptions', 'PatchStrategy', 'V1MicroTime', 'createConfiguration', 'ServerConfiguration']);

/** apiCallsInCode finds the client-node calls of controller/adapters/kubernetes.ts, as "Class.method". */
function apiCallsInCode(source: string): string[] {
  // An API client is a name bound to a client-node API class: a const built from it (kc.makeApiClient(k8s.CoreV1Api), or
  // a helper given it), a property built so (`core: apiClient(kc, k8s.CoreV1Api, ms)`), or a parameter or field of its type.
  const bindings = [/const (\w+) = [\w.]+(?:<[^>]*>)?\([^;]*?\bk8s\.(\w+Api)\b/g, /\b(\w+): [\w.]+\([^;)]*?\bk8s\.(\w+Api)\b/g, /\b(\w+)\??: k8s\.(\w+Api)\b/g];
  const clients = bindings.flatMap((re) => [...source.matchAll(re)].map((m) => ({ variable: m[1]!, api: m[2]! })));
  const apis = new Map<string, Set<string>>();
  for (const c of clients) apis.set(c.variable, (apis.get(c.variable) ?? new Set()).add(c.api));
  for (const [variable, classes] of apis) assert.is(classes.size, 1, `${variable} names one API class, not ${[...classes].join(' and ')}`);
  const apiClasses = new Set([...source.matchAll(/\bk8s\.(\w+Api)\b/g)].map((m) => m[1]!));
  assert.equal(new Set(clients.map((c) => c.api)), apiClasses, 'every API class is assigned to a const client the test can follow');
  const calls = new Set<string>();
  for (const { variable, api } of clients) {
    for (const m of source.matchAll(new RegExp(`\\b${variable}\\s*\\.\\s*(\\w+)\\s*\\(`, 'g'))) calls.add(`${api}.${m[1]!}`);
  }
  // Any other value use of client-node (a call, a constructor, a property) is an API call unless known not to be.
  for (const m of source.matchAll(/(new\s+)?\bk8s\.(\w+)(\s*(?:<[^>()]*>)?\s*[(.])?/g)) {
    const name = m[2]!;
    const used = m[1] !== undefined || m[3] !== undefined;
    if (!used || NO_API_CALL.has(name) || apiClasses.has(name)) continue;
    calls.add(`k8s.${name}`);
  }
  return [...calls].sort();
}

const key = (p: Permission): string => `${p.group}|${p.resource}|${p.verb}|${p.names === undefined ? '*' : [...p.names].sort().join(',')}`;

/** expectedNames resolves the name limits of API_CALLS from the code: the Secret names passed to putSecret, the Lease's name. */
function expectedNames(): Record<string, string[]> {
  const controllerSource = read(join(ROOT, 'controller', 'kube', 'controller.ts'));
  const putSecretNames = [...controllerSource.matchAll(/\.putSecret\(\s*[^,]+,\s*([A-Z_]+)\s*,/g)].map((m) => {
    const value = (bundleSecret as Record<string, unknown>)[m[1]!];
    assert.type(value, 'string', `${m[1]!} is a name exported by bundle-secret.ts`);
    return value as string;
  });
  assert.is(putSecretNames.length, (controllerSource.match(/\.putSecret\(/g) ?? []).length, 'every putSecret call names its Secret with a constant');
  const command = read(join(ROOT, 'controller', 'cli', 'controller-serve.ts'));
  const leaseArgs = [...command.matchAll(/cluster\.lease\([^,]+,\s*(\w+)\)/g)].map((m) => m[1]!);
  assert.is(leaseArgs.length, 1, 'one Lease, named by a constant');
  const leaseNames = [...command.matchAll(new RegExp(`const ${leaseArgs[0]!} = '([^']+)'`, 'g'))].map((m) => m[1]!);
  assert.is(leaseNames.length, 1, `the constant ${leaseArgs[0]!} is a string`);
  return { putSecret: [...new Set(putSecretNames)], lease: leaseNames };
}

function expectedPermissions(): Permission[] {
  const adapter = read(join(ROOT, 'controller', 'adapters', 'kubernetes.ts'));
  const calls = apiCallsInCode(adapter);
  const names = expectedNames();
  const out: Permission[] = [];
  for (const call of calls) {
    const needs = API_CALLS[call];
    assert.ok(
      needs !== undefined,
      `${call} is called by controller/adapters/kubernetes.ts but missing from API_CALLS: add the permissions it needs (and to the chart's RBAC)`,
    );
    for (const p of needs) out.push(p.names === undefined ? p : { ...p, names: p.names.flatMap((n) => names[n] ?? fail(`no names for ${n}`)) });
  }
  // get and update go to the bundle Secret only when putSecret is the only method calling them.
  const putSecret = /\nasync function putSecret\([\s\S]*?\n\}\n/.exec(adapter)?.[0] ?? '';
  assert.ok(putSecret !== '', 'kubernetes.ts has a function putSecret');
  for (const method of ['readNamespacedSecret', 'replaceNamespacedSecret']) {
    assert.is(
      (adapter.match(new RegExp(`\\.${method}\\(`, 'g')) ?? []).length,
      (putSecret.match(new RegExp(`\\.${method}\\(`, 'g')) ?? []).length,
      `${method} is called only by putSecret`,
    );
  }
  const controllerSource = read(join(ROOT, 'controller', 'kube', 'controller.ts'));
  const finalizerCalls = (controllerSource.match(/\.setFinalizers\(/g) ?? []).length;
  assert.ok(finalizerCalls > 0);
  assert.is(
    (controllerSource.match(/if \(info\.kind === 'SmsGatewayAccount'\) \{[^}]*?\.setFinalizers\(/g) ?? []).length,
    finalizerCalls,
    'setFinalizers only for gateway accounts',
  );
  return [...new Map(out.map((p) => [key(p), p])).values()];
}

function permissionsOf(role: Json): Permission[] {
  return (role.rules as Json[]).flatMap((r) =>
    (r.apiGroups as string[]).flatMap((group) =>
      (r.resources as string[]).flatMap((resource) =>
        (r.verbs as string[]).map((verb) => ({ group, resource, verb, ...(r.resourceNames !== undefined ? { names: r.resourceNames as string[] } : {}) })),
      ),
    ),
  );
}

const rbac = suite('RBAC derived from the controller code');

rbac('the code calls only API methods the table knows, and only kubernetes.ts uses client-node', () => {
  const calls = apiCallsInCode(read(join(ROOT, 'controller', 'adapters', 'kubernetes.ts')));
  assert.ok(calls.length >= 10, calls.join(', '));
  for (const call of calls) assert.ok(API_CALLS[call] !== undefined, `${call} is missing from API_CALLS`);
  const files = (readdirSync(join(ROOT, 'controller'), { recursive: true }) as string[]).filter((f) => f.endsWith('.ts'));
  const users = files.filter((f) => /^import (?!type )[^;]*from '@kubernetes\/client-node'/m.test(read(join(ROOT, 'controller', f))));
  assert.equal(users, [join('adapters', 'kubernetes.ts')]);
});

rbac('the table catches a new API call', () => {
  const source = `${read(join(ROOT, 'controller', 'adapters', 'kubernetes.ts'))}\nfunction more(core: k8s.CoreV1Api): void {\n  void core.deleteNamespacedSecret({ namespace, name });\n  void new k8s.Watch(kc);\n}\n`;
  const calls = apiCallsInCode(source);
  assert.ok(calls.includes('CoreV1Api.deleteNamespacedSecret'));
  assert.ok(calls.includes('k8s.Watch'));
  assert.ok(calls.some((c) => API_CALLS[c] === undefined));
});

for (const mode of ['cluster-wide', 'namespaced'] as const) {
  rbac(`${mode}: the rules bound to the controller's service account are exactly what the code calls`, async () => {
    const release = 'smsauth-system';
    const watched = mode === 'namespaced' ? 'identity' : undefined;
    const rendered = await renderChart(CHART, { namespace: release, values: mode === 'namespaced' ? { namespaced: true, watchNamespace: watched } : {} });
    const sa = one(rendered, 'ServiceAccount');
    assert.is(one(rendered, 'Deployment').spec.template.spec.serviceAccountName, sa.metadata.name);
    // The roles aggregated into view, edit and admin are for people: nothing binds them to the controller.
    const forPeople = (r: Json): boolean =>
      Object.keys(r.metadata.labels ?? {}).some((l) => l.startsWith('rbac.authorization.k8s.io/aggregate-to-')) || r.metadata.name.endsWith('-metrics-reader');
    const roles = [...ofKind(rendered, 'ClusterRole'), ...ofKind(rendered, 'Role')].filter((r) => !forPeople(r));
    const bindings = [...ofKind(rendered, 'ClusterRoleBinding'), ...ofKind(rendered, 'RoleBinding')];
    assert.is(bindings.length, roles.length);
    const granted: { permission: Permission; scope: string }[] = [];
    for (const role of roles) {
      const binding = bindings.find(
        (b) => b.roleRef.kind === role.kind && b.roleRef.name === role.metadata.name && b.metadata.namespace === role.metadata.namespace,
      );
      assert.ok(binding !== undefined, `${role.kind} ${role.metadata.name} is bound`);
      assert.equal(binding.subjects, [{ kind: 'ServiceAccount', name: sa.metadata.name, namespace: release }]);
      for (const permission of permissionsOf(role)) granted.push({ permission, scope: role.kind === 'ClusterRole' ? '*' : role.metadata.namespace });
    }
    const want = expectedPermissions();
    assert.equal([...new Set(granted.map((g) => key(g.permission)))].sort(), want.map(key).sort());
    assert.is(granted.length, new Set(granted.map((g) => `${g.scope} ${key(g.permission)}`)).size, 'no rule granted twice');
    for (const { permission, scope } of granted) {
      if (permission.resource === 'leases') assert.is(scope, release, 'the Lease rules: a Role in the release namespace');
      else if (['tokenreviews', 'subjectaccessreviews'].includes(permission.resource)) assert.is(scope, '*', 'reviews are cluster-scoped');
      else assert.is(scope, watched ?? '*', `${key(permission)} in ${scope}`);
    }
    if (mode === 'namespaced')
      assert.equal(
        ofKind(rendered, 'ClusterRole').map((r) => r.metadata.name),
        ['release-name-smsauth-metrics-auth', 'release-name-smsauth-metrics-reader'],
        'nothing cluster-wide but the metrics reviews',
      );
  });
}

rbac('the names the rules are limited to come from the code', () => {
  assert.equal(expectedNames(), { putSecret: [bundleSecret.BUNDLE_SECRET], lease: ['smsauth-controller'] });
});

rbac('teams with the built-in view, edit and admin roles read or manage the smsauth kinds; a namespaced install adds nothing cluster-wide', async () => {
  const aggregated = (await renderChart(CHART)).map((m) => m.object as Json).filter((o) => o.kind === 'ClusterRole' && o.metadata.name.match(/-(view|edit)$/));
  const view = aggregated.find((r) => r.metadata.name.endsWith('-view'))!;
  const edit = aggregated.find((r) => r.metadata.name.endsWith('-edit'))!;
  for (const role of ['view', 'edit', 'admin']) assert.is(view.metadata.labels[`rbac.authorization.k8s.io/aggregate-to-${role}`], 'true');
  for (const role of ['edit', 'admin']) assert.is(edit.metadata.labels[`rbac.authorization.k8s.io/aggregate-to-${role}`], 'true');
  assert.is(edit.metadata.labels['rbac.authorization.k8s.io/aggregate-to-view'], undefined, 'view cannot change anything');
  const kinds = KINDS.map((k) => k.plural).sort();
  assert.equal([view.rules.length, view.rules[0].apiGroups, view.rules[0].verbs], [1, ['smsauth.io'], ['get', 'list', 'watch']]);
  assert.equal([edit.rules.length, edit.rules[0].apiGroups], [1, ['smsauth.io']]);
  assert.equal([...view.rules[0].resources].sort(), [...kinds, ...kinds.map((k) => `${k}/status`)].sort());
  assert.equal([...edit.rules[0].resources].sort(), kinds);
  assert.equal(edit.rules[0].verbs, ['create', 'update', 'patch', 'delete', 'deletecollection']);
  assert.ok(!edit.rules[0].resources.some((r: string) => r.endsWith('/status')), "status is the controller's");
  const namespaced = await renderChart(CHART, { values: { namespaced: true, metrics: { secure: false } } });
  assert.equal(
    namespaced.filter((m) => (m.object as Json).kind === 'ClusterRole'),
    [],
  );
  const off = await renderChart(CHART, { values: { rbac: { aggregateToDefaultRoles: false }, metrics: { secure: false } } });
  assert.is(off.filter((m) => (m.object as Json).kind === 'ClusterRole').length, 1, "only the controller's");
});

rbac('docs/operations.md states the same verbs per group', async () => {
  const table = read(join(ROOT, 'docs', 'operations.md'))
    .split('## Permissions')[1]!
    .split('\n## ')[0]!;
  const rows = table.split('\n').filter((l) => /^\| `/.test(l));
  const documented = new Set<string>();
  for (const row of rows) {
    const [group, , verbs] = row
      .split('|')
      .slice(1)
      .map((c) => c.trim());
    const g = /`([^`]*)`/.exec(group!)![1]!.replace(/^""$/, '');
    for (const v of verbs!.matchAll(/`(\w+)`/g)) documented.add(`${g} ${v[1]!}`);
  }
  const rendered = await renderChart(CHART);
  const controllers = [...ofKind(rendered, 'ClusterRole'), ...ofKind(rendered, 'Role')].filter(
    (r) =>
      !Object.keys(r.metadata.labels ?? {}).some((l) => l.startsWith('rbac.authorization.k8s.io/aggregate-to-')) &&
      !String(r.metadata.name).endsWith('-metrics-reader'),
  );
  const granted = new Set(controllers.flatMap(permissionsOf).map((p) => `${p.group} ${p.verb}`));
  assert.equal([...granted].sort(), [...documented].sort());
});

rbac.run();

// ---------------------------------------------------------------------------
// The smsauth.sidecar template, through an application chart that copies it

let scratch = '';

/** renderApp renders test/fixtures/helm/sidecar-app with the chart's _sidecar.tpl copied in, as docs/install.md tells applications to. */
async function renderApp(vals: Json = {}): Promise<Json> {
  const dir = mkdtempSync(join(scratch, 'app-'));
  cpSync(SIDECAR_APP, dir, { recursive: true });
  cpSync(join(CHART, 'templates', '_sidecar.tpl'), join(dir, 'templates', '_sidecar.tpl'));
  const rendered = await renderChart(dir, { namespace: 'identity', values: vals });
  return one(rendered, 'Deployment');
}

const containerNamed = (pod: Json, name: string): Json | undefined => [...(pod.initContainers ?? []), ...pod.containers].find((c: Json) => c.name === name);

/** parseCliArgs parses args with the options a command's usage text lists (strict: an unknown flag throws). */
function parseCliArgs(usage: string, args: string[]): Record<string, string | boolean | undefined> {
  const options: Record<string, { type: 'string' | 'boolean' }> = {};
  for (const m of usage.matchAll(/^\s+(?:-\w, )?--([a-z-]+)( [A-Z]+)?/gm)) options[m[1]!] = { type: m[2] === undefined ? 'boolean' : 'string' };
  return { ...parseArgs({ args, options, strict: true, allowPositionals: false }).values };
}

const sidecar = suite('smsauth.sidecar');
sidecar.before(() => {
  scratch = mkdtempSync(join(tmpdir(), 'smsauth-chart-'));
});
sidecar.after(() => {
  rmSync(scratch, { recursive: true, force: true });
});

sidecar('renders examples/app/deployment.yaml exactly', async () => {
  const docs = parseAllDocuments(read(EXAMPLE_APP)).map((d) => d.toJSON() as Json);
  assert.is(docs.length, 1);
  assert.equal(await renderApp(), docs[0]);
});

sidecar('a native sidecar: an init container with restartPolicy Always; or a regular container', async () => {
  const native = (await renderApp()).spec.template.spec;
  assert.equal(
    native.initContainers.map((c: Json) => [c.name, c.restartPolicy]),
    [['smsauth', 'Always']],
  );
  assert.equal(
    native.containers.map((c: Json) => c.name),
    ['app'],
  );
  assert.ok(native.initContainers[0].startupProbe !== undefined, 'the application starts once the sidecar answers');
  const regular = (await renderApp({ native: false })).spec.template.spec;
  assert.is(regular.initContainers, undefined);
  assert.equal(
    regular.containers.map((c: Json) => c.name),
    ['app', 'smsauth'],
  );
  assert.not.ok('restartPolicy' in regular.containers[1]);
  const { restartPolicy: _, ...nativeRest } = native.initContainers[0];
  assert.equal(regular.containers[1], nativeRest);
});

sidecar('each mode is a valid Deployment whose pod follows the restricted profile', async () => {
  for (const vals of [
    {},
    { native: false },
    { smsauth: { redis: { urlSecretRef: { name: 'redis' } }, host: '0.0.0.0', tokenSecretRef: { name: 'smsauth-token' } } },
  ]) {
    const d = await renderApp(vals);
    assert.equal(schemaViolations(d), []);
    assert.equal(restrictedViolations(d.spec.template.spec), []);
  }
  const d = new Deployment(parse(read(EXAMPLE_APP)) as never);
  d.validate();
  assert.equal(restrictedViolations((parse(read(EXAMPLE_APP)) as Json).spec.template.spec), []);
});

sidecar('mounts the bundle and code keys Secrets as whole volumes where its args point', async () => {
  const pod = (await renderApp({ smsauth: { bundleDir: '/var/run/smsauth/bundle', codeKeysDir: '/var/run/smsauth/keys' } })).spec.template.spec;
  const c = containerNamed(pod, 'smsauth')!;
  const flags = parseCliArgs(SIDECAR_USAGE, c.args.slice(1));
  assert.is(c.args[0], 'sidecar');
  const secretOf = (volume: string): string | undefined => pod.volumes.find((v: Json) => v.name === volume)?.secret?.secretName;
  const mountAt = (path: unknown): Json => c.volumeMounts.find((m: Json) => m.mountPath === path);
  assert.is(flags['bundle-dir'], '/var/run/smsauth/bundle');
  assert.is(secretOf(mountAt(flags['bundle-dir']).name), bundleSecret.BUNDLE_SECRET);
  assert.is(secretOf(mountAt(flags['code-keys-dir']).name), bundleSecret.CODE_KEYS_SECRET);
  for (const m of c.volumeMounts) assert.not.ok('subPath' in m || 'subPathExpr' in m, `${m.name} mounted whole`);
  for (const m of c.volumeMounts.filter((x: Json) => x.mountPath !== '/tmp')) assert.is(m.readOnly, true);
});

sidecar('args from the settings: port, Redis URL or its Secret, token, console, the Twilio-compatible API, log level', async () => {
  const flagsOf = async (smsauthConfig: Json): Promise<{ flags: Json; c: Json }> => {
    const c = containerNamed((await renderApp({ smsauth: smsauthConfig })).spec.template.spec, 'smsauth')!;
    return { flags: parseCliArgs(SIDECAR_USAGE, c.args.slice(1)), c };
  };
  const plain = await flagsOf({ allowConsole: false, redis: { urlSecretRef: { name: 'redis-url' } } });
  assert.equal(plain.flags, {
    'bundle-dir': '/etc/smsauth/bundle',
    'code-keys-dir': '/etc/smsauth/keys',
    host: '127.0.0.1',
    port: '8787',
    'health-probe-bind-address': ':8788',
    'log-level': 'info',
    'history-retention': '400d',
  });
  assert.equal(plain.c.env, [{ name: 'SMSAUTH_REDIS_URL', valueFrom: { secretKeyRef: { name: 'redis-url', key: 'url' } } }]);

  const port = await flagsOf({ port: 9000, probePort: 9001, allowConsole: true, twilioCompat: { enabled: true }, logLevel: 'debug' });
  assert.equal(
    [port.flags.port, port.flags['health-probe-bind-address'], port.flags['allow-console'], port.flags['twilio-compat'], port.flags['log-level']],
    ['9000', ':9001', true, true, 'debug'],
  );
  assert.equal(
    port.c.ports.map((p: Json) => [p.name, p.containerPort]),
    [
      ['smsauth', 9000],
      ['smsauth-health', 9001],
    ],
  );

  const redis = await flagsOf({ redis: { url: 'redis://redis.identity:6379/0' } });
  assert.is(redis.flags.redis, 'redis://redis.identity:6379/0');

  const secret = await flagsOf({ redis: { urlSecretRef: { name: 'redis-url' } }, host: '0.0.0.0', tokenSecretRef: { name: 'smsauth-token', key: 't' } });
  assert.is(secret.flags.redis, undefined, 'a URL from a Secret is not an argument: its password would show in the process list');
  assert.equal(secret.c.env, [
    { name: 'SMSAUTH_REDIS_URL', valueFrom: { secretKeyRef: { name: 'redis-url', key: 'url' } } },
    { name: 'SMSAUTH_TOKEN', valueFrom: { secretKeyRef: { name: 'smsauth-token', key: 't' } } },
  ]);
  assert.match(read(join(ROOT, 'controller', 'cli', 'sidecar-command.ts')), 'process.env.SMSAUTH_TOKEN', 'the sidecar reads the token from SMSAUTH_TOKEN');
  assert.match(read(join(ROOT, 'controller', 'cli', 'startup.ts')), 'process.env.SMSAUTH_HELPDESK_TOKEN', 'and the helpdesk token from SMSAUTH_HELPDESK_TOKEN');

  const audit = await flagsOf({ helpdeskTokenSecretRef: { name: 'smsauth-helpdesk' }, trustedProxies: ['10.0.0.0/8', 'fd00::/8'], historyRetention: '30d' });
  assert.equal([audit.flags['trusted-proxies'], audit.flags['history-retention']], ['10.0.0.0/8,fd00::/8', '30d']);
  assert.equal(audit.c.env, [{ name: 'SMSAUTH_HELPDESK_TOKEN', valueFrom: { secretKeyRef: { name: 'smsauth-helpdesk', key: 'token' } } }]);
  assert.match(read(join(ROOT, 'controller', 'cli', 'sidecar-command.ts')), 'process.env.SMSAUTH_REDIS_URL', 'and the Redis URL from SMSAUTH_REDIS_URL');
});

sidecar('probes: HTTP on a port of their own (the endpoint is on loopback), /healthz for start and liveness, /readyz for readiness', async () => {
  const c = containerNamed((await renderApp()).spec.template.spec, 'smsauth')!;
  const probePort = c.ports.find((p: Json) => p.name === 'smsauth-health');
  assert.is(probePort.containerPort, 8788);
  for (const [probe, path] of [
    ['startupProbe', '/healthz'],
    ['livenessProbe', '/healthz'],
    ['readinessProbe', '/readyz'],
  ] as const) {
    assert.equal(c[probe].httpGet, { path, port: 'smsauth-health' }, probe);
    assert.is(c[probe].exec, undefined, `${probe} runs nothing in the container`);
  }
  assert.is(parseCliArgs(SIDECAR_USAGE, c.args.slice(1))['health-probe-bind-address'], ':8788');
});

sidecar('refuses a sidecar without shared state unless it is declared ephemeral', async () => {
  const refused = await rejection(renderApp({ smsauth: { allowConsole: true, ephemeral: false } }));
  assert.match(refused.message, /need state that outlives the pod.*set redis\.urlSecretRef\.name.*ephemeral: true.*development only/);
  for (const state of [{ redis: { url: 'redis://redis.identity:6379/0' } }, { redis: { urlSecretRef: { name: 'redis-url' } } }, { ephemeral: true }]) {
    const d = await renderApp({ smsauth: { ephemeral: false, ...state } });
    assert.ok(containerNamed(d.spec.template.spec, 'smsauth') !== undefined, JSON.stringify(state));
  }
});

sidecar('refuses settings it does not know and contradictory ones', async () => {
  const cases: [Json, RegExp][] = [
    [{ alowConsole: true }, /unknown setting "alowConsole"/],
    [{ redis: { uri: 'redis://x' } }, /unknown setting redis\.uri/],
    [{ redis: 'redis://x' }, /redis must be a map/],
    [{ host: '0.0.0.0' }, /needs a bearer token: set tokenSecretRef\.name/],
    [{ host: '10.1.2.3', tokenSecretRef: { name: 't' } }, /host must be 127\.0\.0\.1/],
    [{ redis: { url: 'redis://x', urlSecretRef: { name: 'r' } } }, /redis\.url or redis\.urlSecretRef, not both/],
    [{ tokenSecretRef: { name: 'same' }, helpdeskTokenSecretRef: { name: 'same' } }, /helpdeskTokenSecretRef names the application's token/],
    [{ probePort: 8787 }, /probePort must differ from port/],
  ];
  for (const [config, want] of cases) assert.match((await rejection(renderApp({ smsauth: config }))).message, want);
});

sidecar("the template's defaults are values.yaml's sidecar block, and its image is the chart's appVersion", async () => {
  const defaults = valuesYaml().sidecar;
  // The defaults alone declare no state: refused, as a sidecar with neither Redis nor ephemeral is.
  assert.match((await rejection(renderApp({ smsauth: null }))).message, /need state that outlives the pod/);
  const withDefaults = await renderApp({ smsauth: { ...defaults, ephemeral: true } });
  // Over the fixture's settings (allowConsole, ephemeral), only ephemeral differs from the defaults.
  const withNothing = await renderApp({ smsauth: { allowConsole: false, ephemeral: true } });
  assert.equal(withDefaults, withNothing);
  const chart = parse(read(join(CHART, 'Chart.yaml'))) as Json;
  assert.is(defaults.image.tag, chart.appVersion);
  assert.is(containerNamed(withNothing.spec.template.spec, 'smsauth')!.image, `smsauth:${String(chart.appVersion)}`);
  // Changing a default shows: the comparison above is not vacuous.
  assert.not.equal(await renderApp({ smsauth: { ...defaults, ephemeral: true, tmpSizeLimit: '1Gi' } }), withNothing);
});

sidecar('_sidecar.tpl needs no other template of the chart', () => {
  const text = read(join(CHART, 'templates', '_sidecar.tpl'));
  const defined = new Set([...text.matchAll(/define "([^"]+)"/g)].map((m) => m[1]!));
  for (const m of text.matchAll(/include "([^"]+)"/g)) assert.ok(defined.has(m[1]!), `${m[1]!} is defined in _sidecar.tpl`);
  assert.not.match(withoutComments(text), /\.Values|\.Release|\.Chart/);
});

sidecar.run();

// ---------------------------------------------------------------------------

const meta = suite('Chart.yaml and crds/');

meta('Chart.yaml: apiVersion v2, appVersion is the package version', () => {
  const chart = parse(read(join(CHART, 'Chart.yaml'))) as Json;
  const pkg = JSON.parse(read(join(ROOT, 'package.json'))) as Json;
  assert.is(chart.apiVersion, 'v2');
  assert.is(chart.name, 'smsauth');
  assert.is(chart.type, 'application');
  assert.is(chart.appVersion, pkg.version);
});

meta('files/crds/ holds exactly the CRDs npm run gen generates; the release renders them unchanged, kept on uninstall unless crds.keep is false', async () => {
  const files = await generatedFiles(await readSchemaSet(join(ROOT, 'schemas')));
  const crds = [...files.keys()].filter((p) => p.startsWith('charts/smsauth/files/crds/'));
  assert.is(crds.length, KINDS.length);
  assert.equal(readdirSync(join(CHART, 'files', 'crds')).sort(), crds.map((p) => p.split('/').at(-1)).sort());
  for (const path of crds) assert.ok(read(join(ROOT, path)) === files.get(path), `${path} drifted: run npm run gen`);
  // No crds/ folder: Helm would install it once, never upgrade it, and refuse the templates' copies.
  assert.not.ok(readdirSync(CHART).includes('crds'));
  const rendered = ofKind(await renderChart(CHART), 'CustomResourceDefinition');
  assert.equal(rendered.map((c) => `${String(c.metadata.name)}.yaml`).sort(), readdirSync(join(CHART, 'files', 'crds')).sort());
  for (const crd of rendered) {
    const file = parse(read(join(CHART, 'files', 'crds', `${String(crd.metadata.name)}.yaml`))) as Json;
    const { labels, annotations, ...metadata } = crd.metadata;
    assert.equal({ ...crd, metadata }, { ...file, metadata: { name: file.metadata.name } }, `${String(crd.metadata.name)} as generated`);
    assert.equal(annotations, { 'helm.sh/resource-policy': 'keep' });
    assert.is(labels['app.kubernetes.io/managed-by'], 'Helm');
    assert.is(labels['app.kubernetes.io/part-of'], 'smsauth');
  }
  const unkept = ofKind(await renderChart(CHART, { values: { crds: { keep: false } } }), 'CustomResourceDefinition');
  assert.is(unkept.length, KINDS.length);
  for (const crd of unkept) assert.is(crd.metadata.annotations, undefined);
  assert.equal(
    ofKind(await renderChart(CHART, { values: { controller: { enabled: false } } }), 'CustomResourceDefinition'),
    [],
    'never from an application chart that depends on this one for the sidecar template',
  );
});

meta.run();

// ---------------------------------------------------------------------------

const docs = suite('docs/install.md');

docs('names the values, resources and CRDs the chart has', async () => {
  const text = read(join(ROOT, 'docs', 'install.md'));
  const defaults = valuesYaml();
  const table = text.split('### The values that matter')[1]!.split('\n### ')[0]!;
  const rows = table.split('\n').filter((l) => l.startsWith('| `'));
  assert.ok(rows.length >= 8);
  for (const row of rows) {
    for (const m of row.split('|')[1]!.matchAll(/`([A-Za-z][\w.]*)`/g)) assert.ok(hasPath(defaults, m[1]!), `${m[1]!} is a value`);
  }
  const settings = /`config` holds the sidecar's settings[\s\S]*?values\.yaml`: ([\s\S]*?)\. An unknown/.exec(text)![1]!;
  const named = [...settings.matchAll(/`([\w.]+)`/g)].map((m) => m[1]!);
  assert.equal(
    named.filter((n) => !hasPath(defaults.sidecar, n)),
    [],
  );
  assert.equal([...new Set(named.map((n) => n.split('.')[0]))].sort(), Object.keys(defaults.sidecar).sort());
  const rendered = await renderChart(CHART, { releaseName: 'smsauth', namespace: 'smsauth-system' });
  assert.match(text, `deployment/${String(one(rendered, 'Deployment').metadata.name)}`);
  const crdNames = readdirSync(join(CHART, 'files', 'crds')).map((f) => `crd/${f.replace(/\.yaml$/, '')}`);
  for (const crd of crdNames) assert.match(text, crd);
  assert.match(text, 'kubectl apply -f charts/smsauth/files/crds/');
});

docs.run();
