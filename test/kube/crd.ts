import { deepClone, getObject, getString, isObject, text } from './json.ts';
import type { JsonObject } from './json.ts';
import { evaluateJsonPath, JsonPathError, parseJsonPath, printJsonPathValue } from './jsonpath.ts';
import { formatTime, nameErrors } from './metadata.ts';
import { ALL_VERBS, apiVersionOf } from './resources.ts';
import type { ResourceType, Strategy } from './resources.ts';
import { celErrors, compileErrors } from './cel.ts';
import { isRe2 } from './re2.ts';
import { prune, validate } from './schema.ts';
import type { Schema } from './schema.ts';
import { forbiddenField, invalidValue, notSupported, required } from './status.ts';
import type { FieldError } from './status.ts';
import { CREATION_TIMESTAMP_DESCRIPTION, printerColumn, simpleColumn } from './table.ts';
import type { PrinterColumnSpec } from './table.ts';
import { BASE_PATCH_META } from './builtins.ts';

/** CRD_CLEANUP_FINALIZER is the finalizer the API server puts on a deleted CRD until its custom resources are gone. */
export const CRD_CLEANUP_FINALIZER = 'customresourcecleanup.apiextensions.k8s.io';

const SCHEMA_KEYS = new Set([
  'id',
  '$schema',
  '$ref',
  'description',
  'type',
  'format',
  'title',
  'default',
  'maximum',
  'exclusiveMaximum',
  'minimum',
  'exclusiveMinimum',
  'maxLength',
  'minLength',
  'pattern',
  'maxItems',
  'minItems',
  'uniqueItems',
  'multipleOf',
  'enum',
  'maxProperties',
  'minProperties',
  'required',
  'items',
  'allOf',
  'oneOf',
  'anyOf',
  'not',
  'properties',
  'additionalProperties',
  'patternProperties',
  'dependencies',
  'additionalItems',
  'definitions',
  'externalDocs',
  'example',
  'nullable',
  'x-kubernetes-preserve-unknown-fields',
  'x-kubernetes-embedded-resource',
  'x-kubernetes-int-or-string',
  'x-kubernetes-list-map-keys',
  'x-kubernetes-list-type',
  'x-kubernetes-map-type',
  'x-kubernetes-validations',
]);
const VALID_TYPES = ['array', 'boolean', 'integer', 'number', 'object', 'string'];
const COLUMN_TYPES = ['boolean', 'date', 'integer', 'number', 'string'];

/** pruneSchemaKeys drops keys that JSONSchemaProps does not have (e.g. `const`, `$id`) from a CRD schema and returns their paths. */
export function pruneSchemaKeys(schema: unknown, path: string): string[] {
  const unknown: string[] = [];
  const walk = (s: unknown, p: string): void => {
    if (!isObject(s)) return;
    for (const k of Object.keys(s)) {
      if (!SCHEMA_KEYS.has(k)) {
        unknown.push(`${p}.${k}`);
        delete s[k];
      }
    }
    for (const key of ['properties', 'patternProperties', 'definitions', 'dependencies']) {
      const m = s[key];
      if (isObject(m)) for (const [name, sub] of Object.entries(m)) walk(sub, `${p}.${key}[${name}]`);
    }
    for (const key of ['items', 'additionalProperties', 'not', 'additionalItems']) if (isObject(s[key])) walk(s[key], `${p}.${key}`);
    for (const key of ['allOf', 'oneOf', 'anyOf']) {
      const list = s[key];
      if (Array.isArray(list)) list.forEach((sub, i) => walk(sub, `${p}.${key}[${i}]`));
    }
  };
  walk(schema, path);
  return unknown;
}

function validateSchema(s: unknown, path: string, ctx: { root: boolean; nested: boolean }, errs: FieldError[]): void {
  if (!isObject(s)) return;
  const type = s['type'];
  const preserve = s['x-kubernetes-preserve-unknown-fields'];
  const intOrString = s['x-kubernetes-int-or-string'] === true;
  if (ctx.root && type !== 'object') {
    if (type === undefined || type === '') errs.push(required(`${path}.type`, 'must not be empty at the root'));
    else errs.push(invalidValue(`${path}.type`, type, 'must be object at the root'));
  }
  if (type !== undefined && !VALID_TYPES.includes(text(type))) errs.push(notSupported(`${path}.type`, type, VALID_TYPES));
  if (!ctx.nested && (type === undefined || type === '') && preserve !== true && !intOrString && !ctx.root) {
    errs.push(required(`${path}.type`, 'must not be empty for specified object fields'));
  }
  if (intOrString && type !== undefined) errs.push(forbiddenField(`${path}.type`, 'must be empty if x-kubernetes-int-or-string is true'));
  if (preserve === false) errs.push(invalidValue(`${path}.x-kubernetes-preserve-unknown-fields`, false, 'must be true or undefined'));
  if (s['$ref'] !== undefined) errs.push(forbiddenField(`${path}.$ref`, '$ref is not supported'));
  if (s['uniqueItems'] === true)
    errs.push(forbiddenField(`${path}.uniqueItems`, 'uniqueItems cannot be set to true since the runtime complexity becomes quadratic'));
  if (s['additionalProperties'] === false) errs.push(forbiddenField(`${path}.additionalProperties`, 'additionalProperties cannot be set to false'));
  if (s['additionalProperties'] !== undefined && s['properties'] !== undefined)
    errs.push(forbiddenField(`${path}.additionalProperties`, 'additionalProperties and properties are mutual exclusive'));
  if (s['patternProperties'] !== undefined) errs.push(forbiddenField(`${path}.patternProperties`, 'patternProperties is not supported'));
  if (s['definitions'] !== undefined) errs.push(forbiddenField(`${path}.definitions`, 'definitions is not supported'));
  if (s['dependencies'] !== undefined) errs.push(forbiddenField(`${path}.dependencies`, 'dependencies is not supported'));
  if (s['additionalItems'] !== undefined) errs.push(forbiddenField(`${path}.additionalItems`, 'additionalItems is not supported'));
  if (typeof s['pattern'] === 'string' && !isRe2(s['pattern'])) errs.push(invalidValue(`${path}.pattern`, s['pattern'], 'must be a valid regular expression'));
  errs.push(...compileErrors(s, path));
  if (type === 'array' && s['items'] === undefined && !ctx.nested) errs.push(required(`${path}.items`, 'must be specified'));
  const listType = s['x-kubernetes-list-type'];
  if (listType !== undefined) {
    if (!['atomic', 'set', 'map'].includes(text(listType))) errs.push(notSupported(`${path}.x-kubernetes-list-type`, listType, ['atomic', 'set', 'map']));
    if (type !== 'array') errs.push(invalidValue(`${path}.x-kubernetes-list-type`, listType, 'must only be used if type == array'));
    if (listType === 'map') {
      const keys = s['x-kubernetes-list-map-keys'];
      if (!Array.isArray(keys) || keys.length === 0)
        errs.push(required(`${path}.x-kubernetes-list-map-keys`, 'must not be empty if x-kubernetes-list-type is map'));
      const items = getObject(s, 'items');
      if (items !== undefined && Array.isArray(keys)) {
        const req = Array.isArray(items['required']) ? items['required'] : [];
        for (const k of keys) {
          const prop = getObject(items, 'properties', String(k));
          if (prop === undefined)
            errs.push(required(`${path}.items.properties[${String(k)}]`, 'entries mentioned in x-kubernetes-list-map-keys must be specified as properties'));
          else if (!req.includes(k) && prop['default'] === undefined)
            errs.push(required(`${path}.items.required`, `all map keys must be required or have a default value: ${JSON.stringify(k)} is not`));
        }
      }
    }
  }
  if (ctx.nested) {
    for (const k of [
      'default',
      'nullable',
      'additionalProperties',
      'x-kubernetes-preserve-unknown-fields',
      'x-kubernetes-embedded-resource',
      'description',
      'type',
    ]) {
      if (s[k] !== undefined) errs.push(forbiddenField(`${path}.${k}`, 'must be undefined to be structural'));
    }
  }
  const props = s['properties'];
  if (isObject(props)) {
    for (const [name, sub] of Object.entries(props)) {
      const p = `${path}.properties[${name}]`;
      if (ctx.root && name === 'metadata' && isObject(sub)) {
        const mp = getObject(sub, 'properties') ?? {};
        const extra = Object.keys(mp).filter((k) => k !== 'name' && k !== 'generateName');
        if (extra.length > 0 || sub['default'] !== undefined)
          errs.push(forbiddenField(p, 'must not specify anything other than name and generateName, but metadata is implicitly specified'));
        continue;
      }
      validateSchema(sub, p, { root: false, nested: ctx.nested }, errs);
    }
  }
  if (isObject(s['items'])) validateSchema(s['items'], `${path}.items`, { root: false, nested: ctx.nested }, errs);
  if (isObject(s['additionalProperties'])) validateSchema(s['additionalProperties'], `${path}.additionalProperties`, { root: false, nested: ctx.nested }, errs);
  for (const key of ['allOf', 'oneOf', 'anyOf']) {
    const list = s[key];
    if (Array.isArray(list) && !intOrString) list.forEach((sub, i) => validateSchema(sub, `${path}.${key}[${i}]`, { root: false, nested: true }, errs));
  }
  if (isObject(s['not'])) validateSchema(s['not'], `${path}.not`, { root: false, nested: true }, errs);
  if (s['default'] !== undefined && !ctx.nested) {
    const copy = deepClone(s['default']);
    const unknown = prune(copy, s, '', false);
    if (unknown.length > 0)
      errs.push(invalidValue(`${path}.default`, s['default'], `must not have unknown fields, got ${unknown.map((u) => JSON.stringify(u)).join(', ')}`));
    for (const e of validate(copy, s, '', false)) {
      errs.push(invalidValue(`${path}.default${e.field === '<root>' ? '' : `.${e.field}`}`, e.badValue, e.detail ?? 'invalid default'));
    }
  }
}

function versionsOf(crd: JsonObject): JsonObject[] {
  const v = getObject(crd, 'spec')?.['versions'];
  return Array.isArray(v) ? v.filter(isObject) : [];
}

/** validateCrd applies the API server's CustomResourceDefinition validation (names, scope, versions, structural schemas, printer columns). */
export function validateCrd(crd: JsonObject, old: JsonObject | undefined): FieldError[] {
  const errs: FieldError[] = [];
  const spec = getObject(crd, 'spec') ?? {};
  const names = getObject(spec, 'names') ?? {};
  const group = getString(spec, 'group') ?? '';
  const plural = getString(names, 'plural') ?? '';
  const name = getString(crd, 'metadata', 'name') ?? '';
  if (name !== `${plural}.${group}`) errs.push(invalidValue('metadata.name', name, 'must be spec.names.plural+"."+spec.group'));
  if (group === '') errs.push(required('spec.group'));
  else {
    for (const m of nameErrors(group, 'subdomain')) errs.push(invalidValue('spec.group', group, m));
    if (!group.includes('.')) errs.push(invalidValue('spec.group', group, 'should be a domain with at least one dot'));
  }
  const scope = spec['scope'];
  if (scope === undefined) errs.push(required('spec.scope'));
  else if (scope !== 'Cluster' && scope !== 'Namespaced') errs.push(notSupported('spec.scope', scope, ['Cluster', 'Namespaced']));
  if (plural === '') errs.push(required('spec.names.plural'));
  else for (const m of nameErrors(plural, 'label')) errs.push(invalidValue('spec.names.plural', plural, m));
  const singular = getString(names, 'singular') ?? '';
  if (singular !== '') for (const m of nameErrors(singular, 'label')) errs.push(invalidValue('spec.names.singular', singular, m));
  const kind = getString(names, 'kind') ?? '';
  if (kind === '') errs.push(required('spec.names.kind'));
  else if (!/^[A-Za-z][A-Za-z0-9]*$/.test(kind))
    errs.push(invalidValue('spec.names.kind', kind, 'may have mixed case, but should otherwise match: [a-z]([-a-z0-9]*[a-z0-9])?'));
  const listKind = getString(names, 'listKind') ?? '';
  if (listKind !== '' && listKind === kind) errs.push(invalidValue('spec.names.listKind', listKind, 'kind and listKind cannot be the same'));
  const shortNames = Array.isArray(names['shortNames']) ? names['shortNames'] : [];
  shortNames.forEach((s, i) => {
    for (const m of nameErrors(String(s), 'label')) errs.push(invalidValue(`spec.names.shortNames[${i}]`, s, m));
  });
  const versions = versionsOf(crd);
  if (versions.length === 0) errs.push(required('spec.versions', 'must have exactly one version marked as storage version'));
  else if (versions.filter((v) => v['storage'] === true).length !== 1)
    errs.push(
      invalidValue(
        'spec.versions',
        versions.map((v) => v['name']),
        'must have exactly one version marked as storage version',
      ),
    );
  const seen = new Set<string>();
  versions.forEach((v, i) => {
    const vp = `spec.versions[${i}]`;
    const vname = getString(v, 'name') ?? '';
    if (vname === '') errs.push(required(`${vp}.name`));
    else for (const m of nameErrors(vname, 'dns1035')) errs.push(invalidValue(`${vp}.name`, vname, m));
    if (seen.has(vname)) errs.push({ type: 'FieldValueDuplicate', field: `${vp}.name`, badValue: vname });
    seen.add(vname);
    if (typeof v['served'] !== 'boolean') errs.push(required(`${vp}.served`));
    if (typeof v['storage'] !== 'boolean') errs.push(required(`${vp}.storage`));
    const schema = getObject(v, 'schema', 'openAPIV3Schema');
    if (schema === undefined) errs.push(required(`${vp}.schema.openAPIV3Schema`, 'schemas are required'));
    else validateSchema(schema, `${vp}.schema.openAPIV3Schema`, { root: true, nested: false }, errs);
    const cols = Array.isArray(v['additionalPrinterColumns']) ? v['additionalPrinterColumns'] : [];
    cols.forEach((c, j) => {
      const cp = `${vp}.additionalPrinterColumns[${j}]`;
      if (!isObject(c)) return;
      if (typeof c['name'] !== 'string' || c['name'] === '') errs.push(required(`${cp}.name`));
      if (!COLUMN_TYPES.includes(String(c['type']))) errs.push(notSupported(`${cp}.type`, c['type'], COLUMN_TYPES));
      if (typeof c['jsonPath'] !== 'string' || c['jsonPath'] === '') errs.push(required(`${cp}.jsonPath`));
      else {
        try {
          parseJsonPath(c['jsonPath']);
        } catch (e) {
          if (!(e instanceof JsonPathError)) throw e;
          errs.push(invalidValue(`${cp}.jsonPath`, c['jsonPath'], `must be a simple json path starting with .: ${e.message}`));
        }
      }
    });
    const fields = Array.isArray(v['selectableFields']) ? v['selectableFields'] : [];
    fields.forEach((f, j) => {
      if (!isObject(f) || typeof f['jsonPath'] !== 'string') errs.push(required(`${vp}.selectableFields[${j}].jsonPath`));
    });
  });
  if (old !== undefined) {
    const oldSpec = getObject(old, 'spec') ?? {};
    if (oldSpec['scope'] !== spec['scope']) errs.push(invalidValue('spec.scope', spec['scope'] ?? '', 'field is immutable'));
    if (oldSpec['group'] !== spec['group']) errs.push(invalidValue('spec.group', spec['group'] ?? '', 'field is immutable'));
  }
  return errs;
}

/** defaultCrd fills the fields the API server defaults on a CRD: names.singular, names.listKind and conversion strategy None. */
export function defaultCrd(crd: JsonObject): void {
  const spec = getObject(crd, 'spec');
  if (spec === undefined) return;
  const names = getObject(spec, 'names');
  if (names !== undefined) {
    const kind = getString(names, 'kind') ?? '';
    if (getString(names, 'singular') === undefined || names['singular'] === '') names['singular'] = kind.toLowerCase();
    if (getString(names, 'listKind') === undefined || names['listKind'] === '') names['listKind'] = `${kind}List`;
  }
  if (!isObject(spec['conversion'])) spec['conversion'] = { strategy: 'None' };
}

/** crdStatus computes the status the API server's CRD controllers converge to: accepted names, NamesAccepted and Established conditions, stored versions. */
export function crdStatus(crd: JsonObject, others: JsonObject[], now: number): JsonObject {
  const spec = getObject(crd, 'spec') ?? {};
  const names = getObject(spec, 'names') ?? {};
  const group = getString(spec, 'group');
  const old = getObject(crd, 'status') ?? {};
  const oldConditions = Array.isArray(old['conditions']) ? old['conditions'].filter(isObject) : [];
  const conflict = others.find((o) => {
    const os = getObject(o, 'spec') ?? {};
    const on = getObject(os, 'names') ?? {};
    if (getString(os, 'group') !== group || getString(o, 'metadata', 'name') === getString(crd, 'metadata', 'name')) return false;
    return on['plural'] === names['plural'] || on['kind'] === names['kind'] || on['singular'] === names['plural'];
  });
  const accepted = conflict === undefined;
  const condition = (type: string, status: string, reason: string, message: string): JsonObject => {
    const prev = oldConditions.find((c) => c['type'] === type);
    const lastTransitionTime = prev !== undefined && prev['status'] === status ? prev['lastTransitionTime'] : formatTime(now);
    return { type, status, reason, message, lastTransitionTime };
  };
  const storage = versionsOf(crd).find((v) => v['storage'] === true);
  const stored = Array.isArray(old['storedVersions']) ? old['storedVersions'].map(String) : [];
  const storageName = getString(storage, 'name');
  if (storageName !== undefined && !stored.includes(storageName)) stored.push(storageName);
  const conditions = [
    accepted
      ? condition('NamesAccepted', 'True', 'NoConflicts', 'no conflicts found')
      : condition('NamesAccepted', 'False', 'PluralConflict', `"${String(names['plural'])}" is already in use`),
    accepted
      ? condition('Established', 'True', 'InitialNamesAccepted', 'the initial names have been accepted')
      : condition('Established', 'False', 'NotAccepted', 'not all names are accepted'),
  ];
  if (getObject(crd, 'metadata')?.['deletionTimestamp'] !== undefined) {
    conditions.push(condition('Terminating', 'True', 'InstanceDeletionInProgress', 'CustomResource deletion is in progress'));
  }
  const acceptedNames: JsonObject = accepted ? deepClone(names) : (getObject(old, 'acceptedNames') ?? { plural: '', kind: '' });
  return { conditions, acceptedNames, storedVersions: stored };
}

/** isEstablished tells whether a CRD's status says Established=True. */
export function isEstablished(crd: JsonObject): boolean {
  const conds = getObject(crd, 'status')?.['conditions'];
  return Array.isArray(conds) && conds.some((c) => isObject(c) && c['type'] === 'Established' && c['status'] === 'True');
}

function withoutKeys(o: JsonObject, keys: string[]): JsonObject {
  const copy: JsonObject = { ...o };
  for (const k of keys) delete copy[k];
  return copy;
}

function customResourceStrategy(version: JsonObject, storageApiVersion: string, apiVersion: string, hasStatus: boolean): Strategy {
  const schema = (getObject(version, 'schema', 'openAPIV3Schema') ?? { type: 'object', 'x-kubernetes-preserve-unknown-fields': true }) as Schema;
  const selectable = (Array.isArray(version['selectableFields']) ? version['selectableFields'] : [])
    .filter(isObject)
    .map((f) => String(f['jsonPath']))
    .map((p) => ({ label: p.replace(/^\./, ''), steps: parseJsonPath(p) }));
  return {
    schema,
    typed: false,
    nameRule: 'subdomain',
    allowCreateOnUpdate: false,
    allowUnconditionalUpdate: true,
    returnDeletedObject: true,
    generationSource: (o) => withoutKeys(o, hasStatus ? ['metadata', 'status'] : ['metadata']),
    prepareForCreate: (o) => {
      if (hasStatus) delete o['status'];
    },
    prepareForUpdate: (o, old) => {
      if (!hasStatus) return;
      if (old['status'] === undefined) delete o['status'];
      else o['status'] = deepClone(old['status']);
    },
    validate: (o, old) => {
      const errs = validate(o, schema);
      // As the API server does: type errors block the rules, which would only fail to evaluate.
      if (errs.some((e) => e.type === 'FieldValueTypeInvalid')) {
        return [
          ...errs,
          invalidValue(
            '<nil>',
            null,
            'some validation rules were not checked because the object was invalid; correct the existing errors to complete validation',
          ),
        ];
      }
      return [...errs, ...celErrors(o, schema, old)];
    },
    fieldLabels: (o) => {
      const out: Record<string, string> = {};
      for (const f of selectable) {
        const r = evaluateJsonPath(f.steps, o);
        out[f.label] = r.length === 0 || r[0] === null ? '' : printJsonPathValue(r[0]);
      }
      return out;
    },
    toStorage: (o) => ({ ...o, apiVersion: storageApiVersion }),
    fromStorage: (o) => ({ ...o, apiVersion }),
  };
}

/** resourceTypesForCrd describes the resource types an established CRD serves, one per served version. */
export function resourceTypesForCrd(crd: JsonObject): ResourceType[] {
  const spec = getObject(crd, 'spec') ?? {};
  const names = getObject(spec, 'names') ?? {};
  const group = getString(spec, 'group') ?? '';
  const plural = getString(names, 'plural') ?? '';
  const kind = getString(names, 'kind') ?? '';
  const versions = versionsOf(crd);
  const storage = versions.find((v) => v['storage'] === true);
  const storageApiVersion = apiVersionOf(group, getString(storage, 'name') ?? '');
  const crdName = getString(crd, 'metadata', 'name') ?? '';
  return versions
    .filter((v) => v['served'] === true)
    .map((v) => {
      const version = getString(v, 'name') ?? '';
      const hasStatus = getObject(v, 'subresources', 'status') !== undefined;
      const cols = (Array.isArray(v['additionalPrinterColumns']) ? v['additionalPrinterColumns'] : []).filter(isObject);
      const columns =
        cols.length > 0
          ? cols.map((c) => {
              const spec: PrinterColumnSpec = { name: String(c['name']), type: String(c['type']), jsonPath: String(c['jsonPath']) };
              if (typeof c['format'] === 'string') spec.format = c['format'];
              if (typeof c['description'] === 'string') spec.description = c['description'];
              if (typeof c['priority'] === 'number') spec.priority = c['priority'];
              return printerColumn(spec);
            })
          : [printerColumn({ name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp', description: CREATION_TIMESTAMP_DESCRIPTION })];
      const rt: ResourceType = {
        group,
        version,
        plural,
        singular: getString(names, 'singular') ?? kind.toLowerCase(),
        kind,
        listKind: getString(names, 'listKind') ?? `${kind}List`,
        namespaced: spec['scope'] === 'Namespaced',
        shortNames: Array.isArray(names['shortNames']) ? names['shortNames'].map(String) : [],
        categories: Array.isArray(names['categories']) ? names['categories'].map(String) : [],
        verbs: [...ALL_VERBS],
        statusSubresource: hasStatus,
        storageKey: `${group}/${plural}`,
        columns,
        patchMeta: undefined,
        strategy: customResourceStrategy(v, storageApiVersion, apiVersionOf(group, version), hasStatus),
        crd: crdName,
        storage: v['storage'] === true,
      };
      return rt;
    });
}

/** crdResourceType describes apiextensions.k8s.io/v1 customresourcedefinitions as a built-in resource. */
export function crdResourceType(): ResourceType {
  const freeObject: Schema = { type: 'object', 'x-kubernetes-preserve-unknown-fields': true };
  const schema: Schema = {
    type: 'object',
    properties: {
      apiVersion: { type: 'string' },
      kind: { type: 'string' },
      metadata: freeObject,
      spec: {
        type: 'object',
        properties: {
          group: { type: 'string' },
          names: {
            type: 'object',
            properties: {
              plural: { type: 'string' },
              singular: { type: 'string' },
              kind: { type: 'string' },
              listKind: { type: 'string' },
              shortNames: { type: 'array', items: { type: 'string' } },
              categories: { type: 'array', items: { type: 'string' } },
            },
          },
          scope: { type: 'string' },
          versions: {
            type: 'array',
            items: {
              type: 'object',
              properties: {
                name: { type: 'string' },
                served: { type: 'boolean' },
                storage: { type: 'boolean' },
                deprecated: { type: 'boolean' },
                deprecationWarning: { type: 'string' },
                schema: { type: 'object', properties: { openAPIV3Schema: freeObject } },
                subresources: { type: 'object', properties: { status: freeObject, scale: freeObject } },
                additionalPrinterColumns: {
                  type: 'array',
                  items: {
                    type: 'object',
                    properties: {
                      name: { type: 'string' },
                      type: { type: 'string' },
                      format: { type: 'string' },
                      description: { type: 'string' },
                      priority: { type: 'integer', format: 'int32' },
                      jsonPath: { type: 'string' },
                    },
                  },
                },
                selectableFields: { type: 'array', items: { type: 'object', properties: { jsonPath: { type: 'string' } } } },
              },
            },
          },
          conversion: freeObject,
          preserveUnknownFields: { type: 'boolean' },
        },
      },
      status: freeObject,
    },
  };
  return {
    group: 'apiextensions.k8s.io',
    version: 'v1',
    plural: 'customresourcedefinitions',
    singular: 'customresourcedefinition',
    kind: 'CustomResourceDefinition',
    listKind: 'CustomResourceDefinitionList',
    namespaced: false,
    shortNames: ['crd', 'crds'],
    categories: ['api-extensions'],
    verbs: [...ALL_VERBS],
    statusSubresource: true,
    storageKey: 'apiextensions.k8s.io/customresourcedefinitions',
    columns: [simpleColumn('Created At', 'date', (o) => getString(o, 'metadata', 'creationTimestamp') ?? '')],
    patchMeta: { ...BASE_PATCH_META, 'spec.versions': { strategy: 'merge', mergeKey: 'name' } },
    crd: undefined,
    storage: true,
    strategy: {
      schema,
      typed: true,
      nameRule: 'subdomain',
      allowCreateOnUpdate: false,
      allowUnconditionalUpdate: false,
      returnDeletedObject: true,
      generationSource: (o) => o['spec'],
      prepareForCreate: (o) => {
        o['status'] = { conditions: [], acceptedNames: { plural: '', kind: '' }, storedVersions: [] };
        defaultCrd(o);
      },
      prepareForUpdate: (o, old) => {
        o['status'] = deepClone(old['status'] ?? {});
        defaultCrd(o);
      },
      validate: validateCrd,
      fieldLabels: () => ({}),
      toStorage: (o) => o,
      fromStorage: (o) => o,
    },
  };
}
