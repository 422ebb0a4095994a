import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// autocannon ships no types; the two calls used here are typed locally.
// @ts-expect-error -- no declaration file
import autocannonUntyped from 'autocannon';
import { startRedis } from '../test/helpers/redis-server.ts';
import { row, type BenchRow } from './harness.ts';

interface Served {
  url: string;
  prepared: { id: string; code: string; to: string; user: string }[];
  child: ChildProcess;
}

function serve(root: string, args: string[], script = 'verifier-server.ts'): Promise<Served> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(root, 'bench', script), ...args], { cwd: root, stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) {
        const parsed = JSON.parse(out.slice(0, nl)) as { url: string; prepared?: Served['prepared'] };
        resolve({ url: parsed.url, prepared: parsed.prepared ?? [], child });
      }
    });
    child.once('exit', (code) => reject(new Error(`bench server exited ${code}`)));
  });
}

/** usageOf asks the server child for its CPU time so far (every thread), in microseconds, and the messages it has sent (0 for the floors). */
function usageOf(child: ChildProcess): Promise<{ cpuUs: number; sends: number }> {
  return new Promise((resolve) => {
    child.once('message', (m: { user: number; system: number; sends?: number }) => resolve({ cpuUs: m.user + m.system, sends: m.sends ?? 0 }));
    child.send('cpu');
  });
}

interface AutocannonResult {
  requests: { average: number; total: number };
  latency: { p99: number };
  errors: number;
  non2xx: number;
}
const autocannon = autocannonUntyped as (options: Record<string, unknown>) => Promise<AutocannonResult>;

interface Load {
  rps: number;
  /** The server's CPU time per request, all its threads together, in microseconds. */
  cpuUs: number;
  p99: number;
  errors: number;
  non2xx: number;
  /** Requests answered, and messages the server sent meanwhile. */
  requests: number;
  sends: number;
}

/** Seconds of the same load, unmeasured, before each figure: the JIT compiles what the load runs first, as in a sidecar that has been up a while. */
const WARMUP_SECONDS = Number(process.env.BENCH_WARMUP ?? 3);

async function load(server: Served, next: () => { method: 'POST' | 'GET'; path: string; body?: string }, seconds: number): Promise<Load> {
  const drive = (duration: number): Promise<AutocannonResult> =>
    autocannon({
      url: server.url,
      connections: Number(process.env.BENCH_CONNECTIONS ?? 16),
      duration,
      requests: [
        {
          setupRequest: (req: Record<string, unknown>) => {
            const n = next();
            return {
              ...req,
              method: n.method,
              path: n.path,
              headers: { 'content-type': 'application/json' },
              ...(n.body !== undefined ? { body: n.body } : {}),
            };
          },
        },
      ],
    });
  if (WARMUP_SECONDS > 0) await drive(WARMUP_SECONDS);
  const before = await usageOf(server.child);
  const result = await drive(seconds);
  const after = await usageOf(server.child);
  return {
    rps: result.requests.average,
    cpuUs: (after.cpuUs - before.cpuUs) / Math.max(1, result.requests.total),
    p99: result.latency.p99,
    errors: result.errors,
    non2xx: result.non2xx,
    requests: result.requests.total,
    sends: after.sends - before.sends,
  };
}

/** newestFirst hands out items from the last to the first, then again, and says how many distinct ones it has handed out. */
function newestFirst<T>(items: readonly T[]): { next(): T; reached(): number } {
  let k = 0;
  return {
    next: () => items[items.length - 1 - (k++ % items.length)]!,
    reached: () => Math.min(k, items.length),
  };
}

/** Verifications the floor server holds: its requests update them in turn. */
const FLOOR_ROWS = 100_000;

/** benchVerifier measures start and check against a bare node:http server, on SQLite and on Redis. */
export async function benchVerifier(root: string): Promise<BenchRow[]> {
  const seconds = Number(process.env.BENCH_SECONDS ?? 8);
  const rows: BenchRow[] = [];
  const baseline = await serve(root, ['--mode', 'baseline']);
  const base = await load(baseline, () => ({ method: 'POST', path: '/x', body: '{"code":"123456"}' }), seconds);
  baseline.child.kill();
  rows.push(row('bare node:http (baseline)', base.rps, 'req/s', undefined, `p99 ${base.p99} ms; server CPU ${base.cpuUs.toFixed(0)} µs/request`));
  const redis = await startRedis();
  try {
    for (const store of (process.env.BENCH_STORES ?? 'memory,sqlite,redis').split(',') as ('memory' | 'sqlite' | 'redis')[]) {
      // memory: the verifier's own work alone, with a store that answers at once (no floor, no
      // second replica: nothing is shared).
      const real = store !== 'memory';
      // Two replicas on one store and one code key: the first starts every verification (and so
      // remembers what each is bound to), the second checks some of them without that.
      const shared = [
        '--store',
        store,
        '--redis',
        redis.url,
        '--redis-prefix',
        `bench${Date.now()}:`,
        '--state',
        join(mkdtempSync(join(tmpdir(), 'smsauth-bench-')), 'state.sqlite'),
        '--code-key',
        randomBytes(32).toString('hex'),
      ];
      // Enough fresh verifications for every check of the run, warm-up included (a check approves
      // one): the older half for the other replica, the newer half for the first.
      const perCheck = Math.min(160_000, 15_000 * (seconds + WARMUP_SECONDS));
      // The floor's CPU per request, for each figure of its store to be read against (issue 22's ratios).
      let floorCpuUs: number | undefined;
      if (real) {
        // The floor first: the durable writes of a check alone (floor-server.ts), a ceiling for
        // any verifier on this store and machine.
        const floorServer = await serve(root, ['--store', store, '--redis', redis.url, '--prepare', String(FLOOR_ROWS)], 'floor-server.ts');
        let f = 0;
        const floor = await load(floorServer, () => ({ method: 'POST', path: `/floor/V${f++ % FLOOR_ROWS}/check`, body: '{"code":"123456"}' }), seconds);
        floorServer.child.kill();
        floorCpuUs = floor.cpuUs;
        rows.push(
          row(
            `floor: node:http + a check's durable writes only, ${store}`,
            floor.rps,
            'req/s',
            { name: 'bare node:http', value: base.rps },
            `p99 ${floor.p99} ms; server CPU ${floor.cpuUs.toFixed(0)} µs/request; ${floor.non2xx} non-2xx, ${floor.errors} errors`,
          ),
        );
      }
      // The memory store has no second replica: only the newer half is checked.
      const served = await serve(root, ['--mode', 'verifier', ...shared, '--bindings', String(4 * perCheck), '--prepare', String((real ? 2 : 1) * perCheck)]);
      const other = real ? await serve(root, ['--mode', 'verifier', ...shared, '--bindings', '0']) : undefined;
      let i = 0;
      const start = await load(
        served,
        () => ({
          method: 'POST',
          path: '/v1/bench/corp/verifications',
          body: JSON.stringify({ to: `+3362${String(++i % 10_000_000).padStart(7, '0')}`, purpose: 'enroll', user: `u${i}` }),
        }),
        seconds,
      );
      // Newest first, as applications check codes shortly after sending them (a check past its
      // half finds its verification approved: non-2xx, shown in the note); each load says how many
      // of its half it reached.
      const checks = async (server: Served, half: Served['prepared']): Promise<{ load: Load; checked: number }> => {
        const turn = newestFirst(half);
        const result = await load(
          server,
          () => {
            const p = turn.next();
            return { method: 'POST', path: `/v1/bench/corp/verifications/${p.id}/check`, body: JSON.stringify({ code: p.code }) };
          },
          seconds,
        );
        return { load: result, checked: turn.reached() };
      };
      const newer = served.prepared.slice(-perCheck);
      const here = await checks(served, newer);
      const elsewhere = other === undefined ? undefined : await checks(other, served.prepared.slice(0, perCheck));
      // Last, as it adds to the store: the users whose enrollments the first checks approved (the
      // newest first), each authenticated in turn, the start an application makes at every
      // sign-in. The memory store keeps no enrollment: its authentications would all be decoys.
      const enrolled = newer.slice(newer.length - here.checked);
      if (real && enrolled.length === 0) throw new Error('no check approved an enrollment: nobody to authenticate');
      const users = newestFirst(enrolled);
      const authenticate = real
        ? await load(
            served,
            () => {
              const p = users.next();
              return { method: 'POST', path: '/v1/bench/corp/verifications', body: JSON.stringify({ to: p.to, purpose: 'authenticate', user: p.user }) };
            },
            seconds,
          )
        : undefined;
      served.child.kill();
      other?.child.kill();
      const where = real ? store : 'a store in memory that answers at once (the verifier alone)';
      // A start's figure counts the messages it sent (counted).
      const figures: { name: string; r: Load; counted: boolean }[] = [
        { name: 'start (send a code)', r: start, counted: true },
        { name: 'check (approve a code), started here', r: here.load, counted: false },
        ...(elsewhere === undefined ? [] : [{ name: 'check (approve a code), started by another replica', r: elsewhere.load, counted: false }]),
        ...(authenticate === undefined ? [] : [{ name: 'start (authenticate an enrolled user)', r: authenticate, counted: true }]),
      ];
      for (const { name, r, counted } of figures) {
        // An authentication answers alike whether it sends or not (a decoy): the messages sent say
        // which it was (a few sends of the warm-up and of the last answers may fall either side).
        const sends = counted ? `${r.sends} messages sent for ${r.requests} answers` : undefined;
        if (sends !== undefined && r.sends < 0.9 * r.requests) throw new Error(`${name}, ${where}: ${sends}`);
        rows.push(
          row(
            `${name}, ${where}`,
            r.rps,
            'req/s',
            { name: 'bare node:http', value: base.rps },
            `p99 ${r.p99} ms; server CPU ${r.cpuUs.toFixed(0)} µs/request (${(r.cpuUs / base.cpuUs).toFixed(1)}× the baseline's${floorCpuUs !== undefined ? `, ${(r.cpuUs / floorCpuUs).toFixed(1)}× the floor's` : ''}); ${r.non2xx} non-2xx, ${r.errors} errors${sends !== undefined ? `; ${sends}` : ''}`,
          ),
        );
      }
    }
  } finally {
    await redis.stop();
  }
  return rows;
}
