import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
// @ts-expect-error -- no types
import autocannon from 'autocannon';
const [store, kind, redisUrl] = process.argv.slice(2);
const file = `/tmp/w/prof-${store}-${kind}.cpuprofile`;
const args = ['bench/verifier-server.ts', '--mode', 'verifier', '--store', store!, '--profile', file, '--prepare', kind === 'check' ? '60000' : '0', '--bindings', '200000'];
if (redisUrl) args.push('--redis', redisUrl);
const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
let out = '';
const served = await new Promise<{ url: string; prepared: { id: string; code: string }[] }>((resolve) => child.stdout!.on('data', (d: Buffer) => { out += d; const nl = out.indexOf('\n'); if (nl >= 0) resolve(JSON.parse(out.slice(0, nl))); }));
let i = 0;
const r = await (autocannon as any)({ url: served.url, connections: 16, duration: 6, requests: [{ setupRequest: (req: any) => {
  if (kind === 'start') return { ...req, method: 'POST', path: '/v1/bench/corp/verifications', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ to: `+3362${String(++i % 10_000_000).padStart(7, '0')}`, purpose: 'enroll', user: `u${i}` }) };
  const p = served.prepared[served.prepared.length - 1 - (i++ % served.prepared.length)]!;
  return { ...req, method: 'POST', path: `/v1/bench/corp/verifications/${p.id}/check`, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ code: p.code }) };
} }] });
console.log('rps', r.requests.average, 'non2xx', r.non2xx, 'p99', r.latency.p99);
child.kill('SIGTERM');
await new Promise((res) => child.once('exit', res));
const prof = JSON.parse(readFileSync(file, 'utf8'));
const self = new Map<string, number>();
const byId = new Map<number, any>(prof.nodes.map((n: any) => [n.id, n]));
const dt = new Map<number, number>();
prof.samples.forEach((s: number, k: number) => dt.set(s, (dt.get(s) ?? 0) + (prof.timeDeltas[k] ?? 0)));
let total = 0;
for (const [id, t] of dt) { const n = byId.get(id); const f = n.callFrame; const key = `${f.functionName || '(anon)'} ${f.url.replace(/.*\/(node_modules\/[^/]+|controller)\//, '$1/')}:${f.lineNumber}`; self.set(key, (self.get(key) ?? 0) + t); total += t; }
// inclusive by file
const fileSelf = new Map<string, number>();
for (const [id, t] of dt) { const f = byId.get(id).callFrame; const key = f.url.replace(/.*\/(node_modules\/[^/]+|controller\/[^/]+)\/.*/, '$1') || f.functionName; fileSelf.set(key, (fileSelf.get(key) ?? 0) + t); }
console.log('total ms', (total / 1000).toFixed(0));
for (const [k, t] of [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, 30)) console.log((100 * t / total).toFixed(1).padStart(5), k);
console.log('--- by package/dir');
for (const [k, t] of [...fileSelf.entries()].sort((a, b) => b[1] - a[1]).slice(0, 20)) console.log((100 * t / total).toFixed(1).padStart(5), k);
