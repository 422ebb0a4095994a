import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import type { IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as K8s from '@kubernetes/client-node';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { parse as parseYaml } from 'yaml';
import { startApiServer } from './kube/api-server.ts';
import type { ApiServer, ApiServerOptions, ObjectRef } from './kube/api-server.ts';
import { evaluateJsonPath, parseJsonPath } from './kube/jsonpath.ts';
import { applyJsonPatch, applyMergePatch, applyStrategicMergePatch } from './kube/patch.ts';
import { applyDefaults, prune, validate } from './kube/schema.ts';
import type { Schema } from './kube/schema.ts';
import { matchesLabels, parseFieldSelector, parseLabelSelector } from './kube/selectors.ts';
import { humanDuration } from './kube/table.ts';
import { parseMicroTime } from './kube/typed.ts';
import { Signal, waitUntil } from './helpers/wait.ts';

const CRD_FILE = 'test/kube/fixtures/widgets-crd.yaml';
const WIDGETS_FILE = 'test/kube/fixtures/widgets.yaml';
const KUBECTL = '/usr/bin/kubectl';
const GROUP = 'test.smsauth.io';
const VERSION = 'v1alpha1';
const WIDGETS = { group: GROUP, version: VERSION, plural: 'widgets' };

type Obj = Record<string, any>;

let client: typeof K8s | undefined;

/** loadClient imports the real client-node once. */
async function loadClient(): Promise<typeof K8s> {
  client ??= await import('@kubernetes/client-node');
  return client;
}

interface Env {
  server: ApiServer;
  k8s: typeof K8s;
  kc: K8s.KubeConfig;
  kubeconfig: string;
  dir: string;
  custom: K8s.CustomObjectsApi;
  core: K8s.CoreV1Api;
  coord: K8s.CoordinationV1Api;
}

async function withServer(fn: (env: Env) => Promise<void>, options: ApiServerOptions = {}): Promise<void> {
  const k8s = await loadClient();
  const server = await startApiServer({ port: 0, crds: [CRD_FILE], ...options });
  const dir = await mkdtemp(join(tmpdir(), 'kube-api-server-'));
  try {
    const kubeconfig = join(dir, 'kubeconfig');
    await server.writeKubeconfig(kubeconfig);
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(kubeconfig);
    await fn({
      server,
      k8s,
      kc,
      kubeconfig,
      dir,
      custom: kc.makeApiClient(k8s.CustomObjectsApi),
      core: kc.makeApiClient(k8s.CoreV1Api),
      coord: kc.makeApiClient(k8s.CoordinationV1Api),
    });
  } finally {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  }
}

function widget(name: string, spec: Obj = { provider: 'plivo' }, extra: Obj = {}): Obj {
  return { apiVersion: `${GROUP}/${VERSION}`, kind: 'Widget', metadata: { name, ...extra }, spec };
}

async function createWidget(env: Env, name: string, spec?: Obj, meta?: Obj, namespace = 'default'): Promise<Obj> {
  return (await env.custom.createNamespacedCustomObject({ ...WIDGETS, namespace, body: widget(name, spec, meta) })) as Obj;
}

async function getWidget(env: Env, name: string, namespace = 'default'): Promise<Obj> {
  return (await env.custom.getNamespacedCustomObject({ ...WIDGETS, namespace, name })) as Obj;
}

function stored(env: Env, ref: ObjectRef): Obj | undefined {
  return env.server.get(ref);
}

function mergePatch(env: Env): K8s.ConfigurationOptions<K8s.ObservableMiddleware> {
  return env.k8s.setHeaderOptions('Content-Type', env.k8s.PatchStrategy.MergePatch);
}

/** apiError awaits a promise that must fail with a client-node ApiException and returns its code and Status body. */
async function apiError(p: Promise<unknown>): Promise<{ code: number; body: Obj }> {
  try {
    await p;
  } catch (e) {
    const err = e as { code?: number; body?: unknown };
    if (typeof err.code !== 'number') throw e;
    const body = typeof err.body === 'string' ? (JSON.parse(err.body) as Obj) : ((err.body ?? {}) as Obj);
    return { code: err.code, body };
  }
  throw new Error('expected the request to fail');
}

/** tick fires whenever a test's client sees something (a watch event, an informer's, a line printed): waitFor re-reads its condition then, or when the server changes. */
const tick = new Signal();

function waitFor(what: string, check: () => boolean, server?: { changed(): Promise<void> }, timeoutMs = 5000): Promise<true> {
  return waitUntil(
    what,
    () => check() || undefined,
    () => Promise.race([tick.next(), ...(server !== undefined ? [server.changed()] : [])]),
    timeoutMs,
  );
}

interface WatchEvent {
  type: string;
  object: Obj;
}

async function startWatch(env: Env, path: string, query: Obj): Promise<{ events: WatchEvent[]; done: () => boolean; stop: () => void }> {
  const events: WatchEvent[] = [];
  let finished = false;
  const ctrl = await new env.k8s.Watch(env.kc).watch(
    path,
    query,
    (type, object) => {
      events.push({ type, object: object as Obj });
      tick.fire();
    },
    () => {
      finished = true;
      tick.fire();
    },
  );
  return { events, done: () => finished, stop: () => ctrl.abort() };
}

/** rawRequest sends one HTTPS request with the server's token and CA, for what client-node does not expose (headers). */
function rawRequest(
  env: Env,
  method: string,
  path: string,
  body?: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      `${env.server.url}${path}`,
      { method, ca: env.server.caPem, headers: { authorization: `Bearer ${env.server.token ?? ''}`, 'content-type': 'application/json', ...headers } },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function kubectl(env: Env, args: string[], stdin?: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(KUBECTL, ['--kubeconfig', env.kubeconfig, '--cache-dir', join(env.dir, 'cache'), ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(stdin ?? '');
  });
}

async function kubectlOk(env: Env, args: string[], stdin?: string): Promise<string> {
  const r = await kubectl(env, args, stdin);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed (${r.code}): ${r.stderr}${r.stdout}`);
  return r.stdout;
}

function conditionReady(status: string, generation: number): Obj {
  return {
    conditions: [
      {
        type: 'Ready',
        status,
        reason: status === 'True' ? 'Reconciled' : 'Pending',
        message: 'test',
        lastTransitionTime: '2026-01-02T03:04:05Z',
        observedGeneration: generation,
      },
    ],
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Pure pieces, table-driven.

const durations = suite('humanDuration');
for (const [ms, want] of [
  [5_000, '5s'],
  [119_000, '119s'],
  [125_000, '2m5s'],
  [180_000, '3m'],
  [1_800_000, '30m'],
  [4 * 3_600_000 + 300_000, '4h5m'],
  [30 * 3_600_000, '30h'],
  [50 * 3_600_000, '2d2h'],
  [20 * 86_400_000, '20d'],
  [-5_000, '<invalid>'],
] as const) {
  durations(`${ms}ms → ${want}`, () => assert.is(humanDuration(ms), want));
}
durations.run();

const jsonpath = suite('jsonpath');
const doc = {
  status: {
    conditions: [
      { type: 'Synced', status: 'False' },
      { type: 'Ready', status: 'True' },
    ],
  },
  spec: { items: ['a', 'b'], 'x.y': 1 },
};
for (const [expr, want] of [
  ['.status.conditions[?(@.type=="Ready")].status', ['True']],
  ['.status.conditions[0].type', ['Synced']],
  ['.status.conditions[*].type', ['Synced', 'Ready']],
  ['.spec.items[-1]', ['b']],
  [".spec['x.y']", [1]],
  ['.spec.missing', []],
] as const) {
  jsonpath(expr, () => assert.equal(evaluateJsonPath(parseJsonPath(expr), doc), want));
}
jsonpath('rejects what printer columns cannot use', () => assert.throws(() => parseJsonPath('.a[?(@.b ~ 1)]')));
jsonpath.run();

const selectors = suite('selectors');
for (const [sel, labels, want] of [
  ['app=web', { app: 'web' }, true],
  ['app==web,tier!=db', { app: 'web', tier: 'db' }, false],
  ['tier in (a, b)', { tier: 'b' }, true],
  ['tier notin (a,b)', {}, true],
  ['!canary', { canary: 'x' }, false],
  ['canary', { canary: '' }, true],
] as const) {
  selectors(`${sel} on ${JSON.stringify(labels)}`, () => assert.is(matchesLabels(parseLabelSelector(sel), labels), want));
}
selectors('field selector with escapes', () => {
  assert.equal(parseFieldSelector('metadata.name=a\\,b,spec.x!=y'), [
    { field: 'metadata.name', op: '=', value: 'a,b' },
    { field: 'spec.x', op: '!=', value: 'y' },
  ]);
});
selectors('malformed label selector is a 400', () => {
  try {
    parseLabelSelector('a in b');
    assert.unreachable();
  } catch (e) {
    assert.is((e as { status: { code: number } }).status.code, 400);
  }
});
selectors.run();

const patches = suite('patches');
patches('merge patch deletes with null and replaces lists', () => {
  assert.equal(applyMergePatch({ a: 1, b: { c: 2, d: 3 }, l: [1, 2] }, { b: { c: null, e: 4 }, l: [3] }), { a: 1, b: { d: 3, e: 4 }, l: [3] });
});
patches('json patch add/replace/remove/test', () => {
  const out = applyJsonPatch({ a: [1, 2], b: 'x' }, [
    { op: 'test', path: '/b', value: 'x' },
    { op: 'add', path: '/a/-', value: 3 },
    { op: 'replace', path: '/b', value: 'y' },
    { op: 'remove', path: '/a/0' },
  ]);
  assert.equal(out, { a: [2, 3], b: 'y' });
  assert.throws(() => applyJsonPatch({ a: 1 }, [{ op: 'test', path: '/a', value: 2 }]), /test failed/);
  assert.throws(() => applyJsonPatch({}, [{ op: 'remove', path: '/nope' }]), /missing/);
});
patches('strategic merge patch merges keyed lists and unions finalizers', () => {
  const meta = { 'spec.containers': { strategy: 'merge' as const, mergeKey: 'name' }, 'metadata.finalizers': { strategy: 'merge' as const } };
  const out = applyStrategicMergePatch(
    {
      metadata: { finalizers: ['a'] },
      spec: {
        containers: [
          { name: 'x', image: '1' },
          { name: 'y', image: '1' },
        ],
      },
    },
    {
      metadata: { finalizers: ['b'] },
      spec: {
        containers: [
          { name: 'y', image: '2' },
          { name: 'x', $patch: 'delete' },
        ],
      },
    },
    meta,
  );
  assert.equal(out, { metadata: { finalizers: ['a', 'b'] }, spec: { containers: [{ name: 'y', image: '2' }] } });
});
patches.run();

const schemas = suite('structural schema');
const codeSchema: Schema = {
  type: 'object',
  properties: {
    spec: {
      type: 'object',
      properties: {
        sms: {
          type: 'object',
          default: {},
          properties: { code: { type: 'object', default: {}, properties: { length: { type: 'integer', default: 6, minimum: 6, maximum: 10 } } } },
        },
        free: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
        mode: { type: 'string', enum: ['a', 'b'] },
      },
      required: ['mode'],
    },
  },
};
schemas('nested defaults apply inside defaulted objects', () => {
  const o: Obj = { spec: { mode: 'a' } };
  applyDefaults(o, codeSchema);
  assert.equal(o, { spec: { mode: 'a', sms: { code: { length: 6 } } } });
});
schemas('prune drops undeclared fields except under preserve-unknown-fields, and reports them', () => {
  const o: Obj = { apiVersion: 'x', kind: 'Y', metadata: { name: 'n', junk: 1 }, spec: { mode: 'a', nope: 1, free: { any: { thing: true } } }, top: 1 };
  assert.equal(prune(o, codeSchema).sort(), ['metadata.junk', 'spec.nope', 'top']);
  assert.equal(o, { apiVersion: 'x', kind: 'Y', metadata: { name: 'n' }, spec: { mode: 'a', free: { any: { thing: true } } } });
});
schemas('validation messages and paths follow the API server', () => {
  const errs = validate({ spec: { sms: { code: { length: 11 } }, mode: 'c' } }, codeSchema);
  assert.equal(
    errs.map((e) => [e.type, e.field]),
    [
      ['FieldValueInvalid', 'spec.sms.code.length'],
      ['FieldValueNotSupported', 'spec.mode'],
    ].sort((a, b) => (a[1]! < b[1]! ? 1 : -1)),
  );
  assert.equal(
    validate({ spec: {} }, codeSchema).map((e) => [e.type, e.field]),
    [['FieldValueRequired', 'spec.mode']],
  );
  assert.match(validate({ spec: { mode: 1 } }, codeSchema)[0]?.detail ?? '', 'spec.mode in body must be of type string: "integer"');
});
schemas.run();

const microTime = suite('MicroTime');
for (const [text, ok] of [
  ['2026-01-02T03:04:05.123456Z', true],
  ['2026-01-02T05:04:05.123456+02:00', true],
  ['2026-01-02T03:04:05.123Z', false],
  ['2026-01-02T03:04:05Z', false],
  ['2026-01-02T03:04:05.1234567Z', false],
] as const) {
  microTime(text, () => assert.is(parseMicroTime(text).ok, ok));
}
microTime('normalises to UTC', () => assert.equal(parseMicroTime('2026-01-02T05:04:05.123456+02:00'), { ok: true, value: '2026-01-02T03:04:05.123456Z' }));
microTime.run();

// ---------------------------------------------------------------------------------------------------------------
// The real @kubernetes/client-node against the fake API server.

const crud = suite('client-node: custom resource CRUD');
crud('create defaults nested fields, sets metadata, and get/list return it', () =>
  withServer(async (env) => {
    const created = await createWidget(env, 'a', { provider: 'plivo' }, { labels: { tier: 'one' } });
    assert.equal(created['spec'], { provider: 'plivo', sms: { code: { length: 6, ttl: '10m' } } });
    const meta = created['metadata'] as Obj;
    assert.is(meta['generation'], 1);
    assert.match(String(meta['uid']), /^[0-9a-f-]{36}$/);
    assert.match(String(meta['creationTimestamp']), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.is(meta['resourceVersion'], env.server.resourceVersion());
    assert.equal(await getWidget(env, 'a'), created);
    await createWidget(env, 'b', { provider: 'twilio' }, { labels: { tier: 'two' } });
    const list = (await env.custom.listNamespacedCustomObject({ ...WIDGETS, namespace: 'default' })) as Obj;
    assert.is(list['kind'], 'WidgetList');
    assert.is((list['metadata'] as Obj)['resourceVersion'], env.server.resourceVersion());
    assert.equal(
      (list['items'] as Obj[]).map((i) => i['metadata']['name']),
      ['a', 'b'],
    );
    const selected = (await env.custom.listNamespacedCustomObject({ ...WIDGETS, namespace: 'default', labelSelector: 'tier=two' })) as Obj;
    assert.equal(
      (selected['items'] as Obj[]).map((i) => i['metadata']['name']),
      ['b'],
    );
    const byName = (await env.custom.listNamespacedCustomObject({ ...WIDGETS, namespace: 'default', fieldSelector: 'metadata.name=a' })) as Obj;
    assert.equal(
      (byName['items'] as Obj[]).map((i) => i['metadata']['name']),
      ['a'],
    );
  }),
);
crud('404 NotFound, 409 AlreadyExists and a missing namespace are real Status objects', () =>
  withServer(async (env) => {
    const missing = await apiError(getWidget(env, 'nope'));
    assert.is(missing.code, 404);
    assert.equal(missing.body, {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'widgets.test.smsauth.io "nope" not found',
      reason: 'NotFound',
      code: 404,
      details: { name: 'nope', group: GROUP, kind: 'widgets' },
    });
    await createWidget(env, 'a');
    const dup = await apiError(createWidget(env, 'a'));
    assert.is(dup.code, 409);
    assert.is(dup.body['reason'], 'AlreadyExists');
    const noNs = await apiError(createWidget(env, 'a', undefined, undefined, 'ghost'));
    assert.is(noNs.code, 404);
    assert.is(noNs.body['message'], 'namespaces "ghost" not found');
  }),
);
crud('invalid objects get 422 Invalid with one cause per field', () =>
  withServer(async (env) => {
    const bad = await apiError(createWidget(env, 'bad', { provider: 'sms77', sender: '12', sms: { code: { length: 11 } }, contact: 'nobody' }));
    assert.is(bad.code, 422);
    assert.is(bad.body['reason'], 'Invalid');
    assert.is(bad.body['details']['kind'], 'Widget');
    const causes = (bad.body['details']['causes'] as Obj[]).map((c) => `${c['reason']} ${c['field']}`).sort();
    assert.equal(causes, [
      'FieldValueInvalid spec.contact',
      'FieldValueInvalid spec.sender',
      'FieldValueInvalid spec.sms.code.length',
      'FieldValueNotSupported spec.provider',
    ]);
    assert.match(String(bad.body['message']), /^Widget\.test\.smsauth\.io "bad" is invalid: \[/);
    assert.match(String(bad.body['message']), 'spec.sms.code.length: Invalid value: 11: spec.sms.code.length in body should be less than or equal to 10');
    const required = await apiError(
      env.custom.createNamespacedCustomObject({
        ...WIDGETS,
        namespace: 'default',
        body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'Widget', metadata: { name: 'r' }, spec: {} },
      }),
    );
    assert.equal(required.body['details']['causes'], [{ reason: 'FieldValueRequired', message: 'Required value', field: 'spec.provider' }]);
    const badName = await apiError(createWidget(env, 'Bad_Name'));
    assert.is(badName.body['details']['causes'][0]['field'], 'metadata.name');
  }),
);
crud('unknown fields: pruned with a Warning by default, 400 with fieldValidation=Strict, silent with Ignore', () =>
  withServer(async (env) => {
    const warned = await rawRequest(
      env,
      'POST',
      `/apis/${GROUP}/${VERSION}/namespaces/default/widgets`,
      JSON.stringify(widget('w', { provider: 'plivo', colour: 'red' })),
    );
    assert.is(warned.status, 201);
    assert.equal(warned.headers['warning'], '299 - "unknown field \\"spec.colour\\""');
    assert.not.ok('colour' in (JSON.parse(warned.body) as Obj)['spec']);
    const strict = await apiError(
      env.custom.createNamespacedCustomObject({
        ...WIDGETS,
        namespace: 'default',
        body: widget('s', { provider: 'plivo', colour: 'red' }),
        fieldValidation: 'Strict',
      }),
    );
    assert.is(strict.code, 400);
    assert.is(strict.body['message'], 'Widget in version "v1alpha1" cannot be handled as a Widget: strict decoding error: unknown field "spec.colour"');
    const ignored = (await env.custom.createNamespacedCustomObject({
      ...WIDGETS,
      namespace: 'default',
      body: widget('i', { provider: 'plivo', colour: 'red' }),
      fieldValidation: 'Ignore',
    })) as Obj;
    assert.not.ok('colour' in ignored['spec']);
    const strictPatch = await apiError(
      env.custom.patchNamespacedCustomObject(
        { ...WIDGETS, namespace: 'default', name: 'i', body: { spec: { colour: 'blue' } }, fieldValidation: 'Strict' },
        mergePatch(env),
      ),
    );
    assert.is(strictPatch.code, 422);
    assert.is(strictPatch.body['details']['causes'][0]['field'], 'patch');
    assert.match(String(strictPatch.body['message']), 'strict decoding error: unknown field "spec.colour"');
  }),
);
crud('merge patch through setHeaderOptions bumps generation only for spec changes; a no-op writes nothing', () =>
  withServer(async (env) => {
    await createWidget(env, 'a');
    const patched = (await env.custom.patchNamespacedCustomObject(
      { ...WIDGETS, namespace: 'default', name: 'a', body: { spec: { sms: { code: { length: 8 } } } } },
      mergePatch(env),
    )) as Obj;
    assert.is(patched['spec']['sms']['code']['length'], 8);
    assert.is(patched['spec']['sms']['code']['ttl'], '10m');
    assert.is(patched['metadata']['generation'], 2);
    const labelled = (await env.custom.patchNamespacedCustomObject(
      { ...WIDGETS, namespace: 'default', name: 'a', body: { metadata: { labels: { x: 'y' } } } },
      mergePatch(env),
    )) as Obj;
    assert.is(labelled['metadata']['generation'], 2);
    const rv = env.server.resourceVersion();
    const same = (await env.custom.patchNamespacedCustomObject(
      { ...WIDGETS, namespace: 'default', name: 'a', body: { metadata: { labels: { x: 'y' } } } },
      mergePatch(env),
    )) as Obj;
    assert.is(same['metadata']['resourceVersion'], rv);
    assert.is(env.server.resourceVersion(), rv);
    const patchReq = env.server.requests.filter((r) => r.method === 'PATCH');
    assert.ok(patchReq.every((r) => r.contentType === 'application/merge-patch+json'));
    const json = (await env.custom.patchNamespacedCustomObject({
      ...WIDGETS,
      namespace: 'default',
      name: 'a',
      body: [{ op: 'replace', path: '/spec/provider', value: 'console' }],
    })) as Obj;
    assert.is(json['spec']['provider'], 'console');
    const smp = await apiError(
      env.custom.patchNamespacedCustomObject(
        { ...WIDGETS, namespace: 'default', name: 'a', body: { spec: {} } },
        env.k8s.setHeaderOptions('Content-Type', env.k8s.PatchStrategy.StrategicMergePatch),
      ),
    );
    assert.is(smp.code, 415);
  }),
);
crud('update with a stale resourceVersion is a 409 Conflict; without one it is unconditional', () =>
  withServer(async (env) => {
    const first = await createWidget(env, 'a');
    const current = (await env.custom.replaceNamespacedCustomObject({
      ...WIDGETS,
      namespace: 'default',
      name: 'a',
      body: { ...first, spec: { provider: 'twilio' } },
    })) as Obj;
    assert.is(current['metadata']['generation'], 2);
    const stale = await apiError(
      env.custom.replaceNamespacedCustomObject({ ...WIDGETS, namespace: 'default', name: 'a', body: { ...first, spec: { provider: 'console' } } }),
    );
    assert.is(stale.code, 409);
    assert.is(stale.body['reason'], 'Conflict');
    assert.is(
      stale.body['message'],
      'Operation cannot be fulfilled on widgets.test.smsauth.io "a": the object has been modified; please apply your changes to the latest version and try again',
    );
    const { resourceVersion: _rv, ...metaWithoutRv } = current['metadata'] as Obj;
    void _rv;
    const unconditional = (await env.custom.replaceNamespacedCustomObject({
      ...WIDGETS,
      namespace: 'default',
      name: 'a',
      body: { ...current, metadata: metaWithoutRv, spec: { provider: 'console' } },
    })) as Obj;
    assert.is(unconditional['spec']['provider'], 'console');
    const rvPatch = await apiError(
      env.custom.patchNamespacedCustomObject(
        {
          ...WIDGETS,
          namespace: 'default',
          name: 'a',
          body: { metadata: { resourceVersion: first['metadata']['resourceVersion'] }, spec: { provider: 'plivo' } },
        },
        mergePatch(env),
      ),
    );
    assert.is(rvPatch.code, 409);
  }),
);
crud('paging with limit/continue returns a consistent snapshot', () =>
  withServer(async (env) => {
    for (const n of ['a', 'b', 'c', 'd', 'e']) await createWidget(env, n);
    const page1 = (await env.custom.listNamespacedCustomObject({ ...WIDGETS, namespace: 'default', limit: 2 })) as Obj;
    assert.equal(
      (page1['items'] as Obj[]).map((i) => i['metadata']['name']),
      ['a', 'b'],
    );
    assert.is(page1['metadata']['remainingItemCount'], 3);
    await createWidget(env, 'bb');
    const page2 = (await env.custom.listNamespacedCustomObject({
      ...WIDGETS,
      namespace: 'default',
      limit: 2,
      _continue: page1['metadata']['continue'],
    })) as Obj;
    assert.equal(
      (page2['items'] as Obj[]).map((i) => i['metadata']['name']),
      ['c', 'd'],
    );
    assert.is(page2['metadata']['resourceVersion'], page1['metadata']['resourceVersion']);
    const all = (await env.custom.listClusterCustomObject({ ...WIDGETS })) as Obj;
    assert.is((all['items'] as Obj[]).length, 6);
  }),
);
crud.run();

const status = suite('client-node: status subresource');
status('status writes change only .status; main writes ignore .status; generation is spec-only', () =>
  withServer(async (env) => {
    const created = (await env.custom.createNamespacedCustomObject({
      ...WIDGETS,
      namespace: 'default',
      body: { ...widget('a'), status: conditionReady('True', 1) },
    })) as Obj;
    assert.not.ok('status' in created, 'create drops status when the subresource is enabled');
    const withStatus = (await env.custom.patchNamespacedCustomObjectStatus(
      {
        ...WIDGETS,
        namespace: 'default',
        name: 'a',
        body: { status: conditionReady('False', 1), spec: { provider: 'console' }, metadata: { labels: { sneaky: 'yes' } } },
      },
      mergePatch(env),
    )) as Obj;
    assert.is(withStatus['status']['conditions'][0]['status'], 'False');
    assert.is(withStatus['spec']['provider'], 'plivo');
    assert.is(withStatus['metadata']['labels'], undefined);
    assert.is(withStatus['metadata']['generation'], 1);
    const viaMain = (await env.custom.patchNamespacedCustomObject(
      { ...WIDGETS, namespace: 'default', name: 'a', body: { status: conditionReady('True', 1) } },
      mergePatch(env),
    )) as Obj;
    assert.is(viaMain['status']['conditions'][0]['status'], 'False');
    assert.is(viaMain['metadata']['resourceVersion'], withStatus['metadata']['resourceVersion'], 'nothing changed, nothing written');
    const replaced = (await env.custom.replaceNamespacedCustomObjectStatus({
      ...WIDGETS,
      namespace: 'default',
      name: 'a',
      body: { ...viaMain, status: conditionReady('True', 1) },
    })) as Obj;
    assert.is(replaced['status']['conditions'][0]['status'], 'True');
    const stale = await apiError(
      env.custom.replaceNamespacedCustomObjectStatus({
        ...WIDGETS,
        namespace: 'default',
        name: 'a',
        body: { ...viaMain, status: conditionReady('Unknown', 1) },
      }),
    );
    assert.is(stale.code, 409);
    const invalidStatus = await apiError(
      env.custom.patchNamespacedCustomObjectStatus(
        { ...WIDGETS, namespace: 'default', name: 'a', body: { status: { conditions: [{ type: 'Ready', status: 'Maybe' }] } } },
        mergePatch(env),
      ),
    );
    assert.is(invalidStatus.code, 422);
    assert.is(invalidStatus.body['details']['causes'][0]['field'], 'status.conditions[0].status');
    assert.is(created['metadata']['generation'], 1);
    const specChange = (await env.custom.patchNamespacedCustomObject(
      { ...WIDGETS, namespace: 'default', name: 'a', body: { spec: { provider: 'twilio' } } },
      mergePatch(env),
    )) as Obj;
    assert.is(specChange['metadata']['generation'], 2);
    assert.is(specChange['status']['conditions'][0]['status'], 'True');
  }),
);
status('the request log shows which writes went to /status', () =>
  withServer(async (env) => {
    await createWidget(env, 'a');
    env.server.faults.clearRequests();
    await env.custom.patchNamespacedCustomObjectStatus(
      { ...WIDGETS, namespace: 'default', name: 'a', body: { status: conditionReady('True', 1) } },
      mergePatch(env),
    );
    const writes = env.server.requests.filter((r) => r.method !== 'GET');
    assert.equal(
      writes.map((r) => [r.method, r.path, r.contentType, r.status]),
      [['PATCH', '/apis/test.smsauth.io/v1alpha1/namespaces/default/widgets/a/status', 'application/merge-patch+json', 200]],
    );
  }),
);
status.run();

const finalizers = suite('client-node: finalizers and deletion');
finalizers('delete with a finalizer sets deletionTimestamp; removing the last finalizer deletes', () =>
  withServer(async (env) => {
    await createWidget(env, 'a', undefined, { finalizers: ['test.smsauth.io/cleanup'] });
    const w = await startWatch(env, `/apis/${GROUP}/${VERSION}/namespaces/default/widgets`, { resourceVersion: env.server.resourceVersion() });
    const deleting = (await env.custom.deleteNamespacedCustomObject({ ...WIDGETS, namespace: 'default', name: 'a' })) as Obj;
    assert.ok(deleting['metadata']['deletionTimestamp']);
    assert.is(deleting['metadata']['deletionGracePeriodSeconds'], 0);
    assert.is(deleting['metadata']['generation'], 2);
    assert.ok(await getWidget(env, 'a'));
    const refuse = await apiError(
      env.custom.patchNamespacedCustomObject(
        { ...WIDGETS, namespace: 'default', name: 'a', body: { metadata: { finalizers: ['test.smsauth.io/cleanup', 'another.io/x'] } } },
        mergePatch(env),
      ),
    );
    assert.is(refuse.code, 422);
    await env.custom.patchNamespacedCustomObject({ ...WIDGETS, namespace: 'default', name: 'a', body: [{ op: 'remove', path: '/metadata/finalizers' }] });
    assert.is((await apiError(getWidget(env, 'a'))).code, 404);
    await waitFor('MODIFIED then DELETED', () => w.events.length >= 2);
    w.stop();
    assert.equal(
      w.events.map((e) => e.type),
      ['MODIFIED', 'DELETED'],
    );
    assert.ok(w.events[1]?.object['metadata']['deletionTimestamp']);
  }),
);
finalizers('delete without finalizers returns the object; built-ins answer a Success Status; preconditions conflict', () =>
  withServer(async (env) => {
    const created = await createWidget(env, 'a');
    const stale = await apiError(
      env.custom.deleteNamespacedCustomObject({ ...WIDGETS, namespace: 'default', name: 'a', body: { preconditions: { uid: 'not-the-uid' } } }),
    );
    assert.is(stale.code, 409);
    const gone = (await env.custom.deleteNamespacedCustomObject({ ...WIDGETS, namespace: 'default', name: 'a' })) as Obj;
    assert.is(gone['metadata']['uid'], created['metadata']['uid']);
    await env.core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'c' }, data: { k: 'v' } } });
    const st = await env.core.deleteNamespacedConfigMap({ namespace: 'default', name: 'c' });
    assert.is((st as Obj)['status'], 'Success');
  }),
);
finalizers('deleting a namespace removes its contents, then the namespace', () =>
  withServer(async (env) => {
    await env.core.createNamespace({ body: { metadata: { name: 'team' } } });
    await createWidget(env, 'a', undefined, undefined, 'team');
    await env.core.createNamespacedSecret({ namespace: 'team', body: { metadata: { name: 's' }, stringData: { k: 'v' } } });
    await env.core.deleteNamespace({ name: 'team' });
    assert.is((await apiError(env.core.readNamespace({ name: 'team' }))).code, 404);
    assert.is((await apiError(getWidget(env, 'a', 'team'))).code, 404);
    assert.is((await apiError(env.core.deleteNamespace({ name: 'default' }))).code, 403);
  }),
);
finalizers('owner references: background deletion collects dependents, Orphan keeps them', () =>
  withServer(async (env) => {
    const owner = await createWidget(env, 'owner');
    const ref = { apiVersion: `${GROUP}/${VERSION}`, kind: 'Widget', name: 'owner', uid: String(owner['metadata']['uid']), controller: true };
    await env.core.createNamespacedSecret({ namespace: 'default', body: { metadata: { name: 'owned', ownerReferences: [ref] }, stringData: { k: 'v' } } });
    await env.custom.deleteNamespacedCustomObject({ ...WIDGETS, namespace: 'default', name: 'owner' });
    assert.is((await apiError(env.core.readNamespacedSecret({ namespace: 'default', name: 'owned' }))).code, 404);
    const keeper = await createWidget(env, 'keeper');
    const keepRef = { ...ref, name: 'keeper', uid: String(keeper['metadata']['uid']) };
    await env.core.createNamespacedSecret({ namespace: 'default', body: { metadata: { name: 'kept', ownerReferences: [keepRef] }, stringData: { k: 'v' } } });
    await env.custom.deleteNamespacedCustomObject({ ...WIDGETS, namespace: 'default', name: 'keeper', propagationPolicy: 'Orphan' });
    const kept = await env.core.readNamespacedSecret({ namespace: 'default', name: 'kept' });
    assert.is(kept.metadata?.ownerReferences, undefined);
  }),
);
finalizers.run();

const builtins = suite('client-node: built-in resources');
builtins('Secrets take stringData, reject bad base64, and select by type', () =>
  withServer(async (env) => {
    const s = await env.core.createNamespacedSecret({ namespace: 'default', body: { metadata: { name: 's' }, stringData: { user: 'alice' } } });
    assert.equal(s.data, { user: Buffer.from('alice').toString('base64') });
    assert.is(s.type, 'Opaque');
    assert.is(s.metadata?.generation, undefined);
    const bad = await apiError(env.core.createNamespacedSecret({ namespace: 'default', body: { metadata: { name: 'b' }, data: { k: 'not base64!' } } }));
    assert.is(bad.code, 400);
    const list = await env.core.listNamespacedSecret({ namespace: 'default', fieldSelector: 'type=Opaque' });
    assert.is(list.items.length, 1);
  }),
);
builtins('Leases: MicroTime needs six fractional digits; updates need a current resourceVersion', () =>
  withServer(async (env) => {
    const now = new env.k8s.V1MicroTime();
    const lease = await env.coord.createNamespacedLease({
      namespace: 'default',
      body: { metadata: { name: 'leader' }, spec: { holderIdentity: 'a', leaseDurationSeconds: 15, acquireTime: now, renewTime: now } },
    });
    assert.match(
      String(stored(env, { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', namespace: 'default', name: 'leader' })?.['spec']['renewTime']),
      /\.\d{6}Z$/,
    );
    const millis = await apiError(
      env.coord.createNamespacedLease({ namespace: 'default', body: { metadata: { name: 'm' }, spec: { renewTime: new Date() } } }),
    );
    assert.is(millis.code, 400);
    assert.match(String(millis.body['message']), 'as "2006-01-02T15:04:05.000000Z07:00"');
    const renewed = await env.coord.replaceNamespacedLease({
      namespace: 'default',
      name: 'leader',
      body: { ...lease, spec: { ...lease.spec, renewTime: new env.k8s.V1MicroTime() } },
    });
    const loser = await apiError(
      env.coord.replaceNamespacedLease({ namespace: 'default', name: 'leader', body: { ...lease, spec: { ...lease.spec, holderIdentity: 'b' } } }),
    );
    assert.is(loser.code, 409);
    const { resourceVersion: _rv, ...noRv } = renewed.metadata ?? {};
    void _rv;
    const unconditional = await apiError(env.coord.replaceNamespacedLease({ namespace: 'default', name: 'leader', body: { ...renewed, metadata: noRv } }));
    assert.is(unconditional.code, 422);
    assert.is(unconditional.body['details']['causes'][0]['field'], 'metadata.resourceVersion');
    const created = await env.coord.replaceNamespacedLease({
      namespace: 'default',
      name: 'fresh',
      body: { metadata: { name: 'fresh' }, spec: { holderIdentity: 'c' } },
    });
    assert.is(created.spec?.holderIdentity, 'c');
  }),
);
builtins('Events: events.k8s.io/v1 and core/v1 share storage; eventTime is a MicroTime', () =>
  withServer(async (env) => {
    const events = env.kc.makeApiClient(env.k8s.EventsV1Api);
    const missing = await apiError(
      events.createNamespacedEvent({
        namespace: 'default',
        body: { metadata: { name: 'e0' }, eventTime: new env.k8s.V1MicroTime(), reason: 'Tested', type: 'Normal' },
      }),
    );
    assert.is(missing.code, 422);
    await events.createNamespacedEvent({
      namespace: 'default',
      body: {
        metadata: { name: 'e1' },
        eventTime: new env.k8s.V1MicroTime(),
        reason: 'Reconciled',
        type: 'Normal',
        action: 'Reconcile',
        note: 'ok',
        reportingController: 'smsauth.io/controller',
        reportingInstance: 'pod-1',
        regarding: { kind: 'Widget', name: 'a', namespace: 'default' },
      },
    });
    const core = await env.core.readNamespacedEvent({ namespace: 'default', name: 'e1' });
    assert.is(core.message, 'ok');
    assert.is(core.involvedObject.name, 'a');
    assert.is(core.reportingComponent, 'smsauth.io/controller');
    const byObject = await env.core.listNamespacedEvent({ namespace: 'default', fieldSelector: 'involvedObject.name=a' });
    assert.is(byObject.items.length, 1);
    const bad = await apiError(
      env.core.createNamespacedEvent({
        namespace: 'default',
        body: { metadata: { name: 'e2' }, involvedObject: { name: 'a', namespace: 'default' }, eventTime: new Date() },
      }),
    );
    assert.is(bad.code, 400);
  }),
);
builtins.run();

const watches = suite('client-node: watch');
watches('ADDED for existing objects, then MODIFIED/DELETED, BOOKMARKs, and timeoutSeconds ends the stream', () =>
  withServer(
    async (env) => {
      await createWidget(env, 'a');
      const w = await startWatch(env, `/apis/${GROUP}/${VERSION}/namespaces/default/widgets`, { allowWatchBookmarks: true, timeoutSeconds: 2 });
      await waitFor('initial ADDED', () => w.events.length >= 1);
      await env.custom.patchNamespacedCustomObject({ ...WIDGETS, namespace: 'default', name: 'a', body: { spec: { provider: 'console' } } }, mergePatch(env));
      await env.custom.deleteNamespacedCustomObject({ ...WIDGETS, namespace: 'default', name: 'a' });
      await waitFor('a bookmark', () => w.events.some((e) => e.type === 'BOOKMARK'));
      const kinds = w.events.filter((e) => e.type !== 'BOOKMARK').map((e) => e.type);
      assert.equal(kinds, ['ADDED', 'MODIFIED', 'DELETED']);
      const bookmark = w.events.find((e) => e.type === 'BOOKMARK');
      assert.is(bookmark?.object['kind'], 'Widget');
      assert.is(bookmark?.object['metadata']['resourceVersion'], env.server.resourceVersion());
      const deleted = w.events.find((e) => e.type === 'DELETED');
      assert.is(deleted?.object['metadata']['resourceVersion'], env.server.resourceVersion());
      await waitFor('the stream to end at timeoutSeconds', w.done, undefined, 4000);
    },
    { bookmarkIntervalMs: 100 },
  ),
);
watches('resuming from a resourceVersion replays later changes; selectors turn transitions into ADDED/DELETED', () =>
  withServer(async (env) => {
    await createWidget(env, 'a', undefined, { labels: { pick: 'no' } });
    const rv = env.server.resourceVersion();
    await env.custom.patchNamespacedCustomObject(
      { ...WIDGETS, namespace: 'default', name: 'a', body: { metadata: { labels: { pick: 'yes' } } } },
      mergePatch(env),
    );
    const w = await startWatch(env, `/apis/${GROUP}/${VERSION}/namespaces/default/widgets`, { resourceVersion: rv, labelSelector: 'pick=yes' });
    await env.custom.patchNamespacedCustomObject({ ...WIDGETS, namespace: 'default', name: 'a', body: { spec: { provider: 'twilio' } } }, mergePatch(env));
    await env.custom.patchNamespacedCustomObject(
      { ...WIDGETS, namespace: 'default', name: 'a', body: { metadata: { labels: { pick: 'no' } } } },
      mergePatch(env),
    );
    await createWidget(env, 'b', undefined, { labels: { pick: 'no' } });
    await waitFor('three events', () => w.events.length >= 3);
    // A request served after the events: whatever the server did on them (closing the watch
    // included), it has done by the time this one is answered.
    await env.custom.listNamespacedCustomObject({ ...WIDGETS, namespace: 'default' });
    assert.is(env.server.openWatches(), 1);
    w.stop();
    await waitFor('the server to notice the client went away', () => env.server.openWatches() === 0, env.server);
    assert.equal(
      w.events.map((e) => `${e.type} ${e.object['metadata']['name']}`),
      ['ADDED a', 'MODIFIED a', 'DELETED a'],
    );
  }),
);
watches('after compaction a resume gets ERROR 410 Expired, as a real server', () =>
  withServer(async (env) => {
    await createWidget(env, 'a');
    const rv = env.server.resourceVersion();
    await createWidget(env, 'b');
    env.server.faults.compact();
    const w = await startWatch(env, `/apis/${GROUP}/${VERSION}/namespaces/default/widgets`, { resourceVersion: rv });
    await waitFor('the ERROR event and end of stream', () => w.done() && w.events.length > 0);
    assert.is(w.events.length, 1);
    assert.is(w.events[0]?.type, 'ERROR');
    const st = w.events[0]?.object ?? {};
    assert.equal([st['kind'], st['status'], st['reason'], st['code']], ['Status', 'Failure', 'Expired', 410]);
    const list = await apiError(
      env.custom.listNamespacedCustomObject({ ...WIDGETS, namespace: 'default', resourceVersion: rv, resourceVersionMatch: 'Exact' }),
    );
    assert.is(list.code, 410);
    const now = (await env.custom.listNamespacedCustomObject({
      ...WIDGETS,
      namespace: 'default',
      resourceVersion: env.server.resourceVersion(),
      resourceVersionMatch: 'Exact',
    })) as Obj;
    assert.is((now['items'] as Obj[]).length, 2);
  }),
);
watches.run();

const informers = suite('client-node: informer resilience');
informers('an informer keeps its cache through dropped watches, abrupt disconnects and compaction', () =>
  withServer(async (env) => {
    await createWidget(env, 'a');
    const path = `/apis/${GROUP}/${VERSION}/namespaces/default/widgets`;
    const informer = env.k8s.makeInformer(
      env.kc,
      path,
      () => env.custom.listNamespacedCustomObject({ ...WIDGETS, namespace: 'default' }) as Promise<K8s.KubernetesListObject<K8s.KubernetesObject>>,
    );
    const seen: string[] = [];
    informer.on('add', (o) => seen.push(`add ${o.metadata?.name ?? ''}`));
    informer.on('update', (o) => seen.push(`update ${o.metadata?.name ?? ''}`));
    informer.on('delete', (o) => seen.push(`delete ${o.metadata?.name ?? ''}`));
    for (const event of ['add', 'update', 'delete'] as const) informer.on(event, () => tick.fire());
    for (const event of ['connect', 'error'] as const) informer.on(event, () => tick.fire());
    let stopped = false;
    informer.on('error', () => {
      if (!stopped) setTimeout(() => void informer.start(), 50);
    });
    await informer.start();
    const names = (): string[] =>
      informer
        .list('default')
        .map((o) => o.metadata?.name ?? '')
        .sort();
    await waitFor('initial list', () => names().join() === 'a');
    const watchesBefore = env.server.requests.filter((r) => r.watch).length;
    assert.is(env.server.faults.dropWatches(), 1);
    await createWidget(env, 'b');
    await waitFor('b after a clean drop', () => names().join() === 'a,b');
    assert.ok(env.server.requests.filter((r) => r.watch).length > watchesBefore, 'the informer watched again');
    await waitFor('a live watch', () => env.server.openWatches() === 1, env.server);
    env.server.faults.dropWatches({ abrupt: true });
    await env.custom.deleteNamespacedCustomObject({ ...WIDGETS, namespace: 'default', name: 'a' });
    await waitFor('a gone after an abrupt drop', () => names().join() === 'b', env.server, 8000);
    await waitFor('a live watch again', () => env.server.openWatches() === 1, env.server, 8000);
    env.server.faults.compact();
    env.server.faults.dropWatches();
    await createWidget(env, 'c');
    await waitFor('c after compaction (relist)', () => names().join() === 'b,c', env.server, 8000);
    stopped = true;
    await informer.stop();
    assert.ok(seen.includes('add b') && seen.includes('delete a') && seen.includes('add c'));
  }),
);
informers.run();

const faults = suite('fault injection and auth');
faults('failNext, hold, delay and the 401 without a token', () =>
  withServer(async (env) => {
    env.server.faults.failNext({ method: 'GET', pathPrefix: '/apis/test.smsauth.io', status: 500, count: 2 });
    assert.is((await apiError(getWidget(env, 'x'))).code, 500);
    assert.is((await apiError(getWidget(env, 'x'))).code, 500);
    assert.is((await apiError(getWidget(env, 'x'))).code, 404);
    // A held request is overtaken by one sent after it, and answered once released.
    const release = env.server.faults.hold({ pathPrefix: '/api/v1/namespaces/default/configmaps' });
    const order: string[] = [];
    const held = env.core.listNamespacedConfigMap({ namespace: 'default' }).then(() => order.push('configmaps'));
    await waitFor('the held request to arrive', () => env.server.requests.some((r) => r.path.startsWith('/api/v1/namespaces/default/configmaps')), env.server);
    await env.core.listNamespacedSecret({ namespace: 'default' }).then(() => order.push('secrets'));
    assert.equal(order, ['secrets'], 'the held request is not answered before its release');
    release();
    await held;
    assert.equal(order, ['secrets', 'configmaps']);
    // A delayed request is answered, late.
    const undo = env.server.faults.delay({ pathPrefix: '/api/v1/namespaces/default/configmaps', ms: 50, count: 1 });
    await env.core.listNamespacedConfigMap({ namespace: 'default' });
    undo();
    const anon = new env.k8s.KubeConfig();
    const raw = parseYaml(await readFile(env.kubeconfig, 'utf8')) as Obj;
    raw['users'][0]['user'] = {};
    const anonFile = join(env.dir, 'anon');
    await writeFile(anonFile, JSON.stringify(raw));
    anon.loadFromFile(anonFile);
    const denied = await apiError(anon.makeApiClient(env.k8s.CoreV1Api).listNamespace());
    assert.is(denied.code, 401);
    const raw401 = await rawRequest(env, 'GET', '/api/v1/namespaces', undefined, { authorization: 'Bearer wrong' });
    assert.equal(JSON.parse(raw401.body), {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'Unauthorized',
      reason: 'Unauthorized',
      code: 401,
    });
  }),
);
faults('the direct helpers see what the API serves', () =>
  withServer(async (env) => {
    const applied: Obj = env.server.apply({
      ...widget('d', { provider: 'console' }),
      metadata: { name: 'd', namespace: 'default' },
      status: conditionReady('True', 1),
    });
    assert.is(applied['status']['conditions'][0]['status'], 'True');
    const read = await getWidget(env, 'd');
    assert.equal(read, applied);
    assert.is(env.server.list(`${GROUP}/${VERSION}`, 'Widget').length, 1);
    env.server.delete({ apiVersion: `${GROUP}/${VERSION}`, kind: 'Widget', namespace: 'default', name: 'd' });
    assert.is(stored(env, { apiVersion: `${GROUP}/${VERSION}`, kind: 'Widget', namespace: 'default', name: 'd' }), undefined);
  }),
);
faults.run();

const protocol = suite('HTTP protocol details');
protocol('Table output: Name first, printer columns, cells and PartialObjectMetadata or the object', () =>
  withServer(async (env) => {
    env.server.apply({ ...widget('a'), metadata: { name: 'a', namespace: 'default' }, status: conditionReady('True', 1) });
    const accept = 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json';
    const r = await rawRequest(env, 'GET', `/apis/${GROUP}/${VERSION}/namespaces/default/widgets`, undefined, { accept });
    const table = JSON.parse(r.body) as Obj;
    assert.is(table['kind'], 'Table');
    assert.is(table['apiVersion'], 'meta.k8s.io/v1');
    assert.equal(
      (table['columnDefinitions'] as Obj[]).map((c) => `${c['name']}:${c['type']}:${c['priority']}`),
      ['Name:string:0', 'Provider:string:0', 'Length:integer:0', 'Ready:string:0', 'Reason:string:1', 'Age:date:0'],
    );
    const row = (table['rows'] as Obj[])[0] ?? {};
    assert.equal((row['cells'] as unknown[]).slice(0, 5), ['a', 'plivo', 6, 'True', 'Reconciled']);
    assert.match(String((row['cells'] as unknown[])[5]), /^\d+s$/);
    assert.is(row['object']['kind'], 'PartialObjectMetadata');
    const full = JSON.parse(
      (await rawRequest(env, 'GET', `/apis/${GROUP}/${VERSION}/namespaces/default/widgets/a?includeObject=Object`, undefined, { accept })).body,
    ) as Obj;
    assert.is((full['rows'] as Obj[])[0]?.['object']['spec']['provider'], 'plivo');
    const ns = JSON.parse((await rawRequest(env, 'GET', '/api/v1/namespaces', undefined, { accept })).body) as Obj;
    assert.equal(
      (ns['columnDefinitions'] as Obj[]).map((c) => c['name']),
      ['Name', 'Status', 'Age'],
    );
  }),
);
protocol('discovery: aggregated v2 when asked, legacy lists otherwise', () =>
  withServer(async (env) => {
    const aggregated = await rawRequest(env, 'GET', '/apis', undefined, {
      accept: 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json',
    });
    assert.is(aggregated.headers['content-type'], 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList');
    const group = ((JSON.parse(aggregated.body) as Obj)['items'] as Obj[]).find((g) => g['metadata']['name'] === GROUP);
    const res = group?.['versions'][0]['resources'][0] as Obj;
    assert.equal(
      [res['resource'], res['scope'], res['singularResource'], res['shortNames'], res['categories'], res['subresources'][0]['subresource']],
      ['widgets', 'Namespaced', 'widget', ['wdg'], ['smsauth-test'], 'status'],
    );
    const legacy = JSON.parse((await rawRequest(env, 'GET', `/apis/${GROUP}/${VERSION}`)).body) as Obj;
    assert.equal(
      (legacy['resources'] as Obj[]).map((r) => r['name']),
      ['widgets', 'widgets/status'],
    );
    const groups = JSON.parse((await rawRequest(env, 'GET', '/apis')).body) as Obj;
    assert.ok((groups['groups'] as Obj[]).some((g) => g['name'] === 'coordination.k8s.io'));
    assert.is((await rawRequest(env, 'GET', '/apis/nothing.io/v1')).status, 404);
  }),
);
protocol('sendInitialEvents streams the current objects, then a bookmark marking their end', () =>
  withServer(async (env) => {
    await createWidget(env, 'a');
    await createWidget(env, 'b');
    const w = await startWatch(env, `/apis/${GROUP}/${VERSION}/namespaces/default/widgets`, {
      sendInitialEvents: true,
      allowWatchBookmarks: true,
      resourceVersionMatch: 'NotOlderThan',
    });
    await waitFor('the end-of-initial-events bookmark', () => w.events.some((e) => e.type === 'BOOKMARK'));
    w.stop();
    assert.equal(
      w.events.map((e) => e.type),
      ['ADDED', 'ADDED', 'BOOKMARK'],
    );
    assert.equal(w.events[2]?.object['metadata']['annotations'], { 'k8s.io/initial-events-end': 'true' });
  }),
);
protocol('dryRun=All validates and answers without storing', () =>
  withServer(async (env) => {
    const rv = env.server.resourceVersion();
    const dry = (await env.custom.createNamespacedCustomObject({ ...WIDGETS, namespace: 'default', body: widget('dry'), dryRun: 'All' })) as Obj;
    assert.is(dry['spec']['sms']['code']['length'], 6);
    assert.is(env.server.resourceVersion(), rv);
    assert.is((await apiError(getWidget(env, 'dry'))).code, 404);
  }),
);
protocol.run();

// ---------------------------------------------------------------------------------------------------------------
// The real kubectl against the fake API server.

const cli = suite('kubectl');
cli('apply a CRD, then custom resources; get by short name and category shows printer columns', () =>
  withServer(
    async (env) => {
      assert.match(await kubectlOk(env, ['apply', '-f', CRD_FILE]), 'customresourcedefinition.apiextensions.k8s.io/widgets.test.smsauth.io created');
      const crd = stored(env, { apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', name: 'widgets.test.smsauth.io' });
      assert.equal(
        (crd?.['status']['conditions'] as Obj[]).map((c) => `${c['type']}=${c['status']}`),
        ['NamesAccepted=True', 'Established=True'],
      );
      assert.is(crd?.['status']['acceptedNames']['kind'], 'Widget');
      const out = await kubectlOk(env, ['apply', '--validate=false', '-f', WIDGETS_FILE]);
      assert.match(out, 'widget.test.smsauth.io/alpha created');
      assert.match(out, 'widget.test.smsauth.io/beta created');
      const table = await kubectlOk(env, ['get', 'wdg']);
      const lines = table
        .trim()
        .split('\n')
        .map((l) => l.trim().split(/\s+/));
      assert.equal(lines[0], ['NAME', 'PROVIDER', 'LENGTH', 'READY', 'AGE']);
      assert.equal(lines[1]?.slice(0, 3), ['alpha', 'plivo', '8']);
      assert.equal(lines[2]?.slice(0, 3), ['beta', 'console', '6']);
      assert.match(lines[1]?.[3] ?? '', /^\d+s$/);
      const wide = await kubectlOk(env, ['get', 'smsauth-test', '-o', 'wide']);
      assert.match(wide.split('\n')[0] ?? '', /NAME\s+PROVIDER\s+LENGTH\s+READY\s+REASON\s+AGE/);
      const yaml = parseYaml(await kubectlOk(env, ['get', 'widget', 'alpha', '-o', 'yaml'])) as Obj;
      assert.equal(yaml['spec'], { provider: 'plivo', sender: '+15550001111', sms: { code: { length: 8, ttl: '10m' } } });
      const json = JSON.parse(await kubectlOk(env, ['get', 'widgets.test.smsauth.io', '-o', 'json'])) as Obj;
      assert.is(json['kind'], 'List');
      assert.is((json['items'] as Obj[]).length, 2);
    },
    { crds: [] },
  ),
);
cli('apply twice: unchanged, then configured through a merge patch; strict validation rejects unknown fields', () =>
  withServer(async (env) => {
    await kubectlOk(env, ['apply', '-f', WIDGETS_FILE]);
    assert.match(await kubectlOk(env, ['apply', '-f', WIDGETS_FILE]), 'widget.test.smsauth.io/alpha unchanged');
    env.server.faults.clearRequests();
    const changed = (await readFile(WIDGETS_FILE, 'utf8')).replace('length: 8', 'length: 9');
    assert.match(await kubectlOk(env, ['apply', '-f', '-'], changed), 'widget.test.smsauth.io/alpha configured');
    const patch = env.server.requests.find((r) => r.method === 'PATCH');
    assert.is(patch?.contentType, 'application/merge-patch+json');
    assert.is(stored(env, { apiVersion: `${GROUP}/${VERSION}`, kind: 'Widget', namespace: 'default', name: 'alpha' })?.['metadata']['generation'], 2);
    const unknown = await kubectl(
      env,
      ['apply', '-f', '-'],
      'apiVersion: test.smsauth.io/v1alpha1\nkind: Widget\nmetadata: {name: x}\nspec: {provider: plivo, colour: red}\n',
    );
    assert.is.not(unknown.code, 0);
    assert.match(unknown.stderr, 'unknown field "spec.colour"');
    const invalid = await kubectl(
      env,
      ['apply', '-f', '-'],
      'apiVersion: test.smsauth.io/v1alpha1\nkind: Widget\nmetadata: {name: wrong}\nspec: {provider: sms77}\n',
    );
    assert.match(invalid.stderr, 'spec.provider: Unsupported value: "sms77": supported values: "plivo", "twilio", "console"');
  }),
);
cli('wait --for=condition=Ready returns when the status subresource says Ready', () =>
  withServer(async (env) => {
    await kubectlOk(env, ['apply', '-f', WIDGETS_FILE]);
    const waiting = kubectl(env, ['wait', '--for=condition=Ready', 'wdg/alpha', '--timeout=10s']);
    await waitFor('kubectl to watch', () => env.server.requests.some((r) => r.watch && r.query['fieldSelector'] === 'metadata.name=alpha'), env.server, 8000);
    await env.custom.patchNamespacedCustomObjectStatus(
      { ...WIDGETS, namespace: 'default', name: 'alpha', body: { status: conditionReady('True', 1) } },
      mergePatch(env),
    );
    const r = await waiting;
    assert.is(r.code, 0, r.stderr);
    assert.match(r.stdout, 'widget.test.smsauth.io/alpha condition met');
    const table = await kubectlOk(env, ['get', 'wdg', 'alpha', '--no-headers']);
    assert.match(table, /alpha\s+plivo\s+8\s+True/);
    const timeout = await kubectl(env, ['wait', '--for=condition=Ready', 'wdg/beta', '--timeout=1s']);
    assert.is.not(timeout.code, 0);
  }),
);
cli('delete, get of a missing object, and a namespace that does not exist', () =>
  withServer(async (env) => {
    await kubectlOk(env, ['apply', '-f', WIDGETS_FILE]);
    assert.match(await kubectlOk(env, ['delete', 'wdg', 'beta']), 'widget.test.smsauth.io "beta" deleted');
    const missing = await kubectl(env, ['get', 'wdg', 'beta']);
    assert.match(missing.stderr, 'Error from server (NotFound): widgets.test.smsauth.io "beta" not found');
    const noNs = await kubectl(env, ['apply', '-n', 'ghost', '-f', WIDGETS_FILE]);
    assert.match(noNs.stderr, 'namespaces "ghost" not found');
    assert.match(await kubectlOk(env, ['get', 'ns']), /default\s+Active/);
  }),
);
cli('create namespace and secret send protobuf bodies; the server reads them', () =>
  withServer(async (env) => {
    await kubectlOk(env, ['create', 'namespace', 'team']);
    await kubectlOk(env, ['create', 'secret', 'generic', 'creds', '-n', 'team', '--from-literal=authToken=s3cret']);
    assert.ok(env.server.requests.some((r) => r.method === 'POST' && r.contentType === 'application/vnd.kubernetes.protobuf'));
    const secret = stored(env, { apiVersion: 'v1', kind: 'Secret', namespace: 'team', name: 'creds' });
    assert.equal(secret?.['data'], { authToken: Buffer.from('s3cret').toString('base64') });
    assert.match(await kubectlOk(env, ['get', 'secrets', '-n', 'team']), /creds\s+Opaque\s+1/);
    assert.match(await kubectlOk(env, ['delete', 'namespace', 'team']), 'namespace "team" deleted');
    assert.is(stored(env, { apiVersion: 'v1', kind: 'Namespace', name: 'team' }), undefined);
  }),
);
cli('serve.ts serves until SIGTERM and writes a kubeconfig kubectl can use', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'kube-serve-'));
  const kubeconfig = join(dir, 'kubeconfig');
  const child = spawn(process.execPath, ['test/kube/serve.ts', '--port', '0', '--kubeconfig', kubeconfig, '--crd', CRD_FILE], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  try {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      tick.fire();
    });
    await waitFor('the URL line', () => out.includes('kubeconfig written'), undefined, 15000);
    assert.match(out, /^https:\/\/127\.0\.0\.1:\d+\n/);
    const env = { kubeconfig, dir } as Env;
    assert.match(await kubectlOk(env, ['get', 'crd']), 'widgets.test.smsauth.io');
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    assert.is(await exited, 0);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  }
});
// The chart's own CRDs, found from this file (not the working directory); a chart without them fails here.
const realCrdDir = fileURLToPath(new URL('../charts/smsauth/files/crds', import.meta.url));
cli('the project CRDs apply, establish and are served with their short names', () =>
  withServer(
    async (env) => {
      const realCrds = readdirSync(realCrdDir).filter((f) => f.endsWith('.yaml'));
      assert.ok(realCrds.length >= 4, `the chart's CRDs: ${realCrds.join(', ')}`);
      const out = await kubectlOk(env, ['apply', '-f', realCrdDir]);
      for (const f of realCrds) assert.match(out, `customresourcedefinition.apiextensions.k8s.io/${f.replace(/\.yaml$/, '')} created`);
      for (const f of realCrds) {
        const crd = stored(env, { apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', name: f.replace(/\.yaml$/, '') });
        assert.ok(
          (crd?.['status']['conditions'] as Obj[]).some((c) => c['type'] === 'Established' && c['status'] === 'True'),
          f,
        );
      }
      const resources = await kubectlOk(env, ['api-resources', '--api-group=smsauth.io', '-o', 'name']);
      assert.is(resources.trim().split('\n').length, realCrds.length);
    },
    { crds: [] },
  ),
);
cli.run();
