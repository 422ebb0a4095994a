import type {
  IdentityStore,
  IdentityStoreStatus,
  SecurityRole,
  SecurityRoleStatus,
  SmsGatewayAccount,
  SmsGatewayAccountStatus,
  SmsObject,
  SmsTemplate,
  SmsTemplateStatus,
} from '../generated/kinds.ts';
import { buildBundle, canonicalJson, directorySecretRefsOf, endpointHost, secretRefsOf, storeSecretRefsOf, type Bundle } from './bundle.ts';
import { withProgress } from './kstatus.ts';
import { setConditions, type ConditionInput } from './conditions.ts';
import { DiagnosticCode, type Finding } from './diagnostics.ts';
import type { KindName } from './kinds.ts';
import { keyOf, namespaceOf, objectKey, objectRefOf } from './object-key.ts';
import { minutesOf } from './object-rules.ts';
import { Reason } from './reasons.ts';
import { gatewayFindings, roleFindings } from './reference-rules.ts';
import { ResourceIndex } from './resource-index.ts';
import { sizeTemplateText, type SmsSize } from './sms-text.ts';
import { versionRecord } from './suspend.ts';

/** Ref names one smsauth object. */
export interface Ref {
  kind: KindName;
  namespace: string;
  name: string;
}

/** InvalidVersion is the newest version of an object when it failed validation: its generation and what is wrong. */
export interface InvalidVersion {
  ref: Ref;
  generation: number;
  /** Sentences from the diagnostics, with their positions when the source has them. */
  messages: string[];
}

/** CredentialCheck is the last definitive answer of a provider to an account's credentials (spec.credentialCheck). */
export interface CredentialCheck {
  ok: boolean;
  /** The gateway error code when refused (AuthFailed, Forbidden, ...). */
  code?: string;
  /** When the provider answered, RFC 3339. */
  at: string;
}

/**
 * DirectoryCheck is the last answer of a store's directory to a bind and a base search: connected,
 * or why not (the server tried, and an LDAP result code, a network code or an HTTP status).
 */
export interface DirectoryCheck {
  ok: boolean;
  /** Why it failed: the credentials, the server's certificate, or the server not answering. */
  problem?: 'CredentialsRejected' | 'CertificateUntrusted' | 'SearchFailed' | 'Unreachable';
  /** The server (URL) that answered last, or the last one tried. */
  server?: string;
  /** An LDAP result code (49), a network code (ECONNREFUSED), an HTTP status (HTTP 401). Never a secret. */
  code?: string;
  /** When the directory answered, RFC 3339. */
  at: string;
}

/** Change is one edit the reconciler applies. Secrets travel as the set of their keys: values never reach the core. */
export type Change =
  | { type: 'upsert'; object: SmsObject }
  | { type: 'invalid'; version: InvalidVersion }
  | { type: 'delete'; ref: Ref }
  | { type: 'secret'; namespace: string; name: string; keys: readonly string[] | null }
  | { type: 'credential-check'; namespace: string; name: string; result: CredentialCheck | null }
  | { type: 'directory-check'; namespace: string; name: string; result: DirectoryCheck | null };

/** AnyStatus is the status of any of the four kinds. */
export type AnyStatus = SmsGatewayAccountStatus | IdentityStoreStatus | SmsTemplateStatus | SecurityRoleStatus;

/** StatusEntry is an object's computed status. */
export interface StatusEntry {
  ref: Ref;
  status: AnyStatus;
}

/** Problem is an error about the configuration as a whole, such as a refused removal; it names every object involved. */
export interface Problem {
  ref: Ref;
  message: string;
}

/** ReconcileState is the reconciler's whole output, and the `previous` of the next run. */
export interface ReconcileState {
  statuses: ReadonlyMap<string, StatusEntry>;
  bundles: ReadonlyMap<string, Bundle>;
  /** The last valid version of each object: what serves. */
  live: ReadonlyMap<string, SmsObject>;
  /** The version of each role last applied to bundles (its last version that broke no rule). */
  appliedRoles: ReadonlyMap<string, SecurityRole>;
  /** The version of each store that serves: its last version whose own references (gatewayAccountRef, templateRef) name something. */
  servedStores: ReadonlyMap<string, IdentityStore>;
  problems: readonly Problem[];
}

/** PreviousState is what a run starts from: at least earlier statuses (for the pinned default gateway), at most a whole ReconcileState. */
export interface PreviousState {
  statuses?: ReadonlyMap<string, StatusEntry>;
  live?: ReadonlyMap<string, SmsObject>;
  appliedRoles?: ReadonlyMap<string, SecurityRole>;
  servedStores?: ReadonlyMap<string, IdentityStore>;
  /** Bundles published before, so that an unchanged one is not reported as changed. */
  bundles?: ReadonlyMap<string, Bundle>;
}

/** Delta says what an apply changed, so that writers write only that. */
export interface Delta {
  statuses: string[];
  removedStatuses: string[];
  bundles: string[];
  removedBundles: string[];
}

/** DesiredState is everything the sources declare at one moment. */
export interface DesiredState {
  objects: readonly SmsObject[];
  invalid: readonly InvalidVersion[];
  /** Keys of each Secret, by namespace/name. */
  secrets: ReadonlyMap<string, readonly string[]>;
  /** The last credential check of each account that asks for one, by namespace/name. */
  credentialChecks?: ReadonlyMap<string, CredentialCheck>;
  /** The last directory check of each store with a directory, by namespace/name. */
  directoryChecks?: ReadonlyMap<string, DirectoryCheck>;
}

interface GatewayHealth {
  usable: boolean;
  credentials: ConditionInput | undefined;
}

/**
 * Reconciler turns desired state into statuses and bundles, incrementally: each change marks what
 * depends on it (through reverse indexes) and only that is recomputed, in dependency order
 * (templates, roles, gateway health, stores, gateway statuses), until nothing more changes.
 * It does no I/O; the time is passed in. Applying everything with `full` gives the same result as
 * any sequence of incremental applies that reaches the same desired state.
 */
export class Reconciler {
  private readonly index = new ResourceIndex([], false);
  private readonly live = new Map<string, SmsObject>();
  private readonly invalid = new Map<string, InvalidVersion>();
  private readonly secrets = new Map<string, ReadonlySet<string>>();
  private readonly credentialChecks = new Map<string, CredentialCheck>(); // gateway key → last check
  private readonly directoryChecks = new Map<string, DirectoryCheck>(); // store key → last check
  private readonly statuses = new Map<string, StatusEntry>();
  private readonly bundles = new Map<string, Bundle>();
  private readonly appliedRoles = new Map<string, SecurityRole>();
  private readonly appliedByStore = new Map<string, Set<string>>(); // store → roles applied to it
  private readonly servedStores = new Map<string, IdentityStore>(); // store → the version that serves (see computeStore)
  private readonly health = new Map<string, GatewayHealth>();
  /** Gateways removed from the sources while a store still links them. */
  private readonly pendingDeletion = new Set<string>();
  // Reverse indexes.
  private readonly primaryLinks = new Map<string, Set<string>>(); // gateway → stores linking it
  private readonly chainLinks = new Map<string, Set<string>>(); // gateway → stores whose gateway chain includes it
  private readonly storeChains = new Map<string, string[]>(); // store → its gateway chain (keys)
  private readonly fallbackUsers = new Map<string, Set<string>>(); // gateway → gateways naming it as fallback
  private readonly templateUsers = new Map<string, Set<string>>(); // template → stores depending on it
  private readonly storeTemplates = new Map<string, string[]>(); // store → the templates it depends on (keys)
  private readonly secretUsers = new Map<string, Set<string>>(); // ns/secret → the accounts and stores referencing it
  private readonly undecidedStores = new Map<string, Set<string>>(); // namespace → stores waiting for a single default
  private readonly storeKeys = new Set<string>();
  private readonly roleKeys = new Set<string>();
  private readonly templateKeys = new Set<string>();
  private readonly gatewayKeys = new Set<string>();
  private readonly liveByNamespace = new Map<string, Set<string>>(); // namespace → live object keys
  private readonly bundlesByNamespace = new Map<string, Set<string>>(); // namespace → store keys with a bundle
  // Work of the current apply.
  private dirty = newDirty();
  private readonly beforeStatuses = new Map<string, string>();
  private readonly beforeBundles = new Map<string, string>();

  private readonly secretLabel: string | undefined;

  /** options.secretLabel: the label a Secret needs to be seen (in a cluster), named when one is missing. */
  constructor(previous: PreviousState = {}, options: { secretLabel?: string } = {}) {
    this.secretLabel = options.secretLabel;
    for (const [k, s] of previous.statuses ?? []) this.statuses.set(k, s);
    for (const [k, r] of previous.appliedRoles ?? []) this.setApplied(k, r);
    for (const [k, st] of previous.servedStores ?? []) this.servedStores.set(k, st);
    for (const [k, b] of previous.bundles ?? []) this.putBundle(k, b);
    for (const obj of previous.live?.values() ?? []) this.setLive(obj);
  }

  /** apply applies changes and recomputes what depends on them; with `full`, everything is recomputed. */
  apply(changes: readonly Change[], now: string, full = false): Delta {
    this.dirty = newDirty();
    this.beforeStatuses.clear();
    this.beforeBundles.clear();
    for (const c of changes) this.applyChange(c);
    if (full) {
      for (const k of this.templateKeys) this.dirty.templates.add(k);
      for (const k of this.roleKeys) this.dirty.roles.add(k);
      for (const k of this.gatewayKeys) this.dirty.gateways.add(k);
      for (const k of this.storeKeys) this.dirty.stores.add(k);
      for (const k of this.statuses.keys()) this.markKey(k);
    }
    // Each round settles everything marked; finishing a deletion marks more, hence the loop.
    for (let round = 0; round < 10_000; round++) {
      this.recompute(now);
      if (!this.finishDeletions()) break;
    }
    const delta: Delta = { statuses: [], removedStatuses: [], bundles: [], removedBundles: [] };
    for (const [k, before] of this.beforeStatuses) {
      const exists = this.statuses.has(k);
      if (before === '') {
        if (exists) delta.statuses.push(k); // created: no need to compare text
      } else if (!exists) {
        delta.removedStatuses.push(k);
      } else if (this.statusText(k) !== before) {
        delta.statuses.push(k);
      }
    }
    for (const [k, before] of this.beforeBundles) {
      const after = this.bundles.get(k)?.hash ?? '';
      if (after !== before) (after === '' ? delta.removedBundles : delta.bundles).push(k);
    }
    for (const list of [delta.statuses, delta.removedStatuses, delta.bundles, delta.removedBundles]) list.sort();
    return delta;
  }

  /** replace makes desired the whole truth: what it lacks is deleted; everything is recomputed. */
  replace(desired: DesiredState, now: string): Delta {
    const changes: Change[] = [];
    const present = new Set<string>();
    for (const o of desired.objects) {
      present.add(keyOf(o));
      changes.push({ type: 'upsert', object: o });
    }
    for (const v of desired.invalid) {
      present.add(objectKey(v.ref.kind, v.ref.namespace, v.ref.name));
      changes.push({ type: 'invalid', version: v });
    }
    for (const k of new Set([...this.live.keys(), ...this.invalid.keys(), ...this.statuses.keys(), ...this.bundles.keys()])) {
      if (!present.has(k)) changes.push({ type: 'delete', ref: refOfKey(k) });
    }
    for (const k of this.secrets.keys()) {
      if (!desired.secrets.has(k)) changes.push({ type: 'secret', namespace: k.split('/')[0]!, name: k.split('/')[1]!, keys: null });
    }
    for (const [k, keys] of desired.secrets) changes.push({ type: 'secret', namespace: k.split('/')[0]!, name: k.split('/')[1]!, keys });
    const checks = desired.credentialChecks ?? new Map<string, CredentialCheck>();
    for (const k of this.credentialChecks.keys()) {
      const [, ns, name] = k.split('/');
      if (!checks.has(`${ns}/${name}`)) changes.push({ type: 'credential-check', namespace: ns!, name: name!, result: null });
    }
    for (const [k, result] of checks) changes.push({ type: 'credential-check', namespace: k.split('/')[0]!, name: k.slice(k.indexOf('/') + 1), result });
    const dirChecks = desired.directoryChecks ?? new Map<string, DirectoryCheck>();
    for (const k of this.directoryChecks.keys()) {
      const [, ns, name] = k.split('/');
      if (!dirChecks.has(`${ns}/${name}`)) changes.push({ type: 'directory-check', namespace: ns!, name: name!, result: null });
    }
    for (const [k, result] of dirChecks) changes.push({ type: 'directory-check', namespace: k.split('/')[0]!, name: k.slice(k.indexOf('/') + 1), result });
    return this.apply(changes, now, true);
  }

  /**
   * seedStatus gives the reconciler an object's status as stored elsewhere (a cluster's /status),
   * for an object it has not seen yet: what a store pinned as its default account is read from it.
   */
  seedStatus(entry: StatusEntry): void {
    const key = objectKey(entry.ref.kind, entry.ref.namespace, entry.ref.name);
    if (!this.statuses.has(key)) this.statuses.set(key, entry);
  }

  /**
   * seedServed gives the reconciler the version of a store that served while its newest did not, as
   * recorded elsewhere (a cluster's status.liveVersion), for a store it has not seen yet: that
   * version keeps serving, as if this reconciler had held it, while the newest names what does not exist.
   */
  seedServed(store: IdentityStore): void {
    const key = keyOf(store);
    if (!this.servedStores.has(key)) this.servedStores.set(key, store);
  }

  // ---- reads by key: what one work key needs, without a copy of the whole state ----------------

  /**
   * heldWithoutEarlier tells whether a store's newest generation names what does not exist while
   * this reconciler has no earlier generation of it to serve (started since): the one that served
   * before is then only in what was published.
   */
  heldWithoutEarlier(key: string): boolean {
    // A store that serves (its newest generation, or an earlier one held) is in servedStores.
    return this.live.has(key) && !this.servedStores.has(key);
  }

  /** liveObject is the last valid version of an object (what serves), by key. */
  liveObject(key: string): SmsObject | undefined {
    return this.live.get(key);
  }

  /** liveObjects iterates every live object, in no particular order (no copy, no sort). */
  liveObjects(): IterableIterator<SmsObject> {
    return this.live.values();
  }

  /** liveCount is how many objects are live. */
  liveCount(): number {
    return this.live.size;
  }

  /** allBundles iterates every store's bundle, in no particular order (no copy, no sort). */
  allBundles(): IterableIterator<Bundle> {
    return this.bundles.values();
  }

  /** secretUsersOf lists the keys of the live accounts and stores that reference a Secret. */
  secretUsersOf(namespace: string, name: string): string[] {
    return [...(this.secretUsers.get(`${namespace}/${name}`) ?? [])];
  }

  /** liveIn lists the live objects of a namespace. */
  liveIn(namespace: string): SmsObject[] {
    return [...(this.liveByNamespace.get(namespace) ?? [])].map((k) => this.live.get(k)!);
  }

  /** bundleOf is a store's bundle, by its key. */
  bundleOf(key: string): Bundle | undefined {
    return this.bundles.get(key);
  }

  /** bundlesIn lists the bundles of a namespace's stores, in key order (the published Secret's order). */
  bundlesIn(namespace: string): Bundle[] {
    return [...(this.bundlesByNamespace.get(namespace) ?? [])].sort().map((k) => this.bundles.get(k)!);
  }

  /** credentialCheckOf is the last credential check applied to an account, by its key. */
  credentialCheckOf(key: string): CredentialCheck | undefined {
    return this.credentialChecks.get(key);
  }

  /** directoryCheckOf is the last directory check applied to a store, by its key. */
  directoryCheckOf(key: string): DirectoryCheck | undefined {
    return this.directoryChecks.get(key);
  }

  /** statusEntry is an object's status as computed, by key. */
  statusEntry(key: string): StatusEntry | undefined {
    return this.statuses.get(key);
  }

  private putBundle(key: string, bundle: Bundle): void {
    this.bundles.set(key, bundle);
    addTo(this.bundlesByNamespace, bundle.namespace, key);
  }

  private dropBundle(key: string): void {
    const old = this.bundles.get(key);
    if (old === undefined) return;
    this.bundles.delete(key);
    removeFrom(this.bundlesByNamespace, old.namespace, key);
  }

  /** state is a sorted copy of everything: for writers of the whole (the local run's status file) and tests; per-key work uses the reads above. */
  state(): ReconcileState {
    return {
      statuses: sortedMap(this.statuses),
      bundles: sortedMap(this.bundles),
      live: sortedMap(this.live),
      appliedRoles: sortedMap(this.appliedRoles),
      servedStores: sortedMap(this.servedStores),
      problems: [...this.pendingDeletion].sort().map((k) => this.deletionProblem(k)),
    };
  }

  // ---- changes ------------------------------------------------------------------------------

  private applyChange(c: Change): void {
    switch (c.type) {
      case 'upsert': {
        const key = keyOf(c.object);
        this.invalid.delete(key);
        this.pendingDeletion.delete(key);
        this.markObject(this.live.get(key));
        this.setLive(c.object);
        this.markObject(c.object);
        this.markKey(key);
        return;
      }
      case 'invalid': {
        const key = objectKey(c.version.ref.kind, c.version.ref.namespace, c.version.ref.name);
        this.invalid.set(key, c.version);
        this.pendingDeletion.delete(key);
        this.markKey(key);
        return;
      }
      case 'delete': {
        const key = objectKey(c.ref.kind, c.ref.namespace, c.ref.name);
        this.invalid.delete(key);
        this.markKey(key);
        const old = this.live.get(key);
        if (old?.kind === 'SmsGatewayAccount') {
          // Decided after recomputing, when the links are known: refused while a store links it.
          this.pendingDeletion.add(key);
          this.markDefaults(old);
          return;
        }
        this.markObject(old);
        this.removeLive(key);
        return;
      }
      case 'secret': {
        const key = `${c.namespace}/${c.name}`;
        if (c.keys === null) this.secrets.delete(key);
        else this.secrets.set(key, new Set(c.keys));
        for (const u of this.secretUsers.get(key) ?? []) (u.startsWith('IdentityStore/') ? this.dirty.stores : this.dirty.gateways).add(u);
        return;
      }
      case 'directory-check': {
        const key = objectKey('IdentityStore', c.namespace, c.name);
        if (c.result === null) this.directoryChecks.delete(key);
        else this.directoryChecks.set(key, c.result);
        this.dirty.stores.add(key);
        return;
      }
      case 'credential-check': {
        const key = objectKey('SmsGatewayAccount', c.namespace, c.name);
        if (c.result === null) this.credentialChecks.delete(key);
        else this.credentialChecks.set(key, c.result);
        this.dirty.gateways.add(key);
        return;
      }
    }
  }

  /** markKey marks an object itself for recomputation, by kind, and what tells its validity apart from its absence. */
  private markKey(key: string): void {
    // A store says whether its template is missing or invalid (TemplateNotFound, TemplateNotReady).
    for (const s of this.templateUsers.get(key) ?? []) this.dirty.stores.add(s);
    const kind = key.split('/')[0] as KindName;
    const set =
      kind === 'SmsGatewayAccount'
        ? this.dirty.gateways
        : kind === 'IdentityStore'
          ? this.dirty.stores
          : kind === 'SmsTemplate'
            ? this.dirty.templates
            : this.dirty.roles;
    set.add(key);
  }

  /** markObject marks what depends on an object's live version (called for the old and the new version). */
  private markObject(obj: SmsObject | undefined): void {
    if (obj === undefined) return;
    const key = keyOf(obj);
    const ns = namespaceOf(obj);
    switch (obj.kind) {
      case 'SmsGatewayAccount':
        this.dirty.gateways.add(key);
        for (const s of this.chainLinks.get(key) ?? []) this.dirty.stores.add(s);
        for (const s of this.primaryLinks.get(key) ?? []) this.dirty.stores.add(s);
        this.markFallbackUsers(key);
        this.markDefaults(obj);
        return;
      case 'IdentityStore':
        this.dirty.stores.add(key);
        for (const r of this.index.rolesOf(ns, obj.metadata.name)) this.dirty.roles.add(keyOf(r));
        return;
      case 'SmsTemplate':
        this.dirty.templates.add(key);
        for (const s of this.templateUsers.get(key) ?? []) this.dirty.stores.add(s);
        return;
      case 'SecurityRole': {
        this.dirty.roles.add(key);
        const store = obj.spec.identityStoreRef.name;
        this.dirty.stores.add(objectKey('IdentityStore', ns, store));
        for (const r of this.index.rolesOf(ns, store)) this.dirty.roles.add(keyOf(r));
        return;
      }
    }
  }

  /** markDefaults marks what a default account affects: the other defaults (conflicts) and stores waiting for a single default. */
  private markDefaults(gw: SmsGatewayAccount): void {
    if (!gw.spec.default) return;
    const ns = namespaceOf(gw);
    for (const d of this.index.defaultGateways(ns)) this.dirty.gatewayStatus.add(keyOf(d));
    for (const s of this.undecidedStores.get(ns) ?? []) this.dirty.stores.add(s);
  }

  private markFallbackUsers(gatewayKey: string): void {
    const seen = new Set<string>();
    const queue = [gatewayKey];
    while (queue.length > 0) {
      const g = queue.pop()!;
      for (const u of this.fallbackUsers.get(g) ?? []) {
        if (seen.has(u)) continue;
        seen.add(u);
        this.dirty.gatewayStatus.add(u);
        queue.push(u);
      }
    }
  }

  private setLive(obj: SmsObject): void {
    const key = keyOf(obj);
    this.removeLive(key);
    this.live.set(key, obj);
    this.index.upsert(obj);
    const ns = namespaceOf(obj);
    addTo(this.liveByNamespace, ns, key);
    switch (obj.kind) {
      case 'SmsGatewayAccount': {
        this.gatewayKeys.add(key);
        const fb = obj.spec.fallbackGatewayAccountRef?.name;
        if (fb !== undefined) addTo(this.fallbackUsers, objectKey('SmsGatewayAccount', ns, fb), key);
        for (const { ref } of secretRefsOf(obj)) addTo(this.secretUsers, `${ns}/${ref.name}`, key);
        return;
      }
      case 'IdentityStore': {
        this.storeKeys.add(key);
        for (const { ref } of storeSecretRefsOf(obj)) addTo(this.secretUsers, `${ns}/${ref.name}`, key);
        return;
      }
      case 'SmsTemplate':
        this.templateKeys.add(key);
        return;
      case 'SecurityRole':
        this.roleKeys.add(key);
        return;
    }
  }

  private removeLive(key: string): void {
    const old = this.live.get(key);
    if (old === undefined) return;
    this.live.delete(key);
    this.index.remove(key);
    const ns = namespaceOf(old);
    removeFrom(this.liveByNamespace, ns, key);
    switch (old.kind) {
      case 'SmsGatewayAccount': {
        const fb = old.spec.fallbackGatewayAccountRef?.name;
        if (fb !== undefined) removeFrom(this.fallbackUsers, objectKey('SmsGatewayAccount', ns, fb), key);
        for (const { ref } of secretRefsOf(old)) removeFrom(this.secretUsers, `${ns}/${ref.name}`, key);
        return;
      }
      case 'IdentityStore': {
        for (const { ref } of storeSecretRefsOf(old)) removeFrom(this.secretUsers, `${ns}/${ref.name}`, key);
        return;
      }
      default:
        return;
    }
  }

  /** finishDeletions removes pending gateways no store links any more; it tells whether anything was removed. */
  private finishDeletions(): boolean {
    let removed = false;
    for (const key of [...this.pendingDeletion]) {
      if ((this.primaryLinks.get(key)?.size ?? 0) > 0) continue;
      this.pendingDeletion.delete(key);
      this.markObject(this.live.get(key));
      this.removeLive(key);
      this.markKey(key);
      removed = true;
    }
    return removed;
  }

  // ---- recomputation ----------------------------------------------------------------------

  private recompute(now: string): void {
    // Dependency order: templates and roles feed stores; gateway health feeds stores (their chain);
    // store links feed gateway statuses (InUse). Work marked while settling is taken next round.
    for (let round = 0; round < 10_000; round++) {
      const d = this.dirty;
      if (d.templates.size + d.roles.size + d.gateways.size + d.stores.size + d.gatewayStatus.size === 0) return;
      this.dirty = newDirty();
      for (const k of sorted(d.templates)) this.computeTemplate(k, now);
      for (const k of sorted(d.roles)) this.computeRole(k, now);
      for (const k of sorted(d.gateways)) this.computeHealth(k);
      const stores = new Set([...d.stores, ...this.takeStores()]);
      for (const k of sorted(stores)) this.computeStore(k, now);
      const statuses = new Set([...d.gateways, ...d.gatewayStatus, ...this.takeGatewayStatuses()]);
      for (const k of sorted(statuses)) this.computeGatewayStatus(k, now);
    }
    throw new Error('reconcile did not settle');
  }

  // Stores and gateway statuses marked by the phases before theirs in the same round are settled in that round.
  private takeStores(): Set<string> {
    const s = this.dirty.stores;
    this.dirty.stores = new Set();
    return s;
  }

  private takeGatewayStatuses(): Set<string> {
    const s = this.dirty.gatewayStatus;
    this.dirty.gatewayStatus = new Set();
    return s;
  }

  private computeTemplate(key: string, now: string): void {
    const obj = this.live.get(key) as SmsTemplate | undefined;
    const inv = this.invalid.get(key);
    if (obj === undefined) return this.setInvalidOnly(key, inv, now);
    const texts: [string, string][] = [
      ['default', obj.spec.text],
      ...Object.entries(obj.spec.locales ?? {})
        .filter((e): e is [string, string] => e[1] !== undefined)
        .sort(([a], [b]) => a.localeCompare(b)),
    ];
    const locales = texts.map(([locale, text]) => {
      const size = sizeTemplateText(text, 10, 10, obj.spec.originBoundDomain);
      return { locale, encoding: size.encoding, characters: size.units, segments: size.segments };
    });
    const long = locales.filter((l) => l.segments > 1);
    const conditions: ConditionInput[] = [
      readyOrInvalid(key, inv, obj, {
        type: 'Ready',
        status: 'True',
        reason: Reason.Reconciled,
        message: `${locales.length} text${locales.length === 1 ? '' : 's'} valid`,
      }),
      long.length > 0
        ? {
            type: 'MultiSegment',
            status: 'True',
            reason: Reason.TextExceedsOneSegment,
            message: `${long.map((l) => `${l.locale} needs ${l.segments} segments (${l.encoding})`).join('; ')} with a 10-digit code; shorten it to one segment`,
          }
        : { type: 'MultiSegment', status: 'False', reason: Reason.SingleSegment, message: 'every text fits one segment with a 10-digit code' },
    ];
    this.setStatus(key, obj, inv, conditions, now, { locales });
  }

  private computeRole(key: string, now: string): void {
    const obj = this.live.get(key) as SecurityRole | undefined;
    const inv = this.invalid.get(key);
    const ns = key.split('/')[1]!;
    if (obj === undefined) {
      const before = this.appliedRoles.get(key);
      if (before !== undefined) {
        this.setApplied(key, undefined);
        this.dirty.stores.add(objectKey('IdentityStore', ns, before.spec.identityStoreRef.name));
      }
      return this.setInvalidOnly(key, inv, now);
    }
    const findings = roleFindings(obj, this.index);
    let ready: ConditionInput;
    if (findings.length > 0) {
      ready = { type: 'Ready', status: 'False', reason: roleReason(findings[0]!), message: joinMessages(findings) };
    } else if (!obj.spec.enabled) {
      ready = { type: 'Ready', status: 'True', reason: Reason.Disabled, message: 'the role is disabled: it matches no one' };
    } else {
      ready = {
        type: 'Ready',
        status: 'True',
        reason: Reason.Reconciled,
        message: `applies to IdentityStore ${obj.spec.identityStoreRef.name} at priority ${obj.spec.priority}`,
      };
    }
    const before = this.appliedRoles.get(key);
    if (findings.length === 0) this.setApplied(key, obj);
    else if (before !== undefined) ready = { ...ready, message: `${ready.message}; its last valid version stays applied` };
    const after = this.appliedRoles.get(key);
    if (before !== after) {
      if (before !== undefined) this.dirty.stores.add(objectKey('IdentityStore', ns, before.spec.identityStoreRef.name));
      if (after !== undefined) this.dirty.stores.add(objectKey('IdentityStore', ns, after.spec.identityStoreRef.name));
    }
    this.setStatus(key, obj, inv, [readyOrInvalid(key, inv, obj, ready)], now, {});
  }

  private setApplied(key: string, role: SecurityRole | undefined): void {
    const old = this.appliedRoles.get(key);
    if (old !== undefined) removeFrom(this.appliedByStore, objectKey('IdentityStore', namespaceOf(old), old.spec.identityStoreRef.name), key);
    if (role === undefined) {
      this.appliedRoles.delete(key);
      return;
    }
    this.appliedRoles.set(key, role);
    addTo(this.appliedByStore, objectKey('IdentityStore', namespaceOf(role), role.spec.identityStoreRef.name), key);
  }

  private computeHealth(key: string): void {
    const obj = this.live.get(key) as SmsGatewayAccount | undefined;
    const before = this.health.get(key);
    let next: GatewayHealth | undefined;
    if (obj !== undefined) {
      const credentials = this.credentialsCondition(obj);
      next = { usable: credentials.status === 'True', credentials };
      this.health.set(key, next);
    } else {
      this.health.delete(key);
    }
    if (canonicalJson(before ?? null) !== canonicalJson(next ?? null)) {
      for (const s of this.chainLinks.get(key) ?? []) this.dirty.stores.add(s);
      this.markFallbackUsers(key);
    }
  }

  /** missingSecret is the first Secret reference whose Secret, or key, the namespace does not have, said so that its owner can fix it. */
  private missingSecret(
    ns: string,
    refs: readonly { field: string; ref: { name: string; key: string } }[],
  ): { noSecret: boolean; message: string } | undefined {
    for (const { field, ref } of refs) {
      const keys = this.secrets.get(`${ns}/${ref.name}`);
      if (keys === undefined)
        return {
          noSecret: true,
          message:
            this.secretLabel === undefined
              ? `${field} names Secret ${ref.name}, which does not exist in namespace ${ns}; create it with key ${ref.key}`
              : `${field} names Secret ${ref.name}, which is not among the Secrets labelled ${this.secretLabel} in namespace ${ns}; create it with key ${ref.key}, or label it (kubectl label secret ${ref.name} -n ${ns} ${this.secretLabel})`,
        };
      if (!keys.has(ref.key)) return { noSecret: false, message: `${field} names key ${ref.key} of Secret ${ref.name}, which has no such key; add it` };
    }
    return undefined;
  }

  private credentialsCondition(gw: SmsGatewayAccount): ConditionInput {
    const refs = secretRefsOf(gw);
    if (refs.length === 0)
      return { type: 'CredentialsResolved', status: 'True', reason: Reason.NoCredentialsNeeded, message: `provider ${gw.spec.provider} needs no credentials` };
    const missing = this.missingSecret(namespaceOf(gw), refs);
    if (missing !== undefined) {
      return {
        type: 'CredentialsResolved',
        status: 'False',
        reason: missing.noSecret ? Reason.SecretNotFound : Reason.SecretKeyNotFound,
        message: missing.message,
      };
    }
    const check = gw.spec.credentialCheck === undefined ? undefined : this.credentialChecks.get(keyOf(gw));
    if (check !== undefined && !check.ok) {
      return {
        type: 'CredentialsResolved',
        status: 'False',
        reason: Reason.CredentialsRejected,
        message: `the provider refused the credentials at ${check.at} (${check.code ?? 'refused'}); fix the Secret, and the next check will tell`,
      };
    }
    const checked = check === undefined ? '' : `; the provider accepted them at ${check.at}`;
    return {
      type: 'CredentialsResolved',
      status: 'True',
      reason: Reason.SecretsResolved,
      message: `${refs.length} secret reference${refs.length === 1 ? '' : 's'} resolved${checked}`,
    };
  }

  /**
   * computeStore reconciles an identity store in steps that each return their part, as Flux's
   * sub-reconcilers do: the account it links (selectAccount), the chain of accounts it sends
   * through (gatewayChain), the text (storeText), whether SMS is offered (smsReadiness), the
   * directory (directoryCondition); then its bundle and status.
   */
  private computeStore(key: string, now: string): void {
    const obj = this.live.get(key) as IdentityStore | undefined;
    const inv = this.invalid.get(key);
    const ns = key.split('/')[1]!;
    removeFrom(this.undecidedStores, ns, key);
    if (obj === undefined) {
      this.servedStores.delete(key);
      this.setChain(key, undefined, []);
      this.setTemplates(key, []);
      this.recordBundle(key);
      this.dropBundle(key);
      return this.setInvalidOnly(key, inv, now);
    }
    const own = this.storeParts(key, ns, obj);
    // A new generation whose own reference names nothing (a typo in spec.sms.gatewayAccountRef or
    // templateRef) does not take down the version that served: that one keeps serving, as it would
    // for an invalid spec, until the reference resolves (a role is held back the same way,
    // computeRole). The store still depends on what the new generation names.
    let parts = own;
    let served = obj;
    const earlier = this.servedStores.get(key);
    // What the store depends on: what its newest generation names and, while that one is broken,
    // what the earlier generation names, whether it serves now or may again (its template back).
    let chainKeys = own.chainKeys;
    const templates = [templateKeyOf(ns, obj)];
    if (brokenReference(obj, own) === null) this.servedStores.set(key, obj);
    else if (earlier !== undefined && earlier !== obj) {
      const kept = this.storeParts(key, ns, earlier);
      chainKeys = [...new Set([...kept.chainKeys, ...own.chainKeys])];
      templates.push(templateKeyOf(ns, earlier));
      if (brokenReference(earlier, kept) === null) {
        parts = kept;
        served = earlier;
      }
    }
    this.setChain(key, parts.linkKey, chainKeys);
    this.setTemplates(
      key,
      templates.filter((t) => t !== undefined),
    );
    const { selection, text, readiness } = parts;
    const offered = readiness.offered;
    let ready = readiness.ready;
    if (served !== obj) {
      const why = own.readiness.ready;
      ready = { type: 'Ready', status: 'False', reason: why.reason, message: `${why.message}; generation ${served.metadata.generation ?? 1} stays live` };
    }
    // The directory: who users are. Its health says nothing about the bundle (the verifier rides out
    // an outage on its cache and answers 503 beyond it), but Ready tells a directory that fails.
    const directory = this.directoryCondition(obj);
    if (directory.status === 'False' && directory.reason !== Reason.CallerVouches) {
      ready = { type: 'Ready', status: 'False', reason: directory.reason, message: `the directory does not serve: ${directory.message}` };
    }
    const optional = [this.eventsCondition(obj), this.twilioCondition(obj)].filter((c) => c !== undefined);
    // The conditions describe the newest generation (what is wrong with it); the bundle and the sms block, what serves.
    const conditions = [own.gatewayLinked, ...(own.text.templateValid !== undefined ? [own.text.templateValid] : []), directory, ...optional];

    const bundle = buildBundle({
      store: served,
      template: text.template,
      gateways: offered ? parts.chain : [],
      roles: this.appliedRolesOf(ns, obj.metadata.name),
      smsOffered: offered,
      smsReason: offered ? Reason.SmsOffered : ready.reason,
    });
    if (this.bundles.get(key)?.hash !== bundle.hash) {
      this.recordBundle(key);
      this.putBundle(key, bundle);
    }

    const smsStatus: NonNullable<IdentityStoreStatus['sms']> = { offered };
    if (selection.link !== undefined) smsStatus.gatewayAccount = selection.link;
    if (selection.selectedBy !== undefined) smsStatus.selectedBy = selection.selectedBy;
    if (text.largest !== undefined) {
      smsStatus.encoding = text.largest.encoding;
      smsStatus.segments = text.largest.segments;
    }
    const extra: Partial<IdentityStoreStatus> = { liveGeneration: served.metadata.generation ?? 1, bundleHash: bundle.hash };
    if (!selection.undecided) extra.sms = smsStatus;
    // What serves while it is not the newest, written down for a controller that starts without it.
    const live = versionRecord(served);
    if (live !== undefined && live.generation !== (inv?.generation ?? obj.metadata.generation ?? 1)) extra.liveVersion = live;
    this.setStatus(key, obj, inv, [readyOrInvalid(key, inv, obj, ready), ...conditions], now, extra);
  }

  /** storeParts works out what one version of a store would serve: its account, chain, text and whether SMS is offered. */
  private storeParts(key: string, ns: string, obj: IdentityStore): StoreParts {
    const selection = this.selectAccount(key, ns, obj);
    const { linkKey, primary, chain, chainKeys } = this.gatewayChain(ns, selection.link);
    const gatewayLinked = gatewayLinkedCondition(ns, selection, primary);
    const text = this.storeText(ns, obj);
    const primaryHealth = linkKey === undefined ? undefined : this.health.get(linkKey);
    const readiness = smsReadiness(obj, gatewayLinked, primaryHealth, text.templateValid, selection.link, chain);
    return { selection, linkKey, primary, chain, chainKeys, gatewayLinked, text, readiness };
  }

  /**
   * selectAccount picks the account a store links: the one it names wins; else the namespace's
   * default, pinned at the store's first reconcile (undecided while several accounts are default).
   */
  private selectAccount(key: string, ns: string, obj: IdentityStore): AccountSelection {
    const explicit = obj.spec.sms?.gatewayAccountRef?.name;
    if (explicit !== undefined) return { link: explicit, selectedBy: 'Explicit', undecided: false, noLinkWhy: '' };
    const previous = (this.statuses.get(key)?.status as IdentityStoreStatus | undefined)?.sms;
    if (previous !== undefined) {
      if (previous.selectedBy === 'Default' && previous.gatewayAccount !== undefined)
        return { link: previous.gatewayAccount, selectedBy: 'Default', undecided: false, noLinkWhy: '' };
      return { undecided: false, noLinkWhy: noDefaultMessage(ns) };
    }
    const defaults = this.index.defaultGateways(ns).filter((g) => !this.pendingDeletion.has(keyOf(g)));
    if (defaults.length === 1) return { link: defaults[0]!.metadata.name, selectedBy: 'Default', undecided: false, noLinkWhy: '' };
    if (defaults.length === 0) return { undecided: false, noLinkWhy: noDefaultMessage(ns) };
    addTo(this.undecidedStores, ns, key);
    return {
      undecided: true,
      noLinkWhy: `namespace ${ns} has several default accounts (${defaults.map((d) => d.metadata.name).join(', ')}); the default is chosen when one remains, or set spec.sms.gatewayAccountRef`,
    };
  }

  /** gatewayChain is the linked account, then its usable fallbacks (cycles stopped), and the keys of the chain the store depends on. */
  private gatewayChain(
    ns: string,
    link: string | undefined,
  ): { linkKey: string | undefined; primary: SmsGatewayAccount | undefined; chain: SmsGatewayAccount[]; chainKeys: string[] } {
    const linkKey = link === undefined ? undefined : objectKey('SmsGatewayAccount', ns, link);
    const primary = linkKey === undefined ? undefined : (this.live.get(linkKey) as SmsGatewayAccount | undefined);
    const chain: SmsGatewayAccount[] = [];
    const chainKeys: string[] = [];
    if (linkKey !== undefined) chainKeys.push(linkKey);
    if (primary !== undefined) {
      chain.push(primary);
      let next = primary.spec.fallbackGatewayAccountRef?.name;
      while (next !== undefined) {
        const k = objectKey('SmsGatewayAccount', ns, next);
        if (chainKeys.includes(k)) break;
        chainKeys.push(k);
        const gw = this.live.get(k) as SmsGatewayAccount | undefined;
        if (gw === undefined || this.health.get(k)?.usable !== true) break;
        chain.push(gw);
        next = gw.spec.fallbackGatewayAccountRef?.name;
      }
    }
    return { linkKey, primary, chain, chainKeys };
  }

  /** storeText is the store's text, inline or its template's live version, sized for the store's code: TemplateValid and the largest text. */
  private storeText(ns: string, obj: IdentityStore): StoreText {
    const sms = obj.spec.sms;
    let templateValid: ConditionInput | undefined;
    let template: SmsTemplate | undefined;
    const texts: [string, string][] = [];
    let domain: string | undefined;
    if (sms?.textMessage !== undefined) {
      texts.push(['default', sms.textMessage]);
    } else if (sms?.templateRef !== undefined) {
      const tKey = objectKey('SmsTemplate', ns, sms.templateRef.name);
      template = this.live.get(tKey) as SmsTemplate | undefined;
      if (template === undefined) {
        const broken = this.invalid.has(tKey);
        templateValid = broken
          ? {
              type: 'TemplateValid',
              status: 'False',
              reason: Reason.TemplateNotReady,
              message: `SmsTemplate ${sms.templateRef.name} is invalid and has no valid version to use`,
            }
          : {
              type: 'TemplateValid',
              status: 'False',
              reason: Reason.TemplateNotFound,
              message: `SmsTemplate ${sms.templateRef.name} named in spec.sms.templateRef does not exist in namespace ${ns}`,
            };
      } else {
        texts.push(['default', template.spec.text], ...Object.entries(template.spec.locales ?? {}).filter((e): e is [string, string] => e[1] !== undefined));
        domain = template.spec.originBoundDomain;
      }
    }
    if (sms === undefined || texts.length === 0) return { template, templateValid, largest: undefined };
    let largest: SmsSize | undefined;
    for (const [, text] of texts) {
      const size = sizeTemplateText(text, sms.code.length, minutesOf(sms.code.ttl), domain);
      if (largest === undefined || size.segments > largest.segments || (size.segments === largest.segments && size.units > largest.units)) largest = size;
    }
    const source =
      template !== undefined ? `SmsTemplate ${template.metadata.name} (${texts.length} text${texts.length === 1 ? '' : 's'})` : 'spec.sms.textMessage';
    templateValid = {
      type: 'TemplateValid',
      status: 'True',
      reason: Reason.TextValid,
      message: `${source}: ${largest!.encoding}, at most ${largest!.segments} segment${largest!.segments === 1 ? '' : 's'} with a ${sms.code.length}-digit code`,
    };
    return { template, templateValid, largest };
  }

  /**
   * eventsCondition says, for a store with an events endpoint, whether its signing secret
   * resolves. It leaves Ready alone: events wait in the outbox (a day) until it does.
   */
  private eventsCondition(store: IdentityStore): ConditionInput | undefined {
    const events = store.spec.events;
    if (events === undefined) return undefined;
    const types = events.types === undefined ? 'every event type' : events.types.join(', ');
    return this.secretCondition(store, 'EventsConfigured', 'spec.events.signingSecret', events.signingSecret.secretRef, {
      missing: [Reason.EventsSecretNotFound, 'events wait in the outbox until then (a day at most)'],
      found: [Reason.EventsEndpointSet, `${types} go to ${endpointHost(events.url)}, signed`],
    });
  }

  /** twilioCondition says, for a store named as a Twilio Verify service, whether its auth token resolves (without it every request is refused). */
  private twilioCondition(store: IdentityStore): ConditionInput | undefined {
    const twilio = store.spec.twilioCompat;
    if (twilio === undefined) return undefined;
    return this.secretCondition(store, 'TwilioCompatConfigured', 'spec.twilioCompat.authToken', twilio.authToken.secretRef, {
      missing: [Reason.TwilioTokenNotFound, `until then the Twilio-compatible API refuses every request for service ${twilio.serviceSid} (401)`],
      found: [Reason.TwilioServiceServed, `service ${twilio.serviceSid} of account ${twilio.accountSid}, where --twilio-compat serves it, authenticated`],
    });
  }

  /**
   * secretCondition is the condition of a feature a Secret key enables, which leaves Ready alone:
   * False while the key does not resolve (the missing Secret named, then what that means), True
   * once it does (what is served, then the key and Secret it uses).
   */
  private secretCondition(
    store: IdentityStore,
    type: 'EventsConfigured' | 'TwilioCompatConfigured',
    field: string,
    ref: { name: string; key: string },
    says: { missing: [Reason, string]; found: [Reason, string] },
  ): ConditionInput {
    const missing = this.missingSecret(namespaceOf(store), [{ field, ref }]);
    if (missing !== undefined) return { type, status: 'False', reason: says.missing[0], message: `${missing.message}; ${says.missing[1]}` };
    return { type, status: 'True', reason: says.found[0], message: `${says.found[1]} with key ${ref.key} of Secret ${ref.name}` };
  }

  private directoryCondition(store: IdentityStore): ConditionInput {
    const dir = store.spec.directory;
    if (dir === undefined)
      return {
        type: 'DirectoryConnected',
        status: 'False',
        reason: Reason.CallerVouches,
        message: 'no spec.directory: the calling application vouches for its users, their groups and containers',
      };
    if (dir.static !== undefined)
      return {
        type: 'DirectoryConnected',
        status: 'True',
        reason: Reason.StaticDirectory,
        message: `${dir.static.users.length} user${dir.static.users.length === 1 ? '' : 's'} written in spec.directory.static (development and tests only)`,
      };
    const missing = this.missingSecret(namespaceOf(store), directorySecretRefsOf(store));
    if (missing !== undefined) return { type: 'DirectoryConnected', status: 'False', reason: Reason.DirectorySecretNotFound, message: missing.message };
    const check = this.directoryChecks.get(keyOf(store));
    if (check === undefined)
      return { type: 'DirectoryConnected', status: 'Unknown', reason: Reason.DirectoryNotChecked, message: 'the directory has not been checked yet' };
    const at = `${check.server !== undefined ? `${check.server} ` : ''}at ${check.at}`;
    if (check.ok) return { type: 'DirectoryConnected', status: 'True', reason: Reason.Connected, message: `bound and searched the base on ${at}` };
    const code = check.code !== undefined ? ` (${check.code})` : '';
    switch (check.problem) {
      case 'CredentialsRejected':
        return {
          type: 'DirectoryConnected',
          status: 'False',
          reason: Reason.DirectoryCredentialsRejected,
          message: `${at} the directory refused the bind credentials${code}; fix the Secret, and the next check will tell`,
        };
      case 'CertificateUntrusted':
        return {
          type: 'DirectoryConnected',
          status: 'False',
          reason: Reason.DirectoryCertificateUntrusted,
          message: `${at} the server's certificate is not trusted${code}; give its CA in spec.directory.ldap.caBundle`,
        };
      case 'SearchFailed':
        return {
          type: 'DirectoryConnected',
          status: 'False',
          reason: Reason.DirectorySearchFailed,
          message: `${at} the directory refused the search${code}; check spec.directory.ldap.baseDN and the bind account's rights`,
        };
      default:
        return {
          type: 'DirectoryConnected',
          status: 'False',
          reason: Reason.DirectoryUnreachable,
          message: `${at} the directory did not answer${code}; cached users keep working for spec.directory.cacheTTL, others get 503`,
        };
    }
  }

  private appliedRolesOf(ns: string, store: string): SecurityRole[] {
    return [...(this.appliedByStore.get(objectKey('IdentityStore', ns, store)) ?? [])].map((k) => this.appliedRoles.get(k)!);
  }

  /** setTemplates records the templates a store depends on (keys): a change to one recomputes the store. */
  private setTemplates(storeKey: string, templates: string[]): void {
    for (const t of this.storeTemplates.get(storeKey) ?? []) if (!templates.includes(t)) removeFrom(this.templateUsers, t, storeKey);
    for (const t of templates) addTo(this.templateUsers, t, storeKey);
    if (templates.length === 0) this.storeTemplates.delete(storeKey);
    else this.storeTemplates.set(storeKey, templates);
  }

  private setChain(storeKey: string, primary: string | undefined, chain: string[]): void {
    const old = this.storeChains.get(storeKey) ?? [];
    const oldPrimary = old.length > 0 && this.primaryLinks.get(old[0]!)?.has(storeKey) ? old[0] : undefined;
    if (oldPrimary !== primary) {
      if (oldPrimary !== undefined) {
        removeFrom(this.primaryLinks, oldPrimary, storeKey);
        this.dirty.gatewayStatus.add(oldPrimary);
      }
      if (primary !== undefined) {
        addTo(this.primaryLinks, primary, storeKey);
        this.dirty.gatewayStatus.add(primary);
      }
    }
    for (const g of old) if (!chain.includes(g)) removeFrom(this.chainLinks, g, storeKey);
    for (const g of chain) addTo(this.chainLinks, g, storeKey);
    if (chain.length === 0) this.storeChains.delete(storeKey);
    else this.storeChains.set(storeKey, chain);
  }

  private computeGatewayStatus(key: string, now: string): void {
    const obj = this.live.get(key) as SmsGatewayAccount | undefined;
    const inv = this.invalid.get(key);
    if (obj === undefined) return this.setInvalidOnly(key, inv, now);
    const ns = namespaceOf(obj);
    const health = this.health.get(key) ?? { usable: false, credentials: this.credentialsCondition(obj) };
    const linked = [...(this.primaryLinks.get(key) ?? [])].map((k) => k.split('/')[2]!).sort();
    const pending = this.pendingDeletion.has(key);
    const inUse: ConditionInput = pending
      ? { type: 'InUse', status: 'True', reason: Reason.DeletionBlocked, message: this.deletionProblem(key).message }
      : linked.length > 0
        ? { type: 'InUse', status: 'True', reason: Reason.LinkedByIdentityStores, message: `linked by IdentityStore ${linked.join(', ')}` }
        : { type: 'InUse', status: 'False', reason: Reason.NotLinked, message: 'no identity store links this account' };
    const findings = gatewayFindings(obj, this.index).filter((f) => f.code !== DiagnosticCode.DefaultGatewayConflict);
    const defaults = obj.spec.default ? this.index.defaultGateways(ns).filter((g) => !this.pendingDeletion.has(keyOf(g))) : [];
    let ready: ConditionInput;
    if (health.credentials?.status !== 'True') {
      ready = {
        type: 'Ready',
        status: 'False',
        reason: health.credentials?.reason ?? Reason.SecretNotFound,
        message: health.credentials?.message ?? 'credentials unresolved',
      };
    } else if (findings.length > 0) {
      ready = {
        type: 'Ready',
        status: 'False',
        reason: findings[0]!.code === DiagnosticCode.FallbackCycle ? Reason.FallbackCycle : Reason.FallbackNotFound,
        message: joinMessages(findings),
      };
    } else if (defaults.length > 1) {
      ready = {
        type: 'Ready',
        status: 'False',
        reason: Reason.DefaultConflict,
        message: `several accounts in namespace ${ns} are marked default (${defaults.map((d) => d.metadata.name).join(', ')}); keep default: true on one`,
      };
    } else {
      const fb = obj.spec.fallbackGatewayAccountRef?.name;
      const fbHealth = fb === undefined ? undefined : this.health.get(objectKey('SmsGatewayAccount', ns, fb));
      // Removed while linked, it still serves (Ready), and its Ready says why it is still here.
      ready =
        fb !== undefined && fbHealth?.usable !== true
          ? {
              type: 'Ready',
              status: 'False',
              reason: Reason.FallbackNotReady,
              message: `fallback account ${fb} is not ready (${fbHealth?.credentials?.message ?? 'unknown'})`,
            }
          : pending
            ? { type: 'Ready', status: 'True', reason: Reason.DeletionBlocked, message: this.deletionProblem(key).message }
            : {
                type: 'Ready',
                status: 'True',
                reason: Reason.Reconciled,
                message: `provider ${obj.spec.provider}${obj.spec.default ? ', namespace default' : ''}`,
              };
    }
    const conditions = [readyOrInvalid(key, inv, obj, ready), health.credentials!, inUse];
    this.setStatus(key, obj, inv, conditions, now, { linkedIdentityStores: linked });
  }

  private deletionProblem(key: string): Problem {
    const ref = refOfKey(key);
    const stores = [...(this.primaryLinks.get(key) ?? [])].map((k) => k.split('/')[2]!).sort();
    return {
      ref,
      message: `SmsGatewayAccount ${ref.namespace}/${ref.name} was removed but IdentityStore ${stores.map((s) => `${ref.namespace}/${s}`).join(', ')} ${stores.length === 1 ? 'links' : 'link'} it; the removal is refused and its last version stays live until no store links it: link ${stores.length === 1 ? 'that store' : 'those stores'} to another account first`,
    };
  }

  // ---- status writing -----------------------------------------------------------------------

  private recordStatus(key: string): void {
    if (!this.beforeStatuses.has(key)) this.beforeStatuses.set(key, this.statusText(key));
  }

  private recordBundle(key: string): void {
    if (!this.beforeBundles.has(key)) this.beforeBundles.set(key, this.bundles.get(key)?.hash ?? '');
  }

  private setInvalidOnly(key: string, inv: InvalidVersion | undefined, now: string): void {
    this.recordStatus(key);
    if (inv === undefined) {
      this.statuses.delete(key);
      return;
    }
    const previous = this.statuses.get(key)?.status;
    const ready: ConditionInput = {
      type: 'Ready',
      status: 'False',
      reason: Reason.InvalidSpec,
      message: `generation ${inv.generation} is invalid and no valid generation has been applied: ${inv.messages.join('; ')}`,
    };
    const conditions = setConditions(previous?.conditions, withProgress([ready]), inv.generation, now);
    this.statuses.set(key, { ref: inv.ref, status: { observedGeneration: inv.generation, conditions } });
  }

  private setStatus(
    key: string,
    obj: SmsObject,
    inv: InvalidVersion | undefined,
    conditions: ConditionInput[],
    now: string,
    extra: Record<string, unknown>,
  ): void {
    this.recordStatus(key);
    const generation = inv?.generation ?? obj.metadata.generation ?? 1;
    const previous = this.statuses.get(key)?.status;
    const status = {
      observedGeneration: generation,
      conditions: setConditions(previous?.conditions, withProgress(conditions), generation, now),
      ...extra,
    } as AnyStatus;
    this.statuses.set(key, { ref: refOfKey(key), status });
  }

  private statusText(key: string): string {
    const s = this.statuses.get(key);
    return s === undefined ? '' : canonicalJson(s.status);
  }

  /** statusOf returns an object's status, for tests and writers. */
  statusOf(kind: KindName, namespace: string, name: string): AnyStatus | undefined {
    return this.statuses.get(objectKey(kind, namespace, name))?.status;
  }
}

/** AccountSelection is the account a store links and how it was chosen, or why there is none. */
interface AccountSelection {
  link?: string;
  selectedBy?: 'Explicit' | 'Default';
  /** Several accounts are the namespace's default: the choice waits until one remains. */
  undecided: boolean;
  noLinkWhy: string;
}

/** gatewayLinkedCondition says whether the store's account is there. */
function gatewayLinkedCondition(ns: string, selection: AccountSelection, primary: SmsGatewayAccount | undefined): ConditionInput {
  const { link, selectedBy } = selection;
  if (link === undefined) return { type: 'GatewayLinked', status: 'False', reason: Reason.NoGatewayAccount, message: selection.noLinkWhy };
  if (primary === undefined) {
    return {
      type: 'GatewayLinked',
      status: 'False',
      reason: Reason.GatewayAccountNotFound,
      message: `SmsGatewayAccount ${link} ${selectedBy === 'Explicit' ? 'named in spec.sms.gatewayAccountRef' : 'pinned as the default'} does not exist in namespace ${ns}`,
    };
  }
  return {
    type: 'GatewayLinked',
    status: 'True',
    reason: Reason.GatewayAccountLinked,
    message:
      selectedBy === 'Explicit'
        ? `linked to ${link}, named in spec.sms.gatewayAccountRef`
        : `linked to ${link}, the namespace default when the store was first reconciled`,
  };
}

/** StoreText is a store's text (storeText): its template, TemplateValid and the largest text. */
interface StoreText {
  template: SmsTemplate | undefined;
  templateValid: ConditionInput | undefined;
  largest: SmsSize | undefined;
}

/** StoreParts is what one version of a store would serve (computeStore's storeParts). */
interface StoreParts {
  selection: AccountSelection;
  linkKey: string | undefined;
  primary: SmsGatewayAccount | undefined;
  chain: SmsGatewayAccount[];
  chainKeys: string[];
  gatewayLinked: ConditionInput;
  text: StoreText;
  readiness: { ready: ConditionInput; offered: boolean };
}

/**
 * brokenReference is why a store that sends SMS cannot serve from its own spec alone, if it names
 * an account or a template that does not exist (a mistake in that version), else null.
 */
function brokenReference(obj: IdentityStore, parts: StoreParts): typeof Reason.GatewayAccountNotFound | typeof Reason.TemplateNotFound | null {
  if (!obj.spec.authenticationTypes.includes('SMS')) return null;
  if (parts.selection.selectedBy === 'Explicit' && parts.primary === undefined) return Reason.GatewayAccountNotFound;
  if (obj.spec.sms?.templateRef !== undefined && parts.text.templateValid?.reason === Reason.TemplateNotFound) return Reason.TemplateNotFound;
  return null;
}

/** templateKeyOf is the key of the template a store's version names, if it names one. */
function templateKeyOf(ns: string, obj: IdentityStore): string | undefined {
  const name = obj.spec.sms?.templateRef?.name;
  return name === undefined ? undefined : objectKey('SmsTemplate', ns, name);
}

/** smsReadiness decides whether SMS is offered and the store's Ready: each missing piece has its own reason. */
function smsReadiness(
  obj: IdentityStore,
  gatewayLinked: ConditionInput,
  primaryHealth: GatewayHealth | undefined,
  templateValid: ConditionInput | undefined,
  link: string | undefined,
  chain: readonly SmsGatewayAccount[],
): { ready: ConditionInput; offered: boolean } {
  if (!obj.spec.authenticationTypes.includes('SMS')) {
    return {
      offered: false,
      ready: { type: 'Ready', status: 'True', reason: Reason.SmsNotEnabled, message: 'SMS is not in spec.authenticationTypes, so it is not offered' },
    };
  }
  if (gatewayLinked.status !== 'True') {
    return { offered: false, ready: { type: 'Ready', status: 'False', reason: gatewayLinked.reason, message: `SMS is not offered: ${gatewayLinked.message}` } };
  }
  if (primaryHealth?.usable !== true) {
    return {
      offered: false,
      ready: {
        type: 'Ready',
        status: 'False',
        reason: Reason.GatewayAccountNotReady,
        message: `SMS is not offered: SmsGatewayAccount ${link} is not ready (${primaryHealth?.credentials?.message ?? 'unknown'})`,
      },
    };
  }
  if (templateValid === undefined || templateValid.status !== 'True') {
    return {
      offered: false,
      ready: {
        type: 'Ready',
        status: 'False',
        reason: templateValid?.reason ?? Reason.TemplateNotFound,
        message: `SMS is not offered: ${templateValid?.message ?? 'no text'}`,
      },
    };
  }
  // Closed enrollment stops new enrollments only: enrolled users keep authenticating.
  const closed = obj.spec.enrollment.enabled ? '' : '; new enrollments are closed (spec.enrollment.enabled is false), enrolled users keep authenticating';
  return {
    offered: true,
    ready: {
      type: 'Ready',
      status: 'True',
      reason: Reason.SmsOffered,
      message: `SMS is offered through ${chain.map((g) => g.metadata.name).join(', then ')}${closed}`,
    },
  };
}

/** reconcile is the pure function: desired state and an earlier state in, statuses and bundles out. */
export function reconcile(desired: DesiredState, previous: PreviousState | undefined, now: string): ReconcileState {
  const r = new Reconciler(previous);
  r.replace(desired, now);
  return r.state();
}

function readyOrInvalid(_key: string, inv: InvalidVersion | undefined, obj: SmsObject, ready: ConditionInput): ConditionInput {
  if (inv === undefined) return ready;
  return {
    type: 'Ready',
    status: 'False',
    reason: Reason.InvalidSpec,
    message: `generation ${inv.generation} is invalid: ${inv.messages.join('; ')}; generation ${obj.metadata.generation ?? 1} stays live`,
  };
}

// The same words on the first reconcile and every later one: a status must not change without a cause.
function noDefaultMessage(ns: string): string {
  return `no gateway account is named and namespace ${ns} had no default account when the store was first reconciled (a default links only stores first seen after it); set spec.sms.gatewayAccountRef`;
}

function roleReason(f: Finding): Reason {
  switch (f.code) {
    case DiagnosticCode.ReferenceNotFound:
      return Reason.IdentityStoreNotFound;
    case DiagnosticCode.AuthTypeNotEnabled:
      return Reason.AuthTypeNotEnabled;
    case DiagnosticCode.ChosenByEndUserTooMany:
      return Reason.ChosenByEndUserTooMany;
    case DiagnosticCode.PriorityConflict:
      return Reason.PriorityConflict;
    case DiagnosticCode.MemberInvalid:
      return Reason.MemberInvalid;
    default:
      return Reason.EnrollmentDisabled;
  }
}

function joinMessages(findings: readonly Finding[]): string {
  return findings.map((f) => f.message).join('; ');
}

interface Dirty {
  templates: Set<string>;
  roles: Set<string>;
  /** Gateways whose health (live version, secrets) and status are recomputed. */
  gateways: Set<string>;
  stores: Set<string>;
  /** Gateways whose status only is recomputed (links, fallbacks, defaults changed). */
  gatewayStatus: Set<string>;
}

function newDirty(): Dirty {
  return { templates: new Set(), roles: new Set(), gateways: new Set(), stores: new Set(), gatewayStatus: new Set() };
}

function refOfKey(key: string): Ref {
  return objectRefOf(key) as Ref;
}

function addTo<K>(map: Map<K, Set<string>>, key: K, value: string): void {
  let set = map.get(key);
  if (set === undefined) map.set(key, (set = new Set()));
  set.add(value);
}

function removeFrom<K>(map: Map<K, Set<string>>, key: K, value: string): void {
  const set = map.get(key);
  if (set === undefined) return;
  set.delete(value);
  if (set.size === 0) map.delete(key);
}

function sorted(set: ReadonlySet<string>): string[] {
  return [...set].sort();
}

function sortedMap<V>(map: ReadonlyMap<string, V>): Map<string, V> {
  return new Map([...map.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
