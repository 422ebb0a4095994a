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
  watch(target: KindInfo | 'Secret', namespace: string | undefined, events: WatchEvents, options?: { watchdogMs?: number }): WatchedKind;
  /** patchStatus writes the status subresource with a JSON merge patch. */
  patchStatus(info: KindInfo, namespace: string, name: string, status: unknown): Promise<void>;
  /** setFinalizers replaces metadata.finalizers, conditioned on the resourceVersion read (409 when stale). */
  setFinalizers(info: KindInfo, namespace: string, name: string, finalizers: readonly string[], resourceVersion: string): Promise<void>;
  /** emitEvent records an events.k8s.io/v1 Event (eventTime in MicroTime). */
  emitEvent(ref: EventRef, type: 'Normal' | 'Warning', reason: string, note: string, reporter: { controller: string; instance: string }): Promise<void>;
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

/** connectCluster builds the Cluster on a KubeConfig. */
export function connectCluster(kc: k8s.KubeConfig, options: ClusterOptions = {}): Cluster {
  const timeoutMs = options.requestTimeoutMs ?? 30_000;
  const clock = options.clock ?? systemClock;
  const custom = apiClient(kc, k8s.CustomObjectsApi, timeoutMs);
  const core = apiClient(kc, k8s.CoreV1Api, timeoutMs);
  const events = apiClient(kc, k8s.EventsV1Api, timeoutMs);
  const coordination = apiClient(kc, k8s.CoordinationV1Api, timeoutMs);
  const mergePatch = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);

  return {
    server: kc.getCurrentCluster()?.server ?? '',
    async reachable(deadlineMs) {
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
    },
    watch(target, namespace, handlers, options = {}) {
      const path =
        target === 'Secret'
          ? namespace === undefined
            ? '/api/v1/secrets'
            : `/api/v1/namespaces/${namespace}/secrets`
          : namespace === undefined
            ? `/apis/${GROUP}/${VERSION}/${target.plural}`
            : `/apis/${GROUP}/${VERSION}/namespaces/${namespace}/${target.plural}`;
      // Whether the informer's last LIST failed: client-node reports it as an error and still
      // resolves start(), which must then count neither as synced nor as a success for the backoff.
      let listFailed = false;
      const list = (): Promise<k8s.KubernetesListObject<KubeObject>> =>
        rawList().then(
          (r) => {
            listFailed = false;
            return r;
          },
          (err: unknown) => {
            listFailed = true;
            throw err;
          },
        );
      const rawList = (): Promise<k8s.KubernetesListObject<KubeObject>> => {
        if (target === 'Secret') {
          return namespace === undefined ? core.listSecretForAllNamespaces() : core.listNamespacedSecret({ namespace });
        }
        const params = { group: GROUP, version: VERSION, plural: target.plural };
        return (namespace === undefined ? custom.listClusterCustomObject(params) : custom.listNamespacedCustomObject({ ...params, namespace })) as Promise<
          k8s.KubernetesListObject<KubeObject>
        >;
      };
      const informer = k8s.makeInformer<KubeObject>(kc, path, list);
      let synced = false;
      let stopped = false;
      let lastActivity = clock.now();
      let resolveSynced: () => void = () => undefined;
      const syncedPromise = new Promise<void>((resolve) => (resolveSynced = resolve));
      const touch = (): void => {
        lastActivity = clock.now();
      };
      informer.on('add', (o) => {
        touch();
        handlers.onChange('add', o);
      });
      informer.on('update', (o) => {
        touch();
        handlers.onChange('update', o);
      });
      informer.on('delete', (o) => {
        touch();
        handlers.onChange('delete', o);
      });
      informer.on('connect', touch);
      let backoff = 200;
      /** One restart at a time: the error of a failed LIST and its resolved start() both ask for one. */
      let restartPending = false;
      let restartTimer: TimerHandle | undefined;
      const started = (): void => {
        if (listFailed) return restart();
        backoff = 200;
        markSynced();
      };
      const restart = (): void => {
        if (stopped || restartPending) return;
        restartPending = true;
        restartTimer = clock.setTimeout(() => {
          restartPending = false;
          if (stopped) return;
          informer.start().then(started, () => restart());
        }, backoff);
        backoff = Math.min(backoff * 2, 30_000);
      };
      // client-node stops an informer on a watch error (410 included after its own re-list): start it again, with backoff.
      informer.on('error', (err) => {
        // An aborted watch is one this adapter stopped itself (the watchdog's restart, stop()):
        // restarting on it would abort the watch just started, and so on without end.
        if ((err as { name?: string }).name === 'AbortError') return;
        handlers.onError(err);
        restart();
      });
      const markSynced = (): void => {
        touch();
        if (!synced) {
          synced = true;
          resolveSynced();
        }
      };
      informer.start().then(started, (err: unknown) => {
        handlers.onError(err);
        restart();
      });
      // The watchdog: a watch silent for too long (a half-open connection) is restarted with a fresh list.
      const watchdogMs = options.watchdogMs ?? 5 * 60_000;
      let watchdog: TimerHandle | undefined;
      const watch = (): void => {
        watchdog = clock.setTimeout(
          () => {
            if (stopped) return;
            watch();
            if (!synced || clock.now() - lastActivity < watchdogMs) return;
            touch();
            void informer
              .stop()
              .then(() => informer.start())
              .then(started, (err: unknown) => {
                handlers.onError(err);
                restart();
              });
          },
          Math.min(watchdogMs, 30_000),
        );
      };
      watch();
      return {
        get: (ns, name) => informer.get(name, ns),
        list: (ns) => informer.list(ns),
        synced: syncedPromise,
        isSynced: () => synced,
        async stop() {
          stopped = true;
          if (watchdog !== undefined) clock.clearTimeout(watchdog);
          if (restartTimer !== undefined) clock.clearTimeout(restartTimer);
          await informer.stop();
        },
      };
    },

    async patchStatus(info, namespace, name, status) {
      await call(() =>
        custom.patchNamespacedCustomObjectStatus({ group: GROUP, version: VERSION, plural: info.plural, namespace, name, body: { status } }, mergePatch),
      );
    },

    async setFinalizers(info, namespace, name, finalizers, resourceVersion) {
      await call(() =>
        custom.patchNamespacedCustomObject(
          { group: GROUP, version: VERSION, plural: info.plural, namespace, name, body: { metadata: { finalizers, resourceVersion } } },
          mergePatch,
        ),
      );
    },

    async emitEvent(ref, type, reason, note, reporter) {
      await call(() =>
        events.createNamespacedEvent({
          namespace: ref.namespace,
          body: {
            metadata: { generateName: `${ref.name}.`, namespace: ref.namespace },
            eventTime: new k8s.V1MicroTime(),
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
    },

    async putSecret(namespace, name, data, meta, current) {
      const encoded = Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v, 'utf8').toString('base64')]));
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
      await call(() =>
        core.replaceNamespacedSecret({
          namespace,
          name,
          body: {
            ...body,
            metadata: { ...body.metadata, ...(current.metadata?.resourceVersion !== undefined ? { resourceVersion: current.metadata.resourceVersion } : {}) },
          },
        }),
      );
      return 'updated';
    },

    async createSecretIfAbsent(namespace, name, data, labels) {
      const encoded = Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v, 'utf8').toString('base64')]));
      try {
        await call(() =>
          core.createNamespacedSecret({
            namespace,
            body: { apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace, labels }, type: 'Opaque', data: encoded },
          }),
        );
        return true;
      } catch (err) {
        if (err instanceof KubeApiError && err.status === 409) return false;
        throw err;
      }
    },

    lease(namespace, name) {
      const toRecord = (l: k8s.V1Lease): LeaseRecord => ({
        holderIdentity: l.spec?.holderIdentity ?? null,
        leaseDurationSeconds: l.spec?.leaseDurationSeconds ?? 15,
        acquireTime: l.spec?.acquireTime !== undefined ? new Date(l.spec.acquireTime).getTime() : null,
        renewTime: l.spec?.renewTime !== undefined ? new Date(l.spec.renewTime).getTime() : null,
        leaseTransitions: l.spec?.leaseTransitions ?? 0,
        resourceVersion: l.metadata?.resourceVersion ?? '',
      });
      const spec = (r: Omit<LeaseRecord, 'resourceVersion'>): k8s.V1LeaseSpec => ({
        ...(r.holderIdentity !== null ? { holderIdentity: r.holderIdentity } : {}),
        leaseDurationSeconds: r.leaseDurationSeconds,
        ...(r.acquireTime !== null ? { acquireTime: microTime(r.acquireTime) } : {}),
        ...(r.renewTime !== null ? { renewTime: microTime(r.renewTime) } : {}),
        leaseTransitions: r.leaseTransitions,
      });
      const conflict = (err: unknown): never => {
        if (err instanceof KubeApiError && err.status === 409) throw new LeaseConflictError(`lease ${namespace}/${name} changed under us`, { cause: err });
        throw err as Error;
      };
      return {
        async get() {
          try {
            return toRecord(await call(() => coordination.readNamespacedLease({ namespace, name })));
          } catch (err) {
            if (err instanceof KubeApiError && err.status === 404) return undefined;
            throw err;
          }
        },
        async create(r) {
          try {
            return toRecord(
              await call(() =>
                coordination.createNamespacedLease({
                  namespace,
                  body: { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name, namespace }, spec: spec(r) },
                }),
              ),
            );
          } catch (err) {
            return conflict(err);
          }
        },
        async update(r) {
          try {
            return toRecord(
              await call(() =>
                coordination.replaceNamespacedLease({
                  namespace,
                  name,
                  body: {
                    apiVersion: 'coordination.k8s.io/v1',
                    kind: 'Lease',
                    metadata: { name, namespace, resourceVersion: r.resourceVersion },
                    spec: spec(r),
                  },
                }),
              ),
            );
          } catch (err) {
            return conflict(err);
          }
        },
      };
    },
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
