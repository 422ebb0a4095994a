import type { GatewayBundle, SecretRef } from '../core/bundle.ts';
import type { Credentials } from '../gateways/gateway.ts';

/** SecretValues are resolved Secret data: 'namespace/name' → key → value. Never logged. */
export type SecretValues = ReadonlyMap<string, ReadonlyMap<string, string>>;

/** credentialsFor resolves an account's Secret references into values by setting name (proxy ones as proxy.username, proxy.password). */
export function credentialsFor(
  namespace: string,
  gw: GatewayBundle,
  values: SecretValues,
): { ok: true; credentials: Credentials } | { ok: false; field: string } {
  const out: Record<string, string> = {};
  const refs: [string, { name: string; key: string } | undefined][] = [
    ...Object.entries(gw.credentials),
    ['proxy.username', gw.proxy?.username],
    ['proxy.password', gw.proxy?.password],
  ];
  for (const [field, ref] of refs) {
    if (ref === undefined) continue;
    const value = values.get(`${namespace}/${ref.name}`)?.get(ref.key);
    if (value === undefined) return { ok: false, field };
    out[field] = value;
  }
  return { ok: true, credentials: out };
}

/** resolveRefs resolves Secret references by setting name into values; the first that does not resolve is named. */
export function resolveRefs(
  namespace: string,
  refs: Readonly<Record<string, SecretRef>>,
  values: SecretValues,
): { ok: true; values: Record<string, string> } | { ok: false; field: string } {
  const out: Record<string, string> = {};
  for (const [field, ref] of Object.entries(refs)) {
    const value = values.get(`${namespace}/${ref.name}`)?.get(ref.key);
    if (value === undefined) return { ok: false, field };
    out[field] = value;
  }
  return { ok: true, values: out };
}

/** secretKeysOf lists, for the reconciler, only the key names of each Secret. */
export function secretKeysOf(values: SecretValues): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const [k, v] of values) out.set(k, [...v.keys()].sort());
  return out;
}

/** mergeSecretValues overlays sources in order (later wins per Secret): files in the watched folder, --secrets-dir, then the environment. */
export function mergeSecretValues(...sources: SecretValues[]): Map<string, Map<string, string>> {
  const out = new Map<string, Map<string, string>>();
  for (const source of sources) for (const [k, v] of source) out.set(k, new Map(v));
  return out;
}

/**
 * secretsFromEnv reads SMSAUTH_SECRETS, a JSON object {"namespace/name": {"key": "value"}}, for
 * credentials kept out of files. It returns an error sentence (never quoting values) when malformed.
 */
export function secretsFromEnv(
  env: Readonly<Record<string, string | undefined>>,
): { ok: true; value: Map<string, Map<string, string>> } | { ok: false; error: string } {
  const raw = env.SMSAUTH_SECRETS;
  const out = new Map<string, Map<string, string>>();
  if (raw === undefined || raw.trim() === '') return { ok: true, value: out };
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return { ok: false, error: 'SMSAUTH_SECRETS is not valid JSON; give {"namespace/name": {"key": "value"}}' };
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return { ok: false, error: 'SMSAUTH_SECRETS must be a JSON object of Secrets' };
  for (const [ref, data] of Object.entries(parsed as Record<string, unknown>)) {
    if (!/^[a-z0-9-]+\/[a-z0-9.-]+$/.test(ref)) return { ok: false, error: `SMSAUTH_SECRETS: ${JSON.stringify(ref)} is not namespace/name` };
    if (typeof data !== 'object' || data === null || Object.values(data).some((v) => typeof v !== 'string'))
      return { ok: false, error: `SMSAUTH_SECRETS: ${ref} must map keys to string values` };
    out.set(ref, new Map(Object.entries(data as Record<string, string>)));
  }
  return { ok: true, value: out };
}
