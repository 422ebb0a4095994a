import type { IdentityStore, SecurityRole, SmsObject } from '../generated/kinds.ts';
import type { Generations } from './generations.ts';
import { keyOf, objectKey } from './object-key.ts';
import type { AnyStatus, ReconcileState, StatusEntry } from './reconciler.ts';
import { KINDS, type KindName } from './kinds.ts';

/** SNAPSHOT_KIND marks a status file written by smsauth. */
export const SNAPSHOT_KIND = 'StatusSnapshot';

/** StatusSnapshot is the file `--write-status` writes and `--previous` reads: every object's status, spec hash and generation. */
export interface StatusSnapshot {
  apiVersion: 'smsauth.io/v1alpha1';
  kind: typeof SNAPSHOT_KIND;
  /** What was applied: a git commit or a content hash. */
  revision?: string;
  objects: { kind: KindName; namespace: string; name: string; generation?: number; specHash?: string; status: AnyStatus }[];
  bundles: { namespace: string; identityStore: string; generation: number; hash: string; smsOffered: boolean }[];
  problems: string[];
  /** The last valid version of each object, so that a restart keeps serving it (specs only: credentials are references). */
  live: SmsObject[];
  /** The version of each role last applied. */
  appliedRoles: SecurityRole[];
  /** The version of each store that serves, where it is not its last valid one (a newer one names what does not exist). */
  servedStores?: IdentityStore[];
  /** The stores whose last valid version is the one that serves (keys): it stays held if the next run's names what does not exist. */
  servedLive?: string[];
}

/** toSnapshot writes a reconcile result and the generations seen as a snapshot. */
export function toSnapshot(state: ReconcileState, generations: Generations, revision?: string): StatusSnapshot {
  const seen = generations.entries();
  return {
    apiVersion: 'smsauth.io/v1alpha1',
    kind: SNAPSHOT_KIND,
    ...(revision !== undefined ? { revision } : {}),
    objects: [...state.statuses.entries()].map(([key, e]) => ({
      kind: e.ref.kind,
      namespace: e.ref.namespace,
      name: e.ref.name,
      ...(seen.has(key) ? { generation: seen.get(key)!.generation, specHash: seen.get(key)!.hash } : {}),
      status: e.status,
    })),
    bundles: [...state.bundles.values()].map((b) => ({
      namespace: b.namespace,
      identityStore: b.identityStore,
      generation: b.generation,
      hash: b.hash,
      smsOffered: b.sms.offered,
    })),
    problems: state.problems.map((p) => p.message),
    live: [...state.live.values()],
    appliedRoles: [...state.appliedRoles.values()],
    servedStores: [...state.servedStores].filter(([key, store]) => state.live.get(key) !== store).map(([, store]) => store),
    servedLive: [...state.servedStores].filter(([key, store]) => state.live.get(key) === store).map(([key]) => key),
  };
}

/** SnapshotRead is what a snapshot gives a new run: statuses to start from and generations to continue. */
export interface SnapshotRead {
  statuses: Map<string, StatusEntry>;
  generations: Map<string, { hash: string; generation: number }>;
  live: Map<string, SmsObject>;
  appliedRoles: Map<string, SecurityRole>;
  servedStores: Map<string, IdentityStore>;
}

/** fromSnapshot reads a parsed snapshot; it returns an error sentence when the file is not one. */
export function fromSnapshot(value: unknown): { ok: true; value: SnapshotRead } | { ok: false; error: string } {
  const v = value as Partial<StatusSnapshot> | null;
  if (v === null || typeof v !== 'object' || v.kind !== SNAPSHOT_KIND || !Array.isArray(v.objects)) {
    return { ok: false, error: `not a status snapshot (expected kind ${SNAPSHOT_KIND} with objects, as written by --write-status)` };
  }
  const statuses = new Map<string, StatusEntry>();
  const generations = new Map<string, { hash: string; generation: number }>();
  for (const [i, o] of v.objects.entries()) {
    if (
      !KINDS.some((k) => k.kind === o.kind) ||
      typeof o.namespace !== 'string' ||
      typeof o.name !== 'string' ||
      typeof o.status !== 'object' ||
      o.status === null
    ) {
      return { ok: false, error: `objects[${i}] needs kind, namespace, name and status` };
    }
    const key = objectKey(o.kind, o.namespace, o.name);
    statuses.set(key, { ref: { kind: o.kind, namespace: o.namespace, name: o.name }, status: o.status });
    if (typeof o.specHash === 'string' && typeof o.generation === 'number') generations.set(key, { hash: o.specHash, generation: o.generation });
  }
  const live = new Map<string, SmsObject>();
  const appliedRoles = new Map<string, SecurityRole>();
  const servedStores = new Map<string, IdentityStore>();
  // servedStores is absent from the snapshots of earlier versions: nothing held back then.
  for (const [list, target] of [
    [v.live, live],
    [v.appliedRoles, appliedRoles],
    [v.servedStores, servedStores],
  ] as const) {
    for (const o of list ?? []) {
      const ok =
        typeof o === 'object' && o !== null && KINDS.some((k) => k.kind === o.kind) && typeof o.metadata?.name === 'string' && typeof o.spec === 'object';
      if (!ok) return { ok: false, error: 'live objects need kind, metadata.name and spec' };
      (target as Map<string, SmsObject>).set(keyOf(o), o);
    }
  }
  // servedLive is absent from the snapshots of earlier versions: a restart that finds a store's
  // newest version broken then serves none of it.
  for (const key of Array.isArray(v.servedLive) ? v.servedLive : []) {
    const store = typeof key === 'string' ? live.get(key) : undefined;
    if (store?.kind === 'IdentityStore' && !servedStores.has(key)) servedStores.set(key, store);
  }
  return { ok: true, value: { statuses, generations, live, appliedRoles, servedStores } };
}
