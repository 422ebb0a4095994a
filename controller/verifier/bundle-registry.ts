import type { SmsGateway } from '../gateways/gateway.ts';
import type { BundleSource, ResolvedStore } from './verifier.ts';
import type { EventEndpoint } from './events.ts';

/**
 * BundleRegistry is the verifier's view of the stores it serves. Each store is replaced whole,
 * in one assignment, so a request sees either the old or the new bundle, never a mix; requests
 * and verifications in flight are untouched (they live in the state store).
 */
export class BundleRegistry implements BundleSource {
  private readonly stores = new Map<string, ResolvedStore>();
  private readonly accounts = new Map<string, { gateway: SmsGateway; statusCallbackUrl?: string }>();
  private loaded = false;

  /** put serves a store with a new bundle, or stops serving it (undefined). */
  put(namespace: string, store: string, resolved: ResolvedStore | undefined): void {
    if (resolved === undefined) this.stores.delete(`${namespace}/${store}`);
    else this.stores.set(`${namespace}/${store}`, resolved);
  }

  /** putAccount registers an account's gateway for delivery callbacks, or removes it. */
  putAccount(namespace: string, account: string, entry: { gateway: SmsGateway; statusCallbackUrl?: string } | undefined): void {
    if (entry === undefined) this.accounts.delete(`${namespace}/${account}`);
    else this.accounts.set(`${namespace}/${account}`, entry);
  }

  /** markLoaded says the first configuration is in: the verifier becomes ready. */
  markLoaded(): void {
    this.loaded = true;
  }

  /** storeKeys lists the stores served, as namespace/name. */
  storeKeys(): string[] {
    return [...this.stores.keys()].sort();
  }

  /** byServiceSid finds the store the Twilio-compatible API names by a service SID. */
  byServiceSid(serviceSid: string): ResolvedStore | undefined {
    for (const r of this.stores.values()) if (r.bundle.twilioCompat?.serviceSid === serviceSid) return r;
    return undefined;
  }

  /** eventEndpoints lists the events endpoints of the stores served. */
  eventEndpoints(): EventEndpoint[] {
    const out: EventEndpoint[] = [];
    for (const r of this.stores.values()) {
      const events = r.bundle.events;
      if (events === undefined) continue;
      const key = r.eventsKey ?? { ok: false, problem: 'the signing secret was not resolved' };
      out.push({ namespace: r.bundle.namespace, store: r.bundle.identityStore, url: events.url, types: events.types, key });
    }
    return out;
  }

  get(namespace: string, store: string): ResolvedStore | undefined {
    return this.stores.get(`${namespace}/${store}`);
  }

  gatewayForCallbacks(namespace: string, account: string): { gateway: SmsGateway; statusCallbackUrl?: string } | undefined {
    return this.accounts.get(`${namespace}/${account}`);
  }

  ready(): boolean {
    return this.loaded;
  }
}
