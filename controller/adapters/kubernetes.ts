import * as k8s from '@kubernetes/client-node';
import { systemClock, type Clock, type TimerHandle } from '../core/clock.ts';
import { GROUP, VERSION, type KindInfo } from '../core/kinds.ts';
import { LeaseConflictError, type LeaseClient, type LeaseRecord } from './lease-client.ts';

/** KubeObject is an object as the API serves it. */
export type KubeObject = k8s.KubernetesObject & { spec?: unknown; status?: unknown; data?: Record<string, string>; type?: string };

/** WatchedKind is a cache of one kind, kept by an informer (list then watch), with its sync state. */
export interface WatchedKind {
  get(namespace: string, name: string): KubeObject | undefined;
  list(namespace?: string): readonly KubeObject[];
  /** synced resolves after the first list. */
  synced: Promise<void>;
  isSynced(): boolean;
  stop(): Promise<void>;
}

/** WatchOptions tune one watch. */
export interface WatchOptions {
  /** A watch silent for this long is restarted with a fresh list (default 5 minutes). */
  watchdogMs?: number;
  /** Only the objects with these labels are listed, watched and cached (the API server filters them). */
  labelSelector?: string;
}

/** WatchEvents receive what changed; the controller enqueues keys, it never acts on the event itself. */
export interface WatchEvents {
  onChange(verb: 'add' | 'update' | 'delete', obj: KubeObject, old?: KubeObject): void;
  onError(err: unknown): void;
}

/** ApiError is a failed API call with its HTTP status (409 conflict, 404 not found, ...). */
export class KubeApiError extends Error {
  override readonly name = 'KubeApiError';
  readonly status: number;

  constructor(status: number, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.status = status;
  }
  get code(): string {
    return `ERR_KUBE_${this.status}`;
  }
}

/** EventRef is the object an Event is about. */
export interface EventRef {
  kind: string;
  namespace: string;
  name: string;
  uid?: string;
}

/**
 * Cluster is what the controller needs of the Kubernetes API: caches of the kinds it watches, and
 * the few writes it makes. It is the only place @kubernetes/client-node is used.
 */
export interface Cluster {
  /** server is the API server's URL, as the kubeconfig names it. */
  readonly server: string;
  /** reachable asks the API server for its version: undefined when it answers, else why not (a code such as ECONNREFUSED, or an HTTP status). */
  reachable(timeoutMs: number): Promise<string | undefined>;
  watch(target: KindInfo | 'Secret', namespace: string | undefined, events: WatchEvents, options?: WatchOptions): WatchedKind;
  /** list reads the objects of a kind in a namespace, straight from the API server (no cache). */
  list(info: KindInfo, namespace: string): Promise<KubeObject[]>;
  /** patchStatus writes the status subresource with a JSON merge patch. */
  patchStatus(info: KindInfo, namespace: string, name: string, status: unknown): Promise<void>;
  /** setFinalizers replaces metadata.finalizers, conditioned on the resourceVersion read (409 when stale). */
  setFinalizers(info: KindInfo, namespace: string, name: string, finalizers: readonly string[], resourceVersion: string): Promise<void>;
  /** emitEvent records an events.k8s.io/v1 Event (eventTime in MicroTime) and gives its name. */
  emitEvent(ref: EventRef, type: 'Normal' | 'Warning', reason: string, note: string, reporter: { controller: string; instance: string }): Promise<string>;
  /** updateEventSeries counts repeats of an Event in its series (count, lastObservedTime), as the Events API aggregates isomorphic events. */
  updateEventSeries(namespace: string, name: string, count: number, lastObservedMs: number): Promise<void>;
  /** putSecret creates or replaces a Secret whose data differs; it tells what it did. */
  putSecret(
    namespace: string,
    name: string,
    data: Readonly<Record<string, string>>,
    meta: { labels: Record<string, string>; annotations: Record<string, string> },
    current: KubeObject | undefined,
  ): Promise<'created' | 'updated' | 'unchanged'>;
  /** createSecretIfAbsent creates a Secret unless it exists (created false then). */
  createSecretIfAbsent(namespace: string, name: string, data: Readonly<Record<string, string>>, labels: Record<string, string>): Promise<boolean>;
  lease(namespace: string, name: string): LeaseClient;
  /**
   * reviewAccess asks the API server who a bearer token is (TokenReview) and whether that user may
   * do verb on a non-resource path (SubjectAccessReview), as controller-runtime's secure metrics
   * serving does. user is undefined when the token does not authenticate.
   */
  readonly reviewAccess: (token: string, path: string, verb: string) => Promise<AccessReview>;
}

/** AccessReview is a TokenReview then a SubjectAccessReview: who a token is (undefined: nobody), and whether they may. */
export interface AccessReview {
  user: string | undefined;
  allowed: boolean;
}

/** loadKubeConfig reads KUBECONFIG (or ~/.kube/config), else the in-cluster service account. */
export function loadKubeConfig(file?: string): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  try {
    if (file !== undefined) kc.loadFromFile(file);
    else kc.loadFromDefault();
  } catch (err) {
    // The YAML parser's message shows the lines around the fault, which hold tokens and keys: only the line number is kept.
    const line = (err as { mark?: { line?: number } }).mark?.line;
    const which = file ?? process.env.KUBECONFIG ?? 'the kubeconfig';
    // eslint-disable-next-line preserve-caught-error -- the cause's message quotes the file: it stays behind
    throw new Error(
      `${which} could not be read${line !== undefined ? `: not valid YAML at line ${line + 1}` : ` (${(err as { code?: string }).code ?? (err as Error).name})`}`,
    );
  }
  return kc;
}

/** ClusterOptions tune the API clients. */
export interface ClusterOptions {
  /** How long one API request (not a watch) may take before it is abandoned and fails; default 30 s. */
  requestTimeoutMs?: number;
  /** The time the watches' backoff and watchdog run on: the real clock, or a test's. */
  clock?: Clock;
}

/**
 * apiClient is kc.makeApiClient with a deadline on every request: client-node sets none, and a
 * request the API server never answers would hold a worker, or the leader's lease renewal, forever.
 */
function apiClient<T>(kc: k8s.KubeConfig, api: new (config: k8s.Configuration) => T, timeoutMs: number): T {
  const cluster = kc.getCurrentCluster();
  if (cluster === null) throw new Error('the kubeconfig has no current cluster');
  return new api(
    k8s.createConfiguration({
      baseServer: new k8s.ServerConfiguration(cluster.server, {}),
      authMethods: { default: kc },
      promiseMiddleware: [
        {
          pre: (request) => {
            request.setSignal(AbortSignal.timeout(timeoutMs));
            return Promise.resolve(request);
          },
          post: (response) => Promise.resolve(response),
        },
      ],
    }),
  );
}

/** Clients are the typed API clients one Cluster uses, each request with a deadline. */
interface Clients {
  kc: k8s.KubeConfig;
  custom: k8s.CustomObjectsApi;
  core: k8s.CoreV1Api;
  events: k8s.EventsV1Api;
  coordination: k8s.CoordinationV1Api;
  authentication: k8s.AuthenticationV1Api;
  authorization: k8s.AuthorizationV1Api;
  clock: Clock;
}

/** connectCluster builds the Cluster on a KubeConfig. */
export function connectCluster(kc: k8s.KubeConfig, options: ClusterOptions = {}): Cluster {
  const timeoutMs = options.requestTimeoutMs ?? 30_000;
  const mergePatch = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);
  const c: Clients = {
    kc,
    custom: apiClient(kc, k8s.CustomObjectsApi, timeoutMs),
    core: apiClient(kc, k8s.CoreV1Api, timeoutMs),
    events: apiClient(kc, k8s.EventsV1Api, timeoutMs),
    coordination: apiClient(kc, k8s.CoordinationV1Api, timeoutMs),
    authentication: apiClient(kc, k8s.AuthenticationV1Api, timeoutMs),
    authorization: apiClient(kc, k8s.AuthorizationV1Api, timeoutMs),
    clock: options.clock ?? systemClock,
  };
  return {
    server: kc.getCurrentCluster()?.server ?? '',
    reachable: (deadlineMs) => reachable(kc, deadlineMs),
    watch: (target, namespace, handlers, watchOptions = {}) => new SupervisedInformer(c, target, namespace, handlers, watchOptions).view(),
    list: async (info, namespace) => (await call(listerOf(c, info, namespace, undefined))).items,
    async reviewAccess(token, path, verb) {
      const review = await call(() =>
        c.authentication.createTokenReview({ body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token } } }),
      );
      const user = review.status?.authenticated === true ? review.status.user : undefined;
      const username = user?.username;
      if (user === undefined || username === undefined) return { user: undefined, allowed: false };
      const access = await call(() =>
        c.authorization.createSubjectAccessReview({
          body: {
            apiVersion: 'authorization.k8s.io/v1',
            kind: 'SubjectAccessReview',
            spec: {
              user: username,
              ...(user.groups !== undefined ? { groups: user.groups } : {}),
              ...(user.uid !== undefined ? { uid: user.uid } : {}),
              ...(user.extra !== undefined ? { extra: user.extra } : {}),
              nonResourceAttributes: { path, verb },
            },
          },
        }),
      );
      return { user: username, allowed: access.status?.allowed === true };
    },
    async patchStatus(info, namespace, name, status) {
      await call(() =>
        c.custom.patchNamespacedCustomObjectStatus({ group: GROUP, version: VERSION, plural: info.plural, namespace, name, body: { status } }, mergePatch),
      );
    },
    async setFinalizers(info, namespace, name, finalizers, resourceVersion) {
      await call(() =>
        c.custom.patchNamespacedCustomObject(
          { group: GROUP, version: VERSION, plural: info.plural, namespace, name, body: { metadata: { finalizers, resourceVersion } } },
          mergePatch,
        ),
      );
    },
    emitEvent: (ref, type, reason, note, reporter) => emitEvent(c.events, ref, type, reason, note, reporter, c.clock.now()),
    async updateEventSeries(namespace, name, count, lastObservedMs) {
      await call(() =>
        c.events.patchNamespacedEvent({ namespace, name, body: { series: { count, lastObservedTime: microTime(lastObservedMs) } } }, mergePatch),
      );
    },
    putSecret: (namespace, name, data, meta, current) => putSecret(c.core, namespace, name, data, meta, current),
    async createSecretIfAbsent(namespace, name, data, labels) {
      try {
        await call(() =>
          c.core.createNamespacedSecret({
            namespace,
            body: { apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace, labels }, type: 'Opaque', data: base64Values(data) },
          }),
        );
        return true;
      } catch (err) {
        if (err instanceof KubeApiError && err.status === 409) return false;
        throw err;
      }
    },
    lease: (namespace, name) => leaseClient(c.coordination, namespace, name),
  };
}

/** reachable asks the API server for its version: undefined when it answers, else why not. */
async function reachable(kc: k8s.KubeConfig, deadlineMs: number): Promise<string | undefined> {
  const version = apiClient(kc, k8s.VersionApi, deadlineMs);
  try {
    await version.getCode();
    return undefined;
  } catch (err) {
    // fetch keeps the reason in its cause: a code (ECONNREFUSED, ENOTFOUND, a TLS failure) or a short message.
    const e = err as { code?: unknown; cause?: { code?: unknown; message?: unknown }; name?: string };
    const code = e.code ?? e.cause?.code;
    if (typeof code === 'number') return `HTTP ${code}`;
    if (typeof code === 'string') return code;
    return typeof e.cause?.message === 'string' ? e.cause.message.slice(0, 80) : (e.name ?? 'error');
  }
}

/** pathOf is the collection a watch lists and watches: a kind of ours or Secrets, in one namespace or all. */
function pathOf(target: KindInfo | 'Secret', namespace: string | undefined): string {
  if (target === 'Secret') return namespace === undefined ? '/api/v1/secrets' : `/api/v1/namespaces/${namespace}/secrets`;
  return namespace === undefined ? `/apis/${GROUP}/${VERSION}/${target.plural}` : `/apis/${GROUP}/${VERSION}/namespaces/${namespace}/${target.plural}`;
}

/**
 * SupervisedInformer is a client-node informer kept alive: a failed LIST or a watch error restarts
 * it with a growing backoff (client-node stops an informer on an error, 410 included), and a
 * watchdog restarts a watch quiet for too long (a half-open connection) with a fresh list.
 */
class SupervisedInformer {
  private readonly informer: k8s.Informer<KubeObject> & k8s.ObjectCache<KubeObject>;
  private readonly clock: Clock;
  private readonly handlers: WatchEvents;
  private readonly watchdogMs: number;
  /** Whether the informer's last LIST failed: client-node reports it as an error and still resolves start(), which must then count neither as synced nor as a success for the backoff. */
  private listFailed = false;
  private synced = false;
  private stopped = false;
  private lastActivity: number;
  private backoff = 200;
  /** One restart at a time: the error of a failed LIST and its resolved start() both ask for one. */
  private restartPending = false;
  private restartTimer: TimerHandle | undefined;
  private watchdog: TimerHandle | undefined;
  private resolveSynced: () => void = () => undefined;
  private readonly syncedPromise = new Promise<void>((resolve) => (this.resolveSynced = resolve));

  constructor(c: Clients, target: KindInfo | 'Secret', namespace: string | undefined, handlers: WatchEvents, options: WatchOptions) {
    this.clock = c.clock;
    this.handlers = handlers;
    this.watchdogMs = options.watchdogMs ?? 5 * 60_000;
    this.lastActivity = c.clock.now();
    const rawList = listerOf(c, target, namespace, options.labelSelector);
    const list = (): Promise<k8s.KubernetesListObject<KubeObject>> =>
      rawList().then(
        (r) => {
          this.listFailed = false;
          return r;
        },
        (err: unknown) => {
          this.listFailed = true;
          throw err;
        },
      );
    this.informer = k8s.makeInformer<KubeObject>(c.kc, pathOf(target, namespace), list, options.labelSelector);
    for (const verb of ['add', 'update', 'delete'] as const) {
      this.informer.on(verb, (o) => {
        this.touch();
        handlers.onChange(verb, o);
      });
    }
    this.informer.on('connect', () => this.touch());
    this.informer.on('error', (err) => {
      // An aborted watch is one this adapter stopped itself (the watchdog's restart, stop()):
      // restarting on it would abort the watch just started, and so on without end.
      if ((err as { name?: string }).name === 'AbortError') return;
      handlers.onError(err);
      this.restart();
    });
    this.startInformer();
    this.armWatchdog();
  }

  view(): WatchedKind {
    return {
      get: (ns, name) => this.informer.get(name, ns),
      list: (ns) => this.informer.list(ns),
      synced: this.syncedPromise,
      isSynced: () => this.synced,
      stop: () => this.stop(),
    };
  }

  private touch(): void {
    this.lastActivity = this.clock.now();
  }

  private startInformer(): void {
    this.informer.start().then(
      () => this.started(),
      (err: unknown) => {
        this.handlers.onError(err);
        this.restart();
      },
    );
  }

  private started(): void {
    if (this.listFailed) return this.restart();
    this.backoff = 200;
    this.touch();
    if (!this.synced) {
      this.synced = true;
      this.resolveSynced();
    }
  }

  private restart(): void {
    if (this.stopped || this.restartPending) return;
    this.restartPending = true;
    this.restartTimer = this.clock.setTimeout(() => {
      this.restartPending = false;
      if (this.stopped) return;
      this.informer.start().then(
        () => this.started(),
        () => this.restart(),
      );
    }, this.backoff);
    this.backoff = Math.min(this.backoff * 2, 30_000);
  }

  /** armWatchdog looks every 30 s at most: a synced watch quiet for a whole period is restarted with a fresh list. */
  private armWatchdog(): void {
    this.watchdog = this.clock.setTimeout(
      () => {
        if (this.stopped) return;
        this.armWatchdog();
        if (!this.synced || this.clock.now() - this.lastActivity < this.watchdogMs) return;
        this.touch();
        this.informer.stop().then(
          () => this.startInformer(),
          (err: unknown) => {
            this.handlers.onError(err);
            this.restart();
          },
        );
      },
      Math.min(this.watchdogMs, 30_000),
    );
  }

  private async stop(): Promise<void> {
    this.stopped = true;
    if (this.watchdog !== undefined) this.clock.clearTimeout(this.watchdog);
    if (this.restartTimer !== undefined) this.clock.clearTimeout(this.restartTimer);
    await this.informer.stop();
  }
}

/** listerOf lists a watch's collection (the objects its selector selects), as the informer's (re)lists need. */
function listerOf(
  c: Clients,
  target: KindInfo | 'Secret',
  namespace: string | undefined,
  labelSelector: string | undefined,
): () => Promise<k8s.KubernetesListObject<KubeObject>> {
  const selector = labelSelector !== undefined ? { labelSelector } : {};
  if (target === 'Secret')
    return () => (namespace === undefined ? c.core.listSecretForAllNamespaces(selector) : c.core.listNamespacedSecret({ namespace, ...selector }));
  const params = { group: GROUP, version: VERSION, plural: target.plural, ...selector };
  return () =>
    (namespace === undefined ? c.custom.listClusterCustomObject(params) : c.custom.listNamespacedCustomObject({ ...params, namespace })) as Promise<
      k8s.KubernetesListObject<KubeObject>
    >;
}

/** emitEvent records an events.k8s.io/v1 Event about ref. */
async function emitEvent(
  events: k8s.EventsV1Api,
  ref: EventRef,
  type: 'Normal' | 'Warning',
  reason: string,
  note: string,
  reporter: { controller: string; instance: string },
  atMs: number,
): Promise<string> {
  const created = await call(() =>
    events.createNamespacedEvent({
      namespace: ref.namespace,
      body: {
        metadata: { generateName: `${ref.name}.`, namespace: ref.namespace },
        eventTime: microTime(atMs),
        reportingController: reporter.controller,
        reportingInstance: reporter.instance,
        action: 'Reconcile',
        reason,
        type,
        note: note.slice(0, 1024),
        regarding: {
          apiVersion: `${GROUP}/${VERSION}`,
          kind: ref.kind,
          name: ref.name,
          namespace: ref.namespace,
          ...(ref.uid !== undefined ? { uid: ref.uid } : {}),
        },
      },
    }),
  );
  return created.metadata?.name ?? '';
}

function base64Values(data: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v, 'utf8').toString('base64')]));
}

/** putSecret creates or replaces a Secret whose data (or bundle hash) differs, and tells what it did. */
async function putSecret(
  core: k8s.CoreV1Api,
  namespace: string,
  name: string,
  data: Readonly<Record<string, string>>,
  meta: { labels: Record<string, string>; annotations: Record<string, string> },
  current: KubeObject | undefined,
): Promise<'created' | 'updated' | 'unchanged'> {
  const encoded = base64Values(data);
  const body: k8s.V1Secret = {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace, labels: meta.labels, annotations: meta.annotations },
    type: 'Opaque',
    data: encoded,
  };
  if (current === undefined) {
    try {
      await call(() => core.createNamespacedSecret({ namespace, body }));
      return 'created';
    } catch (err) {
      if (!(err instanceof KubeApiError) || err.status !== 409) throw err;
      current = await call(() => core.readNamespacedSecret({ namespace, name }));
    }
  }
  const same =
    JSON.stringify(sorted(current.data ?? {})) === JSON.stringify(sorted(encoded)) &&
    current.metadata?.annotations?.['smsauth.io/bundle-hash'] === meta.annotations['smsauth.io/bundle-hash'];
  if (same) return 'unchanged';
  const resourceVersion = current.metadata?.resourceVersion;
  await call(() =>
    core.replaceNamespacedSecret({
      namespace,
      name,
      body: { ...body, metadata: { ...body.metadata, ...(resourceVersion !== undefined ? { resourceVersion } : {}) } },
    }),
  );
  return 'updated';
}

/** leaseClient reads and writes one coordination.k8s.io Lease; a stale write is a LeaseConflictError. */
function leaseClient(coordination: k8s.CoordinationV1Api, namespace: string, name: string): LeaseClient {
  const conflict = (err: unknown): never => {
    if (err instanceof KubeApiError && err.status === 409) throw new LeaseConflictError(`lease ${namespace}/${name} changed under us`, { cause: err });
    throw err as Error;
  };
  const body = (r: Omit<LeaseRecord, 'resourceVersion'>, resourceVersion?: string): k8s.V1Lease => ({
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: { name, namespace, ...(resourceVersion !== undefined ? { resourceVersion } : {}) },
    spec: leaseSpec(r),
  });
  return {
    async get() {
      try {
        return leaseRecord(await call(() => coordination.readNamespacedLease({ namespace, name })));
      } catch (err) {
        if (err instanceof KubeApiError && err.status === 404) return undefined;
        throw err;
      }
    },
    create: (r) => call(() => coordination.createNamespacedLease({ namespace, body: body(r) })).then(leaseRecord, conflict),
    update: (r) => call(() => coordination.replaceNamespacedLease({ namespace, name, body: body(r, r.resourceVersion) })).then(leaseRecord, conflict),
  };
}

function leaseRecord(l: k8s.V1Lease): LeaseRecord {
  return {
    holderIdentity: l.spec?.holderIdentity ?? null,
    leaseDurationSeconds: l.spec?.leaseDurationSeconds ?? 15,
    acquireTime: l.spec?.acquireTime !== undefined ? new Date(l.spec.acquireTime).getTime() : null,
    renewTime: l.spec?.renewTime !== undefined ? new Date(l.spec.renewTime).getTime() : null,
    leaseTransitions: l.spec?.leaseTransitions ?? 0,
    resourceVersion: l.metadata?.resourceVersion ?? '',
  };
}

function leaseSpec(r: Omit<LeaseRecord, 'resourceVersion'>): k8s.V1LeaseSpec {
  return {
    ...(r.holderIdentity !== null ? { holderIdentity: r.holderIdentity } : {}),
    leaseDurationSeconds: r.leaseDurationSeconds,
    ...(r.acquireTime !== null ? { acquireTime: microTime(r.acquireTime) } : {}),
    ...(r.renewTime !== null ? { renewTime: microTime(r.renewTime) } : {}),
    leaseTransitions: r.leaseTransitions,
  };
}

/** microTime writes epoch milliseconds as a MicroTime (client-node serialises it with the six fractional digits the API server requires). */
export function microTime(ms: number): k8s.V1MicroTime {
  return new k8s.V1MicroTime(ms);
}

async function call<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    const e = err as { code?: unknown; body?: unknown; message?: string };
    if (typeof e.code === 'number') {
      const body = typeof e.body === 'string' ? e.body : JSON.stringify(e.body ?? '');
      const message = (() => {
        try {
          return (JSON.parse(body) as { message?: string }).message ?? body;
        } catch {
          return body;
        }
      })();
      throw new KubeApiError(e.code, message.slice(0, 500), { cause: err });
    }
    throw err;
  }
}

function sorted(o: Readonly<Record<string, string>>): [string, string][] {
  return Object.entries(o).sort(([a], [b]) => a.localeCompare(b));
}
