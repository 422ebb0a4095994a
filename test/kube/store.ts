import { deepClone, getString } from './json.ts';
import type { JsonObject } from './json.ts';

/** The type of a stored change, as watch events name it. */
export type ChangeType = 'ADDED' | 'MODIFIED' | 'DELETED';

/** One committed change: the object after it (for DELETED, the last state stamped with the deletion's resourceVersion) and the object before it. */
export interface StoreEvent {
  type: ChangeType;
  rv: number;
  storageKey: string;
  namespace: string;
  name: string;
  object: JsonObject;
  prev: JsonObject | undefined;
}

/** A function the store calls synchronously, in commit order, for every change of one resource. */
export type StoreListener = (event: StoreEvent) => void;

interface History {
  events: StoreEvent[];
  compactedRv: number;
}

function keyOf(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

function setRv(obj: JsonObject, rv: number): JsonObject {
  const meta = (obj['metadata'] ?? {}) as JsonObject;
  obj['metadata'] = { ...meta, resourceVersion: String(rv) };
  return obj;
}

/**
 * ObjectStore is the versioned key-value store behind the fake API server, like etcd: one global, monotonically
 * increasing resourceVersion, a bounded per-resource history of changes for watch resumption, and synchronous fan-out.
 */
export class ObjectStore {
  private rv: number;
  private readonly historySize: number;
  private readonly buckets = new Map<string, Map<string, JsonObject>>();
  private readonly histories = new Map<string, History>();
  private readonly listeners = new Map<string, Set<StoreListener>>();
  /** Who hears of every change, whatever the resource (tests awaiting a controller's writes). */
  private readonly anyListeners = new Set<() => void>();
  private globalCompactedRv = 0;

  constructor(options: { historySize: number; initialResourceVersion: number }) {
    this.historySize = options.historySize;
    this.rv = options.initialResourceVersion;
  }

  /** currentResourceVersion is the resourceVersion of the latest committed change. */
  currentResourceVersion(): number {
    return this.rv;
  }

  private bucket(storageKey: string): Map<string, JsonObject> {
    let b = this.buckets.get(storageKey);
    if (b === undefined) {
      b = new Map();
      this.buckets.set(storageKey, b);
    }
    return b;
  }

  private history(storageKey: string): History {
    let h = this.histories.get(storageKey);
    if (h === undefined) {
      h = { events: [], compactedRv: 0 };
      this.histories.set(storageKey, h);
    }
    return h;
  }

  /** get returns a copy of the stored object, or undefined when there is none. */
  get(storageKey: string, namespace: string, name: string): JsonObject | undefined {
    const o = this.buckets.get(storageKey)?.get(keyOf(namespace, name));
    return o === undefined ? undefined : deepClone(o);
  }

  /** list returns copies of the stored objects of a resource (in one namespace, or all), in key order. */
  list(storageKey: string, namespace?: string): JsonObject[] {
    const b = this.buckets.get(storageKey);
    if (b === undefined) return [];
    return [...b.entries()]
      .filter(([k]) => namespace === undefined || k.startsWith(`${namespace}/`))
      .sort(([a], [b2]) => (a < b2 ? -1 : a > b2 ? 1 : 0))
      .map(([, o]) => deepClone(o));
  }

  /** storageKeys lists every resource that has or had objects. */
  storageKeys(): string[] {
    return [...this.buckets.keys()];
  }

  private commit(type: ChangeType, storageKey: string, obj: JsonObject, prev: JsonObject | undefined): JsonObject {
    this.rv += 1;
    const namespace = getString(obj, 'metadata', 'namespace') ?? '';
    const name = getString(obj, 'metadata', 'name') ?? '';
    const stored = setRv(deepClone(obj), this.rv);
    if (type === 'DELETED') this.bucket(storageKey).delete(keyOf(namespace, name));
    else this.bucket(storageKey).set(keyOf(namespace, name), stored);
    const event: StoreEvent = { type, rv: this.rv, storageKey, namespace, name, object: stored, prev };
    const h = this.history(storageKey);
    h.events.push(event);
    while (h.events.length > this.historySize) {
      const dropped = h.events.shift();
      if (dropped !== undefined) h.compactedRv = dropped.rv;
    }
    for (const l of [...(this.listeners.get(storageKey) ?? [])]) l(event);
    for (const l of this.anyListeners) l();
    return deepClone(stored);
  }

  /** create stores a new object under a fresh resourceVersion and emits ADDED; the caller has checked it does not exist. */
  create(storageKey: string, obj: JsonObject): JsonObject {
    return this.commit('ADDED', storageKey, obj, undefined);
  }

  /** update replaces a stored object under a fresh resourceVersion and emits MODIFIED. */
  update(storageKey: string, obj: JsonObject): JsonObject {
    const ns = getString(obj, 'metadata', 'namespace') ?? '';
    const name = getString(obj, 'metadata', 'name') ?? '';
    return this.commit('MODIFIED', storageKey, obj, this.get(storageKey, ns, name));
  }

  /** remove deletes a stored object and emits DELETED carrying its last state at the deletion's resourceVersion. */
  remove(storageKey: string, namespace: string, name: string): JsonObject | undefined {
    const prev = this.get(storageKey, namespace, name);
    if (prev === undefined) return undefined;
    return this.commit('DELETED', storageKey, prev, prev);
  }

  /** since returns the changes of a resource after resourceVersion rv, or undefined when history before them was compacted. */
  since(storageKey: string, rv: number): StoreEvent[] | undefined {
    const h = this.history(storageKey);
    if (rv < Math.max(h.compactedRv, this.globalCompactedRv)) return undefined;
    return h.events.filter((e) => e.rv > rv);
  }

  /** oldestResourceVersion is the oldest resourceVersion a watch of the resource can still resume from. */
  oldestResourceVersion(storageKey: string): number {
    return Math.max(this.history(storageKey).compactedRv, this.globalCompactedRv);
  }

  /** snapshot reconstructs a resource's objects as of resourceVersion rv from history, or undefined when compacted. */
  snapshot(storageKey: string, rv: number, namespace?: string): JsonObject[] | undefined {
    const events = this.since(storageKey, rv);
    if (events === undefined) return undefined;
    const state = new Map<string, JsonObject>();
    for (const o of this.list(storageKey)) state.set(keyOf(getString(o, 'metadata', 'namespace') ?? '', getString(o, 'metadata', 'name') ?? ''), o);
    for (const e of [...events].reverse()) {
      const k = keyOf(e.namespace, e.name);
      if (e.type === 'ADDED') state.delete(k);
      else if (e.prev !== undefined) state.set(k, deepClone(e.prev));
    }
    return [...state.entries()]
      .filter(([k]) => namespace === undefined || k.startsWith(`${namespace}/`))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, o]) => o);
  }

  /** onAnyChange registers a listener for every change of any resource. */
  onAnyChange(listener: () => void): void {
    this.anyListeners.add(listener);
  }

  /** subscribe registers a listener for a resource's changes and returns the function that removes it. */
  subscribe(storageKey: string, listener: StoreListener): () => void {
    let set = this.listeners.get(storageKey);
    if (set === undefined) {
      set = new Set();
      this.listeners.set(storageKey, set);
    }
    set.add(listener);
    return () => {
      this.listeners.get(storageKey)?.delete(listener);
    };
  }

  /** compact forgets the history (of one resource, or all) so that resuming from any earlier resourceVersion fails with 410. */
  compact(storageKey?: string): void {
    if (storageKey === undefined) this.globalCompactedRv = this.rv;
    const keys = storageKey === undefined ? [...this.histories.keys()] : [storageKey];
    for (const k of keys) {
      const h = this.history(k);
      h.events = [];
      h.compactedRv = this.rv;
    }
  }
}
