import { createHash } from 'node:crypto';
import type { AuthenticationType, IdentityStore, SecretValue, SecurityRole, SmsGatewayAccount, SmsTemplate } from '../generated/kinds.ts';
import { parseDuration } from './duration.ts';
import { namespaceOf } from './object-key.ts';
import { minutesOf } from './object-rules.ts';
import { resolveSendLimits, type SendLimits } from './send-limits.ts';
import { resolveFraudGuard, type FraudGuard } from './fraud-guard.ts';

/** BUNDLE_FORMAT versions the bundle's shape, for sidecars that read bundles written by another controller version. */
export const BUNDLE_FORMAT = 'smsauth.io/bundle-v1';

/** SecretRef names a key of a Secret in the bundle's namespace; the edge that has secrets resolves it, never the core. */
export interface SecretRef {
  name: string;
  key: string;
}

/** GatewayBundle is a gateway account as the verifier uses it: provider settings with credentials as references. */
export interface GatewayBundle {
  name: string;
  provider: SmsGatewayAccount['spec']['provider'];
  /** Provider settings without credentials (source, from, baseUrl, url, ...). */
  settings: Record<string, string>;
  /** Credentials by setting name (authId, authToken, ...), as Secret references. */
  credentials: Record<string, SecretRef>;
  timeoutMs: number;
  sendRateLimit?: { messagesPerSecond: number; burst: number };
  proxy?: { url: string; username?: SecretRef; password?: SecretRef };
  statusCallbackUrl?: string;
}

/** DirectoryUserBundle is a user of a static directory. */
export interface DirectoryUserBundle {
  name: string;
  mobile: string | null;
  groups: string[];
  container: string | null;
}

/**
 * DirectoryBundle is the store's directory as the verifier connects to it: settings, with
 * credentials as Secret references (resolved at the edge, as a gateway's are). cacheTtlMs bounds
 * how long an answer is reused, timeoutMs how long one lookup may take.
 */
export type DirectoryBundle = { cacheTtlMs: number; timeoutMs: number } & (
  | {
      kind: 'ldap';
      /** ActiveDirectory finds nested groups with its in-chain rule; GenericLDAP walks groupMemberAttribute up. */
      flavor: 'ActiveDirectory' | 'GenericLDAP';
      urls: string[];
      startTLS: boolean;
      insecure: boolean;
      caBundle: SecretRef | null;
      bindDN: string;
      bindPassword: SecretRef;
      baseDN: string;
      userAttribute: string;
      userFilter: string | null;
      mobileAttribute: string;
      groupMemberAttribute: string;
    }
  | {
      kind: 'entra';
      tenantId: string;
      clientId: string;
      clientSecret: SecretRef;
      caBundle: SecretRef | null;
      mobileAttribute: string;
      authorityHost: string;
      graphEndpoint: string;
    }
  | { kind: 'google'; customer: string; serviceAccountKey: SecretRef; adminSubject: string; endpoint: string }
  | { kind: 'static'; users: DirectoryUserBundle[] }
);

/** RoleBundle is a security role as the policy decision needs it. */
export interface RoleBundle {
  name: string;
  priority: number;
  groups: string[];
  containers: string[];
  enforced: AuthenticationType[];
  chosenByEndUser: number;
  secondFactor: boolean;
  lockout: { failedAttemptsThreshold: number; durationMs: number };
}

/** SmsBundle is the SMS part of a bundle; `offered` false comes with the reason. */
export interface SmsBundle {
  offered: boolean;
  reason: string;
  code: { length: number; ttlMs: number; maxAttempts: number; maxSends: number; resendCooldownMs: number };
  /** The send limits the store declares, the rest filled with the defaults; absent: the verifier's defaults. */
  limits?: SendLimits;
  /** The fraud guard the store declares, the rest filled with the defaults; absent: none. */
  fraudGuard?: FraudGuard;
  allowedCountries: string[] | null;
  lastDigitsChallenge: boolean;
  /** With a directory: an unenrolled user may authenticate with the directory's mobile number. */
  secondWayAuthentication: boolean;
  /** Texts with their placeholders, by locale; 'default' always present when SMS is offered. */
  texts: Record<string, string>;
  originBoundDomain: string | null;
  /** [Minutes] as rendered. */
  minutes: number;
  /** The linked gateway first, then its fallbacks in order. */
  gateways: GatewayBundle[];
}

/** EVENT_TYPES are the events a store's events endpoint may get (spec.events.types), in a fixed order. */
export const EVENT_TYPES = ['verification.approved', 'verification.failed', 'user.locked_out', 'enrollment.changed', 'fraud.prefix_blocked'] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** EventsBundle is a store's events endpoint: where, signed with which Secret's key, which types. */
export interface EventsBundle {
  url: string;
  signingSecret: SecretRef;
  types: EventType[];
}

/** TwilioCompatBundle is how the Twilio Verify-compatible API names a store, and the token its callers authenticate with. */
export interface TwilioCompatBundle {
  serviceSid: string;
  accountSid: string;
  authToken: SecretRef;
}

/** Bundle is everything the verifier needs for one identity store, with a content hash. */
export interface Bundle {
  format: typeof BUNDLE_FORMAT;
  namespace: string;
  identityStore: string;
  /** The store generation that is live. */
  generation: number;
  type: IdentityStore['spec']['type'];
  authenticationTypes: AuthenticationType[];
  enrollmentEnabled: boolean;
  /** Where users, their groups and numbers come from; null: the calling application vouches for them. */
  directory: DirectoryBundle | null;
  sms: SmsBundle;
  /** Applied roles, enabled only, by priority (1 first). */
  roles: RoleBundle[];
  /** The events endpoint, when the store declares one. */
  events?: EventsBundle;
  /** The Twilio Verify-compatible API's names for the store, when it declares them. */
  twilioCompat?: TwilioCompatBundle;
  /** sha256 of the canonical JSON of everything above. */
  hash: string;
}

/** BundleInputs are the live objects a store's bundle is made from. */
export interface BundleInputs {
  store: IdentityStore;
  template: SmsTemplate | undefined;
  gateways: readonly SmsGatewayAccount[];
  roles: readonly SecurityRole[];
  smsOffered: boolean;
  smsReason: string;
}

/** buildBundle assembles a store's bundle from its live objects. Deterministic: the same inputs give the same hash. */
export function buildBundle(inputs: BundleInputs): Bundle {
  const { store } = inputs;
  const sms = store.spec.sms;
  const code = sms?.code ?? { length: 6, ttl: '10m', maxAttempts: 5, maxSends: 5, resendCooldown: '30s' };
  const texts: Record<string, string> = {};
  if (sms?.textMessage !== undefined) texts.default = sms.textMessage;
  else if (inputs.template !== undefined) {
    texts.default = inputs.template.spec.text;
    for (const [locale, text] of Object.entries(inputs.template.spec.locales ?? {}).sort(([a], [b]) => a.localeCompare(b))) {
      if (text !== undefined) texts[locale] = text;
    }
  }
  const body: Omit<Bundle, 'hash'> = {
    format: BUNDLE_FORMAT,
    namespace: namespaceOf(store),
    identityStore: store.metadata.name,
    generation: store.metadata.generation ?? 1,
    type: store.spec.type,
    authenticationTypes: [...store.spec.authenticationTypes],
    enrollmentEnabled: store.spec.enrollment.enabled,
    directory: directoryBundle(store),
    sms: {
      offered: inputs.smsOffered,
      reason: inputs.smsReason,
      code: {
        length: code.length,
        ttlMs: parseDuration(code.ttl) ?? 600_000,
        maxAttempts: code.maxAttempts,
        maxSends: code.maxSends,
        resendCooldownMs: parseDuration(code.resendCooldown) ?? 30_000,
      },
      // Only when declared: a store that declares none keeps the verifier's defaults (and its hash).
      ...(sms?.limits !== undefined ? { limits: resolveSendLimits(sms.limits) } : {}),
      ...(sms?.fraudGuard !== undefined ? { fraudGuard: resolveFraudGuard(sms.fraudGuard) } : {}),
      allowedCountries: sms?.allowedCountries !== undefined ? [...sms.allowedCountries].sort() : null,
      lastDigitsChallenge: sms?.lastDigitsChallenge ?? true,
      secondWayAuthentication: sms?.secondWayAuthentication ?? false,
      texts,
      originBoundDomain: sms?.textMessage === undefined ? (inputs.template?.spec.originBoundDomain ?? null) : null,
      minutes: minutesOf(code.ttl),
      gateways: inputs.gateways.map(toGatewayBundle),
    },
    roles: inputs.roles
      .filter((r) => r.spec.enabled)
      .sort((a, b) => a.spec.priority - b.spec.priority || a.metadata.name.localeCompare(b.metadata.name))
      .map(roleBundle),
    // Only when declared: a store without one keeps its hash.
    ...(store.spec.events !== undefined ? { events: eventsBundle(store.spec.events) } : {}),
    ...(store.spec.twilioCompat !== undefined
      ? {
          twilioCompat: {
            serviceSid: store.spec.twilioCompat.serviceSid,
            accountSid: store.spec.twilioCompat.accountSid,
            authToken: { ...store.spec.twilioCompat.authToken.secretRef },
          },
        }
      : {}),
  };
  return { ...body, hash: contentHash(body) };
}

/** toGatewayBundle is an account as the verifier and the gateways use it: settings, credential references, limits. */
export function toGatewayBundle(gw: SmsGatewayAccount): GatewayBundle {
  const spec = gw.spec;
  const settings: Record<string, string> = {};
  const credentials: Record<string, SecretRef> = {};
  const block = (spec.provider === 'console' ? spec.console : spec[spec.provider]) as Record<string, unknown> | undefined;
  for (const [k, v] of Object.entries(block ?? {}).sort(([a], [b]) => a.localeCompare(b))) {
    if (typeof v === 'string') settings[k] = v;
    else if (isSecretValue(v)) credentials[k] = { name: v.secretRef.name, key: v.secretRef.key };
  }
  const out: GatewayBundle = { name: gw.metadata.name, provider: spec.provider, settings, credentials, timeoutMs: parseDuration(spec.timeout) ?? 10_000 };
  if (spec.sendRateLimit !== undefined) {
    out.sendRateLimit = { messagesPerSecond: spec.sendRateLimit.messagesPerSecond, burst: spec.sendRateLimit.burst ?? spec.sendRateLimit.messagesPerSecond };
  }
  if (spec.proxy !== undefined) {
    out.proxy = { url: spec.proxy.url };
    if (spec.proxy.username !== undefined) out.proxy.username = { ...spec.proxy.username.secretRef };
    if (spec.proxy.password !== undefined) out.proxy.password = { ...spec.proxy.password.secretRef };
  }
  if (spec.statusCallbackUrl !== undefined) out.statusCallbackUrl = spec.statusCallbackUrl;
  return out;
}

function directoryBundle(store: IdentityStore): DirectoryBundle | null {
  const dir = store.spec.directory;
  if (dir === undefined) return null;
  const limits = { cacheTtlMs: parseDuration(dir.cacheTTL) ?? 300_000, timeoutMs: parseDuration(dir.timeout) ?? 5000 };
  if (dir.ldap !== undefined) {
    const l = dir.ldap;
    const ad = store.spec.type === 'ActiveDirectory';
    return {
      ...limits,
      kind: 'ldap',
      flavor: ad ? 'ActiveDirectory' : 'GenericLDAP',
      urls: [l.url, ...(l.urls ?? [])],
      startTLS: l.startTLS,
      insecure: l.insecure,
      caBundle: l.caBundle === undefined ? null : { ...l.caBundle.secretRef },
      bindDN: l.bindDN,
      bindPassword: { ...l.bindPassword.secretRef },
      baseDN: l.baseDN,
      userAttribute: l.userAttribute ?? (ad ? 'sAMAccountName' : 'uid'),
      userFilter: l.userFilter ?? null,
      mobileAttribute: l.mobileAttribute,
      groupMemberAttribute: l.groupMemberAttribute,
    };
  }
  if (dir.entra !== undefined) {
    const e = dir.entra;
    return {
      ...limits,
      kind: 'entra',
      tenantId: e.tenantId,
      clientId: e.clientId,
      clientSecret: { ...e.clientSecret.secretRef },
      caBundle: e.caBundle === undefined ? null : { ...e.caBundle.secretRef },
      mobileAttribute: e.mobileAttribute,
      authorityHost: e.authorityHost,
      graphEndpoint: e.graphEndpoint,
    };
  }
  if (dir.google !== undefined) {
    const g = dir.google;
    return {
      ...limits,
      kind: 'google',
      customer: g.customer,
      serviceAccountKey: { ...g.serviceAccountKey.secretRef },
      adminSubject: g.adminSubject,
      endpoint: g.endpoint,
    };
  }
  const users = (dir.static?.users ?? []).map((u) => ({
    name: u.name,
    mobile: u.mobile ?? null,
    groups: [...(u.groups ?? [])],
    container: u.container ?? null,
  }));
  return { ...limits, kind: 'static', users: users.sort((a, b) => a.name.localeCompare(b.name)) };
}

function eventsBundle(events: NonNullable<IdentityStore['spec']['events']>): EventsBundle {
  const types = events.types === undefined ? EVENT_TYPES : EVENT_TYPES.filter((t) => events.types!.includes(t));
  return { url: events.url, signingSecret: { ...events.signingSecret.secretRef }, types: [...types] };
}

/** endpointHost is a URL's scheme and host, for messages and status (its path or query may hold a token). */
export function endpointHost(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}`;
  } catch {
    return 'the endpoint';
  }
}

/** storeSecretRefsOf lists every Secret reference of a store (its directory's, its events endpoint's), with the field that holds it. */
export function storeSecretRefsOf(store: IdentityStore): { field: string; ref: SecretRef }[] {
  const out = directorySecretRefsOf(store);
  if (store.spec.events !== undefined) out.push({ field: 'spec.events.signingSecret', ref: store.spec.events.signingSecret.secretRef });
  if (store.spec.twilioCompat !== undefined) out.push({ field: 'spec.twilioCompat.authToken', ref: store.spec.twilioCompat.authToken.secretRef });
  return out;
}

/** directorySecretRefsOf lists every Secret reference of a store's directory, with the field that holds it. */
export function directorySecretRefsOf(store: IdentityStore): { field: string; ref: SecretRef }[] {
  const dir = store.spec.directory;
  const out: { field: string; ref: SecretRef }[] = [];
  if (dir?.ldap !== undefined) {
    out.push({ field: 'spec.directory.ldap.bindPassword', ref: dir.ldap.bindPassword.secretRef });
    if (dir.ldap.caBundle !== undefined) out.push({ field: 'spec.directory.ldap.caBundle', ref: dir.ldap.caBundle.secretRef });
  }
  if (dir?.entra !== undefined) {
    out.push({ field: 'spec.directory.entra.clientSecret', ref: dir.entra.clientSecret.secretRef });
    if (dir.entra.caBundle !== undefined) out.push({ field: 'spec.directory.entra.caBundle', ref: dir.entra.caBundle.secretRef });
  }
  if (dir?.google !== undefined) out.push({ field: 'spec.directory.google.serviceAccountKey', ref: dir.google.serviceAccountKey.secretRef });
  return out;
}

/** directoryCredentialRefs are a directory bundle's Secret references by setting name (bindPassword, caBundle, clientSecret, serviceAccountKey). */
export function directoryCredentialRefs(dir: DirectoryBundle): Record<string, SecretRef> {
  switch (dir.kind) {
    case 'ldap':
      return { bindPassword: dir.bindPassword, ...(dir.caBundle !== null ? { caBundle: dir.caBundle } : {}) };
    case 'entra':
      return { clientSecret: dir.clientSecret, ...(dir.caBundle !== null ? { caBundle: dir.caBundle } : {}) };
    case 'google':
      return { serviceAccountKey: dir.serviceAccountKey };
    case 'static':
      return {};
  }
}

function roleBundle(role: SecurityRole): RoleBundle {
  const spec = role.spec;
  return {
    name: role.metadata.name,
    priority: spec.priority,
    groups: [...spec.members.groups],
    containers: [...spec.members.containers],
    enforced: [...spec.authenticationPolicy.enforced],
    chosenByEndUser: spec.authenticationPolicy.chosenByEndUser,
    secondFactor: spec.authenticationPolicy.secondFactor,
    lockout: { failedAttemptsThreshold: spec.lockout.failedAttemptsThreshold, durationMs: parseDuration(spec.lockout.duration) ?? 900_000 },
  };
}

function isSecretValue(v: unknown): v is SecretValue {
  return typeof v === 'object' && v !== null && 'secretRef' in v;
}

/** secretRefsOf lists every Secret reference of a gateway account, with the field that holds it. */
export function secretRefsOf(gw: SmsGatewayAccount): { field: string; ref: SecretRef }[] {
  const out: { field: string; ref: SecretRef }[] = [];
  const block = (gw.spec.provider === 'console' ? undefined : gw.spec[gw.spec.provider]) as Record<string, unknown> | undefined;
  for (const [k, v] of Object.entries(block ?? {})) if (isSecretValue(v)) out.push({ field: `spec.${gw.spec.provider}.${k}`, ref: v.secretRef });
  for (const k of ['username', 'password'] as const) {
    const v = gw.spec.proxy?.[k];
    if (v !== undefined) out.push({ field: `spec.proxy.${k}`, ref: v.secretRef });
  }
  return out;
}

/** contentHash is the sha256 of a value's canonical JSON (keys sorted at every level). */
export function contentHash(value: unknown): string {
  return createHash('sha256').update(canonicalJson(value)).digest('hex');
}

/**
 * canonicalJson writes JSON with object keys sorted, so that equal values give equal text. It is a
 * persisted format: bundle hashes (status.bundleHash, the smsauth-bundle Secret) and idempotency
 * fingerprints are hashes of it, so changing it changes every hash once. For the values smsauth
 * hashes it is RFC 8785 (JCS): keys sorted by UTF-16 code units (JavaScript's sort), numbers and
 * strings as ECMAScript's JSON.stringify writes them, which is the rule JCS adopts; it differs
 * only where JCS refuses input (lone surrogates, which the API refuses before, and non-finite
 * numbers, written null as JSON.stringify does). test/canonical-json.test.ts holds RFC 8785's own
 * example. Twenty lines here rather than a dependency for that.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) out += (i > 0 ? ',' : '') + (value[i] === undefined ? 'null' : canonicalJson(value[i]));
    return out + ']';
  }
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj).sort();
  let out = '{';
  let first = true;
  for (const k of keys) {
    const v = obj[k];
    if (v === undefined) continue;
    out += (first ? '' : ',') + JSON.stringify(k) + ':' + canonicalJson(v);
    first = false;
  }
  return out + '}';
}
