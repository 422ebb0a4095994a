import type { Logger } from 'pino';
import type { GatewayBundle } from '../core/bundle.ts';
import type { Credentials } from './gateway.ts';
import type { FetchLike } from './provider-request.ts';

/**
 * GatewayConfigError is an account that cannot be turned into a gateway: a missing setting or
 * credential, or a proxy the adapter cannot honour. `field` names the resource field to fix. Its
 * message never contains a credential value.
 */
export class GatewayConfigError extends Error {
  override readonly name = 'GatewayConfigError';
  readonly code = 'ERR_GATEWAY_CONFIG';
  readonly account: string;
  readonly field: string;

  constructor(account: string, field: string, message: string) {
    super(`gateway account ${account}: ${field}: ${message}`);
    this.account = account;
    this.field = field;
  }
}

/** AdapterContext is what every provider adapter is built from: the account, its resolved credentials and the wiring. */
export interface AdapterContext {
  bundle: GatewayBundle;
  credentials: Credentials;
  logger: Logger | undefined;
  /** The fetch to reach the provider with (a proxy-aware one when the account names a proxy). */
  fetch: FetchLike;
  /** Milliseconds since the epoch; injectable for signature timestamps in tests. */
  now: () => number;
}

/** requireCredential returns a resolved credential or throws GatewayConfigError naming the setting. */
export function requireCredential(ctx: AdapterContext, name: string): string {
  const value = ctx.credentials[name];
  if (value === undefined || value.length === 0) {
    throw new GatewayConfigError(ctx.bundle.name, `spec.${ctx.bundle.provider}.${name}`, 'the referenced Secret value is missing or empty');
  }
  return value;
}

/** requireSetting returns a non-secret provider setting or throws GatewayConfigError naming it. */
export function requireSetting(ctx: AdapterContext, name: string): string {
  const value = ctx.bundle.settings[name];
  if (value === undefined || value.length === 0) throw new GatewayConfigError(ctx.bundle.name, `spec.${ctx.bundle.provider}.${name}`, 'is required');
  return value;
}

/** apiRoot returns the account's baseUrl setting (or the provider's default) without a trailing slash. */
export function apiRoot(ctx: AdapterContext, fallback: string): string {
  const raw = ctx.bundle.settings.baseUrl ?? fallback;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new GatewayConfigError(ctx.bundle.name, `spec.${ctx.bundle.provider}.baseUrl`, 'is not a valid URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    throw new GatewayConfigError(ctx.bundle.name, `spec.${ctx.bundle.provider}.baseUrl`, 'must be an http or https URL');
  return raw.replace(/\/+$/, '');
}
