import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { canonicalJson, type Bundle, type GatewayBundle } from '../core/bundle.ts';
import { tokenDigest } from '../core/http-route.ts';
import type { Credentials, SmsGateway } from '../gateways/gateway.ts';
import type { ResolvedStore } from '../verifier/verifier.ts';
import { credentialsFor, resolveRefs, type SecretValues } from './credentials.ts';
import { signingKeyOf } from '../verifier/events.ts';
import type { DirectoryPool } from './directory-pool.ts';
import { unavailableDirectory } from '../directories/directory.ts';

/** GatewayFactory builds an adapter (createGateway, or a fake in tests). */
export type GatewayFactory = (gw: GatewayBundle, credentials: Credentials) => SmsGateway;

/**
 * GatewayPool turns bundles into stores ready to serve: it resolves each account's credentials and
 * builds its adapter, reusing an adapter while neither its settings nor its secret values change
 * (a rotated Secret builds a new one). An account that cannot be built is left out of the chain and
 * logged by field, never by value.
 */
export class GatewayPool {
  private readonly cache = new Map<string, { digest: string; gateway: SmsGateway }>();
  /** The accounts (ns/name) of each store resolved (ns/store): an adapter no store uses any more is let go. */
  private readonly storeAccounts = new Map<string, string[]>();

  private readonly factory: GatewayFactory;
  private readonly log: Logger;
  private readonly directories: DirectoryPool | undefined;

  /** directories builds the stores' directories; without it, a store that names a directory has one that is always unavailable. */
  constructor(factory: GatewayFactory, log: Logger, directories?: DirectoryPool) {
    this.factory = factory;
    this.log = log;
    this.directories = directories;
  }

  /** resolve returns the store with its chain of ready gateways, and its directory when it names one. */
  resolve(bundle: Bundle, values: SecretValues): ResolvedStore {
    this.storeAccounts.set(
      `${bundle.namespace}/${bundle.identityStore}`,
      bundle.sms.gateways.map((gw) => `${bundle.namespace}/${gw.name}`),
    );
    const gateways: { account: string; gateway: SmsGateway; budgetMs: number }[] = [];
    for (const gw of bundle.sms.gateways) {
      const gateway = this.gateway(bundle.namespace, gw, values);
      if (gateway !== undefined) gateways.push({ account: gw.name, gateway, budgetMs: gw.timeoutMs });
    }
    const twilio = bundle.twilioCompat === undefined ? undefined : resolveRefs(bundle.namespace, { authToken: bundle.twilioCompat.authToken }, values);
    const events = {
      ...(bundle.events === undefined ? {} : { eventsKey: eventsKeyOf(bundle, values) }),
      ...(twilio?.ok === true ? { twilioTokenDigest: tokenDigest(twilio.values.authToken!) } : {}),
    };
    // A bundle written before directories existed has none.
    const dir = bundle.directory ?? null;
    if (dir === null) {
      this.directories?.forget(bundle.namespace, bundle.identityStore);
      return { bundle, gateways, ...events };
    }
    const directory = this.directories?.directory(bundle.namespace, bundle.identityStore, dir, values) ?? unavailableDirectory('no directory pool');
    return { bundle, gateways, directory, ...events };
  }

  /** forget lets go of a store that is no longer served (its directory's connection closes). */
  forget(namespace: string, store: string): void {
    this.directories?.forget(namespace, store);
    this.storeAccounts.delete(`${namespace}/${store}`);
  }

  /** forgetAccount lets go of an account's adapter (the account was deleted). */
  forgetAccount(namespace: string, account: string): void {
    this.cache.delete(`${namespace}/${account}`);
  }

  /** size is how many adapters are kept. */
  get size(): number {
    return this.cache.size;
  }

  /** prune lets go of the adapters of accounts that no resolved store uses (deleted, or unlinked): once after resolving every store of a reload. */
  prune(): void {
    const used = new Set([...this.storeAccounts.values()].flat());
    for (const key of [...this.cache.keys()]) if (!used.has(key)) this.cache.delete(key);
  }

  /** gateway returns the adapter of one account, or undefined when it cannot be built. */
  gateway(namespace: string, gw: GatewayBundle, values: SecretValues): SmsGateway | undefined {
    const resolved = credentialsFor(namespace, gw, values);
    if (!resolved.ok) {
      this.log.warn({ namespace, account: gw.name, field: resolved.field }, 'gateway account left out: a credential does not resolve');
      return undefined;
    }
    const digest = createHash('sha256').update(canonicalJson(gw)).update(canonicalJson(resolved.credentials)).digest('hex');
    const key = `${namespace}/${gw.name}`;
    const cached = this.cache.get(key);
    if (cached?.digest === digest) return cached.gateway;
    try {
      const gateway = this.factory(gw, resolved.credentials);
      this.cache.set(key, { digest, gateway });
      return gateway;
    } catch (err) {
      this.log.error(
        { namespace, account: gw.name, field: (err as { field?: string }).field, code: (err as { code?: string }).code },
        'gateway account left out: its settings are refused',
      );
      return undefined;
    }
  }
}

/** eventsKeyOf resolves the signing secret of a store's events endpoint, or says (by field, never by value) why it cannot. */
function eventsKeyOf(bundle: Bundle, values: SecretValues): NonNullable<ResolvedStore['eventsKey']> {
  const ref = bundle.events!.signingSecret;
  const resolved = resolveRefs(bundle.namespace, { signingSecret: ref }, values);
  if (!resolved.ok) return { ok: false, problem: `spec.events.signingSecret: key ${ref.key} of Secret ${ref.name} not found` };
  return signingKeyOf(resolved.values.signingSecret!, `spec.events.signingSecret (Secret ${ref.name}, key ${ref.key}) `);
}
