// Where the Redis store connects (--redis), and how Redis Cluster hashes a key: pure reading, no I/O.

/** RedisTarget is where the store connects: one Redis (a URL or a socket path), or a Redis Cluster's seed nodes. */
export type RedisTarget =
  | { kind: 'single'; url: string }
  | {
      kind: 'cluster';
      nodes: { host: string; port: number }[];
      username?: string;
      password?: string;
      tls: boolean;
      /** How many replicas a deciding write must reach before it is answered (WAIT): 1 unless the URL says ?replicas=N. */
      replicas: number;
    };

/**
 * A Redis Cluster's URL: its scheme, credentials, seed nodes and settings. The credentials end at
 * the last @ (as in a WHATWG URL), so that a password holding a raw @ is never read as a node.
 */
const CLUSTER_URL = /^(rediss?)\+cluster:\/\/(?:(.*)@)?([^@/?]*)\/?(?:\?([^@]*))?$/;

/**
 * parseRedisTarget reads --redis: redis://, rediss:// or a socket path for one Redis;
 * redis+cluster://[user:password@]host:port,host:port… (rediss+cluster:// for TLS) for a Redis
 * Cluster, with ?replicas=N. It answers a reason for what it cannot read.
 */
export function parseRedisTarget(url: string): RedisTarget | { error: string } {
  if (url.startsWith('/')) return { kind: 'single', url };
  const cluster = CLUSTER_URL.exec(url);
  if (cluster !== null) {
    const [, scheme, credentials, hostList, query] = cluster;
    const nodes: { host: string; port: number }[] = [];
    // An error names a node by its place, never by what was written: nothing of the URL is repeated.
    for (const [i, part] of hostList!.split(',').entries()) {
      const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/.exec(part);
      const port = Number(m?.[2] ?? 6379);
      if (m === null || port < 1 || port > 65535) return { error: `its node ${i + 1} is not a host:port` };
      nodes.push({ host: m[1]!.replace(/^\[|\]$/g, ''), port });
    }
    const params = new URLSearchParams(query ?? '');
    const unknown = [...params.keys()].find((k) => k !== 'replicas');
    if (unknown !== undefined) return { error: `?${unknown} is not a setting (only ?replicas=N)` };
    const replicas = params.get('replicas') ?? '1';
    if (!/^\d{1,2}$/.test(replicas)) return { error: '?replicas takes a number of replicas, such as 1' };
    // The user ends at the first colon; the password is the rest, colons and all.
    const colon = credentials?.indexOf(':') ?? -1;
    let user: string | undefined;
    let password: string | undefined;
    try {
      if (credentials !== undefined) user = decodeURIComponent(colon === -1 ? credentials : credentials.slice(0, colon));
      if (credentials !== undefined && colon !== -1) password = decodeURIComponent(credentials.slice(colon + 1));
    } catch {
      return { error: 'its user name or password has a % not followed by two hex digits' };
    }
    return {
      kind: 'cluster',
      nodes,
      ...(user !== undefined && user !== '' ? { username: user } : {}),
      ...(password !== undefined ? { password } : {}),
      tls: scheme === 'rediss',
      replicas: Number(replicas),
    };
  }
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    parsed = undefined;
  }
  if (parsed === undefined || !['redis:', 'rediss:'].includes(parsed.protocol) || parsed.hostname === '') return { error: 'not a Redis URL' };
  return { kind: 'single', url };
}

/**
 * clusterDisplay is a Redis Cluster's URL as it may be printed: its nodes and ?replicas, without its
 * credentials or any other setting; undefined for any other URL.
 */
export function clusterDisplay(url: string): string | undefined {
  const m = CLUSTER_URL.exec(url);
  if (m === null) return undefined;
  const replicas = new URLSearchParams(m[4] ?? '').get('replicas');
  return `${m[1]}+cluster://${m[3]}${replicas !== null && /^\d{1,2}$/.test(replicas) ? `?replicas=${replicas}` : ''}`;
}

/**
 * keyTag is the hash tag of the keys of a store, or of a gateway account: {namespace/name}. A Redis
 * Cluster keeps every key with one tag in one slot, where one script can take them together.
 */
export function keyTag(namespace: string, name: string): string {
  return `{${namespace}/${name}}`;
}

/** hashTag is the part of a key Redis Cluster hashes: the first non-empty {…}, else the whole key. */
export function hashTag(key: string): string {
  const open = key.indexOf('{');
  if (open === -1) return key;
  const close = key.indexOf('}', open + 1);
  return close === -1 || close === open + 1 ? key : key.slice(open + 1, close);
}
