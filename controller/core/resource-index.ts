import type { IdentityStore, SecurityRole, SmsGatewayAccount, SmsObject, SmsTemplate } from '../generated/kinds.ts';
import { keyOf, namespaceOf, objectKey } from './object-key.ts';

/**
 * ResourceIndex holds the current objects by key, with the lookups the rules need: by name within
 * a namespace, the namespace's default gateway accounts, and the roles of an identity store.
 * It is updated in place (upsert/remove) so that it can follow a stream of edits.
 */
export class ResourceIndex {
  private readonly byKey = new Map<string, SmsObject>();
  private readonly rolesByStore = new Map<string, Set<string>>();
  private readonly defaultsByNamespace = new Map<string, Set<string>>();

  /**
   * listNames: whether namesOf answers (lint messages list what exists). The reconciler turns it
   * off: a status must depend only on the objects it names, or an unrelated edit would change it.
   */
  private readonly listNames: boolean;

  constructor(objects: Iterable<SmsObject> = [], listNames = true) {
    this.listNames = listNames;
    for (const o of objects) this.upsert(o);
  }

  /** upsert adds or replaces an object. */
  upsert(obj: SmsObject): void {
    this.remove(keyOf(obj));
    this.byKey.set(keyOf(obj), obj);
    if (obj.kind === 'SmsGatewayAccount' && obj.spec.default) {
      let set = this.defaultsByNamespace.get(namespaceOf(obj));
      if (set === undefined) this.defaultsByNamespace.set(namespaceOf(obj), (set = new Set()));
      set.add(keyOf(obj));
    }
    if (obj.kind === 'SecurityRole') {
      const store = objectKey('IdentityStore', namespaceOf(obj), obj.spec.identityStoreRef.name);
      let set = this.rolesByStore.get(store);
      if (set === undefined) this.rolesByStore.set(store, (set = new Set()));
      set.add(keyOf(obj));
    }
  }

  /** remove deletes an object by key; absent keys are ignored. */
  remove(key: string): void {
    const old = this.byKey.get(key);
    if (old === undefined) return;
    this.byKey.delete(key);
    if (old.kind === 'SmsGatewayAccount') this.defaultsByNamespace.get(namespaceOf(old))?.delete(key);
    if (old.kind === 'SecurityRole') {
      const store = objectKey('IdentityStore', namespaceOf(old), old.spec.identityStoreRef.name);
      this.rolesByStore.get(store)?.delete(key);
    }
  }

  /** get returns the object with that key. */
  get(key: string): SmsObject | undefined {
    return this.byKey.get(key);
  }

  /** all returns every object. */
  all(): IterableIterator<SmsObject> {
    return this.byKey.values();
  }

  /** gateway returns the SmsGatewayAccount of that name in the namespace. */
  gateway(namespace: string, name: string): SmsGatewayAccount | undefined {
    return this.byKey.get(objectKey('SmsGatewayAccount', namespace, name)) as SmsGatewayAccount | undefined;
  }

  /** template returns the SmsTemplate of that name in the namespace. */
  template(namespace: string, name: string): SmsTemplate | undefined {
    return this.byKey.get(objectKey('SmsTemplate', namespace, name)) as SmsTemplate | undefined;
  }

  /** store returns the IdentityStore of that name in the namespace. */
  store(namespace: string, name: string): IdentityStore | undefined {
    return this.byKey.get(objectKey('IdentityStore', namespace, name)) as IdentityStore | undefined;
  }

  /** rolesOf returns the SecurityRoles that name the store, sorted by priority then name. */
  rolesOf(namespace: string, store: string): SecurityRole[] {
    const keys = this.rolesByStore.get(objectKey('IdentityStore', namespace, store)) ?? new Set<string>();
    return [...keys]
      .map((k) => this.byKey.get(k) as SecurityRole)
      .sort((a, b) => a.spec.priority - b.spec.priority || a.metadata.name.localeCompare(b.metadata.name));
  }

  /** defaultGateways returns the namespace's accounts marked default, sorted by name. */
  defaultGateways(namespace: string): SmsGatewayAccount[] {
    const keys = this.defaultsByNamespace.get(namespace) ?? new Set<string>();
    return [...keys].map((k) => this.byKey.get(k) as SmsGatewayAccount).sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  }

  /** storesWithServiceSid lists, sorted, the namespace's stores that name a Twilio service SID. */
  storesWithServiceSid(namespace: string, serviceSid: string): string[] {
    const out: string[] = [];
    for (const o of this.byKey.values()) {
      if (o.kind === 'IdentityStore' && namespaceOf(o) === namespace && o.spec.twilioCompat?.serviceSid === serviceSid) out.push(o.metadata.name);
    }
    return out.sort();
  }

  /** namesOf lists the names of a kind in a namespace, sorted, for messages that say what exists. */
  namesOf(kind: SmsObject['kind'], namespace: string): string[] {
    const out: string[] = [];
    if (!this.listNames) return out;
    for (const o of this.byKey.values()) if (o.kind === kind && namespaceOf(o) === namespace) out.push(o.metadata.name);
    return out.sort();
  }
}
