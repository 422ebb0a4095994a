// The cost of a directory lookup against a real slapd (uid and member indexed): uncached (the
// user's search, then the walk up their nested groups), an unknown name, and cached, beside the bare
// LDAP round trip (one search on a bound LDAPS connection, with ldapts) measured in the same run.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'ldapts';
import { CachedDirectory } from '../controller/directories/directory.ts';
import { createLdapDirectory } from '../controller/directories/ldap-directory.ts';
import { ldapSettingsOf, startSlapd } from '../test/helpers/slapd.ts';
import { row, type BenchRow } from './harness.ts';

const SUFFIX = 'dc=acme,dc=example';
const USERS = 2000;
const LOOKUPS = 3000;

/** population adds USERS users to the test directory, each in one of 50 groups, which nest three deep. */
function population(): string {
  const out: string[] = [];
  for (let i = 0; i < USERS; i++)
    out.push(
      `dn: uid=user${i},ou=Staff,ou=People,${SUFFIX}\nobjectClass: inetOrgPerson\nuid: user${i}\ncn: User ${i}\nsn: ${i}\nmobile: +1 415 555 ${String(i % 10_000).padStart(4, '0')}\n`,
    );
  for (let g = 0; g < 50; g++) {
    const members = Array.from({ length: USERS / 50 }, (_, k) => `member: uid=user${g + 50 * k},ou=Staff,ou=People,${SUFFIX}`);
    out.push(`dn: cn=team${g},ou=Groups,${SUFFIX}\nobjectClass: groupOfNames\ncn: team${g}\n${members.join('\n')}\n`);
  }
  for (let d = 0; d < 10; d++) {
    const members = Array.from({ length: 5 }, (_, k) => `member: cn=team${d * 5 + k},ou=Groups,${SUFFIX}`);
    out.push(`dn: cn=department${d},ou=Groups,${SUFFIX}\nobjectClass: groupOfNames\ncn: department${d}\n${members.join('\n')}\n`);
  }
  out.push(
    `dn: cn=company,ou=Groups,${SUFFIX}\nobjectClass: groupOfNames\ncn: company\n${Array.from({ length: 10 }, (_, d) => `member: cn=department${d},ou=Groups,${SUFFIX}`).join('\n')}\n`,
  );
  return out.join('\n');
}

async function perOp(n: number, fn: (i: number) => Promise<unknown>): Promise<number> {
  for (let i = 0; i < 50; i++) await fn(i);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await fn(i);
  return Number(process.hrtime.bigint() - t0) / 1e3 / n;
}

/** benchDirectory measures per-lookup latency, sequentially, in µs. */
export async function benchDirectory(root: string): Promise<BenchRow[]> {
  const ldif = `${readFileSync(join(root, 'test', 'fixtures', 'directories', 'acme.ldif'), 'utf8')}\n${population()}`;
  const slapd = await startSlapd({ suffix: SUFFIX, ldif });
  const settings = ldapSettingsOf(slapd, `ou=People,${SUFFIX}`, { timeoutMs: 5000 });
  const client = new Client({ url: slapd.ldapsUrl, tlsOptions: { ca: slapd.ca } });
  // ttlMs 0: every lookup asks the directory, through the wrapper that serves (misses padded).
  const uncached = new CachedDirectory(createLdapDirectory(settings), { ttlMs: 0 });
  const cached = new CachedDirectory(createLdapDirectory(settings), { ttlMs: 3_600_000 });
  try {
    await client.bind(slapd.bindDN, slapd.bindPassword);
    const bare = await perOp(LOOKUPS, (i) => client.search(`ou=People,${SUFFIX}`, { scope: 'sub', filter: `(uid=user${i % USERS})`, attributes: ['mobile'] }));
    const groups = (await uncached.lookup('user7'))!.groups.length;
    const miss = await perOp(LOOKUPS, (i) => uncached.lookup(`user${i % USERS}`));
    const unknown = await perOp(LOOKUPS, (i) => uncached.lookup(`nobody${i}`));
    for (let i = 0; i < USERS; i++) await cached.lookup(`user${i}`);
    const hit = await perOp(LOOKUPS, (i) => cached.lookup(`user${i % USERS}`));
    // CPU of a cached lookup (user and system time of this process, over many), beside a Map's get of the same keys.
    const cpu0 = process.cpuUsage();
    for (let i = 0; i < 100 * LOOKUPS; i++) await cached.lookup(`user${i % USERS}`);
    const cpu = process.cpuUsage(cpu0);
    const hitCpu = (cpu.user + cpu.system) / (100 * LOOKUPS);
    const map = new Map(Array.from({ length: USERS }, (_, i) => [`user${i}`, i]));
    const map0 = process.cpuUsage();
    for (let i = 0; i < 100 * LOOKUPS; i++) await Promise.resolve(map.get(`user${i % USERS}`));
    const mapCpu = process.cpuUsage(map0);
    const mapPerOp = (mapCpu.user + mapCpu.system) / (100 * LOOKUPS);
    const baseline = { name: 'bare LDAP search (ldapts, bound, LDAPS)', value: bare };
    return [
      row('directory lookup, uncached (search + nested groups)', miss, 'µs', baseline, `${groups} groups each (team, department, company): 1 + 3 searches`),
      row('directory lookup, unknown user, uncached', unknown, 'µs', baseline, 'answered no sooner than users typically are'),
      row('directory lookup, cached', hit, 'µs', baseline, `${USERS} users cached`),
      row('directory lookup, cached: CPU', hitCpu, 'µs', { name: 'a Map get, awaited', value: mapPerOp }, 'issue 22 asks under 20 µs'),
    ];
  } finally {
    await client.unbind().catch(() => undefined);
    await uncached.close();
    await cached.close();
    await slapd.stop();
  }
}
