import { deepClone, ensureObject, getObject, getString, isObject, stringMap, text } from './json.ts';
import type { JsonObject } from './json.ts';
import type { PatchMeta } from './patch.ts';
import { ALL_VERBS } from './resources.ts';
import type { Column, ResourceType, Strategy } from './resources.ts';
import type { Schema } from './schema.ts';
import { forbiddenField, invalidValue, notSupported, required } from './status.ts';
import type { FieldError } from './status.ts';
import { age, ageColumn, simpleColumn } from './table.ts';

const str: Schema = { type: 'string' };
const int32: Schema = { type: 'integer', format: 'int32' };
const int64: Schema = { type: 'integer', format: 'int64' };
const bool: Schema = { type: 'boolean' };
const microTime: Schema = { type: 'string', format: 'micro-time' };
const time: Schema = { type: 'string', format: 'k8s-time' };
const bytes: Schema = { type: 'string', format: 'byte' };
const intOrString: Schema = { 'x-kubernetes-int-or-string': true };
const obj = (properties: Record<string, Schema>): Schema => ({ type: 'object', properties });
const arr = (items: Schema): Schema => ({ type: 'array', items });
const mapOf = (values: Schema): Schema => ({ type: 'object', additionalProperties: values });
const freeObject: Schema = { type: 'object', 'x-kubernetes-preserve-unknown-fields': true };

/** OBJECT_META_SCHEMA is metav1.ObjectMeta as a schema, used to type-check every kind's metadata. */
export const OBJECT_META_SCHEMA: Schema = obj({
  name: str,
  generateName: str,
  namespace: str,
  selfLink: str,
  uid: str,
  resourceVersion: str,
  generation: int64,
  creationTimestamp: time,
  deletionTimestamp: time,
  deletionGracePeriodSeconds: int64,
  labels: mapOf(str),
  annotations: mapOf(str),
  ownerReferences: arr(obj({ apiVersion: str, kind: str, name: str, uid: str, controller: bool, blockOwnerDeletion: bool })),
  finalizers: arr(str),
  managedFields: arr(freeObject),
});

function root(properties: Record<string, Schema>): Schema {
  return obj({ apiVersion: str, kind: str, metadata: freeObject, ...properties });
}

const conditionList: Schema = arr(
  obj({
    type: str,
    status: str,
    reason: str,
    message: str,
    lastTransitionTime: time,
    lastUpdateTime: time,
    lastProbeTime: time,
    lastHeartbeatTime: time,
    observedGeneration: int64,
  }),
);

/** BASE_PATCH_META is the strategic-merge metadata every built-in shares (metadata lists). */
export const BASE_PATCH_META: PatchMeta = {
  'metadata.finalizers': { strategy: 'merge' },
  'metadata.ownerReferences': { strategy: 'merge', mergeKey: 'uid' },
  'status.conditions': { strategy: 'merge', mergeKey: 'type' },
};

function identity(o: JsonObject): JsonObject {
  return o;
}

function baseStrategy(schema: Schema, overrides: Partial<Strategy>): Strategy {
  return {
    schema,
    typed: true,
    nameRule: 'subdomain',
    allowCreateOnUpdate: false,
    allowUnconditionalUpdate: true,
    returnDeletedObject: false,
    generationSource: undefined,
    prepareForCreate: () => undefined,
    prepareForUpdate: () => undefined,
    validate: () => [],
    fieldLabels: () => ({}),
    toStorage: identity,
    fromStorage: identity,
    ...overrides,
  };
}

interface BuiltinSpec {
  group: string;
  version: string;
  plural: string;
  singular: string;
  kind: string;
  namespaced: boolean;
  shortNames?: string[];
  categories?: string[];
  statusSubresource?: boolean;
  storageKey?: string;
  columns: Column[];
  patchMeta?: PatchMeta;
  strategy: Strategy;
}

function builtin(spec: BuiltinSpec): ResourceType {
  return {
    group: spec.group,
    version: spec.version,
    plural: spec.plural,
    singular: spec.singular,
    kind: spec.kind,
    listKind: `${spec.kind}List`,
    namespaced: spec.namespaced,
    shortNames: spec.shortNames ?? [],
    categories: spec.categories ?? [],
    verbs: [...ALL_VERBS],
    statusSubresource: spec.statusSubresource ?? false,
    storageKey: spec.storageKey ?? `${spec.group}/${spec.plural}`,
    columns: spec.columns,
    patchMeta: { ...BASE_PATCH_META, ...(spec.patchMeta ?? {}) },
    strategy: spec.strategy,
    crd: undefined,
    storage: true,
  };
}

function keepOldStatus(o: JsonObject, old: JsonObject): void {
  if (old['status'] === undefined) delete o['status'];
  else o['status'] = deepClone(old['status']);
}

const CONFIG_KEY = /^[-._a-zA-Z0-9]+$/;
const CONFIG_KEY_MSG =
  "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')";

function validateConfigKeys(data: unknown, path: string): FieldError[] {
  const errs: FieldError[] = [];
  if (!isObject(data)) return errs;
  for (const k of Object.keys(data)) {
    if (!CONFIG_KEY.test(k)) errs.push(invalidValue(path, k, CONFIG_KEY_MSG));
    if (k.length > 253) errs.push(invalidValue(path, k, 'must be no more than 253 characters'));
  }
  return errs;
}

function validateImmutableData(o: JsonObject, old: JsonObject | undefined, fields: string[]): FieldError[] {
  if (old === undefined || old['immutable'] !== true) return [];
  const errs: FieldError[] = [];
  if (o['immutable'] !== true) errs.push(forbiddenField('immutable', 'field is immutable when `immutable` is set'));
  for (const f of fields) {
    if (JSON.stringify(o[f] ?? {}) !== JSON.stringify(old[f] ?? {})) errs.push(forbiddenField(f, 'field is immutable when `immutable` is set'));
  }
  return errs;
}

function mergeStringData(o: JsonObject): void {
  const sd = o['stringData'];
  if (isObject(sd)) {
    const data = ensureObject(o, 'data');
    for (const [k, v] of Object.entries(sd)) if (typeof v === 'string') data[k] = Buffer.from(v, 'utf8').toString('base64');
  }
  delete o['stringData'];
}

function countKeys(v: unknown): number {
  return isObject(v) ? Object.keys(v).length : 0;
}

function namespaceType(): ResourceType {
  const ensureLabel = (o: JsonObject): void => {
    const name = getString(o, 'metadata', 'name');
    if (name !== undefined) ensureObject(ensureObject(o, 'metadata'), 'labels')['kubernetes.io/metadata.name'] = name;
  };
  return builtin({
    group: '',
    version: 'v1',
    plural: 'namespaces',
    singular: 'namespace',
    kind: 'Namespace',
    namespaced: false,
    shortNames: ['ns'],
    statusSubresource: true,
    columns: [simpleColumn('Status', 'string', (o) => getString(o, 'status', 'phase') ?? '', 0, 'The status of the namespace'), ageColumn()],
    strategy: baseStrategy(root({ spec: obj({ finalizers: arr(str) }), status: obj({ phase: str, conditions: conditionList }) }), {
      nameRule: 'label',
      prepareForCreate: (o) => {
        o['status'] = { phase: 'Active' };
        const spec = ensureObject(o, 'spec');
        const fins = Array.isArray(spec['finalizers']) ? spec['finalizers'] : [];
        spec['finalizers'] = fins.includes('kubernetes') ? fins : [...fins, 'kubernetes'];
        ensureLabel(o);
      },
      prepareForUpdate: (o, old) => {
        keepOldStatus(o, old);
        o['spec'] = deepClone(old['spec'] ?? {});
        ensureLabel(o);
      },
      fieldLabels: (o) => ({ 'status.phase': getString(o, 'status', 'phase') ?? '' }),
    }),
  });
}

function secretType(): ResourceType {
  return builtin({
    group: '',
    version: 'v1',
    plural: 'secrets',
    singular: 'secret',
    kind: 'Secret',
    namespaced: true,
    columns: [simpleColumn('Type', 'string', (o) => getString(o, 'type') ?? ''), simpleColumn('Data', 'string', (o) => countKeys(o['data'])), ageColumn()],
    strategy: baseStrategy(root({ data: mapOf(bytes), stringData: mapOf(str), type: str, immutable: bool }), {
      prepareForCreate: (o) => {
        mergeStringData(o);
        if (typeof o['type'] !== 'string' || o['type'] === '') o['type'] = 'Opaque';
      },
      prepareForUpdate: (o) => {
        mergeStringData(o);
        if (typeof o['type'] !== 'string' || o['type'] === '') o['type'] = 'Opaque';
      },
      validate: (o, old) => {
        const errs = validateConfigKeys(o['data'], 'data');
        const size = Object.values(isObject(o['data']) ? o['data'] : {}).reduce<number>(
          (n, v) => n + (typeof v === 'string' ? Math.floor((v.length * 3) / 4) : 0),
          0,
        );
        if (size > 1024 * 1024) errs.push({ type: 'FieldValueTooLong', field: 'data', detail: `may not be more than ${1024 * 1024} bytes` });
        if (old !== undefined && o['type'] !== old['type']) errs.push(invalidValue('type', o['type'] ?? '', 'field is immutable'));
        errs.push(...validateImmutableData(o, old, ['data']));
        return errs;
      },
      fieldLabels: (o) => ({ type: getString(o, 'type') ?? '' }),
    }),
  });
}

function configMapType(): ResourceType {
  return builtin({
    group: '',
    version: 'v1',
    plural: 'configmaps',
    singular: 'configmap',
    kind: 'ConfigMap',
    namespaced: true,
    shortNames: ['cm'],
    columns: [simpleColumn('Data', 'string', (o) => countKeys(o['data']) + countKeys(o['binaryData'])), ageColumn()],
    strategy: baseStrategy(root({ data: mapOf(str), binaryData: mapOf(bytes), immutable: bool }), {
      validate: (o, old) => {
        const errs = [...validateConfigKeys(o['data'], 'data'), ...validateConfigKeys(o['binaryData'], 'binaryData')];
        errs.push(...validateImmutableData(o, old, ['data', 'binaryData']));
        return errs;
      },
    }),
  });
}

function serviceAccountType(): ResourceType {
  return builtin({
    group: '',
    version: 'v1',
    plural: 'serviceaccounts',
    singular: 'serviceaccount',
    kind: 'ServiceAccount',
    namespaced: true,
    shortNames: ['sa'],
    columns: [simpleColumn('Secrets', 'string', (o) => (Array.isArray(o['secrets']) ? o['secrets'].length : 0)), ageColumn()],
    patchMeta: { secrets: { strategy: 'merge', mergeKey: 'name' } },
    strategy: baseStrategy(root({ secrets: arr(freeObject), imagePullSecrets: arr(obj({ name: str })), automountServiceAccountToken: bool }), {}),
  });
}

function serviceType(): ResourceType {
  let nextIp = 1;
  const portsOf = (o: JsonObject): JsonObject[] => {
    const ports = getObject(o, 'spec')?.['ports'];
    return Array.isArray(ports) ? ports.filter(isObject) : [];
  };
  const defaultPorts = (o: JsonObject): void => {
    for (const p of portsOf(o)) {
      if (p['protocol'] === undefined) p['protocol'] = 'TCP';
      if (p['targetPort'] === undefined && typeof p['port'] === 'number') p['targetPort'] = p['port'];
    }
  };
  return builtin({
    group: '',
    version: 'v1',
    plural: 'services',
    singular: 'service',
    kind: 'Service',
    namespaced: true,
    shortNames: ['svc'],
    categories: ['all'],
    statusSubresource: true,
    columns: [
      simpleColumn('Type', 'string', (o) => getString(o, 'spec', 'type') ?? ''),
      simpleColumn('Cluster-IP', 'string', (o) => getString(o, 'spec', 'clusterIP') ?? ''),
      simpleColumn('External-IP', 'string', () => '<none>'),
      simpleColumn(
        'Port(s)',
        'string',
        (o) =>
          portsOf(o)
            .map((p) => `${text(p['port'])}/${text(p['protocol'] ?? 'TCP')}`)
            .join(',') || '<none>',
      ),
      ageColumn(),
      simpleColumn(
        'Selector',
        'string',
        (o) =>
          Object.entries(stringMap(getObject(o, 'spec', 'selector')))
            .map(([k, v]) => `${k}=${v}`)
            .join(',') || '<none>',
        1,
      ),
    ],
    patchMeta: { 'spec.ports': { strategy: 'merge', mergeKey: 'port' } },
    strategy: baseStrategy(
      root({
        spec: {
          type: 'object',
          'x-kubernetes-preserve-unknown-fields': true,
          properties: {
            type: str,
            clusterIP: str,
            clusterIPs: arr(str),
            selector: mapOf(str),
            ports: arr(obj({ name: str, protocol: str, appProtocol: str, port: int32, targetPort: intOrString, nodePort: int32 })),
          },
        },
        status: freeObject,
      }),
      {
        nameRule: 'dns1035',
        allowCreateOnUpdate: true,
        prepareForCreate: (o) => {
          const spec = ensureObject(o, 'spec');
          if (spec['type'] === undefined) spec['type'] = 'ClusterIP';
          if (spec['sessionAffinity'] === undefined) spec['sessionAffinity'] = 'None';
          if (spec['type'] !== 'ExternalName') {
            if (spec['clusterIP'] === undefined || spec['clusterIP'] === '') {
              const n = nextIp++;
              spec['clusterIP'] = `10.96.${Math.floor(n / 250)}.${(n % 250) + 1}`;
            }
            spec['clusterIPs'] = [spec['clusterIP']];
            spec['ipFamilies'] = ['IPv4'];
            spec['ipFamilyPolicy'] = 'SingleStack';
            spec['internalTrafficPolicy'] = 'Cluster';
          }
          defaultPorts(o);
          o['status'] = { loadBalancer: {} };
        },
        prepareForUpdate: (o, old) => {
          keepOldStatus(o, old);
          const spec = ensureObject(o, 'spec');
          const oldSpec = getObject(old, 'spec') ?? {};
          if (spec['clusterIP'] === undefined || spec['clusterIP'] === '') spec['clusterIP'] = oldSpec['clusterIP'];
          if (spec['clusterIPs'] === undefined) spec['clusterIPs'] = deepClone(oldSpec['clusterIPs']);
          if (spec['type'] === undefined) spec['type'] = oldSpec['type'];
          defaultPorts(o);
        },
        validate: (o, old) => {
          const errs: FieldError[] = [];
          const spec = getObject(o, 'spec') ?? {};
          const type = spec['type'];
          const types = ['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName'];
          if (!types.includes(String(type))) errs.push(notSupported('spec.type', type, types));
          const ports = portsOf(o);
          if (ports.length === 0 && type !== 'ExternalName' && spec['clusterIP'] !== 'None') errs.push(required('spec.ports'));
          ports.forEach((p, i) => {
            const port = p['port'];
            if (typeof port !== 'number' || port < 1 || port > 65535)
              errs.push(invalidValue(`spec.ports[${i}].port`, port ?? 0, 'must be between 1 and 65535, inclusive'));
          });
          const oldIp = getString(old, 'spec', 'clusterIP');
          if (old !== undefined && oldIp !== undefined && spec['clusterIP'] !== oldIp)
            errs.push(invalidValue('spec.clusterIPs[0]', spec['clusterIP'], 'may not change once set'));
          return errs;
        },
      },
    ),
  });
}

function leaseType(): ResourceType {
  return builtin({
    group: 'coordination.k8s.io',
    version: 'v1',
    plural: 'leases',
    singular: 'lease',
    kind: 'Lease',
    namespaced: true,
    columns: [simpleColumn('Holder', 'string', (o) => getString(o, 'spec', 'holderIdentity') ?? '', 0, 'The holder of the lease'), ageColumn()],
    strategy: baseStrategy(
      root({
        spec: obj({
          holderIdentity: str,
          leaseDurationSeconds: int32,
          acquireTime: microTime,
          renewTime: microTime,
          leaseTransitions: int32,
          strategy: str,
          preferredHolder: str,
        }),
      }),
      {
        allowCreateOnUpdate: true,
        allowUnconditionalUpdate: false,
        validate: (o) => {
          const errs: FieldError[] = [];
          const spec = getObject(o, 'spec') ?? {};
          const d = spec['leaseDurationSeconds'];
          if (typeof d === 'number' && d <= 0) errs.push(invalidValue('spec.leaseDurationSeconds', d, 'must be greater than 0'));
          const t = spec['leaseTransitions'];
          if (typeof t === 'number' && t < 0) errs.push(invalidValue('spec.leaseTransitions', t, 'must be greater than or equal to 0'));
          if (spec['preferredHolder'] !== undefined && spec['strategy'] === undefined)
            errs.push(forbiddenField('spec.preferredHolder', 'may only be specified if `strategy` is defined'));
          return errs;
        },
      },
    ),
  });
}

const objectReference: Schema = obj({ kind: str, namespace: str, name: str, uid: str, apiVersion: str, resourceVersion: str, fieldPath: str });
const CORE_EVENT_SCHEMA: Schema = root({
  involvedObject: objectReference,
  reason: str,
  message: str,
  source: obj({ component: str, host: str }),
  firstTimestamp: time,
  lastTimestamp: time,
  count: int32,
  type: str,
  eventTime: microTime,
  series: obj({ count: int32, lastObservedTime: microTime }),
  action: str,
  related: objectReference,
  reportingComponent: str,
  reportingInstance: str,
});
const EVENTS_V1_SCHEMA: Schema = root({
  eventTime: microTime,
  series: obj({ count: int32, lastObservedTime: microTime }),
  reportingController: str,
  reportingInstance: str,
  action: str,
  reason: str,
  regarding: objectReference,
  related: objectReference,
  note: str,
  type: str,
  deprecatedSource: obj({ component: str, host: str }),
  deprecatedFirstTimestamp: time,
  deprecatedLastTimestamp: time,
  deprecatedCount: int32,
});

const EVENT_RENAMES: [string, string][] = [
  ['involvedObject', 'regarding'],
  ['message', 'note'],
  ['source', 'deprecatedSource'],
  ['firstTimestamp', 'deprecatedFirstTimestamp'],
  ['lastTimestamp', 'deprecatedLastTimestamp'],
  ['count', 'deprecatedCount'],
  ['reportingComponent', 'reportingController'],
];

function renameFields(o: JsonObject, pairs: [string, string][], apiVersion: string): JsonObject {
  const out: JsonObject = { ...o, apiVersion };
  for (const [from, to] of pairs) {
    delete out[from];
    if (o[from] !== undefined) out[to] = o[from];
  }
  return out;
}

function validateEvent(o: JsonObject, strict: boolean): FieldError[] {
  const errs: FieldError[] = [];
  const ns = getString(o, 'metadata', 'namespace') ?? '';
  const involvedNs = getString(o, 'involvedObject', 'namespace') ?? '';
  const ctrlField = strict ? 'reportingController' : 'reportingComponent';
  if (o['eventTime'] === undefined) {
    if (involvedNs === '' ? ns !== '' && ns !== 'default' : ns !== involvedNs)
      errs.push(invalidValue('involvedObject.namespace', involvedNs, 'does not match event.namespace'));
  } else {
    if (involvedNs === '' && ns !== 'default' && ns !== 'kube-system')
      errs.push(invalidValue('involvedObject.namespace', involvedNs, 'does not match event.namespace'));
    if (typeof o['reportingComponent'] !== 'string' || o['reportingComponent'] === '') errs.push(required(ctrlField));
    if (typeof o['reportingInstance'] !== 'string' || o['reportingInstance'] === '') errs.push(required('reportingInstance'));
    if (typeof o['action'] !== 'string' || o['action'] === '') errs.push(required('action'));
    if (typeof o['reason'] !== 'string' || o['reason'] === '') errs.push(required('reason'));
  }
  if (strict) {
    if (o['eventTime'] === undefined) errs.push(required('eventTime'));
    if (o['type'] !== 'Normal' && o['type'] !== 'Warning') errs.push(invalidValue('type', '', `has invalid value: ${text(o['type'])}`));
    if (o['firstTimestamp'] !== undefined) errs.push(invalidValue('deprecatedFirstTimestamp', '', 'needs to be unset'));
    if (o['lastTimestamp'] !== undefined) errs.push(invalidValue('deprecatedLastTimestamp', '', 'needs to be unset'));
    if (o['count'] !== undefined && o['count'] !== 0) errs.push(invalidValue('deprecatedCount', '', 'needs to be unset'));
  }
  const note = o['message'];
  if (typeof note === 'string' && note.length > 1024 && strict)
    errs.push({ type: 'FieldValueTooLong', field: 'note', detail: 'may not be more than 1024 bytes' });
  return errs;
}

function eventFieldLabels(o: JsonObject): Record<string, string> {
  const inv = getObject(o, 'involvedObject') ?? {};
  const out: Record<string, string> = {
    reason: getString(o, 'reason') ?? '',
    reportingComponent: getString(o, 'reportingComponent') ?? '',
    source: getString(o, 'source', 'component') ?? '',
    type: getString(o, 'type') ?? '',
  };
  for (const k of ['kind', 'namespace', 'name', 'uid', 'apiVersion', 'resourceVersion', 'fieldPath']) {
    out[`involvedObject.${k}`] = typeof inv[k] === 'string' ? inv[k] : '';
    out[`regarding.${k}`] = out[`involvedObject.${k}`] ?? '';
  }
  return out;
}

function lastSeen(o: JsonObject, now: number): string {
  const t =
    getString(o, 'series', 'lastObservedTime') ?? getString(o, 'lastTimestamp') ?? getString(o, 'eventTime') ?? getString(o, 'metadata', 'creationTimestamp');
  return age(t, now);
}

function eventColumns(regardingKey: string, noteKey: string): Column[] {
  return [
    simpleColumn('Last Seen', 'string', (o, now) => lastSeen(o, now)),
    simpleColumn('Type', 'string', (o) => getString(o, 'type') ?? ''),
    simpleColumn('Reason', 'string', (o) => getString(o, 'reason') ?? ''),
    simpleColumn('Object', 'string', (o) => `${(getString(o, regardingKey, 'kind') ?? '').toLowerCase()}/${getString(o, regardingKey, 'name') ?? ''}`),
    simpleColumn('Message', 'string', (o) => getString(o, noteKey) ?? ''),
  ];
}

function coreEventType(): ResourceType {
  return builtin({
    group: '',
    version: 'v1',
    plural: 'events',
    singular: 'event',
    kind: 'Event',
    namespaced: true,
    shortNames: ['ev'],
    storageKey: 'events',
    columns: eventColumns('involvedObject', 'message'),
    strategy: baseStrategy(CORE_EVENT_SCHEMA, {
      allowCreateOnUpdate: true,
      validate: (o) => validateEvent(o, false),
      fieldLabels: eventFieldLabels,
    }),
  });
}

function eventsV1Type(): ResourceType {
  return builtin({
    group: 'events.k8s.io',
    version: 'v1',
    plural: 'events',
    singular: 'event',
    kind: 'Event',
    namespaced: true,
    shortNames: ['ev'],
    storageKey: 'events',
    columns: eventColumns('regarding', 'note'),
    strategy: baseStrategy(EVENTS_V1_SCHEMA, {
      allowCreateOnUpdate: true,
      validate: (o) =>
        validateEvent(
          renameFields(
            o,
            EVENT_RENAMES.map(([a, b]) => [b, a]),
            'v1',
          ),
          true,
        ),
      fieldLabels: (o) =>
        eventFieldLabels(
          renameFields(
            o,
            EVENT_RENAMES.map(([a, b]) => [b, a]),
            'v1',
          ),
        ),
      toStorage: (o) =>
        renameFields(
          o,
          EVENT_RENAMES.map(([a, b]) => [b, a]),
          'v1',
        ),
      fromStorage: (o) => renameFields(o, EVENT_RENAMES, 'events.k8s.io/v1'),
    }),
  });
}

function deploymentType(): ResourceType {
  const containersOf = (o: JsonObject): JsonObject[] => {
    const c = getObject(o, 'spec', 'template', 'spec')?.['containers'];
    return Array.isArray(c) ? c.filter(isObject) : [];
  };
  const num = (o: JsonObject, k: string): number => {
    const v = getObject(o, 'status')?.[k];
    return typeof v === 'number' ? v : 0;
  };
  return builtin({
    group: 'apps',
    version: 'v1',
    plural: 'deployments',
    singular: 'deployment',
    kind: 'Deployment',
    namespaced: true,
    shortNames: ['deploy'],
    categories: ['all'],
    statusSubresource: true,
    columns: [
      simpleColumn('Ready', 'string', (o) => `${num(o, 'readyReplicas')}/${text(getObject(o, 'spec')?.['replicas'] ?? 1)}`),
      simpleColumn('Up-to-date', 'integer', (o) => num(o, 'updatedReplicas')),
      simpleColumn('Available', 'integer', (o) => num(o, 'availableReplicas')),
      ageColumn(),
      simpleColumn(
        'Containers',
        'string',
        (o) =>
          containersOf(o)
            .map((c) => String(c['name']))
            .join(','),
        1,
      ),
      simpleColumn(
        'Images',
        'string',
        (o) =>
          containersOf(o)
            .map((c) => String(c['image']))
            .join(','),
        1,
      ),
      simpleColumn(
        'Selector',
        'string',
        (o) =>
          Object.entries(stringMap(getObject(o, 'spec', 'selector', 'matchLabels')))
            .map(([k, v]) => `${k}=${v}`)
            .join(','),
        1,
      ),
    ],
    patchMeta: {
      'spec.template.spec.containers': { strategy: 'merge', mergeKey: 'name' },
      'spec.template.spec.initContainers': { strategy: 'merge', mergeKey: 'name' },
      'spec.template.spec.containers.env': { strategy: 'merge', mergeKey: 'name' },
      'spec.template.spec.containers.ports': { strategy: 'merge', mergeKey: 'containerPort' },
      'spec.template.spec.containers.volumeMounts': { strategy: 'merge', mergeKey: 'mountPath' },
      'spec.template.spec.volumes': { strategy: 'merge', mergeKey: 'name' },
    },
    strategy: baseStrategy(
      root({
        spec: {
          type: 'object',
          'x-kubernetes-preserve-unknown-fields': true,
          properties: {
            replicas: int32,
            selector: obj({ matchLabels: mapOf(str), matchExpressions: arr(freeObject) }),
            template: freeObject,
            strategy: freeObject,
            minReadySeconds: int32,
            revisionHistoryLimit: int32,
            progressDeadlineSeconds: int32,
            paused: bool,
          },
        },
        status: freeObject,
      }),
      {
        generationSource: (o) => o['spec'],
        prepareForCreate: (o) => {
          delete o['status'];
          const spec = ensureObject(o, 'spec');
          if (spec['replicas'] === undefined) spec['replicas'] = 1;
          if (spec['strategy'] === undefined) spec['strategy'] = { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: '25%', maxSurge: '25%' } };
          if (spec['revisionHistoryLimit'] === undefined) spec['revisionHistoryLimit'] = 10;
          if (spec['progressDeadlineSeconds'] === undefined) spec['progressDeadlineSeconds'] = 600;
          const pod = getObject(spec, 'template', 'spec');
          if (pod !== undefined) {
            pod['restartPolicy'] ??= 'Always';
            pod['terminationGracePeriodSeconds'] ??= 30;
            pod['dnsPolicy'] ??= 'ClusterFirst';
            pod['schedulerName'] ??= 'default-scheduler';
            pod['securityContext'] ??= {};
            for (const c of containersOf(o)) {
              c['terminationMessagePath'] ??= '/dev/termination-log';
              c['terminationMessagePolicy'] ??= 'File';
              const image = text(c['image']);
              c['imagePullPolicy'] ??= image.endsWith(':latest') || !/:[^/]+$/.test(image) ? 'Always' : 'IfNotPresent';
              c['resources'] ??= {};
            }
          }
        },
        prepareForUpdate: keepOldStatus,
        validate: (o, old) => {
          const errs: FieldError[] = [];
          const selector = getObject(o, 'spec', 'selector');
          if (selector === undefined) errs.push(required('spec.selector'));
          const labels = stringMap(getObject(o, 'spec', 'template', 'metadata', 'labels'));
          const match = stringMap(selector?.['matchLabels']);
          if (selector !== undefined && Object.entries(match).some(([k, v]) => labels[k] !== v)) {
            errs.push(invalidValue('spec.template.metadata.labels', labels, '`selector` does not match template `labels`'));
          }
          const containers = containersOf(o);
          if (containers.length === 0) errs.push(required('spec.template.spec.containers'));
          containers.forEach((c, i) => {
            if (typeof c['name'] !== 'string' || c['name'] === '') errs.push(required(`spec.template.spec.containers[${i}].name`));
            if (typeof c['image'] !== 'string' || c['image'] === '') errs.push(required(`spec.template.spec.containers[${i}].image`));
          });
          const replicas = getObject(o, 'spec')?.['replicas'];
          if (typeof replicas === 'number' && replicas < 0) errs.push(invalidValue('spec.replicas', replicas, 'must be greater than or equal to 0'));
          if (old !== undefined && JSON.stringify(getObject(old, 'spec', 'selector')) !== JSON.stringify(selector)) {
            errs.push(invalidValue('spec.selector', selector ?? null, 'field is immutable'));
          }
          return errs;
        },
      },
    ),
  });
}

/** builtinResourceTypes returns fresh descriptions of the built-in resources the fake API server serves (CRDs are added by crd.ts). */
const WEBHOOK_SCHEMA: Schema = obj({
  name: str,
  clientConfig: obj({ url: str, caBundle: bytes, service: obj({ namespace: str, name: str, path: str, port: int32 }) }),
  rules: arr(obj({ operations: arr(str), apiGroups: arr(str), apiVersions: arr(str), resources: arr(str), scope: str })),
  failurePolicy: str,
  matchPolicy: str,
  namespaceSelector: freeObject,
  objectSelector: freeObject,
  sideEffects: str,
  timeoutSeconds: int32,
  admissionReviewVersions: arr(str),
});

/** validatingWebhookConfigurationType serves admissionregistration.k8s.io/v1 ValidatingWebhookConfiguration, with its defaults and checks. */
function validatingWebhookConfigurationType(): ResourceType {
  const defaults = (o: JsonObject): void => {
    for (const w of Array.isArray(o['webhooks']) ? o['webhooks'].filter(isObject) : []) {
      w['failurePolicy'] ??= 'Fail';
      w['matchPolicy'] ??= 'Equivalent';
      w['timeoutSeconds'] ??= 10;
      w['namespaceSelector'] ??= {};
      w['objectSelector'] ??= {};
      for (const r of Array.isArray(w['rules']) ? w['rules'].filter(isObject) : []) r['scope'] ??= '*';
    }
  };
  return builtin({
    group: 'admissionregistration.k8s.io',
    version: 'v1',
    plural: 'validatingwebhookconfigurations',
    singular: 'validatingwebhookconfiguration',
    kind: 'ValidatingWebhookConfiguration',
    namespaced: false,
    columns: [simpleColumn('Webhooks', 'integer', (o) => (Array.isArray(o['webhooks']) ? o['webhooks'].length : 0), 0, 'Webhooks'), ageColumn()],
    patchMeta: { webhooks: { strategy: 'merge', mergeKey: 'name' } },
    strategy: baseStrategy(root({ webhooks: arr(WEBHOOK_SCHEMA) }), {
      prepareForCreate: defaults,
      prepareForUpdate: (o) => defaults(o),
      validate: (o) => {
        const errs: FieldError[] = [];
        const hooks = Array.isArray(o['webhooks']) ? o['webhooks'].filter(isObject) : [];
        hooks.forEach((w, i) => {
          const at = `webhooks[${i}]`;
          const name = getString(w, 'name') ?? '';
          if (name.split('.').length < 3) errs.push(invalidValue(`${at}.name`, name, 'should be a domain with at least three segments separated by dots'));
          if (hooks.findIndex((x) => getString(x, 'name') === name) < i) errs.push({ type: 'FieldValueDuplicate', field: `${at}.name`, badValue: name });
          const cc = getObject(w, 'clientConfig') ?? {};
          if ((cc['url'] === undefined) === (cc['service'] === undefined))
            errs.push(required(`${at}.clientConfig`, 'exactly one of url or service is required'));
          const url = getString(cc, 'url');
          if (url !== undefined && !url.startsWith('https://'))
            errs.push(invalidValue(`${at}.clientConfig.url`, url, "'https' is the only allowed URL scheme"));
          const se = getString(w, 'sideEffects');
          if (se === undefined) errs.push(required(`${at}.sideEffects`));
          else if (se !== 'None' && se !== 'NoneOnDryRun') errs.push(notSupported(`${at}.sideEffects`, se, ['None', 'NoneOnDryRun']));
          const versions = w['admissionReviewVersions'];
          if (!Array.isArray(versions) || !versions.includes('v1')) errs.push(required(`${at}.admissionReviewVersions`, 'must include at least one of v1'));
          const fp = getString(w, 'failurePolicy');
          if (fp !== undefined && fp !== 'Fail' && fp !== 'Ignore') errs.push(notSupported(`${at}.failurePolicy`, fp, ['Fail', 'Ignore']));
          const t = w['timeoutSeconds'];
          if (typeof t === 'number' && (t < 1 || t > 30))
            errs.push(invalidValue(`${at}.timeoutSeconds`, t, 'the timeout value must be between 1 and 30 seconds'));
        });
        return errs;
      },
    }),
  });
}

export function builtinResourceTypes(): ResourceType[] {
  return [
    namespaceType(),
    secretType(),
    configMapType(),
    serviceAccountType(),
    serviceType(),
    coreEventType(),
    eventsV1Type(),
    leaseType(),
    deploymentType(),
    validatingWebhookConfigurationType(),
  ];
}
