import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { systemClock, type Clock } from '../core/clock.ts';
import { errorFields } from '../core/error-fields.ts';
import type { Cluster, KubeObject, WatchedKind } from '../adapters/kubernetes.ts';
import { canonicalJson, contentHash, toGatewayBundle } from '../core/bundle.ts';
import type { IdentityStore } from '../generated/kinds.ts';
import { findCondition } from '../core/conditions.ts';
import { eventTypeOf } from '../core/kstatus.ts';
import { KINDS, kindInfo, type KindInfo } from '../core/kinds.ts';
import { objectKey } from '../core/object-key.ts';
import { Reconciler, type AnyStatus, type Change, type DesiredState, type DirectoryCheck, type ReconcileState } from '../core/reconciler.ts';
import { parseDuration } from '../core/duration.ts';
import { heldVersion, isSuspended, servingVersion, versionRecord } from '../core/suspend.ts';
import type { GatewayPool } from '../runtime/gateway-pool.ts';
import { checkCredentials, isNewVerdict } from '../runtime/credential-check.ts';
import { DIRECTORY_CHECK_INTERVAL_MS, type DirectoryPool } from '../runtime/directory-pool.ts';
import type { SecretValues } from '../runtime/credentials.ts';
import { freshCodeKeys } from '../runtime/code-keys.ts';
import type { SchemaValidator } from '../validate/schema-validator.ts';
import {
  BUNDLE_SECRET,
  CODE_KEYS_SECRET,
  CREDENTIALS_SELECTOR,
  MANAGED_LABELS,
  MANAGED_SELECTOR,
  bundleFileName,
  bundleSecretData,
  parseBundleFile,
} from '../runtime/bundle-secret.ts';
import { EventRecorder } from './event-recorder.ts';
import { registerControllerMetrics, type ControllerMetrics } from './controller-metrics.ts';
import { mergePatchFrom } from './merge-patch.ts';
import { changeOf, type ClusterObject } from './object-change.ts';
import { registerWorkQueueMetrics } from './prometheus-metrics.ts';
import { TerminalError, WorkQueue } from './work-queue.ts';
import { formatWorkKey, parseWorkKey } from './work-key.ts';

/** FINALIZER holds a gateway account that a store links: its deletion waits until no store links it. */
export const FINALIZER = 'smsauth.io/in-use';
/** RECONCILE_ANNOTATION asks for a reconcile; its value is echoed in status.lastHandledReconcileAt. */
export const RECONCILE_ANNOTATION = 'smsauth.io/reconcile-requested-at';
const CONTROLLER = 'smsauth';

/** ControllerOptions configure the controller. */
export interface ControllerOptions {
  /** Watch one namespace; all when undefined. */
  namespace?: string;
  workers?: number;
  /** Period of the re-sync of every object (with jitter). */
  resyncMs?: number;
  /** This replica's name, for Events. */
  identity: string;
  log: Logger;
  registry: Registry;
  validator: SchemaValidator;
  /** Builds the stores' directories, to check them (DirectoryConnected); without it they stay unchecked. */
  directories?: DirectoryPool;
  /** Builds the accounts' gateways, to check the credentials of those with spec.credentialCheck; without it they stay unchecked. */
  gateways?: GatewayPool;
  /** Time for the work queue (delays, requeues, the unfinished-work gauges), Events and statuses; default the system clock. */
  clock?: Clock;
}

/**
 * SmsauthController runs the reconcile core against a cluster: informers feed a work queue keyed by
 * Kind/namespace/name; each key is reconciled from the current cache (never from the event); the
 * results are written only where they differ from the cluster: status through the /status
 * subresource (merge patch), the in-use finalizer on linked gateway accounts, Events on Ready
 * transitions (rate-limited), and per namespace the smsauth-bundle Secret (only when its content
 * hash changes) and the smsauth-code-keys Secret when absent.
 */
export class SmsauthController {
  private readonly reconciler = new Reconciler({}, { secretLabel: CREDENTIALS_SELECTOR });
  private readonly caches = new Map<string, WatchedKind>();
  /** The credential Secrets (labelled smsauth.io/credentials=true): never the rest of the cluster's. */
  private credentials: WatchedKind | undefined;
  /** The Secrets this controller writes: the bundles and code keys. */
  private managed: WatchedKind | undefined;
  private readonly queue: WorkQueue;
  private readonly now: () => number;
  private readonly recorder: EventRecorder;
  /** The generation of each account whose checks are scheduled: a new generation is checked at once. */
  private readonly checkedGeneration = new Map<string, number>();
  private readonly metrics: ControllerMetrics;
  private started = false;

  private readonly cluster: Cluster;
  private readonly options: ControllerOptions;

  constructor(cluster: Cluster, options: ControllerOptions) {
    this.cluster = cluster;
    this.options = options;
    const clock = options.clock ?? systemClock;
    this.now = () => clock.now();
    const reporter = { controller: `${CONTROLLER}.io/controller`, instance: options.identity };
    this.recorder = new EventRecorder(
      {
        create: (ref, type, reason, note) => cluster.emitEvent(ref, type, reason, note, reporter),
        updateSeries: (ns, name, count, last) => cluster.updateEventSeries(ns, name, count, last),
      },
      () => this.now(),
      options.log,
    );
    this.queue = new WorkQueue({
      name: CONTROLLER,
      clock,
      metrics: registerWorkQueueMetrics(options.registry)(CONTROLLER),
      onOutcome: (o) => {
        this.metrics.outcome(o);
        if (o.result === 'error') options.log.warn({ key: o.key, err: errorFields(o.error) }, 'reconcile failed; retrying with backoff');
      },
      onError: (err) => options.log.error({ err: errorFields(err) }, 'work queue hook failed'),
    });
    this.metrics = registerControllerMetrics(options.registry, CONTROLLER, () => this.queue.unfinished());
  }

  /** watch starts the informers; synced resolves once every cache has its first list. */
  watch(): Promise<void> {
    const ns = this.options.namespace;
    for (const info of KINDS) {
      this.caches.set(
        info.kind,
        this.cluster.watch(info, ns, {
          onChange: (verb, obj, old) => {
            if (!this.started) return;
            if (verb === 'update' && old !== undefined && onlyStatusChanged(old, obj)) return; // our own status writes
            this.queue.add(objectKey(info.kind, obj.metadata?.namespace ?? 'default', obj.metadata?.name ?? ''));
          },
          onError: (err) => this.options.log.warn({ kind: info.kind, err: errorFields(err) }, 'watch failed; restarting it'),
        }),
      );
    }
    const log = (err: unknown): void => this.options.log.warn({ kind: 'Secret', err: errorFields(err) }, 'watch failed; restarting it');
    this.credentials = this.cluster.watch(
      'Secret',
      ns,
      {
        onChange: (_verb, obj) => {
          if (!this.started) return;
          this.queue.add(formatWorkKey({ type: 'secret', namespace: obj.metadata?.namespace ?? 'default', name: obj.metadata?.name ?? '' }));
        },
        onError: log,
      },
      { labelSelector: CREDENTIALS_SELECTOR },
    );
    this.managed = this.cluster.watch(
      'Secret',
      ns,
      {
        onChange: (verb, obj) => {
          if (!this.started) return;
          const name = obj.metadata?.name ?? '';
          if (verb === 'delete' && (name === BUNDLE_SECRET || name === CODE_KEYS_SECRET))
            this.queue.add(formatWorkKey({ type: 'bundle', namespace: obj.metadata?.namespace ?? 'default' }));
        },
        onError: log,
      },
      { labelSelector: MANAGED_SELECTOR },
    );
    return Promise.all(this.watches().map((c) => c.synced)).then(() => undefined);
  }

  private watches(): WatchedKind[] {
    return [...this.caches.values(), ...(this.credentials !== undefined ? [this.credentials] : []), ...(this.managed !== undefined ? [this.managed] : [])];
  }

  /** isSynced tells whether every cache has had its first list (readiness). */
  isSynced(): boolean {
    return this.managed !== undefined && this.watches().every((c) => c.isSynced());
  }

  /**
   * run reconciles everything once from the caches (seeding pins from the statuses stored in the
   * cluster), then processes keys with the workers until stopped.
   */
  run(): void {
    const { desired, deleting } = this.desiredFromCaches();
    const now = new Date(this.now()).toISOString();
    this.reconciler.replace(desired, now);
    // Objects being deleted while our finalizer holds them were live when it was set: their
    // deletion is applied to that live version, as when it was seen as it happened, so that a
    // store still linking an account keeps it held across a restart of the controller.
    if (deleting.length > 0) this.reconciler.apply(deleting, now);
    this.started = true;
    for (const key of this.allKeys()) this.queue.add(key);
    this.queue.start(this.options.workers ?? 2, async (key) => {
      const done = this.metrics.working(key);
      try {
        return await this.handle(key);
      } finally {
        done();
      }
    });
    this.queue.resync(() => this.allKeys(), this.options.resyncMs ?? 10 * 60_000, 0.1);
  }

  /**
   * idle resolves once the controller has caught up: every key it was given processed (statuses
   * written, bundles published), nothing queued or in flight. After run, the first idle is the
   * end of the first full reconcile.
   */
  idle(): Promise<void> {
    return this.queue.quiet();
  }

  /** stop finishes the keys in flight (within timeoutMs), stops the informers and closes the directories. */
  async stop(timeoutMs = 20_000): Promise<void> {
    await this.queue.shutdown(true, timeoutMs);
    await this.options.directories?.close();
    await Promise.all(this.watches().map((c) => c.stop()));
  }

  /** state is the reconciler's current output, for tests and diagnostics. */
  state(): ReconcileState {
    return this.reconciler.state();
  }

  private allKeys(): string[] {
    const keys: string[] = [];
    const namespaces = new Set<string>();
    for (const [kind, cache] of this.caches) {
      for (const o of cache.list()) {
        const ns = o.metadata?.namespace ?? 'default';
        keys.push(objectKey(kind, ns, o.metadata?.name ?? ''));
        namespaces.add(ns);
      }
    }
    for (const ns of namespaces) keys.push(formatWorkKey({ type: 'bundle', namespace: ns }));
    for (const o of this.caches.get('IdentityStore')?.list() ?? [])
      keys.push(formatWorkKey({ type: 'directory', namespace: o.metadata?.namespace ?? 'default', store: o.metadata?.name ?? '' }));
    return keys;
  }

  private desiredFromCaches(): { desired: DesiredState; deleting: Change[] } {
    const objects: DesiredState['objects'][number][] = [];
    const invalid: DesiredState['invalid'][number][] = [];
    const deleting: Change[] = [];
    for (const [kind, cache] of this.caches) {
      for (const o of cache.list()) {
        const ns = o.metadata?.namespace ?? 'default';
        const name = o.metadata?.name ?? '';
        if (o.status !== undefined) this.reconciler.seedStatus({ ref: { kind: kind as KindInfo['kind'], namespace: ns, name }, status: o.status as AnyStatus });
        // A suspended object is served as it was last applied (its status.suspended), or not at all.
        const version = isSuspended(o) ? heldVersion(o) : o;
        let change = changeOf(kind, ns, name, version as ClusterObject | undefined, this.options.validator);
        if (change.type === 'delete' && version !== undefined && o.metadata?.finalizers?.includes(FINALIZER) === true) {
          deleting.push(change);
          change = changeOf(kind, ns, name, { ...version, metadata: { ...version.metadata, deletionTimestamp: undefined } }, this.options.validator);
        }
        // A store whose newest generation did not serve when the last controller stopped (its
        // status.liveVersion, if the published bundle is still that generation's) is served by the
        // generation that did: held while the newest (or the version held while suspended) is
        // invalid, or names an account or a template that does not exist. A generation between the
        // two (valid, naming what does not exist, then followed by an invalid one) is recorded
        // nowhere: after a restart it is not waiting to serve once its names resolve, as it was.
        const serving =
          kind === 'IdentityStore' && version !== undefined && change.type !== 'delete'
            ? servingVersion(o, version, () => this.generationPublished(ns, name))
            : undefined;
        const earlier = serving === undefined ? undefined : changeOf(kind, ns, name, serving as ClusterObject, this.options.validator);
        if (earlier?.type === 'upsert') {
          if (change.type === 'invalid') objects.push(earlier.object);
          else this.reconciler.seedServed(earlier.object as IdentityStore);
        }
        if (change.type === 'upsert') objects.push(change.object);
        else if (change.type === 'invalid') invalid.push(change.version);
      }
    }
    const secrets = new Map<string, string[]>();
    for (const s of this.credentials?.list() ?? [])
      secrets.set(`${s.metadata?.namespace ?? 'default'}/${s.metadata?.name ?? ''}`, Object.keys(s.data ?? {}).sort());
    return { desired: { objects, invalid, secrets }, deleting };
  }

  /** generationPublished is the generation of a store whose bundle is published in its namespace's bundle Secret. */
  private generationPublished(ns: string, store: string): number | undefined {
    const file = this.managed?.get(ns, BUNDLE_SECRET)?.data?.[bundleFileName(store)];
    return file === undefined ? undefined : publishedSummary(Buffer.from(file, 'base64').toString('utf8')).generation;
  }

  private async handle(key: string): Promise<{ requeueAfterMs?: number }> {
    const work = parseWorkKey(key);
    // Nothing this controller queued: retrying cannot help.
    if (work === undefined) throw new TerminalError(`unknown work key ${key}`);
    if (work.type === 'bundle') {
      await this.publishBundle(work.namespace);
      return {};
    }
    if (work.type === 'directory') return this.checkDirectory(work.namespace, work.store);
    if (work.type === 'credentials') return this.checkCredentials(work.namespace, work.account);
    const now = new Date(this.now()).toISOString();
    const ns = work.namespace;
    let change: Change;
    if (work.type === 'secret') {
      const s = this.credentials?.get(ns, work.name);
      change = { type: 'secret', namespace: ns, name: work.name, keys: s === undefined ? null : Object.keys(s.data ?? {}).sort() };
      this.queue.add(formatWorkKey({ type: 'bundle', namespace: ns })); // a rotated value keeps its keys: the bundle may still change
      // A rotated bind password, CA or provider credential is checked at once, not at the next
      // interval: by the stores and accounts that reference this Secret, not the whole namespace.
      for (const user of this.reconciler.secretUsersOf(ns, work.name)) {
        const o = this.reconciler.liveObject(user);
        if (o?.kind === 'IdentityStore' && this.reconciler.bundleOf(user)?.directory != null)
          this.queue.add(formatWorkKey({ type: 'directory', namespace: ns, store: o.metadata.name }));
        else if (o?.kind === 'SmsGatewayAccount' && o.spec.credentialCheck !== undefined)
          this.queue.add(formatWorkKey({ type: 'credentials', namespace: ns, account: o.metadata.name }));
      }
    } else {
      const obj = this.caches.get(work.kind)?.get(ns, work.name);
      if (obj?.status !== undefined) this.reconciler.seedStatus({ ref: { kind: work.kind, namespace: ns, name: work.name }, status: obj.status as AnyStatus });
      if (isSuspended(obj) && obj?.metadata?.deletionTimestamp == null) {
        // Suspended: nothing is applied but the version last applied, when none is in memory (a
        // restart); status.suspended records the version held.
        const held = this.reconciler.liveObject(key) === undefined ? heldVersion(obj!) : undefined;
        const restored = held === undefined ? undefined : changeOf(work.kind, ns, work.name, held as ClusterObject, this.options.validator);
        if (restored?.type === 'upsert') this.followUp(key, this.reconciler.apply([restored], now));
        await this.writeObject(kindInfo(work.kind)!, ns, work.name);
        return {};
      }
      change = changeOf(work.kind, ns, work.name, obj as ClusterObject | undefined, this.options.validator);
    }
    this.followUp(key, this.reconciler.apply([change], now));
    if (work.type === 'object') {
      // An account with spec.credentialCheck is checked when its spec changes (not at every resync), then every interval.
      const live = this.reconciler.liveObject(key);
      const checked = live?.kind === 'SmsGatewayAccount' && live.spec.credentialCheck !== undefined && this.options.gateways !== undefined;
      const news = checked ? this.checkedGeneration.get(key) !== (live.metadata.generation ?? 1) : this.reconciler.credentialCheckOf(key) !== undefined;
      if (news) this.queue.add(formatWorkKey({ type: 'credentials', namespace: ns, account: work.name }));
      await this.writeObject(kindInfo(work.kind)!, ns, work.name);
    }
    return {};
  }

  /** followUp queues what a change of key touched: others whose status or bundle changed get their own turn (their writes retry on their own). */
  private followUp(key: string, delta: ReturnType<Reconciler['apply']>): void {
    for (const k of [...delta.statuses, ...delta.removedStatuses]) if (k !== key) this.queue.add(k);
    for (const k of [...delta.bundles, ...delta.removedBundles]) {
      const store = parseWorkKey(k);
      if (store?.type !== 'object') continue;
      this.queue.add(formatWorkKey({ type: 'bundle', namespace: store.namespace }));
      // A new or changed directory is checked at once.
      this.queue.add(formatWorkKey({ type: 'directory', namespace: store.namespace, store: store.name }));
    }
  }

  /**
   * checkCredentials asks the provider whether an account's credentials are good (testCredentials),
   * for an account with spec.credentialCheck: a definitive answer that differs from the last one is
   * applied (CredentialsResolved and Ready say so); a transient failure changes nothing and is
   * tried again at the next interval. It comes back every interval while the account asks for it.
   */
  private async checkCredentials(ns: string, account: string): Promise<{ requeueAfterMs?: number }> {
    const key = objectKey('SmsGatewayAccount', ns, account);
    const obj = this.reconciler.liveObject(key);
    const spec = obj?.kind === 'SmsGatewayAccount' ? obj.spec.credentialCheck : undefined;
    if (obj?.kind !== 'SmsGatewayAccount' || spec === undefined || this.options.gateways === undefined) {
      this.checkedGeneration.delete(key);
      this.options.gateways?.forgetAccount(ns, account);
      if (this.reconciler.credentialCheckOf(key) !== undefined) this.applyAndWrite({ type: 'credential-check', namespace: ns, name: account, result: null });
      return {};
    }
    this.checkedGeneration.set(key, obj.metadata.generation ?? 1);
    const interval = parseDuration(spec.interval) ?? 3_600_000;
    const gateway = this.options.gateways.gateway(ns, toGatewayBundle(obj), this.valuesOf(ns));
    if (gateway === undefined) return { requeueAfterMs: interval }; // its credentials do not resolve: the status already says so
    const result = await checkCredentials(gateway, `${ns}/${account}`, this.now(), this.options.log);
    if (result !== undefined && isNewVerdict(this.reconciler.credentialCheckOf(key), result)) {
      this.applyAndWrite({ type: 'credential-check', namespace: ns, name: account, result });
    }
    return { requeueAfterMs: interval };
  }

  /**
   * checkDirectory binds to and searches the base of a store's directory (not a static one) and
   * applies a changed verdict (DirectoryConnected, Ready); it comes back every
   * DIRECTORY_CHECK_INTERVAL_MS while the store has a directory.
   */
  private async checkDirectory(ns: string, store: string): Promise<{ requeueAfterMs?: number }> {
    const key = objectKey('IdentityStore', ns, store);
    const bundle = this.reconciler.bundleOf(key);
    const pool = this.options.directories;
    if (pool === undefined || bundle?.directory == null || bundle.directory.kind === 'static') {
      pool?.forget(ns, store);
      if (this.reconciler.directoryCheckOf(key) !== undefined) this.applyAndWrite({ type: 'directory-check', namespace: ns, name: store, result: null });
      return {};
    }
    const health = await pool.directory(ns, store, bundle.directory, this.valuesOf(ns)).check();
    const at = new Date(this.now()).toISOString();
    const result: DirectoryCheck = health.ok
      ? { ok: true, at, ...(health.server !== undefined ? { server: health.server } : {}) }
      : {
          ok: false,
          problem: health.problem,
          at,
          ...(health.server !== undefined ? { server: health.server } : {}),
          ...(health.code !== undefined ? { code: health.code } : {}),
        };
    if (!health.ok)
      this.options.log.warn({ namespace: ns, store, problem: health.problem, server: health.server, code: health.code }, 'directory check failed');
    const before = this.reconciler.directoryCheckOf(key);
    // Only a change of verdict is news: the time of an unchanged one is not worth a status write.
    if (before?.ok !== result.ok || before.problem !== result.problem || before.code !== result.code || before.server !== result.server) {
      this.applyAndWrite({ type: 'directory-check', namespace: ns, name: store, result });
    }
    return { requeueAfterMs: DIRECTORY_CHECK_INTERVAL_MS };
  }

  private applyAndWrite(change: Change): void {
    const delta = this.reconciler.apply([change], new Date(this.now()).toISOString());
    for (const k of [...delta.statuses, ...delta.removedStatuses]) this.queue.add(k);
  }

  /** valuesOf reads a namespace's Secrets from the cache, decoded. */
  private valuesOf(ns: string): SecretValues {
    return new Map(
      (this.credentials?.list(ns) ?? []).map((s) => [
        `${ns}/${s.metadata?.name ?? ''}`,
        new Map(Object.entries(s.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')])),
      ]),
    );
  }

  /** writeObject makes the cluster object agree with the reconciler: status, finalizer, Event. */
  private async writeObject(info: KindInfo, ns: string, name: string): Promise<void> {
    const obj = this.caches.get(info.kind)?.get(ns, name);
    if (obj === undefined) {
      this.metrics.ready(info.kind, ns, name, undefined);
      return;
    }
    const key = objectKey(info.kind, ns, name);
    const r = this.reconciler;
    // The finalizer first: it is conditioned on the resourceVersion read, which our status write would change.
    if (info.kind === 'SmsGatewayAccount') {
      const finalizers = obj.metadata?.finalizers ?? [];
      const has = finalizers.includes(FINALIZER);
      const inUse = r.liveObject(key) !== undefined && findCondition(r.statusEntry(key)?.status.conditions, 'InUse')?.status === 'True';
      // An account with no valid version in memory that is not being deleted (invalid since a
      // restart) is not known to be unused: its finalizer stays until it is valid again.
      const unknown = r.liveObject(key) === undefined && obj.metadata?.deletionTimestamp == null;
      if (has !== inUse && !(has && unknown)) {
        await this.cluster.setFinalizers(
          info,
          ns,
          name,
          inUse ? [...finalizers, FINALIZER] : finalizers.filter((f) => f !== FINALIZER),
          obj.metadata?.resourceVersion ?? '',
        );
      }
    }
    const entry = r.statusEntry(key);
    this.metrics.ready(info.kind, ns, name, entry === undefined ? undefined : findCondition(entry.status.conditions, 'Ready')?.status === 'True');
    if (isSuspended(obj) && obj.metadata?.deletionTimestamp == null) {
      // Its status is left alone but for the version held (none when it was never applied).
      const held = versionRecord(r.liveObject(key));
      const patch = mergePatchFrom((obj.status as AnyStatus | undefined)?.suspended, held);
      if (patch !== undefined) await this.cluster.patchStatus(info, ns, name, { suspended: patch });
      return;
    }
    if (entry !== undefined) {
      const requested = obj.metadata?.annotations?.[RECONCILE_ANNOTATION];
      const desired = { ...entry.status, ...(requested !== undefined ? { lastHandledReconcileAt: requested } : {}) };
      const patch = mergePatchFrom(obj.status, desired);
      if (patch !== undefined) {
        await this.cluster.patchStatus(info, ns, name, patch);
        this.emitTransition(info, obj, (obj.status as AnyStatus | undefined)?.conditions, desired.conditions);
      }
    }
  }

  /**
   * emitTransition records an Event for each condition that changed: Normal when Ready turns True,
   * Warning for every reason that is not healthy (one per reason: Ready and the condition it
   * summarises often share it). Repeats within minutes count in the first Event's series.
   */
  private emitTransition(info: KindInfo, obj: KubeObject, before: AnyStatus['conditions'], after: AnyStatus['conditions']): void {
    const ref = {
      kind: info.kind,
      namespace: obj.metadata?.namespace ?? 'default',
      name: obj.metadata?.name ?? '',
      ...(obj.metadata?.uid !== undefined ? { uid: obj.metadata.uid } : {}),
    };
    const told = new Set<string>();
    for (const c of after ?? []) {
      const was = before?.find((b) => b.type === c.type);
      if (was !== undefined && was.status === c.status && was.reason === c.reason) continue;
      const type = eventTypeOf(c);
      if (type === undefined || told.has(c.reason)) continue;
      told.add(c.reason);
      this.recorder.record(ref, type, c.reason, c.message);
    }
  }

  /** publishBundle writes a namespace's smsauth-bundle Secret when its content changed, and creates its code keys when absent. */
  private async publishBundle(ns: string): Promise<void> {
    const r = this.reconciler;
    const bundles = r.bundlesIn(ns);
    const storesHere = this.caches.get('IdentityStore')?.list(ns) ?? [];
    const current = this.managed?.get(ns, BUNDLE_SECRET);
    // Nothing to publish and nothing published. When the last store of a namespace goes, its
    // published bundle is emptied: sidecars stop serving it (and its credentials leave the Secret).
    if (storesHere.length === 0 && bundles.length === 0 && current === undefined) return;
    const values = this.valuesOf(ns);
    const { data } = bundleSecretData(bundles, values);
    // A store that exists but has no valid version in this controller's memory (invalid since a
    // restart) keeps the bundle already published: sidecars keep serving its last good bundle.
    // Likewise, while a template, account or role of the namespace is invalid since a restart, a
    // store that lost SMS although its own spec did not change (the generation published is still
    // its generation) keeps its published bundle: its last good dependencies are not in memory.
    // And a store whose newest generation names an account or a template that does not exist keeps
    // its published bundle where the reconciler has no generation of it that served. A restart
    // finds that generation in the store's status.liveVersion (desiredFromCaches), and serves it,
    // with its status and the finalizer on its account; this covers a status without it (written
    // before it was recorded): the status then describes the newest generation, and the account
    // the kept bundle sends through is not held for this store, until the name is mended.
    // A kept bundle goes out with the Secret values of now, never with the ones it was published
    // with: a rotated or removed credential, signing secret or token does not outlive its Secret.
    const kept = (file: string, before: string): string => {
      const parsed = parseBundleFile(before);
      if (!parsed.ok) {
        // Not a file this controller wrote: sidecars refuse it too; it stays as it is.
        this.options.log.warn({ namespace: ns, file, error: parsed.error }, 'published bundle unreadable; kept as it is');
        return before;
      }
      return bundleSecretData([parsed.value.bundle], values).data[file] ?? before;
    };
    const unknownHere = [...this.caches].some(([kind, cache]) =>
      cache.list(ns).some((o) => o.metadata?.deletionTimestamp == null && r.liveObject(objectKey(kind, ns, o.metadata?.name ?? '')) === undefined),
    );
    for (const s of storesHere) {
      const file = bundleFileName(s.metadata?.name ?? '');
      const published = current?.data?.[file];
      if (published === undefined) continue;
      const before = Buffer.from(published, 'base64').toString('utf8');
      const key = objectKey('IdentityStore', ns, s.metadata?.name ?? '');
      const fresh = data[file];
      if (fresh === undefined) {
        if (r.liveObject(key) === undefined) data[file] = kept(file, before);
        continue;
      }
      // Kept where SMS would stop for a reason this controller cannot know since it started (the
      // published file is read only then).
      const held = r.heldWithoutEarlier(key);
      if (!held && !unknownHere) continue;
      const was = publishedSummary(before);
      if ((held || was.generation === (s.metadata?.generation ?? 1)) && was.offered === true && publishedSummary(fresh).offered === false)
        data[file] = kept(file, before);
    }
    const hash = contentHash(data);
    const outcome = await this.cluster.putSecret(
      ns,
      BUNDLE_SECRET,
      data,
      { labels: { ...MANAGED_LABELS, 'smsauth.io/bundle': 'true' }, annotations: { 'smsauth.io/bundle-hash': hash } },
      current,
    );
    if (outcome !== 'unchanged') this.options.log.info({ namespace: ns, outcome, stores: Object.keys(data).length }, 'bundle published');
    if (storesHere.length > 0 && this.managed?.get(ns, CODE_KEYS_SECRET) === undefined) {
      const created = await this.cluster.createSecretIfAbsent(ns, CODE_KEYS_SECRET, freshCodeKeys(new Date(this.now())), { ...MANAGED_LABELS });
      if (created) this.options.log.info({ namespace: ns }, 'code keys created');
    }
  }
}

/** onlyStatusChanged tells an update that needs no reconcile: the same generation, annotations, deletion and finalizers. */
export function onlyStatusChanged(old: KubeObject, obj: KubeObject): boolean {
  const pick = (o: KubeObject): string =>
    canonicalJson({
      generation: o.metadata?.generation ?? null,
      annotation: o.metadata?.annotations?.[RECONCILE_ANNOTATION] ?? null,
      deletion: o.metadata?.deletionTimestamp ?? null,
      finalizers: o.metadata?.finalizers ?? [],
    });
  return pick(old) === pick(obj);
}

/** publishedSummary reads, of a published bundle file, the store generation it was made from and whether it offers SMS (undefined where it cannot be read). */
function publishedSummary(file: string): { generation?: number; offered?: boolean } {
  try {
    const { bundle } = JSON.parse(file) as { bundle?: { generation?: number; sms?: { offered?: boolean } } };
    return {
      ...(bundle?.generation !== undefined ? { generation: bundle.generation } : {}),
      ...(bundle?.sms?.offered !== undefined ? { offered: bundle.sms.offered } : {}),
    };
  } catch {
    return {};
  }
}
