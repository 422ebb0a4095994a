import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { readSchemaSet } from '../controller/adapters/files.ts';
import type { Cluster, KubeObject, WatchedKind, WatchEvents } from '../controller/adapters/kubernetes.ts';
import { canonicalJson } from '../controller/core/bundle.ts';
import type { KindInfo } from '../controller/core/kinds.ts';
import { SmsauthController } from '../controller/kube/controller.ts';
import { MANAGED_SELECTOR } from '../controller/runtime/bundle-secret.ts';
import { createSchemaValidator } from '../controller/validate/schema-validator.ts';
import { medianOf, row, type BenchRow } from './harness.ts';

/** objects are n smsauth objects, about 100 a namespace (so that a namespace's bundle does not grow with n), as the API serves them. */
function objects(n: number): KubeObject[] {
  const out: KubeObject[] = [];
  for (let i = 0; out.length < n; i++) {
    const ns = `team-${Math.floor(i / 25)}`;
    const meta = (name: string): NonNullable<KubeObject['metadata']> => ({ name, namespace: ns, generation: 1, uid: `${ns}-${name}`, resourceVersion: '1' });
    const docs = parseAllDocuments(`apiVersion: smsauth.io/v1alpha1
kind: SmsGatewayAccount
spec: {provider: console}
---
apiVersion: smsauth.io/v1alpha1
kind: SmsTemplate
spec: {text: "[Code] is your verification code."}
---
apiVersion: smsauth.io/v1alpha1
kind: IdentityStore
spec:
  type: ActiveDirectory
  authenticationTypes: [SMS, Email]
  sms: {gatewayAccountRef: {name: gw-${i}}, templateRef: {name: tpl-${i}}}
---
apiVersion: smsauth.io/v1alpha1
kind: SecurityRole
spec:
  identityStoreRef: {name: store-${i}}
  priority: 10
  members: {groups: ["CN=Staff,DC=example,DC=com"]}
  authenticationPolicy: {enforced: [SMS], chosenByEndUser: 1}
`).map((d) => d.toJS() as KubeObject);
    const names = [`gw-${i}`, `tpl-${i}`, `store-${i}`, `role-${i}`];
    docs.forEach((d, k) => out.push({ ...d, metadata: meta(names[k]!) }));
  }
  return out.slice(0, n);
}

/** FakeCluster is the controller's Cluster port in memory: caches that list at once, writes applied to them, no I/O. */
class FakeCluster implements Cluster {
  readonly server = 'memory';
  readonly watches = new Map<string, { objects: Map<string, KubeObject>; events: WatchEvents }>();
  statusWrites = 0;
  private readonly seed: Map<string, KubeObject[]>;

  constructor(seed: Map<string, KubeObject[]>) {
    this.seed = seed;
  }

  reachable(): Promise<string | undefined> {
    return Promise.resolve(undefined);
  }
  watch(target: KindInfo | 'Secret', _ns: string | undefined, events: WatchEvents, options?: { labelSelector?: string }): WatchedKind {
    const kind = target === 'Secret' ? `Secret:${options?.labelSelector ?? ''}` : target.kind;
    const objects = new Map<string, KubeObject>((this.seed.get(kind) ?? []).map((o) => [`${o.metadata?.namespace}/${o.metadata?.name}`, o]));
    this.watches.set(kind, { objects, events });
    return {
      get: (ns, name) => objects.get(`${ns}/${name}`),
      list: (ns) => [...objects.values()].filter((o) => ns === undefined || o.metadata?.namespace === ns),
      synced: Promise.resolve(),
      isSynced: () => true,
      stop: () => Promise.resolve(),
    };
  }
  list(): Promise<KubeObject[]> {
    return Promise.resolve([]); // the webhook's, not the controller's
  }
  patchStatus(info: KindInfo, ns: string, name: string, status: unknown): Promise<void> {
    const o = this.watches.get(info.kind)!.objects.get(`${ns}/${name}`);
    if (o !== undefined) o.status = merge(o.status, status);
    this.statusWrites++;
    return Promise.resolve();
  }
  setFinalizers(info: KindInfo, ns: string, name: string, finalizers: readonly string[]): Promise<void> {
    const o = this.watches.get(info.kind)!.objects.get(`${ns}/${name}`);
    if (o?.metadata !== undefined) o.metadata.finalizers = [...finalizers];
    return Promise.resolve();
  }
  emitEvent(): Promise<string> {
    return Promise.resolve('event');
  }
  updateEventSeries(): Promise<void> {
    return Promise.resolve();
  }
  putSecret(ns: string, name: string, data: Readonly<Record<string, string>>): Promise<'created' | 'updated' | 'unchanged'> {
    const managed = this.watches.get(`Secret:${MANAGED_SELECTOR}`)!.objects;
    const had = managed.has(`${ns}/${name}`);
    managed.set(`${ns}/${name}`, { apiVersion: 'v1', kind: 'Secret', metadata: { namespace: ns, name }, data: { ...data } });
    return Promise.resolve(had ? 'updated' : 'created');
  }
  createSecretIfAbsent(ns: string, name: string): Promise<boolean> {
    const managed = this.watches.get(`Secret:${MANAGED_SELECTOR}`)!.objects;
    if (managed.has(`${ns}/${name}`)) return Promise.resolve(false);
    managed.set(`${ns}/${name}`, { apiVersion: 'v1', kind: 'Secret', metadata: { namespace: ns, name }, data: {} });
    return Promise.resolve(true);
  }
  lease(): never {
    throw new Error('no leases in the benchmark');
  }
  reviewAccess(): never {
    throw new Error('no metrics serving in the benchmark');
  }
}

/** merge applies a JSON merge patch (RFC 7386). */
function merge(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> =
    target !== null && typeof target === 'object' && !Array.isArray(target) ? { ...(target as Record<string, unknown>) } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = merge(out[k], v);
  }
  return out;
}

/**
 * benchController measures the cluster controller's own work on a fake cluster (no I/O): a full
 * resync (every key reconciled, statuses written, bundles published) and one changed object, at
 * 1,000, 10,000 and 20,000 objects. One change must not grow with the number of objects.
 */
export async function benchController(root: string): Promise<BenchRow[]> {
  const validator = createSchemaValidator(await readSchemaSet(join(root, 'schemas')));
  const rows: BenchRow[] = [];
  let firstChange: { n: number; ms: number } | undefined;
  for (const n of [1000, 10_000, 20_000]) {
    const all = objects(n);
    const byKind = new Map<string, KubeObject[]>();
    for (const o of all) {
      const list = byKind.get(o.kind!) ?? [];
      list.push(o);
      byKind.set(o.kind!, list);
    }
    const cluster = new FakeCluster(byKind);
    const controller = new SmsauthController(cluster, { identity: 'bench', log: pino({ level: 'silent' }), registry: new Registry(), validator, workers: 2 });
    await controller.watch();
    const baseline = await medianOf(3, () => all.map((o) => canonicalJson(o)));
    const t0 = process.hrtime.bigint();
    controller.run();
    await controller.idle();
    const full = Number(process.hrtime.bigint() - t0) / 1e6;
    rows.push(
      row(
        `controller: full resync, ${n} objects`,
        full,
        'ms',
        { name: 'canonical JSON of every object', value: baseline },
        `${((full / n) * 1000).toFixed(0)} µs/object, ${cluster.statusWrites} status writes`,
      ),
    );

    // One changed template at a time (its store and bundle follow), each a different one.
    const templates = cluster.watches.get('SmsTemplate')!;
    const keys = [...templates.objects.keys()];
    let i = 0;
    const one = await medianOf(31, async () => {
      const key = keys[(i * 7919) % keys.length]!;
      const old = templates.objects.get(key)!;
      const next = {
        ...old,
        metadata: { ...old.metadata, generation: (old.metadata?.generation ?? 1) + 1 },
        spec: { text: `[Code] is your code (edit ${i++}).` },
      };
      templates.objects.set(key, next);
      templates.events.onChange('update', next, old);
      await controller.idle();
    });
    firstChange ??= { n, ms: one };
    rows.push(
      row(
        `controller: one changed template, ${n} objects`,
        one,
        'ms',
        { name: `one change, ${firstChange.n} objects`, value: firstChange.ms },
        'flat: it must not grow with n',
      ),
    );
    await controller.stop(1000);
  }
  return rows;
}
