import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { parseAllDocuments, parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { callWebhooks, matchingWebhooks, type AdmissionAttributes, type ServiceResolver } from './admission.ts';
import { builtinResourceTypes } from './builtins.ts';
import { crdResourceType } from './crd.ts';
import { aggregatedContentType, aggregatedDiscovery, aggregatedDiscoveryVersion, apiGroup, apiGroupList, apiResourceList, apiVersions } from './discovery.ts';
import { Faults } from './faults.ts';
import type { RecordedRequest } from './faults.ts';
import { getObject, getString, isObject, stringMap, text } from './json.ts';
import { openApiV3GroupVersion, openApiV3Root } from './openapi.ts';
import type { JsonObject } from './json.ts';
import { decodeProtobufObject, ProtobufError } from './protobuf.ts';
import { PATCH_CONTENT_TYPES, ResourceApi } from './resource-api.ts';
import type { DeleteOptions, FieldValidation, WatchHandle, WriteOptions, WriteResult } from './resource-api.ts';
import { apiVersionOf, ResourceRegistry } from './resources.ts';
import type { ResourceType } from './resources.ts';
import { ApiError, badRequest, failure, unauthorized, unsupportedMediaType } from './status.ts';
import { ObjectStore } from './store.ts';
import { selfSignedCertificate } from './tls.ts';
import { buildTable, partialObjectMetadata } from './table.ts';
import type { IncludeObject } from './table.ts';

/** Options for startApiServer. */
export interface ApiServerOptions {
  /** TCP port on 127.0.0.1; 0 (default) picks a free one. */
  port?: number;
  /** Bearer token every request must carry; default a random one; false turns authentication off. */
  token?: string | false;
  /**
   * Other users' bearer tokens, answered by TokenReview (authentication.k8s.io/v1); the kubeconfig's
   * token is the user "admin" in system:masters. Requests themselves still need the kubeconfig's token.
   */
  users?: Record<string, { username: string; groups?: string[] }>;
  /** The SubjectAccessReview decision for a non-resource path; default: system:masters only. */
  authorizeNonResource?: (user: { username: string; groups: string[] }, path: string, verb: string) => boolean;
  /**
   * Serve HTTPS with a fresh self-signed certificate, put into the kubeconfig as certificate-authority-data; default true.
   * WARNING: with tls: false kubectl never sends the bearer token (client-go sends tokens only over TLS), and client-node
   * accepts http only with insecure-skip-tls-verify, which the kubeconfig then sets; use token: false for kubectl over http.
   */
  tls?: boolean;
  /** Serve the built-in kinds (namespaces, secrets, configmaps, events, serviceaccounts, services, leases, deployments); default true. CRDs are always served. */
  builtins?: boolean;
  /** CRDs to apply at start: objects or paths of YAML files (multi-document allowed). */
  crds?: (string | JsonObject)[];
  /** Namespaces to create besides default, kube-system and kube-public. */
  namespaces?: string[];
  /** Changes kept per resource for watch resumption before older ones are compacted; default 1000. */
  historySize?: number;
  /** How often watches that allow bookmarks get a BOOKMARK; default 60000 ms as the real server. */
  bookmarkIntervalMs?: number;
  /** Server-side timeout of watches that give no timeoutSeconds; default 1800 s. */
  watchTimeoutSeconds?: number;
  /** Where a webhook's service listens (there is no cluster DNS here); a webhook given by url needs none. */
  resolveService?: ServiceResolver;
}

/** A reference to one object for the direct helpers. */
export interface ObjectRef {
  apiVersion: string;
  kind: string;
  namespace?: string;
  name: string;
}

/** A running fake API server with HTTP endpoints, fault injection and direct (non-HTTP) helpers for tests. */
export interface ApiServer {
  url: string;
  port: number;
  /** The bearer token clients must send, or undefined when authentication is off. */
  token: string | undefined;
  /** The server certificate (PEM) when serving TLS. */
  caPem: string | undefined;
  /** kubeconfig renders a kubeconfig (YAML) for kubectl and client-node pointing at this server. */
  kubeconfig(namespace?: string): string;
  /** writeKubeconfig writes kubeconfig(namespace) to a file. */
  writeKubeconfig(file: string, namespace?: string): Promise<void>;
  faults: Faults;
  /** requests is the request log (same array as faults.requests). */
  requests: RecordedRequest[];
  /** close ends every watch and connection and stops listening. */
  close(): Promise<void>;
  /** get returns an object as the API would, or undefined when absent. */
  get(ref: ObjectRef): JsonObject | undefined;
  /** list returns the objects of a kind (in one namespace or all), as the API would. */
  list(apiVersion: string, kind: string, namespace?: string): JsonObject[];
  /** create creates an object as a POST would, throwing ApiError on failure. */
  create(obj: JsonObject): JsonObject;
  /** apply creates the object, or replaces an existing one unconditionally (and its status when given); throws ApiError on failure. */
  apply(obj: JsonObject): JsonObject;
  /** updateStatus replaces an object's status through the status subresource (unconditionally when no resourceVersion is given). */
  updateStatus(obj: JsonObject): JsonObject;
  /** delete deletes an object as a DELETE would (finalizers honoured), throwing ApiError when absent. */
  delete(ref: ObjectRef): JsonObject;
  /** resourceVersion is the current global resourceVersion. */
  resourceVersion(): string;
  /** openWatches tells how many watch streams are open. */
  openWatches(): number;
  /** changed resolves at the next change of any object (a write through the API or a helper), of the open watches, or at the next request: what tests await instead of polling. */
  changed(): Promise<void>;
}

const JSON_TYPE = 'application/json';

interface Route {
  rt: ResourceType;
  namespace: string | undefined;
  name: string | undefined;
  subresource: string | undefined;
  legacyWatch: boolean;
}

function notFoundRoute(): ApiError {
  return new ApiError(failure(404, 'NotFound', 'the server could not find the requested resource', {}));
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function mediaType(header: string | undefined): string {
  return (header ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
}

function decodeBody(raw: Buffer, contentType: string): unknown {
  const mt = mediaType(contentType);
  if (mt === 'application/vnd.kubernetes.protobuf') {
    try {
      return decodeProtobufObject(raw);
    } catch (e) {
      if (!(e instanceof ProtobufError)) throw e;
      throw unsupportedMediaType(mt, ['application/json', 'application/yaml']);
    }
  }
  if (mt === 'application/cbor') throw unsupportedMediaType(mt, ['application/json', 'application/yaml']);
  const text = raw.toString('utf8');
  try {
    return mt === 'application/yaml' ? parseYaml(text) : JSON.parse(text);
  } catch (e) {
    throw badRequest(`error decoding body: ${e instanceof Error ? e.message : String(e)}`);
  }
}

function wantsTable(accept: string): boolean {
  return accept.split(',').some((p) => p.includes('as=Table') && p.includes('g=meta.k8s.io'));
}

function wantsPartial(accept: string): boolean {
  return accept.split(',').some((p) => p.includes('as=PartialObjectMetadata') && p.includes('g=meta.k8s.io'));
}

function acceptsJson(accept: string): boolean {
  if (accept.trim() === '') return true;
  return accept.split(',').some((p) => {
    const mt = mediaType(p);
    return mt === 'application/json' || mt === '*/*' || mt === 'application/*' || mt === 'application/yaml';
  });
}

function fieldValidationOf(q: URLSearchParams): FieldValidation {
  const v = q.get('fieldValidation');
  if (v === null || v === '') return 'Warn';
  if (v === 'Strict' || v === 'Warn' || v === 'Ignore') return v;
  throw badRequest(`fieldValidation: Unsupported value: "${v}": supported values: "Ignore", "Strict", "Warn"`);
}

function dryRunOf(q: URLSearchParams): boolean {
  const values = q.getAll('dryRun');
  for (const v of values) if (v !== 'All') throw badRequest(`dryRun: Unsupported value: "${v}": supported values: "All"`);
  return values.length > 0;
}

function isTrue(v: string | null): boolean {
  return v === 'true' || v === '1';
}

function optional<T extends object>(o: T): T {
  for (const [k, v] of Object.entries(o)) if (v === undefined || v === null) delete (o as Record<string, unknown>)[k];
  return o;
}

async function loadDocuments(source: string | JsonObject): Promise<JsonObject[]> {
  if (typeof source !== 'string') return [source];
  const text = await readFile(source, 'utf8');
  return parseAllDocuments(text)
    .map((d) => d.toJS() as unknown)
    .filter(isObject);
}

/** startApiServer starts an in-process Kubernetes API server on 127.0.0.1 and resolves once it listens. */
export async function startApiServer(options: ApiServerOptions = {}): Promise<ApiServer> {
  const registry = new ResourceRegistry();
  if (options.builtins !== false) for (const t of builtinResourceTypes()) registry.add(t);
  else for (const t of builtinResourceTypes().filter((b) => b.plural === 'namespaces')) registry.add(t);
  registry.add(crdResourceType());
  const store = new ObjectStore({ historySize: options.historySize ?? 1000, initialResourceVersion: 100 });
  const api = new ResourceApi(registry, store, { bookmarkIntervalMs: options.bookmarkIntervalMs ?? 60_000 });
  const token = options.token === false ? undefined : (options.token ?? randomBytes(18).toString('base64url'));
  const watchTimeoutSeconds = options.watchTimeoutSeconds ?? 1800;
  const sockets = new Set<Socket>();
  const openWatches = new Set<{ res: ServerResponse; end: (abrupt: boolean) => void }>();
  /** Tests waiting for the next change (of an object or of the open watches). */
  const changeWaiters: (() => void)[] = [];
  const notifyChange = (): void => {
    for (const resolve of changeWaiters.splice(0)) resolve();
  };
  store.onAnyChange(notifyChange);

  const faults = new Faults({
    dropWatches: (abrupt) => {
      const all = [...openWatches];
      for (const w of all) w.end(abrupt);
      return all.length;
    },
    compact: () => store.compact(),
  });

  const nsType = registry.find('', 'v1', 'namespaces');
  const writeOpts: WriteOptions = { dryRun: false, fieldValidation: 'Strict' };
  if (nsType !== undefined) {
    for (const ns of ['default', 'kube-system', 'kube-public', 'kube-node-lease', ...(options.namespaces ?? [])]) {
      api.create(nsType, undefined, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } }, writeOpts);
    }
  }
  const crdType = registry.find('apiextensions.k8s.io', 'v1', 'customresourcedefinitions');
  for (const source of options.crds ?? []) {
    for (const doc of await loadDocuments(source)) if (crdType !== undefined) api.create(crdType, undefined, doc, writeOpts);
  }

  function typeFor(apiVersion: string, kind: string): ResourceType {
    const rt = registry.findKind(apiVersion, kind);
    if (rt === undefined) throw new ApiError(failure(404, 'NotFound', `no matches for kind "${kind}" in version "${apiVersion}"`, {}));
    return rt;
  }

  function route(path: string): Route | 'discovery' {
    const segs = path
      .split('/')
      .filter((s) => s !== '')
      .map(decodeURIComponent);
    let group: string;
    let version: string;
    let rest: string[];
    if (segs[0] === 'api') {
      if (segs.length <= 2) return 'discovery';
      group = '';
      version = segs[1] ?? '';
      rest = segs.slice(2);
    } else if (segs[0] === 'apis') {
      if (segs.length <= 3) return 'discovery';
      group = segs[1] ?? '';
      version = segs[2] ?? '';
      rest = segs.slice(3);
    } else throw notFoundRoute();
    let legacyWatch = false;
    if (rest[0] === 'watch') {
      legacyWatch = true;
      rest = rest.slice(1);
    }
    if (rest[0] === 'namespaces' && rest.length >= 3) {
      const rt = registry.find(group, version, rest[2] ?? '');
      if (rt !== undefined && rt.namespaced && rt.verbs.length > 0) {
        if (rest.length > 5) throw notFoundRoute();
        return { rt, namespace: rest[1], name: rest[3], subresource: rest[4], legacyWatch };
      }
    }
    const rt = registry.find(group, version, rest[0] ?? '');
    if (rt === undefined || rt.verbs.length === 0 || rest.length > 3) throw notFoundRoute();
    return { rt, namespace: undefined, name: rest[1], subresource: rest[2], legacyWatch };
  }

  function sendJson(res: ServerResponse, code: number, body: unknown, contentType = JSON_TYPE, warnings: string[] = []): void {
    const text = JSON.stringify(body);
    const headers: Record<string, string | string[]> = {
      'Content-Type': contentType,
      'Content-Length': String(Buffer.byteLength(text)),
      'Cache-Control': 'no-cache, private',
    };
    if (warnings.length > 0) headers['Warning'] = warnings.map((w) => `299 - ${JSON.stringify(w)}`);
    res.writeHead(code, headers);
    res.end(text);
  }

  function sendStatus(res: ServerResponse, err: ApiError): void {
    sendJson(res, err.status.code, err.status, JSON_TYPE, err.warnings);
  }

  function render(obj: JsonObject, rt: ResourceType, accept: string, q: URLSearchParams, isList: boolean): JsonObject {
    if (wantsTable(accept)) {
      const items = isList ? (Array.isArray(obj['items']) ? obj['items'].filter(isObject) : []) : [obj];
      const present = isList && rt.crd === undefined ? items.map((i) => ({ apiVersion: obj['apiVersion'], kind: rt.kind, ...i })) : items;
      const includeParam = q.get('includeObject') ?? 'Metadata';
      if (includeParam !== 'None' && includeParam !== 'Metadata' && includeParam !== 'Object') {
        throw badRequest(`includeObject: Unsupported value: "${includeParam}": supported values: "None", "Metadata", "Object"`);
      }
      const include: IncludeObject = includeParam;
      const listMeta: JsonObject = isList ? (getObject(obj, 'metadata') ?? {}) : { resourceVersion: getString(obj, 'metadata', 'resourceVersion') ?? '' };
      const isEvents = rt.plural === 'events';
      return buildTable(present, rt.columns, { includeObject: include, listMeta, now: Date.now(), nameColumn: !isEvents });
    }
    if (wantsPartial(accept)) {
      if (!isList) return partialObjectMetadata(obj);
      const items = Array.isArray(obj['items']) ? obj['items'].filter(isObject) : [];
      return { kind: 'PartialObjectMetadataList', apiVersion: 'meta.k8s.io/v1', metadata: obj['metadata'] ?? {}, items: items.map(partialObjectMetadata) };
    }
    return obj;
  }

  function serveWatch(res: ServerResponse, r: Route, q: URLSearchParams, accept: string): void {
    let started = false;
    let ended = false;
    let handle: WatchHandle | undefined;
    let timer: NodeJS.Timeout | undefined = undefined;
    const table = wantsTable(accept);
    const start = (): void => {
      if (started) return;
      started = true;
      res.writeHead(200, { 'Content-Type': JSON_TYPE, 'Cache-Control': 'no-cache, private', 'Transfer-Encoding': 'chunked' });
      res.flushHeaders();
    };
    const entry = {
      res,
      end: (abrupt: boolean): void => {
        if (ended) return;
        ended = true;
        handle?.stop();
        if (timer !== undefined) clearTimeout(timer);
        openWatches.delete(entry);
        notifyChange();
        if (abrupt) {
          res.socket?.destroy();
          return;
        }
        start();
        res.end();
      },
    };
    const sink = {
      send: (type: string, object: JsonObject): void => {
        if (ended) return;
        start();
        const out = table && (type === 'ADDED' || type === 'MODIFIED' || type === 'DELETED') ? render(object, r.rt, accept, q, false) : object;
        res.write(`${JSON.stringify({ type, object: out })}\n`);
      },
      close: (): void => entry.end(false),
    };
    let fieldSelector = q.get('fieldSelector') ?? undefined;
    if (r.name !== undefined) fieldSelector = [fieldSelector, `metadata.name=${r.name}`].filter((x) => x !== undefined && x !== '').join(',');
    openWatches.add(entry);
    notifyChange();
    try {
      handle = api.watch(
        r.rt,
        r.namespace,
        optional({
          labelSelector: q.get('labelSelector') ?? undefined,
          fieldSelector,
          resourceVersion: q.get('resourceVersion') ?? undefined,
          resourceVersionMatch: q.get('resourceVersionMatch') ?? undefined,
          allowWatchBookmarks: isTrue(q.get('allowWatchBookmarks')),
          sendInitialEvents: q.get('sendInitialEvents') === null ? undefined : isTrue(q.get('sendInitialEvents')),
        }),
        sink,
      );
    } catch (e) {
      openWatches.delete(entry);
      notifyChange();
      ended = true;
      throw e;
    }
    if (ended) {
      handle.stop();
      return;
    }
    start();
    const timeout = q.get('timeoutSeconds');
    const seconds = timeout !== null && /^\d+$/.test(timeout) ? Number(timeout) : watchTimeoutSeconds;
    timer = setTimeout(() => entry.end(false), seconds * 1000);
    res.on('close', () => {
      if (!ended) {
        ended = true;
        handle?.stop();
        if (timer !== undefined) clearTimeout(timer);
        openWatches.delete(entry);
        notifyChange();
      }
    });
  }

  function serveDiscovery(res: ServerResponse, path: string, accept: string, address: string): void {
    const segs = path.split('/').filter((s) => s !== '');
    const aggregated = aggregatedDiscoveryVersion(accept);
    if (segs.length === 1 && aggregated !== undefined) {
      sendJson(res, 200, aggregatedDiscovery(registry, segs[0] === 'api', aggregated), aggregatedContentType(aggregated));
      return;
    }
    if (segs[0] === 'api') {
      if (segs.length === 1) return sendJson(res, 200, apiVersions(address));
      const list = apiResourceList(registry, '', segs[1] ?? '');
      if (list === undefined) throw notFoundRoute();
      return sendJson(res, 200, list);
    }
    if (segs.length === 1) return sendJson(res, 200, apiGroupList(registry));
    if (segs.length === 2) {
      const g = apiGroup(registry, segs[1] ?? '');
      if (g === undefined) throw notFoundRoute();
      return sendJson(res, 200, g);
    }
    const list = apiResourceList(registry, segs[1] ?? '', segs[2] ?? '');
    if (list === undefined) throw notFoundRoute();
    sendJson(res, 200, list);
  }

  /**
   * admitted runs a write through the validating webhooks that match it, as the API server does
   * after its own validation and before it stores: the write is tried as a dry run first (defaults,
   * schema, CEL), the webhooks see the object that would be stored, and only then is it written.
   */
  async function admitted(r: Route, subresource: 'status' | undefined, opts: WriteOptions, write: (o: WriteOptions) => WriteResult): Promise<WriteResult> {
    const webhookType = registry.find('admissionregistration.k8s.io', 'v1', 'validatingwebhookconfigurations');
    const listed = webhookType === undefined || subresource !== undefined ? undefined : api.list(webhookType, undefined, {})['items'];
    const configurations = Array.isArray(listed) ? listed.filter(isObject) : [];
    if (configurations.length === 0) return write(opts);
    const trial = write({ ...opts, dryRun: true });
    const name = getString(trial.object, 'metadata', 'name') ?? '';
    const ns = r.rt.namespaced ? (getString(trial.object, 'metadata', 'namespace') ?? r.namespace) : undefined;
    const oldObject = r.name === undefined ? undefined : api.find(r.rt, ns ?? '', name);
    const namespaceLabels =
      ns === undefined ? undefined : stringMap(getObject(nsType === undefined ? undefined : api.find(nsType, '', ns), 'metadata', 'labels'));
    const attributes: AdmissionAttributes = {
      rt: r.rt,
      operation: oldObject === undefined ? 'CREATE' : 'UPDATE',
      namespace: ns,
      namespaceLabels,
      name,
      object: trial.object,
      oldObject,
      dryRun: opts.dryRun,
    };
    const hooks = matchingWebhooks(configurations, attributes);
    if (hooks.length === 0) return opts.dryRun ? trial : write(opts);
    const warnings = await callWebhooks(hooks, attributes, options.resolveService);
    const result = opts.dryRun ? trial : write(opts);
    return { ...result, warnings: [...result.warnings, ...warnings] };
  }

  async function handle(req: IncomingMessage, res: ServerResponse, record: RecordedRequest, raw: Buffer): Promise<void> {
    const body = raw.toString('utf8');
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = url.pathname.replace(/\/+$/, '') || '/';
    const q = url.searchParams;
    const method = (req.method ?? 'GET').toUpperCase();
    const accept = req.headers.accept ?? '';
    if (token !== undefined) {
      const auth = req.headers.authorization ?? '';
      if (auth !== `Bearer ${token}`) throw unauthorized();
    }
    const delayMs = faults.takeDelay(method, path, record.watch);
    if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
    await faults.takeHold(method, path, record.watch);
    const failRule = faults.takeFailure(method, path, record.watch);
    if (failRule !== undefined) {
      const reason = failRule.reason ?? (failRule.status >= 500 ? 'InternalError' : 'BadRequest');
      throw new ApiError(failure(failRule.status, reason, failRule.message ?? `injected failure (${failRule.status})`, {}));
    }
    if (method === 'POST' && path === '/apis/authentication.k8s.io/v1/tokenreviews') {
      const review = JSON.parse(body) as { spec?: { token?: string } };
      const presented = review.spec?.token ?? '';
      const user = presented === token ? { username: 'admin', groups: ['system:masters'] } : options.users?.[presented];
      const status =
        user === undefined
          ? { authenticated: false, error: 'invalid bearer token' }
          : { authenticated: true, user: { username: user.username, uid: `uid-${user.username}`, groups: [...(user.groups ?? []), 'system:authenticated'] } };
      return sendJson(res, 201, { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: review.spec ?? {}, status });
    }
    if (method === 'POST' && path === '/apis/authorization.k8s.io/v1/subjectaccessreviews') {
      const review = JSON.parse(body) as { spec?: { user?: string; groups?: string[]; nonResourceAttributes?: { path?: string; verb?: string } } };
      const spec = review.spec ?? {};
      const subject = { username: spec.user ?? '', groups: spec.groups ?? [] };
      const attrs = spec.nonResourceAttributes;
      const decide = options.authorizeNonResource ?? ((u: { groups: string[] }) => u.groups.includes('system:masters'));
      const allowed = attrs !== undefined && decide(subject, attrs.path ?? '', attrs.verb ?? '');
      return sendJson(res, 201, {
        apiVersion: 'authorization.k8s.io/v1',
        kind: 'SubjectAccessReview',
        spec,
        status: { allowed, ...(allowed ? {} : { reason: 'no rule allows it' }) },
      });
    }
    if (path === '/version' || path === '/version/') {
      return sendJson(res, 200, {
        major: '1',
        minor: '32',
        gitVersion: 'v1.32.0',
        gitCommit: 'smsauth-fake-apiserver',
        gitTreeState: 'clean',
        buildDate: '2025-01-01T00:00:00Z',
        goVersion: 'go1.23.4',
        compiler: 'gc',
        platform: 'linux/amd64',
      });
    }
    if (path === '/healthz' || path === '/livez' || path === '/readyz') {
      res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end('ok');
      return;
    }
    if (path === '/openapi/v3') return sendJson(res, 200, openApiV3Root(registry));
    if (path.startsWith('/openapi/v3/')) {
      const segs = path.slice('/openapi/v3/'.length).split('/');
      const doc = segs[0] === 'api' ? openApiV3GroupVersion(registry, '', segs[1] ?? '') : openApiV3GroupVersion(registry, segs[1] ?? '', segs[2] ?? '');
      if (doc === undefined) throw notFoundRoute();
      return sendJson(res, 200, doc);
    }
    if (!path.startsWith('/api')) throw notFoundRoute();
    const r = route(path);
    if (r === 'discovery') {
      if (method !== 'GET') throw new ApiError(failure(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource', {}));
      return serveDiscovery(
        res,
        path,
        accept,
        req.socket.localAddress === undefined ? '127.0.0.1' : `${req.socket.localAddress}:${String(req.socket.localPort)}`,
      );
    }
    if (r.subresource !== undefined && (r.subresource !== 'status' || !r.rt.statusSubresource)) throw notFoundRoute();
    if (!acceptsJson(accept) && !wantsTable(accept) && !wantsPartial(accept)) {
      throw new ApiError(failure(406, 'NotAcceptable', `only the following media types are accepted: application/json, application/yaml`, {}));
    }
    if (r.rt.namespaced && r.namespace === undefined && (method === 'POST' || r.name !== undefined)) throw notFoundRoute();
    const subresource = r.subresource === 'status' ? 'status' : undefined;
    const opts = (): WriteOptions => ({ dryRun: dryRunOf(q), fieldValidation: fieldValidationOf(q) });
    const listOpts = {
      labelSelector: q.get('labelSelector') ?? undefined,
      fieldSelector: q.get('fieldSelector') ?? undefined,
      resourceVersion: q.get('resourceVersion') ?? undefined,
      resourceVersionMatch: q.get('resourceVersionMatch') ?? undefined,
      limit: q.get('limit') === null ? undefined : Number(q.get('limit')),
      continueToken: q.get('continue') ?? undefined,
    };
    switch (method) {
      case 'GET': {
        if (record.watch || r.legacyWatch) return serveWatch(res, r, q, accept);
        if (r.name === undefined) return sendJson(res, 200, render(api.list(r.rt, r.namespace, optional(listOpts)), r.rt, accept, q, true));
        return sendJson(res, 200, render(api.get(r.rt, r.namespace ?? '', r.name), r.rt, accept, q, false));
      }
      case 'POST': {
        if (r.name !== undefined) throw new ApiError(failure(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource', {}));
        const result = await admitted(r, subresource, opts(), (o) =>
          api.create(r.rt, r.namespace, decodeBody(raw, req.headers['content-type'] ?? JSON_TYPE), o),
        );
        return sendJson(res, result.code, result.object, JSON_TYPE, result.warnings);
      }
      case 'PUT': {
        if (r.name === undefined) throw new ApiError(failure(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource', {}));
        const name = r.name;
        const result = await admitted(r, subresource, opts(), (o) =>
          api.update(r.rt, r.namespace, name, decodeBody(raw, req.headers['content-type'] ?? JSON_TYPE), o, subresource),
        );
        return sendJson(res, result.code, result.object, JSON_TYPE, result.warnings);
      }
      case 'PATCH': {
        if (r.name === undefined) throw new ApiError(failure(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource', {}));
        const ct = mediaType(req.headers['content-type']);
        const patchType = PATCH_CONTENT_TYPES[ct];
        if (patchType === undefined) {
          throw unsupportedMediaType(
            ct,
            r.rt.patchMeta === undefined
              ? ['application/json-patch+json', 'application/merge-patch+json', 'application/apply-patch+yaml']
              : Object.keys(PATCH_CONTENT_TYPES),
          );
        }
        const name = r.name;
        const result = await admitted(r, subresource, opts(), (o) => api.patch(r.rt, r.namespace, name, patchType, body, o, subresource));
        return sendJson(res, result.code, result.object, JSON_TYPE, result.warnings);
      }
      case 'DELETE': {
        const options = body.trim() === '' ? {} : decodeBody(raw, req.headers['content-type'] ?? JSON_TYPE);
        const delOpts: DeleteOptions = { dryRun: dryRunOf(q) || (isObject(options) && Array.isArray(options['dryRun']) && options['dryRun'].includes('All')) };
        const pre = isObject(options) ? getObject(options, 'preconditions') : undefined;
        const policy = q.get('propagationPolicy') ?? (isObject(options) ? getString(options, 'propagationPolicy') : undefined);
        if (policy === 'Orphan' || policy === 'Background' || policy === 'Foreground') delOpts.propagationPolicy = policy;
        else if (policy !== undefined && policy !== null && policy !== '')
          throw badRequest(`propagationPolicy: Unsupported value: "${policy}": supported values: "Foreground", "Background", "Orphan"`);
        if (isObject(options) && options['orphanDependents'] === true) delOpts.propagationPolicy = 'Orphan';
        if (pre !== undefined) delOpts.preconditions = optional({ uid: getString(pre, 'uid'), resourceVersion: getString(pre, 'resourceVersion') });
        if (r.name === undefined) return sendJson(res, 200, api.deleteCollection(r.rt, r.namespace, optional(listOpts), delOpts));
        if (subresource !== undefined)
          throw new ApiError(failure(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource', {}));
        const result = api.delete(r.rt, r.namespace, r.name, delOpts);
        return sendJson(res, result.code, result.object);
      }
      default:
        throw new ApiError(failure(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource', {}));
    }
  }

  const credentials = options.tls === false ? undefined : selfSignedCertificate();
  const listener = (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const q: Record<string, string> = {};
    for (const [k, v] of url.searchParams) q[k] = v;
    const record: RecordedRequest = {
      method: (req.method ?? 'GET').toUpperCase(),
      path: url.pathname,
      query: q,
      contentType: req.headers['content-type'],
      accept: req.headers.accept,
      userAgent: req.headers['user-agent'],
      status: 0,
      watch: isTrue(url.searchParams.get('watch')) || /^\/apis?\/(?:[^/]+\/)?[^/]+\/watch\//.test(url.pathname),
      body: '',
      at: Date.now(),
      bytes: 0,
    };
    faults.requests.push(record);
    const size = (chunk: unknown): number => (typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk instanceof Uint8Array ? chunk.byteLength : 0);
    const origWrite = res.write.bind(res) as (...args: unknown[]) => boolean;
    res.write = ((...args: unknown[]): boolean => {
      record.bytes += size(args[0]);
      return origWrite(...args);
    }) as typeof res.write;
    const origEnd = res.end.bind(res) as (...args: unknown[]) => ServerResponse;
    res.end = ((...args: unknown[]): ServerResponse => {
      if (typeof args[0] !== 'function') record.bytes += size(args[0]);
      return origEnd(...args);
    }) as typeof res.end;
    notifyChange();
    const origWriteHead = res.writeHead.bind(res) as (...args: unknown[]) => ServerResponse;
    res.writeHead = (...args: unknown[]): ServerResponse => {
      record.status = typeof args[0] === 'number' ? args[0] : res.statusCode;
      return origWriteHead(...args);
    };
    readBody(req)
      .then(async (raw) => {
        record.body = mediaType(req.headers['content-type']) === 'application/vnd.kubernetes.protobuf' ? raw.toString('base64') : raw.toString('utf8');
        await handle(req, res, record, raw);
      })
      .catch((e: unknown) => {
        if (res.headersSent) {
          res.end();
          return;
        }
        if (e instanceof ApiError) sendStatus(res, e);
        else
          sendStatus(
            res,
            new ApiError(failure(500, 'InternalError', `Internal error occurred: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`, {})),
          );
      });
  };
  const server = credentials === undefined ? createServer(listener) : createHttpsServer({ key: credentials.keyPem, cert: credentials.certPem }, listener);
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  const url = `${credentials === undefined ? 'http' : 'https'}://127.0.0.1:${port}`;
  const clusterEntry: JsonObject = { server: url };
  if (credentials !== undefined) clusterEntry['certificate-authority-data'] = Buffer.from(credentials.certPem).toString('base64');
  else clusterEntry['insecure-skip-tls-verify'] = true;

  const kubeconfig = (namespace = 'default'): string =>
    stringifyYaml({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'smsauth-fake', cluster: clusterEntry }],
      users: [{ name: 'smsauth-fake', user: token === undefined ? {} : { token } }],
      contexts: [{ name: 'smsauth-fake', context: { cluster: 'smsauth-fake', user: 'smsauth-fake', namespace } }],
      'current-context': 'smsauth-fake',
      preferences: {},
    });

  const direct = { dryRun: false, fieldValidation: 'Warn' as FieldValidation };
  const refType = (ref: ObjectRef): ResourceType => typeFor(ref.apiVersion, ref.kind);
  const objType = (obj: JsonObject): ResourceType => typeFor(text(obj['apiVersion']), text(obj['kind']));
  const nsOf = (rt: ResourceType, obj: JsonObject): string | undefined => (rt.namespaced ? (getString(obj, 'metadata', 'namespace') ?? 'default') : undefined);

  return {
    url,
    port,
    token,
    caPem: credentials?.certPem,
    kubeconfig,
    writeKubeconfig: (file, namespace) => writeFile(file, kubeconfig(namespace), 'utf8'),
    faults,
    requests: faults.requests,
    close: async () => {
      for (const w of [...openWatches]) w.end(false);
      api.closeAllWatches();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        for (const s of sockets) s.destroy();
      });
    },
    get: (ref) => {
      const rt = refType(ref);
      return api.find(rt, ref.namespace ?? 'default', ref.name);
    },
    list: (apiVersion, kind, namespace) => {
      const rt = typeFor(apiVersion, kind);
      const list = api.list(rt, namespace, {});
      const items = Array.isArray(list['items']) ? list['items'].filter(isObject) : [];
      return items.map((i) => ({ apiVersion: apiVersionOf(rt.group, rt.version), kind: rt.kind, ...i }));
    },
    create: (obj) => {
      const rt = objType(obj);
      return api.create(rt, nsOf(rt, obj), obj, direct).object;
    },
    apply: (obj) => {
      const rt = objType(obj);
      const ns = nsOf(rt, obj);
      const name = getString(obj, 'metadata', 'name') ?? '';
      const existing = api.find(rt, ns ?? '', name);
      let out: JsonObject;
      if (existing === undefined) out = api.create(rt, ns, obj, direct).object;
      else {
        const meta = { ...(getObject(obj, 'metadata') ?? {}), namespace: ns, resourceVersion: getString(existing, 'metadata', 'resourceVersion') };
        out = api.update(rt, ns, name, optional({ ...obj, metadata: optional(meta) }), direct, undefined).object;
      }
      if (rt.statusSubresource && obj['status'] !== undefined) {
        out = api.update(rt, ns, name, { ...out, status: obj['status'] }, direct, 'status').object;
      }
      return out;
    },
    updateStatus: (obj) => {
      const rt = objType(obj);
      const ns = nsOf(rt, obj);
      const name = getString(obj, 'metadata', 'name') ?? '';
      const existing = api.get(rt, ns ?? '', name);
      const meta = {
        ...(getObject(existing, 'metadata') ?? {}),
        resourceVersion: getString(obj, 'metadata', 'resourceVersion') ?? getString(existing, 'metadata', 'resourceVersion'),
      };
      return api.update(rt, ns, name, { ...existing, metadata: meta, status: obj['status'] }, direct, rt.statusSubresource ? 'status' : undefined).object;
    },
    delete: (ref) => api.delete(refType(ref), ref.namespace ?? 'default', ref.name, { dryRun: false }).object,
    resourceVersion: () => String(store.currentResourceVersion()),
    openWatches: () => openWatches.size,
    changed: () => new Promise<void>((resolve) => changeWaiters.push(resolve)),
  };
}
