import { access, constants, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { parse } from 'yaml';
import { GO_DEBIAN_PACKAGES, buildRenderer, renderChart, validateValues } from './helm/renderer.ts';
import type { RenderedManifest } from './helm/renderer.ts';

const DEMO = fileURLToPath(new URL('./fixtures/helm/demo', import.meta.url));

type Json = Record<string, unknown>;

async function readYaml(file: string): Promise<Json> {
  return parse(await readFile(join(DEMO, file), 'utf8')) as Json;
}

/** Follows a dotted path ("spec.template.spec.containers.0.image") through parsed YAML. */
function at(value: unknown, path: string): unknown {
  let current = value;
  for (const key of path.split('.')) {
    if (typeof current !== 'object' || current === null) return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return current;
}

function kinds(manifests: RenderedManifest[]): string[] {
  return manifests.map((m) => String(m.object['kind']));
}

function only(manifests: RenderedManifest[], kind: string): RenderedManifest {
  const found = manifests.filter((m) => m.object['kind'] === kind);
  assert.is(found.length, 1, `expected exactly one ${kind}, got ${String(found.length)}`);
  return found[0] as RenderedManifest;
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

async function writeChart(root: string, files: Record<string, string>): Promise<string> {
  for (const [name, content] of Object.entries(files)) {
    await mkdir(dirname(join(root, name)), { recursive: true });
    await writeFile(join(root, name), content);
  }
  return root;
}

// ---------------------------------------------------------------------------

const build = suite('buildRenderer');

build('builds render.go once and reuses the cached binary', async () => {
  const first = await buildRenderer();
  await access(first, constants.X_OK);
  const built = (await stat(first)).mtimeMs;
  const second = await buildRenderer();
  assert.is(second, first);
  assert.is((await stat(second)).mtimeMs, built, 'the second call must not rebuild');
});

build('names the Debian packages when go is missing', async () => {
  const cacheDir = await mkdtemp(join(tmpdir(), 'helm-render-nogo-'));
  try {
    const err = await rejection(buildRenderer({ go: join(cacheDir, 'no-such-go'), cacheDir }));
    assert.match(err.message, /Go toolchain .* was not found/);
    for (const pkg of GO_DEBIAN_PACKAGES) assert.ok(err.message.includes(pkg), `message names ${pkg}`);
  } finally {
    await rm(cacheDir, { recursive: true, force: true });
  }
});

build.run();

// ---------------------------------------------------------------------------

const render = suite('renderChart');

render('renders the defaults in Helm order, with the release and chart data', async () => {
  const chart = await readYaml('Chart.yaml');
  const values = await readYaml('values.yaml');
  const manifests = await renderChart(DEMO, { releaseName: 'sms', namespace: 'auth' });

  // Kinds in Helm's install order; the ServiceMonitor (metrics off) and Ingress (off) are absent.
  assert.equal(kinds(manifests), ['PodDisruptionBudget', 'ServiceAccount', 'Secret', 'ConfigMap', 'Role', 'RoleBinding', 'Service', 'Deployment']);
  for (const m of manifests) {
    assert.ok(m.template.startsWith('templates/'), m.template);
    assert.is(at(m.object, 'metadata.name'), 'sms-demo', m.template);
    assert.is(at(m.object, 'metadata.namespace'), 'auth', m.template);
  }
  // Partials and NOTES.txt produce no manifests; rbac.yaml yields three documents.
  assert.not.ok(manifests.some((m) => m.template.includes('_helpers') || m.template.endsWith('NOTES.txt')));
  assert.equal(
    manifests.filter((m) => m.template === 'templates/rbac.yaml').map((m) => m.object['kind']),
    ['ServiceAccount', 'Role', 'RoleBinding'],
  );

  const deployment = only(manifests, 'Deployment').object;
  // include + nindent: the labels of the named templates.
  const labels = at(deployment, 'metadata.labels') as Json;
  assert.is(labels['app.kubernetes.io/version'], chart['appVersion']);
  assert.is(labels['helm.sh/chart'], `demo-${String(chart['version'])}`);
  assert.is(labels['app.kubernetes.io/managed-by'], 'Helm');
  assert.equal(at(deployment, 'spec.selector.matchLabels'), {
    'app.kubernetes.io/name': 'demo',
    'app.kubernetes.io/instance': 'sms',
  });
  assert.equal(at(deployment, 'spec.template.metadata.labels'), at(deployment, 'spec.selector.matchLabels'));
  assert.is(at(deployment, 'spec.replicas'), values['replicaCount']);
  // default: an empty image.tag falls back to .Chart.AppVersion.
  assert.is(at(deployment, 'spec.template.spec.containers.0.image'), `${String(at(values, 'image.repository'))}:${String(chart['appVersion'])}`);
  // toYaml of a values table.
  assert.equal(at(deployment, 'spec.template.spec.containers.0.resources'), values['resources']);
  assert.match(String(at(deployment, 'spec.template.metadata.annotations.checksum/config')), /^[0-9a-f]{64}$/);

  const data = only(manifests, 'ConfigMap').object['data'] as Record<string, string>;
  // tpl renders the greeting value as a template.
  assert.is(data['greeting'], 'Hello from sms in auth');
  assert.is(data['endpoint'], at(values, 'config.endpoint'));
  assert.equal(parse(data['settings.yaml'] ?? ''), at(values, 'config.settings'));
  assert.is(data['app.conf'], await readFile(join(DEMO, 'files/app.conf'), 'utf8'));
  assert.is(data['kubeVersion'], 'v1.32.0');

  // lookup finds nothing under helm template, so the key is derived from the release name.
  const secret = only(manifests, 'Secret').object;
  assert.is(Buffer.from(String(at(secret, 'data.apiKey')), 'base64').toString(), 'sms-key');
  assert.is(at(only(manifests, 'PodDisruptionBudget').object, 'apiVersion'), 'policy/v1');
});

render('uses helm template defaults for the release', async () => {
  const manifests = await renderChart(DEMO);
  const cm = only(manifests, 'ConfigMap').object;
  assert.is(at(cm, 'metadata.name'), 'release-name-demo');
  assert.is(at(cm, 'metadata.namespace'), 'default');
  assert.is(at(cm, 'data.greeting'), 'Hello from release-name in default');
});

render('applies value overrides over values.yaml, deep-merging tables', async () => {
  const values = await readYaml('values.yaml');
  const manifests = await renderChart(DEMO, {
    releaseName: 'sms',
    values: {
      replicaCount: 5,
      image: { tag: '9.9.9' },
      podAnnotations: { 'example.org/team': 'auth' },
      service: { port: 9000 },
      rbac: { create: false },
      ingress: { enabled: true, className: 'nginx', hosts: [{ host: 'sms.example.org', paths: ['/api'] }] },
    },
  });
  const deployment = only(manifests, 'Deployment').object;
  assert.is(at(deployment, 'spec.replicas'), 5);
  // image.repository survives from values.yaml: tables are merged, not replaced.
  assert.is(at(deployment, 'spec.template.spec.containers.0.image'), `${String(at(values, 'image.repository'))}:9.9.9`);
  assert.is(at(deployment, 'spec.template.spec.containers.0.imagePullPolicy'), at(values, 'image.pullPolicy'));
  assert.is((at(deployment, 'spec.template.metadata.annotations') as Json)['example.org/team'], 'auth');
  assert.is(at(deployment, 'spec.template.spec.containers.0.ports.0.containerPort'), 9000);
  assert.is(at(only(manifests, 'Service').object, 'spec.ports.0.port'), 9000);

  // rbac.create=false: the Role and RoleBinding documents render empty and are dropped.
  assert.not.ok(kinds(manifests).includes('Role'));
  assert.not.ok(kinds(manifests).includes('RoleBinding'));
  assert.is(only(manifests, 'ServiceAccount').template, 'templates/rbac.yaml');

  const ingress = only(manifests, 'Ingress').object;
  assert.is(at(ingress, 'spec.ingressClassName'), 'nginx');
  assert.is(at(ingress, 'spec.rules.0.host'), 'sms.example.org');
  assert.is(at(ingress, 'spec.rules.0.http.paths.0.path'), '/api');
  assert.is(at(ingress, 'spec.rules.0.http.paths.0.backend.service.name'), 'sms-demo');
  assert.is(kinds(manifests).at(-1), 'Ingress', 'Ingress is installed last');
});

render('changes the config checksum only when the config changes', async () => {
  const checksum = async (values: object): Promise<unknown> =>
    at(only(await renderChart(DEMO, { values }), 'Deployment').object, 'spec.template.metadata.annotations.checksum/config');
  const base = await checksum({});
  assert.is(await checksum({ replicaCount: 3 }), base);
  assert.is.not(await checksum({ config: { logLevel: 'debug' } }), base);
});

render('a null override deletes the key from the chart defaults', async () => {
  const values = await readYaml('values.yaml');
  const limits = at(values, 'resources.limits');
  assert.ok(limits !== undefined && limits !== null, 'the fixture has default limits');

  const before = only(await renderChart(DEMO), 'Deployment').object;
  assert.equal(at(before, 'spec.template.spec.containers.0.resources.limits'), limits);

  const after = only(await renderChart(DEMO, { values: { resources: { limits: null } } }), 'Deployment').object;
  const resources = at(after, 'spec.template.spec.containers.0.resources') as Json;
  assert.not.ok('limits' in resources);
  assert.equal(resources['requests'], at(values, 'resources.requests'));
});

render('checks .Capabilities.APIVersions.Has and the values flags', async () => {
  const metricsOn = { metrics: { enabled: true } };
  const withoutApi = await renderChart(DEMO, { values: metricsOn });
  assert.not.ok(kinds(withoutApi).includes('ServiceMonitor'), 'no monitoring.coreos.com/v1: no ServiceMonitor');
  const ports = at(only(withoutApi, 'Deployment').object, 'spec.template.spec.containers.0.ports') as Json[];
  assert.equal(
    ports.map((p) => p['name']),
    ['http', 'metrics'],
  );

  const withApi = await renderChart(DEMO, { values: metricsOn, apiVersions: ['monitoring.coreos.com/v1'] });
  const monitor = only(withApi, 'ServiceMonitor');
  assert.is(monitor.template, 'templates/servicemonitor.yaml');
  assert.is(at(monitor.object, 'spec.endpoints.0.interval'), '30s');
  assert.is(kinds(withApi).at(-1), 'ServiceMonitor', 'unknown kinds come after the known ones');

  const flagOff = await renderChart(DEMO, {
    values: { metrics: { enabled: true, serviceMonitor: { enabled: false } } },
    apiVersions: ['monitoring.coreos.com/v1'],
  });
  assert.not.ok(kinds(flagOff).includes('ServiceMonitor'));
});

render('passes the Kubernetes version to .Capabilities and checks Chart.yaml kubeVersion', async () => {
  const old = await renderChart(DEMO, { kubeVersion: '1.20' });
  assert.is(at(only(old, 'ConfigMap').object, 'data.kubeVersion'), 'v1.20.0');
  assert.is(at(only(old, 'PodDisruptionBudget').object, 'apiVersion'), 'policy/v1beta1');

  const err = await rejection(renderChart(DEMO, { kubeVersion: '1.18.0' }));
  assert.match(err.message, /chart requires kubeVersion: >=1\.19\.0-0 which is incompatible with Kubernetes v1\.18\.0/);
});

render('includes the crds/ files first with includeCrds', async () => {
  const crd = parse(await readFile(join(DEMO, 'crds/widgets.demo.example.org.yaml'), 'utf8')) as Json;
  const without = await renderChart(DEMO);
  assert.not.ok(kinds(without).includes('CustomResourceDefinition'));

  const withCrds = await renderChart(DEMO, { includeCrds: true });
  const first = withCrds[0];
  assert.ok(first !== undefined);
  assert.is(first.template, 'crds/widgets.demo.example.org.yaml');
  assert.equal(first.object, crd);
  assert.is(withCrds.length, without.length + 1);
});

render('fails with the template and line when `required` is not met', async () => {
  const deployment = (await readFile(join(DEMO, 'templates/deployment.yaml'), 'utf8')).split('\n');
  // Helm executes templates in reverse path order, so deployment.yaml, which
  // includes configmap.yaml for its checksum, is where the missing value shows first.
  const line = deployment.findIndex((l) => l.includes('checksum/config')) + 1;
  assert.ok(line > 0);
  for (const endpoint of ['', null]) {
    const err = await rejection(renderChart(DEMO, { values: { config: { endpoint } } }));
    assert.match(err.message, `execution error at (demo/templates/deployment.yaml:${String(line)}:`);
    assert.match(err.message, /\): config\.endpoint is required: set the SMS gateway URL$/);
  }
});

render('validates the values against values.schema.json before rendering', async () => {
  const err = await rejection(renderChart(DEMO, { values: { replicaCount: 0, config: { endpoint: '' } } }));
  // The schema error wins over the template's `required` error, as in Helm.
  assert.match(err.message, /values don't meet the specifications of the schema/);
  assert.match(err.message, /- \/replicaCount: must be >= 1/);

  const skipped = await renderChart(DEMO, { values: { replicaCount: 0 }, skipSchemaValidation: true });
  assert.is(at(only(skipped, 'Deployment').object, 'spec.replicas'), 0);
});

render.run();

// ---------------------------------------------------------------------------

const engine = suite('renderChart (engine details)');

let scratch = '';
engine.before(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'helm-render-test-'));
});
engine.after(async () => {
  await rm(scratch, { recursive: true, force: true });
});

const chartYaml = 'apiVersion: v2\nname: edge\nversion: 1.0.0\n';

engine('splits documents, drops empty ones, skips partials and blanks missing values', async () => {
  const dir = await writeChart(join(scratch, 'docs'), {
    'Chart.yaml': chartYaml,
    'values.yaml': 'names: [a, b]\nmode: "0644"\n',
    'templates/_partial.yaml': '{{- define "edge.kind" }}ConfigMap{{ end }}\nkind: NeverRendered\n',
    'templates/list.yaml': [
      '---',
      '# comment-only documents are dropped',
      '---',
      '{{- range .Values.names }}',
      '---',
      'apiVersion: v1',
      'kind: {{ include "edge.kind" $ }}',
      'metadata:',
      '  name: {{ . }}',
      'data:',
      '  missing: "{{ $.Values.nothing }}"',
      '  fileMode: {{ $.Values.mode }}',
      '{{- end }}',
      '---',
      '',
    ].join('\n'),
    'templates/empty.yaml': '{{- if false }}\nkind: Never\n{{- end }}\n',
  });
  const manifests = await renderChart(dir);
  assert.equal(
    manifests.map((m) => [m.template, at(m.object, 'metadata.name')]),
    [
      ['templates/list.yaml', 'a'],
      ['templates/list.yaml', 'b'],
    ],
  );
  // missingkey=zero prints "<no value>", which Helm replaces with "".
  assert.is(at(manifests[0]?.object, 'data.missing'), '');
  // Manifests are read as YAML 1.1, like Kubernetes: 0644 is octal.
  assert.is(at(manifests[0]?.object, 'data.fileMode'), 0o644);
});

engine('reports parse errors with the template and line', async () => {
  const dir = await writeChart(join(scratch, 'parse'), {
    'Chart.yaml': chartYaml,
    'templates/ok.yaml': 'kind: ConfigMap\n',
    'templates/broken.yaml': 'kind: ConfigMap\nmetadata:\n  name: {{ .Values.name | nosuchfunction }}\n',
  });
  const err = await rejection(renderChart(dir));
  assert.match(err.message, 'parse error at (edge/templates/broken.yaml:3): function "nosuchfunction" not defined');
});

engine('reports fail() and YAML errors with the template name', async () => {
  const failLine = '{{ if not .Values.ok }}{{ fail "set ok" }}{{ end }}';
  const failing = await writeChart(join(scratch, 'fail'), {
    'Chart.yaml': chartYaml,
    'templates/a.yaml': `kind: ConfigMap\n${failLine}\n`,
  });
  const failed = await rejection(renderChart(failing));
  // Go's text/template counts columns from 0 after the first line.
  const column = failLine.indexOf('fail');
  assert.is(failed.message, `execution error at (edge/templates/a.yaml:2:${String(column)}): set ok`);

  const badYaml = await writeChart(join(scratch, 'yaml'), {
    'Chart.yaml': chartYaml,
    'templates/bad.yaml': 'kind: ConfigMap\nmetadata:\n  name: [unclosed\n',
  });
  const err = await rejection(renderChart(badYaml));
  assert.match(err.message, /^YAML parse error on templates\/bad\.yaml: /);
});

engine('gives tpl access to the named templates and .Files.Glob to the chart files', async () => {
  const dir = await writeChart(join(scratch, 'tpl'), {
    'Chart.yaml': chartYaml,
    'values.yaml': 'template: \'{{ include "edge.hello" . }} {{ .Values.count | add 1 }}\'\ncount: 41\n',
    'conf/a.properties': 'a=1\n',
    'conf/b.properties': 'b=2\n',
    'conf/skip.txt': 'no\n',
    'templates/_helpers.tpl': '{{- define "edge.hello" }}hello {{ .Release.Name }}{{ end }}\n',
    'templates/cm.yaml': [
      'apiVersion: v1',
      'kind: ConfigMap',
      'metadata:',
      '  name: {{ .Template.Name | base | trimSuffix ".yaml" }}',
      'data:',
      '  rendered: {{ tpl .Values.template . | quote }}',
      '  {{- (.Files.Glob "conf/*.properties").AsConfig | nindent 2 }}',
      '',
    ].join('\n'),
  });
  const [cm] = await renderChart(dir, { releaseName: 'r1' });
  assert.ok(cm !== undefined);
  assert.is(at(cm.object, 'metadata.name'), 'cm');
  assert.equal(cm.object['data'], { rendered: 'hello r1 42', 'a.properties': 'a=1\n', 'b.properties': 'b=2\n' });
});

engine('refuses charts it cannot render like Helm', async () => {
  const withSubchart = await writeChart(join(scratch, 'sub'), {
    'Chart.yaml': chartYaml,
    'charts/child/Chart.yaml': 'apiVersion: v2\nname: child\nversion: 1.0.0\n',
  });
  assert.match((await rejection(renderChart(withSubchart))).message, /subcharts are not supported/);

  const noVersion = await writeChart(join(scratch, 'nover'), { 'Chart.yaml': 'apiVersion: v2\nname: x\n' });
  assert.match((await rejection(renderChart(noVersion))).message, /chart\.metadata\.version is required/);
});

engine.run();

// ---------------------------------------------------------------------------

const validate = suite('validateValues');

validate('accepts the chart defaults', async () => {
  assert.equal(await validateValues(DEMO, {}), []);
  assert.equal(await validateValues(DEMO, await readYaml('values.yaml')), []);
  assert.equal(await validateValues(DEMO, { replicaCount: 3, image: { tag: '1.2.3' } }), []);
});

validate('refuses bad values with JSON pointers', async () => {
  const errors = await validateValues(DEMO, {
    replicaCount: 0,
    image: { pullPolicy: 'Sometimes' },
    metrics: { port: '9090' },
    ingress: { hosts: [{ host: 'not a hostname!' }] },
    bogus: true,
  });
  const byPointer = new Map(errors.map((e) => [e.pointer, e]));
  assert.equal([...byPointer.keys()].sort(), ['/bogus', '/image/pullPolicy', '/ingress/hosts/0/host', '/metrics/port', '/replicaCount']);
  assert.is(byPointer.get('/replicaCount')?.keyword, 'minimum');
  assert.is(byPointer.get('/image/pullPolicy')?.keyword, 'enum');
  assert.is(byPointer.get('/metrics/port')?.keyword, 'type');
  assert.is(byPointer.get('/ingress/hosts/0/host')?.keyword, 'format');
  assert.is(byPointer.get('/bogus')?.keyword, 'additionalProperties');
});

validate('validates the coalesced values, so a null override can remove a required key', async () => {
  const errors = await validateValues(DEMO, { service: null });
  assert.equal(
    errors.map((e) => [e.pointer, e.keyword]),
    [['/service', 'required']],
  );
});

validate('accepts anything for a chart without values.schema.json', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'helm-render-noschema-'));
  try {
    await writeChart(dir, { 'Chart.yaml': chartYaml, 'values.yaml': 'a: 1\n' });
    assert.equal(await validateValues(dir, { a: 'anything' }), []);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

validate.run();
