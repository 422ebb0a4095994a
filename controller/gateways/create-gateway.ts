import type { Logger } from 'pino';
import type { GatewayBundle } from '../core/bundle.ts';
import { createConsoleGateway, type ConsoleOptions } from './console-gateway.ts';
import type { Credentials, SmsGateway } from './gateway.ts';
import { GatewayConfigError, type AdapterContext } from './gateway-config.ts';
import { createPlivoGateway } from './plivo-gateway.ts';
import type { FetchLike } from './provider-request.ts';
import { createTwilioGateway } from './twilio-gateway.ts';
import { createVonageGateway } from './vonage-gateway.ts';
import { createWebhookGateway } from './webhook-gateway.ts';

export { GatewayConfigError } from './gateway-config.ts';

/** ProxySettings are an account's proxy with its credentials resolved. */
export interface ProxySettings {
  url: string;
  username?: string;
  password?: string;
}

/** CreateGatewayOptions wire an adapter to its surroundings; all are optional. */
export interface CreateGatewayOptions {
  /** A pino logger; adapters log through a child with `provider` and `account`, never text, code, full number or secret. */
  logger?: Logger;
  /** The fetch for twilio, vonage and webhook (default: the global fetch). */
  fetch?: FetchLike;
  /**
   * Builds a fetch that goes through a proxy, for accounts with `spec.proxy` (twilio, vonage,
   * webhook). Node's own fetch cannot use a proxy per request: this is where undici's ProxyAgent
   * slots in. Without it such accounts are refused with GatewayConfigError.
   */
  proxyFetch?: (proxy: ProxySettings) => FetchLike;
  /** Where the console gateway prints and keeps its outbox. */
  console?: ConsoleOptions;
  /** Milliseconds since the epoch (webhook signature timestamps); default Date.now. */
  now?: () => number;
}

/**
 * createGateway builds the adapter for an account's provider from its bundle and resolved
 * credentials (by setting name; proxy ones as `proxy.username`, `proxy.password`). It performs
 * no I/O; a missing setting or credential, or a proxy the adapter cannot honour, throws
 * GatewayConfigError naming the field.
 */
export function createGateway(bundle: GatewayBundle, credentials: Credentials, options: CreateGatewayOptions = {}): SmsGateway {
  const ctx: AdapterContext = {
    bundle,
    credentials,
    logger: options.logger,
    fetch: options.fetch ?? ((input, init) => fetch(input, init)),
    now: options.now ?? Date.now,
  };
  const proxy = proxySettings(bundle, credentials);
  switch (bundle.provider) {
    case 'plivo':
      // The plivo SDK takes the proxy itself (see createPlivoGateway).
      return createPlivoGateway(ctx);
    case 'twilio':
      return createTwilioGateway(withProxy(ctx, proxy, options));
    case 'vonage':
      return createVonageGateway(withProxy(ctx, proxy, options));
    case 'webhook':
      return createWebhookGateway(withProxy(ctx, proxy, options));
    case 'console':
      return createConsoleGateway(ctx, options.console);
    default: {
      const provider: never = bundle.provider;
      throw new GatewayConfigError(bundle.name, 'spec.provider', `unknown provider ${String(provider)}`);
    }
  }
}

function proxySettings(bundle: GatewayBundle, credentials: Credentials): ProxySettings | undefined {
  if (bundle.proxy === undefined) return undefined;
  const out: ProxySettings = { url: bundle.proxy.url };
  for (const key of ['username', 'password'] as const) {
    if (bundle.proxy[key] === undefined) continue;
    const value = credentials[`proxy.${key}`];
    if (value === undefined) throw new GatewayConfigError(bundle.name, `spec.proxy.${key}`, 'the referenced Secret value is missing');
    out[key] = value;
  }
  return out;
}

function withProxy(ctx: AdapterContext, proxy: ProxySettings | undefined, options: CreateGatewayOptions): AdapterContext {
  if (proxy === undefined) return ctx;
  if (options.proxyFetch === undefined) {
    throw new GatewayConfigError(
      ctx.bundle.name,
      'spec.proxy',
      `this build cannot send ${ctx.bundle.provider} requests through a proxy (Node's fetch needs undici's ProxyAgent); remove the proxy or use plivo`,
    );
  }
  return { ...ctx, fetch: options.proxyFetch(proxy) };
}
