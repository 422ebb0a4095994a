import { canonicalJson, contentHash, directoryCredentialRefs, type Bundle } from '../core/bundle.ts';
import type { Credentials } from '../gateways/gateway.ts';
import { credentialsFor, resolveRefs, type SecretValues } from './credentials.ts';

/** BUNDLE_SECRET is the name of the per-namespace Secret the controller publishes and sidecars mount. */
export const BUNDLE_SECRET = 'smsauth-bundle';
/** CODE_KEYS_SECRET holds a namespace's code-hashing keys and decoy secret, shared by its sidecars. */
export const CODE_KEYS_SECRET = 'smsauth-code-keys';
/**
 * CREDENTIALS_LABEL marks the Secrets whose keys accounts and directories reference: the controller
 * watches those and its own, never the rest of the cluster's Secrets.
 */
const CREDENTIALS_LABEL = 'smsauth.io/credentials';
/** CREDENTIALS_SELECTOR selects the labelled credential Secrets. */
export const CREDENTIALS_SELECTOR = `${CREDENTIALS_LABEL}=true`;
const MANAGED_BY = 'smsauth';
/** MANAGED_LABELS mark what the controller writes. */
export const MANAGED_LABELS: Readonly<Record<string, string>> = { 'app.kubernetes.io/managed-by': MANAGED_BY, 'app.kubernetes.io/part-of': 'smsauth' };
/** MANAGED_SELECTOR selects the Secrets the controller writes (the bundle and the code keys). */
export const MANAGED_SELECTOR = `app.kubernetes.io/managed-by=${MANAGED_BY}`;

/** BundleFile is one key of the bundle Secret: a store's bundle and the resolved credentials of its accounts. */
export interface BundleFile {
  bundle: Bundle;
  /** By account name, then setting name. Present only in the Secret, never in statuses or logs. */
  credentials: Record<string, Credentials>;
  /** The directory's credentials by setting name (bindPassword, caBundle, clientSecret, serviceAccountKey), when it has a directory. */
  directoryCredentials?: Record<string, string>;
  /** The events endpoint's signing secret, when the store has one and it resolves. */
  eventsSigningSecret?: string;
  /** The Twilio-compatible API's auth token, when the store declares one and it resolves. */
  twilioAuthToken?: string;
}

/** bundleFileName is the key (and, mounted, the file name) of a store in the bundle Secret. */
export function bundleFileName(store: string): string {
  return `${store}.json`;
}

/**
 * bundleSecretData is the content of a namespace's bundle Secret: one JSON file per identity store,
 * with the credentials its accounts need (an account whose Secret does not resolve is left out: its
 * store's status already says so), and a hash of the whole, so that an unchanged bundle is not
 * written again.
 */
export function bundleSecretData(bundles: readonly Bundle[], values: SecretValues): { data: Record<string, string>; hash: string } {
  const data: Record<string, string> = {};
  for (const bundle of [...bundles].sort((a, b) => a.identityStore.localeCompare(b.identityStore))) {
    const credentials: Record<string, Credentials> = {};
    for (const gw of bundle.sms.gateways) {
      const resolved = credentialsFor(bundle.namespace, gw, values);
      if (resolved.ok) credentials[gw.name] = resolved.credentials;
    }
    const file: BundleFile = { bundle, credentials };
    // A bundle published before directories existed has none (the controller keeps such a bundle as it is).
    const directory = bundle.directory ?? null;
    if (directory !== null) {
      const resolved = resolveRefs(bundle.namespace, directoryCredentialRefs(directory), values);
      if (resolved.ok) file.directoryCredentials = resolved.values;
    }
    if (bundle.events !== undefined) {
      const resolved = resolveRefs(bundle.namespace, { signingSecret: bundle.events.signingSecret }, values);
      if (resolved.ok) file.eventsSigningSecret = resolved.values.signingSecret!;
    }
    if (bundle.twilioCompat !== undefined) {
      const resolved = resolveRefs(bundle.namespace, { authToken: bundle.twilioCompat.authToken }, values);
      if (resolved.ok) file.twilioAuthToken = resolved.values.authToken!;
    }
    data[bundleFileName(bundle.identityStore)] = canonicalJson(file);
  }
  return { data, hash: contentHash(data) };
}

/** parseBundleFile reads one mounted bundle file; it returns an error sentence instead of throwing. */
export function parseBundleFile(text: string): { ok: true; value: BundleFile } | { ok: false; error: string } {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return { ok: false, error: 'not JSON' };
  }
  const f = v as Partial<BundleFile> | null;
  if (
    f === null ||
    typeof f !== 'object' ||
    typeof f.bundle !== 'object' ||
    f.bundle === null ||
    f.bundle.format !== 'smsauth.io/bundle-v1' ||
    typeof f.credentials !== 'object'
  ) {
    return { ok: false, error: 'not an smsauth bundle (format smsauth.io/bundle-v1)' };
  }
  const { hash, ...body } = f.bundle;
  if (contentHash(body) !== hash) return { ok: false, error: 'its content does not match its hash (truncated or edited)' };
  return { ok: true, value: f as BundleFile };
}
