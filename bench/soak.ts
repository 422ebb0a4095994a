// `npm run soak [-- --duration 5m --rate 40]`: a bounded soak of `smsauth run` on examples/, on
// loopback. Mixed traffic (enroll, check, resend, authenticate, unknown users, reads) arrives at a
// steady rate whatever the answers' latency (open loop); memory is sampled from /metrics. It fails
// (exit 1) on any answer an operation does not expect (429s from the limits are expected), on an
// error logged by the server, or when memory keeps growing. Not part of `npm test`.
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { packageRoot } from '../controller/adapters/files.ts';
import { parseDuration } from '../controller/core/duration.ts';
import { normalizeNumber } from '../controller/core/phone.ts';

const BASE = '/v1/identity/corp-ad';
// Numbers over many prefixes (the per-prefix limit is 50 sends in 10 minutes): US area codes and French mobile blocks.
const AREAS = [
  201, 202, 203, 205, 206, 207, 208, 209, 210, 212, 213, 214, 215, 216, 217, 218, 219, 224, 225, 228, 229, 231, 234, 239, 240, 248, 251, 252, 253, 254, 256,
  260, 262, 267, 269, 270, 276, 281, 301, 302, 303, 304, 305, 307, 308, 309, 310, 312, 313, 314, 315, 316, 317, 318, 319, 320, 321, 323, 325, 330,
];
function candidateNumber(n: number): string {
  if (n % 2 === 0) return `+1${AREAS[(n / 2) % AREAS.length]}555${String(1000 + (Math.floor(n / 2 / AREAS.length) % 9000))}`;
  const m = (n - 1) / 2;
  return `+336${String(m % 100).padStart(2, '0')}${String(Math.floor(m / 100) % 1_000_000).padStart(6, '0')}`;
}
let drawn = 0;
/** nextNumber draws the next number that the store accepts (libphonenumber's metadata decides, as the server's does). */
function nextNumber(): string {
  for (;;) {
    const candidate = candidateNumber(drawn++);
    if (normalizeNumber(candidate, ['US', 'FR']).ok) return candidate;
  }
}

interface OpStats {
  latencies: number[];
  statuses: Map<string, number>;
  unexpected: number;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { duration: { type: 'string', default: '5m' }, rate: { type: 'string', default: '40' }, sample: { type: 'string', default: '5s' } },
  });
  const durationMs = parseDuration(values.duration) ?? 300_000;
  const rate = Number(values.rate);
  const sampleMs = parseDuration(values.sample) ?? 5000;
  const root = packageRoot();
  const state = mkdtempSync(join(tmpdir(), 'smsauth-soak-'));
  const child = spawn(
    process.execPath,
    [join(root, 'bin', 'smsauth.js'), 'run', '--dir', join(root, 'examples'), '--state-dir', state, '--port', '0', '--log-level', 'info'],
    { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let serverErrors = 0;
  let stderrTail = '';
  child.stderr.on('data', (d: Buffer) => {
    const text = d.toString();
    stderrTail = (stderrTail + text).slice(-4000);
    serverErrors += (text.match(/"level":(50|60)/g) ?? []).length;
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /serving (http:\/\/[\d.:]+)/.exec(out);
      if (m !== null) resolve(m[1]!);
    });
    child.once('exit', (code) => reject(new Error(`smsauth run exited ${code}: ${stderrTail}`)));
  });

  // The console gateway's outbox is the phones: read it incrementally, code by verification id.
  const codes = new Map<string, string>();
  let outboxOffset = 0;
  let outboxRest = '';
  const readOutbox = (): void => {
    let fd: number;
    try {
      fd = openSync(join(state, 'outbox.jsonl'), 'r');
    } catch {
      return;
    }
    try {
      const buf = Buffer.alloc(1 << 20);
      for (let n; (n = readSync(fd, buf, 0, buf.length, outboxOffset)) > 0;) {
        outboxOffset += n;
        const lines = (outboxRest + buf.subarray(0, n).toString('utf8')).split('\n');
        outboxRest = lines.pop()!;
        for (const line of lines) {
          const m = JSON.parse(line) as { reference: string; text: string };
          codes.set(m.reference, /\b(\d{6})\b/.exec(m.text)![1]!);
        }
      }
    } finally {
      closeSync(fd);
    }
  };

  const stats = new Map<string, OpStats>();
  const call = async (op: string, expected: number[], method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> => {
    const started = performance.now();
    let status: number;
    let parsed: any;
    try {
      const res = await fetch(url + path, {
        method,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
      status = res.status;
      parsed = await res.json();
    } catch {
      status = -1;
    }
    let s = stats.get(op);
    if (s === undefined) stats.set(op, (s = { latencies: [], statuses: new Map(), unexpected: 0 }));
    s.latencies.push(performance.now() - started);
    const key = status >= 400 ? `${status} ${String(parsed?.error?.code)}` : String(status);
    s.statuses.set(key, (s.statuses.get(key) ?? 0) + 1);
    if (!expected.includes(status)) s.unexpected += 1;
    return { status, body: parsed };
  };

  let next = 0;
  const pending: { id: string; user: string }[] = [];
  const enrolled: { user: string; to: string }[] = [];
  const approved: string[] = [];
  const users = new Map<string, string>();
  const pick = <T>(list: T[]): T | undefined => (list.length === 0 ? undefined : list[Math.floor(Math.random() * list.length)]);
  const take = <T>(list: T[]): T | undefined => (list.length === 0 ? undefined : list.splice(Math.floor(Math.random() * list.length), 1)[0]);

  /** One operation of the mix, drawn by weight. */
  const operation = async (): Promise<void> => {
    const roll = Math.random();
    if (roll < 0.25) {
      const n = next++;
      const user = `soak${n}`;
      const to = nextNumber();
      users.set(user, to);
      const r = await call('enroll: start', [201, 429], 'POST', `${BASE}/verifications`, { to, purpose: 'enroll', user });
      if (r.status === 201) pending.push({ id: r.body.id, user });
    } else if (roll < 0.5) {
      readOutbox();
      const v = take(pending);
      if (v === undefined) return;
      const code = codes.get(v.id);
      if (code === undefined) return void pending.push(v);
      if (Math.random() < 0.2)
        await call('check: wrong code', [200], 'POST', `${BASE}/verifications/${v.id}/check`, { code: code === '000000' ? '111111' : '000000' });
      const r = await call('check: right code', [200], 'POST', `${BASE}/verifications/${v.id}/check`, { code });
      codes.delete(v.id);
      if (r.body?.status === 'approved') {
        approved.push(v.id);
        if (r.body.purpose === 'enroll') enrolled.push({ user: v.user, to: users.get(v.user)! });
      }
    } else if (roll < 0.6) {
      const v = pick(pending);
      if (v !== undefined) await call('resend', [200, 429], 'POST', `${BASE}/verifications/${v.id}/resend`);
    } else if (roll < 0.75) {
      const e = pick(enrolled);
      if (e === undefined) return;
      const r = await call('authenticate: challenge', [201, 423, 429], 'POST', `${BASE}/users/${e.user}/challenges`, {
        type: 'SMS',
        lastDigits: e.to.slice(-4),
      });
      if (r.status === 201) pending.push({ id: r.body.id, user: e.user });
    } else if (roll < 0.8) {
      await call('unknown user: challenge', [201, 423, 429], 'POST', `${BASE}/users/nobody${Math.floor(Math.random() * 1e6)}/challenges`, {
        type: 'SMS',
        lastDigits: '1234',
      });
    } else if (roll < 0.85) {
      const id = pick(approved);
      if (id !== undefined) await call('replay an approved code', [409], 'POST', `${BASE}/verifications/${id}/check`, { code: '123456' });
    } else if (roll < 0.95) {
      const v = pick(pending);
      if (v !== undefined) await call('read a verification', [200], 'GET', `${BASE}/verifications/${v.id}`);
    } else {
      const e = pick(enrolled);
      if (e !== undefined) await call('read enrollments', [200], 'GET', `${BASE}/users/${e.user}/enrollments`);
    }
  };

  const memory: { t: number; rss: number; heap: number }[] = [];
  const sample = async (): Promise<void> => {
    const text = await (await fetch(`${url}/metrics`)).text();
    const value = (name: string): number => Number(new RegExp(`^${name} (\\S+)`, 'm').exec(text)?.[1] ?? NaN);
    memory.push({ t: Date.now(), rss: value('process_resident_memory_bytes'), heap: value('nodejs_heap_size_used_bytes') });
  };

  console.log(`soak: ${values.duration} at ${rate} requests/s against ${url} (state in ${state})`);
  const start = Date.now();
  const inFlight = new Set<Promise<void>>();
  let sent = 0;
  await sample();
  const sampler = setInterval(() => void sample(), sampleMs);
  // Open loop: the schedule does not wait for answers; a slow server shows as latency, not as a lower rate.
  while (Date.now() - start < durationMs) {
    const due = Math.floor(((Date.now() - start) / 1000) * rate);
    while (sent < due) {
      sent += 1;
      const p = operation().finally(() => inFlight.delete(p));
      inFlight.add(p);
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  await Promise.all(inFlight);
  clearInterval(sampler);
  await sample();
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));

  // Report.
  const pct = (xs: number[], p: number): number => xs[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] ?? NaN;
  console.log(`\n| operation | requests | p50 ms | p99 ms | max ms | answers | unexpected |\n| --- | --- | --- | --- | --- | --- | --- |`);
  let unexpected = 0;
  let total = 0;
  const all: number[] = [];
  for (const [op, s] of [...stats].sort(([a], [b]) => a.localeCompare(b))) {
    const l = [...s.latencies].sort((a, b) => a - b);
    all.push(...l);
    total += l.length;
    unexpected += s.unexpected;
    const answers = [...s.statuses]
      .sort(([, a], [, b]) => b - a)
      .map(([k, n]) => `${k}: ${n}`)
      .join(', ');
    console.log(`| ${op} | ${l.length} | ${pct(l, 50).toFixed(1)} | ${pct(l, 99).toFixed(1)} | ${l.at(-1)!.toFixed(1)} | ${answers} | ${s.unexpected} |`);
  }
  all.sort((a, b) => a - b);
  const elapsed = (Date.now() - start) / 1000;
  console.log(
    `\n${total} requests in ${elapsed.toFixed(0)} s (${(total / elapsed).toFixed(1)}/s), p50 ${pct(all, 50).toFixed(1)} ms, p99 ${pct(all, 99).toFixed(1)} ms; ${approved.length} approvals; ${enrolled.length} users enrolled`,
  );

  // Memory: after the first fifth (warm-up), the last quarter's median against the second quarter's.
  const mb = (b: number): string => `${(b / 1048576).toFixed(1)} MB`;
  const steady = memory.filter((m) => m.t - start >= durationMs / 5);
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
  const q = Math.max(1, Math.floor(steady.length / 4));
  const early = { rss: median(steady.slice(0, q).map((m) => m.rss)), heap: median(steady.slice(0, q).map((m) => m.heap)) };
  const late = { rss: median(steady.slice(-q).map((m) => m.rss)), heap: median(steady.slice(-q).map((m) => m.heap)) };
  const growth = late.rss / early.rss - 1;
  console.log(
    `memory (${memory.length} samples every ${values.sample}): RSS ${mb(memory[0]!.rss)} at start, ${mb(early.rss)} after warm-up, ${mb(late.rss)} at the end (${(growth * 100).toFixed(1)}%); heap used ${mb(early.heap)} → ${mb(late.heap)}; max RSS ${mb(Math.max(...memory.map((m) => m.rss)))}`,
  );
  console.log(`server errors logged: ${serverErrors}; unexpected answers: ${unexpected}`);

  const failures: string[] = [];
  if (unexpected > 0) failures.push(`${unexpected} unexpected answers`);
  if (serverErrors > 0) failures.push(`${serverErrors} errors logged by the server`);
  if (growth > 0.25) failures.push(`memory grew ${(growth * 100).toFixed(0)}% after warm-up`);
  if (failures.length > 0) {
    console.log(`soak FAILED: ${failures.join('; ')}\n${stderrTail.slice(-1500)}`);
    process.exitCode = 1;
  } else {
    console.log('soak passed');
  }
}

await main();
