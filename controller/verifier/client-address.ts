import { BlockList, isIP } from 'node:net';

/** EndUserClient is the end user's client as the audit trail records it. */
export interface EndUserClient {
  ip: string;
  userAgent: string;
}

/**
 * TrustedProxies are the addresses whose X-Forwarded-For is believed (`--trusted-proxies`): a
 * list of addresses and CIDR ranges, IPv4 or IPv6.
 */
export class TrustedProxies {
  private readonly list = new BlockList();
  readonly empty: boolean;

  /** Throws with the entry at fault when one is neither an address nor a range. */
  constructor(entries: readonly string[]) {
    for (const raw of entries) {
      const entry = raw.trim();
      const [address, bits, extra] = entry.split('/');
      const family = isIP(address ?? '');
      const prefix = bits === undefined ? undefined : Number(bits);
      if (family === 0 || extra !== undefined || (bits !== undefined && (!/^\d{1,3}$/.test(bits) || prefix! > (family === 4 ? 32 : 128)))) {
        throw new Error(`${entry} is not an IP address or a CIDR range (10.0.0.0/8, fd00::/8)`);
      }
      const type = family === 4 ? 'ipv4' : 'ipv6';
      if (prefix === undefined) this.list.addAddress(address!, type);
      else this.list.addSubnet(address!, prefix, type);
    }
    this.empty = entries.length === 0;
  }

  has(address: string): boolean {
    const plain = unmapped(address);
    const family = isIP(plain);
    return family !== 0 && this.list.check(plain, family === 4 ? 'ipv4' : 'ipv6');
  }
}

/**
 * resolveClient names the end user's client for history: the `client` the application sends in
 * the body (it holds the token, so its word counts); else, when the immediate peer is a trusted
 * proxy, the nearest address of X-Forwarded-For that is not a trusted proxy itself (read from the
 * right: the left part is whatever the client wrote); else the peer. A forwarded header from an
 * untrusted peer is ignored, so that a caller cannot write its own address into the audit trail.
 */
export function resolveClient(
  peer: string,
  headers: Readonly<Record<string, string | undefined>>,
  body: { address?: string; userAgent?: string } | undefined,
  trusted: TrustedProxies,
): EndUserClient {
  const userAgent = (body?.userAgent ?? headers['user-agent'] ?? '').slice(0, 256);
  if (body?.address !== undefined) return { ip: unmapped(body.address), userAgent };
  const forwarded = headers['x-forwarded-for'];
  if (forwarded !== undefined && !trusted.empty && trusted.has(peer)) {
    const hops = forwarded.split(',').map((h) => unmapped(h.trim()));
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = hops[i]!;
      if (isIP(hop) === 0) break; // a malformed hop: what lies left of it cannot be trusted either
      if (!trusted.has(hop) || i === 0) return { ip: hop, userAgent };
    }
  }
  return { ip: unmapped(peer), userAgent };
}

/** unmapped writes an IPv4-mapped IPv6 address (::ffff:10.0.0.1) as the IPv4 address. */
function unmapped(address: string): string {
  return /^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(address) ? address.slice(7) : address;
}
