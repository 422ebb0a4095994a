import { ProxyAgent, fetch as undiciFetch } from 'undici';
import type { ProxySettings } from './create-gateway.ts';
import type { FetchLike } from './provider-request.ts';

/**
 * proxyFetch returns a fetch that sends through an HTTP(S) proxy (undici's ProxyAgent, which
 * tunnels with CONNECT), with Basic proxy credentials when the account gives them. It is the one
 * place undici is imported: Node's global fetch cannot use a proxy per request.
 */
export function proxyFetch(proxy: ProxySettings): FetchLike {
  const token = proxy.username !== undefined ? `Basic ${Buffer.from(`${proxy.username}:${proxy.password ?? ''}`).toString('base64')}` : undefined;
  // proxyTunnel: CONNECT for http:// targets too (undici 8 would forward those in the clear to the proxy).
  const agent = new ProxyAgent({ uri: proxy.url, proxyTunnel: true, ...(token !== undefined ? { token } : {}) });
  return (input, init) => undiciFetch(input, { ...(init as unknown as Parameters<typeof undiciFetch>[1]), dispatcher: agent });
}
