import { randomUUID } from 'node:crypto';
import { parse as parseYaml } from 'yaml';
import { OBJECT_META_SCHEMA } from './builtins.ts';
import { CRD_CLEANUP_FINALIZER, crdStatus, isEstablished, pruneSchemaKeys, resourceTypesForCrd } from './crd.ts';
import { deepClone, deepEqual, ensureObject, getObject, getString, isObject, stringMap, text } from './json.ts';
import type { JsonObject } from './json.ts';
import { printJsonPathValue } from './jsonpath.ts';
import { formatTime, generateName, validateObjectMeta, validateObjectMetaUpdate } from './metadata.ts';
import { applyJsonPatch, applyMergePatch, applyStrategicMergePatch, PatchError } from './patch.ts';
import { apiVersionOf, groupKind, groupResource } from './resources.ts';
import type { ResourceRegistry, ResourceType } from './resources.ts';
import { applyDefaults, prune } from './schema.ts';
import { matchesFields, matchesLabels, parseFieldSelector, parseLabelSelector } from './selectors.ts';
import type { FieldRequirement, LabelRequirement } from './selectors.ts';
import {
  alreadyExists,
  ApiError,
  badRequest,
  conflict,
  expired,
  failure,
  forbidden,
  internalError,
  invalid,
  invalidValue,
  notFound,
  OPTIMISTIC_LOCK_MESSAGE,
  tooLargeResourceVersion,
  unsupportedMediaType,
} from './status.ts';
import type { FieldError } from './status.ts';
import type { ObjectStore, StoreEvent } from './store.ts';
import { decodeTyped } from './typed.ts';

/** How the server treats unknown fields in a write (the fieldValidation query parameter). */
export type FieldValidation = 'Strict' | 'Warn' | 'Ignore';

/** Options every write takes. */
export interface WriteOptions {
  dryRun: boolean;
  fieldValidation: FieldValidation;
}

/** What a successful write answers: the object (or a Status), the HTTP code and any Warning headers. */
export interface WriteResult {
  object: JsonObject;
  code: number;
  warnings: string[];
}

/** List parameters (selectors, resourceVersion semantics, paging). */
export interface ListOptions {
  labelSelector?: string | undefined;
  fieldSelector?: string | undefined;
  resourceVersion?: string | undefined;
  resourceVersionMatch?: string | undefined;
  limit?: number | undefined;
  continueToken?: string | undefined;
}

/** Watch parameters. */
export interface WatchOptions {
  labelSelector?: string | undefined;
  fieldSelector?: string | undefined;
  resourceVersion?: string | undefined;
  resourceVersionMatch?: string | undefined;
  allowWatchBookmarks: boolean;
  sendInitialEvents?: boolean | undefined;
}

/** Where a watch delivers its events, in order; `close` ends the stream. */
export interface WatchSink {
  send: (type: string, object: JsonObject) => void;
  close: () => void;
}

/** A running watch; stop() unsubscribes without touching the sink. */
export interface WatchHandle {
  stop: () => void;
}

/** The patch formats the API server accepts. */
export type PatchType = 'json' | 'merge' | 'strategic' | 'apply';

/** DeleteOptions fields the fake honours. */
export interface DeleteOptions {
  dryRun: boolean;
  preconditions?: { uid?: string | undefined; resourceVersion?: string | undefined };
  /** Orphan strips the owner reference from dependents; Background and Foreground let the garbage collector delete them. */
  propagationPolicy?: 'Orphan' | 'Background' | 'Foreground' | undefined;
}

/** The media types for each patch format, keyed as in Content-Type. */
export const PATCH_CONTENT_TYPES: Record<string, PatchType> = {
  'application/json-patch+json': 'json',
  'application/merge-patch+json': 'merge',
  'application/strategic-merge-patch+json': 'strategic',
  'application/apply-patch+yaml': 'apply',
  'application/apply-patch+cbor': 'apply',
};

const PROTECTED_NAMESPACES = new Set(['default', 'kube-system', 'kube-public']);
const SYSTEM_META_FIELDS = ['uid', 'creationTimestamp', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'generation'];

interface ContinueToken {
  rv: number;
  start: string;
}

function encodeContinue(t: ContinueToken): string {
  return Buffer.from(JSON.stringify({ v: 'meta.k8s.io/v1', rv: t.rv, start: t.start })).toString('base64url');
}

function decodeContinue(text: string): ContinueToken {
  try {
    const raw: unknown = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
    if (isObject(raw) && typeof raw['rv'] === 'number' && typeof raw['start'] === 'string') return { rv: raw['rv'], start: raw['start'] };
  } catch {
    // fall through to the error below
  }
  throw badRequest(`continue key is not valid: ${text}`);
}

function objectKey(o: JsonObject): string {
  return `${getString(o, 'metadata', 'namespace') ?? ''}/${getString(o, 'metadata', 'name') ?? ''}`;
}

function parseRv(text: string, what = 'resourceVersion'): number {
  if (!/^\d+$/.test(text)) throw badRequest(`Invalid value: "${text}": ${what} must be a non-negative integer`);
  return Number(text);
}

function withoutRv(o: JsonObject): JsonObject {
  const copy = deepClone(o);
  const meta = getObject(copy, 'metadata');
  if (meta !== undefined) delete meta['resourceVersion'];
  return copy;
}

function successStatus(rt: ResourceType, name: string, uid: string): JsonObject {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details: { name, group: rt.group, kind: rt.plural, uid } };
}

/**
 * ResourceApi implements the generic registry semantics of kube-apiserver over an ObjectStore: create, get, list,
 * update, patch, delete (with finalizers), status subresource, watch, plus CRD establishment and namespace/CRD cleanup.
 */
export class ResourceApi {
  private readonly registry: ResourceRegistry;
  private readonly store: ObjectStore;
  private readonly bookmarkIntervalMs: number;
  private readonly watches = new Set<{ rt: ResourceType; sink: WatchSink; handle: WatchHandle }>();
  private settling = false;
  private readonly servedCrds = new Map<string, string>();

  constructor(registry: ResourceRegistry, store: ObjectStore, options: { bookmarkIntervalMs: number }) {
    this.registry = registry;
    this.store = store;
    this.bookmarkIntervalMs = options.bookmarkIntervalMs;
  }

  /** present converts a stored object to the type's version and stamps apiVersion and kind first. */
  present(rt: ResourceType, stored: JsonObject): JsonObject {
    const converted = rt.strategy.fromStorage(deepClone(stored));
    const { apiVersion: _apiVersion, kind: _kind, ...rest } = converted;
    return { apiVersion: apiVersionOf(rt.group, rt.version), kind: rt.kind, ...rest };
  }

  private namespaceType(): ResourceType {
    const rt = this.registry.find('', 'v1', 'namespaces');
    if (rt === undefined) throw internalError('namespaces are not served');
    return rt;
  }

  private checkNamespace(rt: ResourceType, namespace: string, name: string): void {
    if (!rt.namespaced) return;
    const nsRt = this.namespaceType();
    const ns = this.store.get(nsRt.storageKey, '', namespace);
    if (ns === undefined) throw notFound(groupResource(nsRt), namespace);
    if (getString(ns, 'status', 'phase') === 'Terminating' || getObject(ns, 'metadata')?.['deletionTimestamp'] !== undefined) {
      const err = forbidden(groupResource(rt), name, `unable to create new content in namespace ${namespace} because it is being terminated`);
      err.status.details = {
        ...(err.status.details ?? {}),
        causes: [{ reason: 'NamespaceTerminating', message: `namespace ${namespace} is being terminated`, field: 'metadata.namespace' }],
      };
      throw err;
    }
  }

  private crdTerminating(rt: ResourceType): boolean {
    if (rt.crd === undefined) return false;
    const crdRt = this.registry.find('apiextensions.k8s.io', 'v1', 'customresourcedefinitions');
    if (crdRt === undefined) return false;
    const crd = this.store.get(crdRt.storageKey, '', rt.crd);
    return crd === undefined || getObject(crd, 'metadata')?.['deletionTimestamp'] !== undefined;
  }

  /** decode turns a request body into a storage-form object: checks apiVersion/kind, type-checks built-ins, prunes unknown fields per fieldValidation. */
  private decode(rt: ResourceType, body: unknown, opts: WriteOptions, patchDoc?: unknown): { obj: JsonObject; warnings: string[] } {
    if (!isObject(body)) throw badRequest(`Object 'Kind' is missing in '${JSON.stringify(body)}'`);
    const obj = deepClone(body);
    const expectedApiVersion = apiVersionOf(rt.group, rt.version);
    const cannot = (msg: string): ApiError => badRequest(`${rt.kind} in version "${rt.version}" cannot be handled as a ${rt.kind}: ${msg}`);
    if (obj['kind'] === undefined || obj['kind'] === '') {
      if (!rt.strategy.typed) throw badRequest(`Object 'Kind' is missing in '${JSON.stringify(body)}'`);
    } else if (obj['kind'] !== rt.kind) {
      throw badRequest(`the kind in the data (${text(obj['kind'])}) does not match the expected kind (${rt.kind})`);
    }
    if (obj['apiVersion'] !== undefined && obj['apiVersion'] !== '' && obj['apiVersion'] !== expectedApiVersion) {
      throw badRequest(`the API version in the data (${text(obj['apiVersion'])}) does not match the expected API version (${expectedApiVersion})`);
    }
    obj['apiVersion'] = expectedApiVersion;
    obj['kind'] = rt.kind;
    if (obj['metadata'] === null) delete obj['metadata'];
    if (obj['metadata'] !== undefined && !isObject(obj['metadata']))
      throw cannot(`json: cannot unmarshal ${typeof obj['metadata']} into Go struct field ${rt.kind}.metadata of type v1.ObjectMeta`);
    const metaErr = decodeTyped(obj['metadata'] ?? {}, OBJECT_META_SCHEMA, rt.kind, 'metadata');
    if (metaErr !== undefined) throw cannot(metaErr);
    const schema = rt.strategy.schema;
    if (rt.strategy.typed && schema !== undefined) {
      const err = decodeTyped(obj, schema, rt.kind);
      if (err !== undefined) throw cannot(err);
    }
    const unknown = schema === undefined ? [] : prune(obj, schema);
    if (rt.kind === 'CustomResourceDefinition' && rt.group === 'apiextensions.k8s.io') {
      const versions = getObject(obj, 'spec')?.['versions'];
      if (Array.isArray(versions)) {
        versions.forEach((v, i) => {
          const s = getObject(v, 'schema', 'openAPIV3Schema');
          if (s !== undefined) unknown.push(...pruneSchemaKeys(s, `spec.versions[${i}].schema.openAPIV3Schema`));
        });
      }
    }
    const warnings: string[] = [];
    if (unknown.length > 0) {
      const strictMessage = `strict decoding error: ${unknown.map((u) => `unknown field "${u}"`).join(', ')}`;
      if (opts.fieldValidation === 'Strict' && patchDoc !== undefined)
        throw invalid({ group: '', name: '' }, '', [invalidValue('patch', printJsonPathValue(patchDoc), strictMessage)]);
      if (opts.fieldValidation === 'Strict') throw cannot(strictMessage);
      if (opts.fieldValidation === 'Warn') warnings.push(...unknown.map((u) => `unknown field "${u}"`));
    }
    return { obj: rt.strategy.toStorage(obj), warnings };
  }

  private validateAll(rt: ResourceType, obj: JsonObject, old: JsonObject | undefined): FieldError[] {
    const versioned = rt.strategy.fromStorage(deepClone(obj));
    const errs = validateObjectMeta(obj, rt.namespaced, rt.strategy.nameRule);
    if (old !== undefined) errs.push(...validateObjectMetaUpdate(obj, old));
    errs.push(...rt.strategy.validate(versioned, old === undefined ? undefined : rt.strategy.fromStorage(deepClone(old))));
    return errs;
  }

  private defaults(rt: ResourceType, obj: JsonObject): JsonObject {
    if (rt.strategy.typed) return obj;
    const versioned = rt.strategy.fromStorage(obj);
    applyDefaults(versioned, rt.strategy.schema);
    return rt.strategy.toStorage(versioned);
  }

  /** create implements POST: namespace checks, defaults, validation, AlreadyExists, then ADDED. */
  create(rt: ResourceType, namespace: string | undefined, body: unknown, opts: WriteOptions): WriteResult {
    if (this.crdTerminating(rt)) throw new ApiError(failure(405, 'MethodNotAllowed', 'create not allowed while custom resource definition is terminating'));
    const { obj, warnings } = this.decode(rt, body, opts);
    return this.createDecoded(rt, namespace, obj, opts, warnings);
  }

  private createDecoded(rt: ResourceType, namespace: string | undefined, decoded: JsonObject, opts: WriteOptions, warnings: string[]): WriteResult {
    let obj = decoded;
    const meta = ensureObject(obj, 'metadata');
    if (rt.namespaced) {
      const bodyNs = getString(meta, 'namespace');
      if (namespace !== undefined && bodyNs !== undefined && bodyNs !== '' && bodyNs !== namespace) {
        throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
      }
      if (namespace !== undefined) meta['namespace'] = namespace;
    } else delete meta['namespace'];
    const requestedRv = getString(meta, 'resourceVersion');
    const generated = (typeof meta['name'] !== 'string' || meta['name'] === '') && typeof meta['generateName'] === 'string' && meta['generateName'] !== '';
    if (generated) meta['name'] = generateName(String(meta['generateName']));
    const name = getString(meta, 'name') ?? '';
    this.checkNamespace(rt, getString(meta, 'namespace') ?? '', name);
    const now = Date.now();
    meta['uid'] = randomUUID();
    meta['creationTimestamp'] = formatTime(now);
    delete meta['deletionTimestamp'];
    delete meta['deletionGracePeriodSeconds'];
    delete meta['selfLink'];
    delete meta['managedFields'];
    if (rt.strategy.generationSource !== undefined) meta['generation'] = 1;
    else delete meta['generation'];
    const versioned = rt.strategy.fromStorage(obj);
    rt.strategy.prepareForCreate(versioned);
    obj = rt.strategy.toStorage(versioned);
    obj = this.defaults(rt, obj);
    const errs = this.validateAll(rt, obj, undefined);
    if (errs.length > 0) throw invalid(groupKind(rt), name, errs);
    if (requestedRv !== undefined && requestedRv !== '') throw internalError('resourceVersion should not be set on objects to be created');
    const ns = getString(obj, 'metadata', 'namespace') ?? '';
    for (let attempt = 0; this.store.get(rt.storageKey, ns, String(getObject(obj, 'metadata')?.['name'])) !== undefined; attempt++) {
      if (!generated || attempt >= 8) throw alreadyExists(groupResource(rt), String(getObject(obj, 'metadata')?.['name']));
      ensureObject(obj, 'metadata')['name'] = generateName(String(meta['generateName']));
    }
    if (opts.dryRun) {
      delete ensureObject(obj, 'metadata')['resourceVersion'];
      return { object: this.present(rt, obj), code: 201, warnings };
    }
    delete ensureObject(obj, 'metadata')['resourceVersion'];
    const stored = this.store.create(rt.storageKey, obj);
    this.afterWrite();
    return { object: this.present(rt, stored), code: 201, warnings };
  }

  /** get implements GET of one object, 404 NotFound when absent. */
  get(rt: ResourceType, namespace: string, name: string): JsonObject {
    const stored = this.store.get(rt.storageKey, rt.namespaced ? namespace : '', name);
    if (stored === undefined) throw notFound(groupResource(rt), name);
    return this.present(rt, stored);
  }

  /** find returns the object in the type's version, or undefined. */
  find(rt: ResourceType, namespace: string, name: string): JsonObject | undefined {
    const stored = this.store.get(rt.storageKey, rt.namespaced ? namespace : '', name);
    return stored === undefined ? undefined : this.present(rt, stored);
  }

  private selectors(
    rt: ResourceType,
    opts: { labelSelector?: string | undefined; fieldSelector?: string | undefined },
  ): { labels: LabelRequirement[]; fields: FieldRequirement[] } {
    const labels = opts.labelSelector === undefined ? [] : parseLabelSelector(opts.labelSelector);
    const fields = opts.fieldSelector === undefined ? [] : parseFieldSelector(opts.fieldSelector);
    for (const f of fields) {
      if (f.field === 'metadata.name' || f.field === 'metadata.namespace') continue;
      const sample = rt.strategy.fieldLabels({});
      if (!(f.field in sample)) throw badRequest(`field label not supported: ${f.field}`);
    }
    return { labels, fields };
  }

  private matches(rt: ResourceType, sel: { labels: LabelRequirement[]; fields: FieldRequirement[] }, stored: JsonObject): boolean {
    if (!matchesLabels(sel.labels, stringMap(getObject(stored, 'metadata', 'labels')))) return false;
    if (sel.fields.length === 0) return true;
    const versioned = rt.strategy.fromStorage(deepClone(stored));
    const fields = {
      ...rt.strategy.fieldLabels(versioned),
      'metadata.name': getString(stored, 'metadata', 'name') ?? '',
      'metadata.namespace': getString(stored, 'metadata', 'namespace') ?? '',
    };
    return matchesFields(sel.fields, fields);
  }

  /** list implements LIST with selectors, resourceVersion/resourceVersionMatch semantics and limit/continue paging. */
  list(rt: ResourceType, namespace: string | undefined, opts: ListOptions): JsonObject {
    const sel = this.selectors(rt, opts);
    const current = this.store.currentResourceVersion();
    const ns = rt.namespaced ? namespace : undefined;
    let atRv = current;
    let start = '';
    let items: JsonObject[];
    if (opts.continueToken !== undefined && opts.continueToken !== '') {
      const token = decodeContinue(opts.continueToken);
      const snap = this.store.snapshot(rt.storageKey, token.rv, ns);
      if (snap === undefined) {
        throw expired(
          'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.',
        );
      }
      atRv = token.rv;
      start = token.start;
      items = snap;
    } else {
      const rvText = opts.resourceVersion ?? '';
      const match = opts.resourceVersionMatch ?? '';
      if (match !== '' && match !== 'Exact' && match !== 'NotOlderThan')
        throw badRequest(`resourceVersionMatch: Unsupported value: "${match}": supported values: "Exact", "NotOlderThan"`);
      if (match !== '' && rvText === '') throw badRequest('resourceVersionMatch is forbidden unless resourceVersion is provided');
      if (rvText !== '' && rvText !== '0') {
        const rv = parseRv(rvText);
        if (rv > current) throw tooLargeResourceVersion(rv, current);
        if (match === 'Exact') {
          const snap = this.store.snapshot(rt.storageKey, rv, ns);
          if (snap === undefined) throw expired(`too old resource version: ${rv} (${this.store.oldestResourceVersion(rt.storageKey) + 1})`);
          atRv = rv;
          items = snap;
        } else items = this.store.list(rt.storageKey, ns);
      } else {
        if (match === 'Exact') throw badRequest('resourceVersionMatch "exact" is forbidden for resourceVersion "0"');
        items = this.store.list(rt.storageKey, ns);
      }
    }
    items = items.filter((o) => objectKey(o) > start || start === '').filter((o) => this.matches(rt, sel, o));
    const listMeta: JsonObject = { resourceVersion: String(atRv) };
    if (opts.limit !== undefined && opts.limit > 0 && items.length > opts.limit) {
      const page = items.slice(0, opts.limit);
      const last = page[page.length - 1];
      listMeta['continue'] = encodeContinue({ rv: atRv, start: last === undefined ? '' : objectKey(last) });
      listMeta['remainingItemCount'] = items.length - opts.limit;
      items = page;
    }
    return {
      kind: rt.listKind,
      apiVersion: apiVersionOf(rt.group, rt.version),
      metadata: listMeta,
      items: items.map((o) => {
        const p = this.present(rt, o);
        if (rt.crd === undefined) {
          delete p['apiVersion'];
          delete p['kind'];
        }
        return p;
      }),
    };
  }

  /** update implements PUT on the object or its status subresource, with resourceVersion preconditions, generation and finalizer semantics. */
  update(rt: ResourceType, namespace: string | undefined, name: string, body: unknown, opts: WriteOptions, subresource: 'status' | undefined): WriteResult {
    const { obj, warnings } = this.decode(rt, body, opts);
    const meta = ensureObject(obj, 'metadata');
    const bodyName = getString(meta, 'name') ?? '';
    if (bodyName !== name) throw badRequest(`the name of the object (${bodyName}) does not match the name on the URL (${name})`);
    if (rt.namespaced) {
      const bodyNs = getString(meta, 'namespace');
      if (bodyNs !== undefined && bodyNs !== '' && bodyNs !== namespace)
        throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
      meta['namespace'] = namespace ?? '';
    } else delete meta['namespace'];
    return this.updateDecoded(rt, namespace ?? '', name, obj, opts, subresource, warnings);
  }

  private updateDecoded(
    rt: ResourceType,
    namespace: string,
    name: string,
    obj: JsonObject,
    opts: WriteOptions,
    subresource: 'status' | undefined,
    warnings: string[],
  ): WriteResult {
    const ns = rt.namespaced ? namespace : '';
    const existing = this.store.get(rt.storageKey, ns, name);
    const meta = ensureObject(obj, 'metadata');
    if (existing === undefined) {
      if (subresource === undefined && rt.strategy.allowCreateOnUpdate) {
        delete meta['resourceVersion'];
        return this.createDecoded(rt, rt.namespaced ? namespace : undefined, obj, opts, warnings);
      }
      throw notFound(groupResource(rt), name);
    }
    const existingRv = getString(existing, 'metadata', 'resourceVersion') ?? '';
    const bodyRv = getString(meta, 'resourceVersion') ?? '';
    if (bodyRv === '') {
      if (!rt.strategy.allowUnconditionalUpdate) {
        throw invalid(groupResource(rt), name, [invalidValue('metadata.resourceVersion', '0x0', 'must be specified for an update')]);
      }
    } else if (bodyRv !== existingRv) {
      throw conflict(groupResource(rt), name, OPTIMISTIC_LOCK_MESSAGE);
    }
    let next: JsonObject;
    if (subresource === 'status') {
      next = deepClone(existing);
      if (obj['status'] === undefined) delete next['status'];
      else next['status'] = deepClone(obj['status']);
    } else {
      next = obj;
      const nextMeta = ensureObject(next, 'metadata');
      const oldMeta = getObject(existing, 'metadata') ?? {};
      for (const k of SYSTEM_META_FIELDS) {
        if (k === 'uid' && nextMeta['uid'] !== undefined && nextMeta['uid'] !== '') continue;
        if (oldMeta[k] === undefined) delete nextMeta[k];
        else nextMeta[k] = deepClone(oldMeta[k]);
      }
      delete nextMeta['managedFields'];
      delete nextMeta['selfLink'];
      const versioned = rt.strategy.fromStorage(next);
      rt.strategy.prepareForUpdate(versioned, rt.strategy.fromStorage(deepClone(existing)));
      next = rt.strategy.toStorage(versioned);
    }
    next = this.defaults(rt, next);
    const errs = this.validateAll(rt, next, existing);
    if (errs.length > 0) throw invalid(groupKind(rt), name, errs);
    const gen = rt.strategy.generationSource;
    const nextMeta = ensureObject(next, 'metadata');
    if (gen !== undefined && subresource === undefined) {
      const oldGen = getObject(existing, 'metadata')?.['generation'];
      const base = typeof oldGen === 'number' ? oldGen : 1;
      const changed = !deepEqual(gen(rt.strategy.fromStorage(deepClone(next))), gen(rt.strategy.fromStorage(deepClone(existing))));
      nextMeta['generation'] = changed ? base + 1 : base;
    }
    nextMeta['resourceVersion'] = existingRv;
    const finalizers = nextMeta['finalizers'];
    const isNamespace = rt.group === '' && rt.plural === 'namespaces';
    const emptied =
      !isNamespace && getObject(existing, 'metadata')?.['deletionTimestamp'] !== undefined && (!Array.isArray(finalizers) || finalizers.length === 0);
    if (Array.isArray(finalizers) && finalizers.length === 0) delete nextMeta['finalizers'];
    if (emptied) {
      if (!opts.dryRun) {
        this.store.remove(rt.storageKey, ns, name);
        this.afterWrite();
      }
      return { object: this.present(rt, next), code: 200, warnings };
    }
    if (deepEqual(withoutRv(next), withoutRv(existing))) return { object: this.present(rt, existing), code: 200, warnings };
    if (opts.dryRun) return { object: this.present(rt, next), code: 200, warnings };
    const stored = this.store.update(rt.storageKey, next);
    this.afterWrite();
    return { object: this.present(rt, stored), code: 200, warnings };
  }

  /** patch implements PATCH (JSON, merge, strategic merge for built-ins, simplified apply) on the object or its status. */
  patch(
    rt: ResourceType,
    namespace: string | undefined,
    name: string,
    patchType: PatchType,
    rawBody: string,
    opts: WriteOptions,
    subresource: 'status' | undefined,
  ): WriteResult {
    let patchDoc: unknown;
    try {
      patchDoc = patchType === 'apply' ? parseYaml(rawBody) : JSON.parse(rawBody);
    } catch (e) {
      throw badRequest(`error decoding patch: ${e instanceof Error ? e.message : String(e)}`);
    }
    if (patchType === 'strategic' && rt.patchMeta === undefined) {
      throw unsupportedMediaType('application/strategic-merge-patch+json', [
        'application/json-patch+json',
        'application/merge-patch+json',
        'application/apply-patch+yaml',
      ]);
    }
    const ns = rt.namespaced ? (namespace ?? '') : '';
    const stored = this.store.get(rt.storageKey, ns, name);
    if (stored === undefined) {
      if (patchType === 'apply' && subresource === undefined) {
        if (!isObject(patchDoc)) throw badRequest('apply patch must be an object');
        const r = this.create(rt, rt.namespaced ? namespace : undefined, patchDoc, opts);
        return r;
      }
      throw notFound(groupResource(rt), name);
    }
    const current = this.present(rt, stored);
    let patched: unknown;
    try {
      if (patchType === 'json') patched = applyJsonPatch(current, patchDoc);
      else if (patchType === 'merge') patched = applyMergePatch(current, patchDoc);
      else if (patchType === 'strategic') patched = applyStrategicMergePatch(current, patchDoc, rt.patchMeta ?? {});
      else patched = applyMergePatch(current, stripNulls(patchDoc));
    } catch (e) {
      if (!(e instanceof PatchError)) throw e;
      if (e.invalidPatch) throw badRequest(e.message);
      const err = new ApiError(
        failure(422, 'Invalid', 'the server rejected our request due to an error in our request', {
          causes: [{ reason: 'UnexpectedServerResponse', message: e.message }],
        }),
      );
      throw err;
    }
    if (!isObject(patched)) throw badRequest('the patched object is not an object');
    const meta = ensureObject(patched, 'metadata');
    const patchedRv = getString(meta, 'resourceVersion');
    const currentRv = getString(current, 'metadata', 'resourceVersion') ?? '';
    if (patchedRv !== undefined && patchedRv !== '' && patchedRv !== currentRv) throw conflict(groupResource(rt), name, OPTIMISTIC_LOCK_MESSAGE);
    meta['resourceVersion'] = currentRv;
    if (getString(meta, 'name') !== name)
      throw badRequest(`the name of the object (${getString(meta, 'name') ?? ''}) does not match the name on the URL (${name})`);
    const { obj, warnings } = this.decode(rt, patched, opts, patchDoc);
    return this.updateDecoded(rt, ns, name, obj, opts, subresource, warnings);
  }

  /** delete implements DELETE: preconditions, finalizers (deletionTimestamp + MODIFIED) or removal (DELETED), CRD and namespace cleanup. */
  delete(rt: ResourceType, namespace: string | undefined, name: string, opts: DeleteOptions): WriteResult {
    const ns = rt.namespaced ? (namespace ?? '') : '';
    const existing = this.store.get(rt.storageKey, ns, name);
    if (existing === undefined) throw notFound(groupResource(rt), name);
    const meta = ensureObject(existing, 'metadata');
    const pre = opts.preconditions;
    if (pre?.uid !== undefined && pre.uid !== meta['uid']) {
      throw conflict(
        groupResource(rt),
        name,
        `the UID in the precondition (${pre.uid}) does not match the UID in record (${String(meta['uid'])}). The object might have been deleted and then recreated`,
      );
    }
    if (pre?.resourceVersion !== undefined && pre.resourceVersion !== meta['resourceVersion']) {
      throw conflict(
        groupResource(rt),
        name,
        `the ResourceVersion in the precondition (${pre.resourceVersion}) does not match the ResourceVersion in record (${String(meta['resourceVersion'])}). The object might have been modified`,
      );
    }
    const isNamespace = rt.group === '' && rt.plural === 'namespaces';
    const isCrd = rt.group === 'apiextensions.k8s.io' && rt.plural === 'customresourcedefinitions';
    if (isNamespace && PROTECTED_NAMESPACES.has(name)) throw forbidden(groupResource(rt), name, 'this namespace may not be deleted');
    if (opts.propagationPolicy === 'Orphan' && !opts.dryRun) this.orphanDependents(String(meta['uid']));
    const next = deepClone(existing);
    const nextMeta = ensureObject(next, 'metadata');
    if (isCrd) {
      const fins = Array.isArray(nextMeta['finalizers']) ? nextMeta['finalizers'].map(String) : [];
      if (!fins.includes(CRD_CLEANUP_FINALIZER)) nextMeta['finalizers'] = [...fins, CRD_CLEANUP_FINALIZER];
    }
    if (isNamespace) ensureObject(next, 'status')['phase'] = 'Terminating';
    const finalizers = Array.isArray(nextMeta['finalizers']) ? nextMeta['finalizers'] : [];
    if (finalizers.length > 0 || isNamespace) {
      if (nextMeta['deletionTimestamp'] === undefined) {
        if (typeof nextMeta['generation'] === 'number' && nextMeta['generation'] > 0) nextMeta['generation'] += 1;
        nextMeta['deletionTimestamp'] = formatTime(Date.now());
      }
      nextMeta['deletionGracePeriodSeconds'] = 0;
      if (opts.dryRun) return { object: this.present(rt, next), code: 200, warnings: [] };
      const out = deepEqual(withoutRv(next), withoutRv(existing)) ? existing : this.store.update(rt.storageKey, next);
      this.afterWrite();
      return { object: this.present(rt, out), code: 200, warnings: [] };
    }
    if (opts.dryRun)
      return { object: rt.strategy.returnDeletedObject ? this.present(rt, existing) : successStatus(rt, name, String(meta['uid'])), code: 200, warnings: [] };
    this.store.remove(rt.storageKey, ns, name);
    this.afterWrite();
    const object = rt.strategy.returnDeletedObject ? this.present(rt, existing) : successStatus(rt, name, String(meta['uid']));
    return { object, code: 200, warnings: [] };
  }

  /** deleteCollection implements DELETE on a collection: deletes every object the selectors match and returns the list of them. */
  deleteCollection(rt: ResourceType, namespace: string | undefined, opts: ListOptions, deleteOpts: DeleteOptions): JsonObject {
    const list = this.list(rt, namespace, { ...opts, limit: 0 });
    const items = Array.isArray(list['items']) ? list['items'].filter(isObject) : [];
    const deleted: JsonObject[] = [];
    for (const item of items) {
      const r = this.delete(rt, getString(item, 'metadata', 'namespace'), getString(item, 'metadata', 'name') ?? '', { dryRun: deleteOpts.dryRun });
      deleted.push(r.object);
    }
    return { ...list, items: deleted };
  }

  /**
   * watch implements WATCH: with no (or "0") resourceVersion it first sends ADDED for current objects, otherwise replays
   * history after the given resourceVersion (ERROR 410 Expired when compacted); then streams matching changes, with
   * ADDED/DELETED for objects entering or leaving the selectors, and periodic BOOKMARKs when allowed.
   */
  watch(rt: ResourceType, namespace: string | undefined, opts: WatchOptions, sink: WatchSink): WatchHandle {
    const sel = this.selectors(rt, opts);
    const ns = rt.namespaced ? namespace : undefined;
    const rvText = opts.resourceVersion ?? '';
    const current = this.store.currentResourceVersion();
    let replay: StoreEvent[] = [];
    let initial: JsonObject[] = [];
    let lastRv = current;
    if (opts.sendInitialEvents === true) {
      if (!opts.allowWatchBookmarks)
        throw invalid({ group: 'meta.k8s.io', name: 'ListOptions' }, '', [
          { type: 'FieldValueForbidden', field: 'allowWatchBookmarks', detail: 'sendInitialEvents requires setting allowWatchBookmarks to true' },
        ]);
      if (opts.resourceVersionMatch !== 'NotOlderThan')
        throw invalid({ group: 'meta.k8s.io', name: 'ListOptions' }, '', [
          { type: 'FieldValueForbidden', field: 'resourceVersionMatch', detail: 'sendInitialEvents requires setting resourceVersionMatch to NotOlderThan' },
        ]);
      initial = this.store.list(rt.storageKey, ns);
    } else if (rvText === '' || rvText === '0') {
      initial = this.store.list(rt.storageKey, ns);
    } else {
      const rv = parseRv(rvText);
      if (rv > current) throw tooLargeResourceVersion(rv, current);
      const events = this.store.since(rt.storageKey, rv);
      if (events === undefined) {
        sink.send(
          'ERROR',
          failure(410, 'Expired', `too old resource version: ${rv} (${this.store.oldestResourceVersion(rt.storageKey) + 1})`) as unknown as JsonObject,
        );
        sink.close();
        return { stop: () => undefined };
      }
      replay = events;
      lastRv = rv;
    }
    const inNs = (e: { namespace: string }): boolean => ns === undefined || e.namespace === ns;
    const deliver = (e: StoreEvent): void => {
      if (!inNs(e)) return;
      const cur = e.type !== 'DELETED' && this.matches(rt, sel, e.object);
      const old = e.prev !== undefined && this.matches(rt, sel, e.prev);
      lastRv = Math.max(lastRv, e.rv);
      if (cur && !old) sink.send('ADDED', this.present(rt, e.object));
      else if (cur && old) sink.send('MODIFIED', this.present(rt, e.object));
      else if (!cur && old) {
        const gone = deepClone(e.prev ?? e.object);
        ensureObject(gone, 'metadata')['resourceVersion'] = String(e.rv);
        sink.send('DELETED', this.present(rt, gone));
      }
    };
    for (const o of initial) if (this.matches(rt, sel, o)) sink.send('ADDED', this.present(rt, o));
    for (const e of replay) deliver(e);
    const bookmark = (annotations?: Record<string, string>): void => {
      const metadata: JsonObject = { resourceVersion: String(Math.max(lastRv, this.store.currentResourceVersion())) };
      if (annotations !== undefined) metadata['annotations'] = annotations;
      sink.send('BOOKMARK', { kind: rt.kind, apiVersion: apiVersionOf(rt.group, rt.version), metadata });
    };
    if (opts.sendInitialEvents === true) bookmark({ 'k8s.io/initial-events-end': 'true' });
    const unsubscribe = this.store.subscribe(rt.storageKey, deliver);
    const timer = opts.allowWatchBookmarks ? setInterval(() => bookmark(), this.bookmarkIntervalMs) : undefined;
    timer?.unref();
    const entry = {
      rt,
      sink,
      handle: {
        stop: (): void => {
          unsubscribe();
          if (timer !== undefined) clearInterval(timer);
          this.watches.delete(entry);
        },
      },
    };
    this.watches.add(entry);
    return entry.handle;
  }

  /** afterWrite reconciles what real controllers would: CRD status and serving, and cleanup of deleted CRDs and namespaces. */
  private afterWrite(): void {
    if (this.settling) return;
    this.settling = true;
    try {
      for (let i = 0; i < 20 && this.settleOnce(); i++) {
        // repeat until nothing changes
      }
    } finally {
      this.settling = false;
    }
  }

  private settleOnce(): boolean {
    let changed = false;
    const crdRt = this.registry.find('apiextensions.k8s.io', 'v1', 'customresourcedefinitions');
    if (crdRt !== undefined) {
      const crds = this.store.list(crdRt.storageKey);
      const served = new Set(
        this.registry
          .all()
          .filter((t) => t.crd !== undefined)
          .map((t) => t.crd),
      );
      for (const name of served) {
        if (name !== undefined && !crds.some((c) => getString(c, 'metadata', 'name') === name)) {
          this.unserve(name);
          changed = true;
        }
      }
      for (const crd of crds) changed = this.settleCrd(crdRt, crd, crds) || changed;
    }
    const nsRt = this.registry.find('', 'v1', 'namespaces');
    if (nsRt !== undefined) {
      for (const ns of this.store.list(nsRt.storageKey)) {
        if (getObject(ns, 'metadata')?.['deletionTimestamp'] === undefined) continue;
        changed = this.settleNamespace(nsRt, ns) || changed;
      }
    }
    return this.collectGarbage() || changed;
  }

  private storedTypes(): ResourceType[] {
    const byKey = new Map<string, ResourceType>();
    for (const t of this.registry.all()) if (t.storage || !byKey.has(t.storageKey)) byKey.set(t.storageKey, t);
    return [...byKey.values()];
  }

  private ownerUids(o: JsonObject): string[] {
    const refs = getObject(o, 'metadata')?.['ownerReferences'];
    return Array.isArray(refs) ? refs.filter(isObject).map((r) => text(r['uid'])) : [];
  }

  /** collectGarbage deletes objects whose owners are all gone, as the garbage collector does for background deletion. */
  private collectGarbage(): boolean {
    const types = this.storedTypes();
    const live = new Set<string>();
    const all: { rt: ResourceType; o: JsonObject }[] = [];
    for (const rt of types) {
      for (const o of this.store.list(rt.storageKey)) {
        live.add(text(getObject(o, 'metadata')?.['uid']));
        all.push({ rt, o });
      }
    }
    let changed = false;
    for (const { rt, o } of all) {
      const owners = this.ownerUids(o);
      if (owners.length === 0 || owners.some((u) => live.has(u)) || getObject(o, 'metadata')?.['deletionTimestamp'] !== undefined) continue;
      this.delete(rt, getString(o, 'metadata', 'namespace'), getString(o, 'metadata', 'name') ?? '', { dryRun: false });
      changed = true;
    }
    return changed;
  }

  private orphanDependents(uid: string): void {
    for (const rt of this.storedTypes()) {
      for (const o of this.store.list(rt.storageKey)) {
        if (!this.ownerUids(o).includes(uid)) continue;
        const meta = ensureObject(o, 'metadata');
        const rest = (meta['ownerReferences'] as unknown[]).filter((r) => !(isObject(r) && r['uid'] === uid));
        if (rest.length > 0) meta['ownerReferences'] = rest;
        else delete meta['ownerReferences'];
        this.store.update(rt.storageKey, o);
      }
    }
  }

  private unserve(crdName: string): void {
    this.servedCrds.delete(crdName);
    const removed = this.registry.removeCrd(crdName);
    for (const w of [...this.watches]) {
      if (removed.some((r) => r.storageKey === w.rt.storageKey)) {
        w.handle.stop();
        w.sink.close();
      }
    }
  }

  private settleCrd(crdRt: ResourceType, crd: JsonObject, all: JsonObject[]): boolean {
    const name = getString(crd, 'metadata', 'name') ?? '';
    const deleting = getObject(crd, 'metadata')?.['deletionTimestamp'] !== undefined;
    const status = crdStatus(
      crd,
      all.filter((c) => getString(c, 'metadata', 'name') !== name),
      Date.now(),
    );
    if (!deepEqual(status, crd['status'])) {
      const next = deepClone(crd);
      next['status'] = status;
      this.store.update(crdRt.storageKey, next);
      return true;
    }
    const rv = getString(crd, 'metadata', 'resourceVersion') ?? '';
    if (this.servedCrds.get(name) !== rv) {
      this.registry.removeCrd(name);
      if (isEstablished(crd)) for (const t of resourceTypesForCrd(crd)) this.registry.add(t);
      this.servedCrds.set(name, rv);
    }
    if (!deleting) return false;
    const group = getString(crd, 'spec', 'group') ?? '';
    const storageKey = `${group}/${getString(crd, 'spec', 'names', 'plural') ?? ''}`;
    const rt = this.registry.all().find((t) => t.crd === name && t.storage) ?? this.registry.all().find((t) => t.crd === name);
    const remaining = this.store.list(storageKey);
    if (remaining.length > 0) {
      let changed = false;
      for (const o of remaining) {
        if (getObject(o, 'metadata')?.['deletionTimestamp'] !== undefined) continue;
        const oNs = getString(o, 'metadata', 'namespace') ?? '';
        const oName = getString(o, 'metadata', 'name') ?? '';
        if (rt !== undefined) this.delete(rt, oNs, oName, { dryRun: false });
        else this.store.remove(storageKey, oNs, oName);
        changed = true;
      }
      return changed;
    }
    const fins = getObject(crd, 'metadata')?.['finalizers'];
    const rest = (Array.isArray(fins) ? fins : []).filter((f) => f !== CRD_CLEANUP_FINALIZER);
    if (rest.length > 0) {
      if (Array.isArray(fins) && fins.length === rest.length) return false;
      const next = deepClone(crd);
      ensureObject(next, 'metadata')['finalizers'] = rest;
      this.store.update(crdRt.storageKey, next);
    } else {
      this.store.remove(crdRt.storageKey, '', name);
      this.unserve(name);
    }
    return true;
  }

  private settleNamespace(nsRt: ResourceType, ns: JsonObject): boolean {
    const name = getString(ns, 'metadata', 'name') ?? '';
    let changed = false;
    let remaining = 0;
    for (const rt of this.registry.all()) {
      if (!rt.namespaced || !rt.storage) continue;
      for (const o of this.store.list(rt.storageKey, name)) {
        remaining++;
        if (getObject(o, 'metadata')?.['deletionTimestamp'] !== undefined) continue;
        this.delete(rt, name, getString(o, 'metadata', 'name') ?? '', { dryRun: false });
        changed = true;
      }
    }
    if (remaining > 0 || changed) return changed;
    const fins = getObject(ns, 'metadata')?.['finalizers'];
    if (Array.isArray(fins) && fins.length > 0) return false;
    this.store.remove(nsRt.storageKey, '', name);
    return true;
  }

  /** closeAllWatches ends every open watch stream, as when the API server restarts or drops connections. */
  closeAllWatches(): number {
    const all = [...this.watches];
    for (const w of all) {
      w.handle.stop();
      w.sink.close();
    }
    return all.length;
  }

  /** openWatchCount tells how many watch streams are open. */
  openWatchCount(): number {
    return this.watches.size;
  }
}

function stripNulls(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(stripNulls);
  if (!isObject(v)) return v;
  const out: JsonObject = {};
  for (const [k, x] of Object.entries(v)) if (x !== null) out[k] = stripNulls(x);
  return out;
}
