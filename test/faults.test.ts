import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { RedisStore } from '../controller/adapters/redis-store.ts';
import { SqliteStore } from '../controller/adapters/sqlite-store.ts';
import { DEFAULT_VERIFIER_CONFIG } from '../controller/verifier/verifier.ts';
import { ROOT } from './helpers/fixtures.ts';
import { startRedis } from './helpers/redis-server.ts';
import { startRun } from './helpers/run-process.ts';
import { startStack, type Stack } from './helpers/verifier-stack.ts';
import { Signal, waitUntil } from './helpers/wait.ts';

const BASE = '/v1/acme/corp';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** progressed fires each time the load gets somewhere: an iteration finished, an answer counted. */
const progressed = new Signal();

/** progress waits until the load has got somewhere (a count reached), re-read at each step of the load: phases end on what happened, not on a clock. */
async function progress(what: string, reached: () => boolean): Promise<void> {
  await waitUntil(
    `the load to get there: ${what}`,
    () => reached(),
    () => progressed.next(),
    30_000,
  );
}

// US area codes: numbers spread over many prefixes, so that the per-prefix limit is not what a load test measures.
const AREAS = [
  201, 202, 203, 205, 206, 207, 208, 209, 210, 212, 213, 214, 215, 216, 217, 218, 219, 224, 225, 228, 229, 231, 234, 239, 240, 248, 251, 252, 253, 254, 256,
  260, 262, 267, 269, 270, 276, 281, 301, 302,
];
/** numberFor gives worker w its i-th number: a new prefix every few, never the same number twice. */
const numberFor = (w: number, i: number): string => `+1${AREAS[(w * 7 + i) % AREAS.length]}555${String(1000 + ((w * 131 + i) % 9000)).padStart(4, '0')}`;

/** load runs `workers` loops of `iteration` until stop() and collects what they report. */
function load(workers: number, iteration: (w: number, i: number) => Promise<void>): { stop(): Promise<void> } {
  let running = true;
  const loops = Array.from({ length: workers }, async (_, w) => {
    for (let i = 0; running; i++) {
      await iteration(w, i);
      progressed.fire();
    }
  });
  return {
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}

// ---- SQLite locked ------------------------------------------------------------------------------

const sqlite = suite('SQLite file locked by another process');

sqlite('requests answer 503 with Retry-After while the lock is held, nothing is half-done, and all works once it is released', async () => {
  const file = join(mkdtempSync(join(tmpdir(), 'smsauth-lock-')), 'state.sqlite');
  const s = await startStack({ store: new SqliteStore(file, { busyTimeoutMs: 200 }) });
  const pending = (await s.api('POST', `${BASE}/verifications`, { to: '+14155550101', purpose: 'enroll', user: 'alice' })).body;
  const code = s.gateways.get('primary')!.lastCode();
  // Another process (a backup tool, an operator's sqlite3 shell) takes the write lock and holds it.
  const holder = spawn(
    process.execPath,
    [
      '-e',
      `
    const Database = require('better-sqlite3');
    const db = new Database(${JSON.stringify(file)});
    db.exec('BEGIN EXCLUSIVE');
    process.stdout.write('locked\\n');
    process.stdin.on('end', () => { db.exec('COMMIT'); db.close(); });
    process.stdin.resume();
  `,
    ],
    { cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'] },
  );
  try {
    await new Promise<void>((resolve) => holder.stdout.once('data', () => resolve()));

    const start = await s.api('POST', `${BASE}/verifications`, { to: '+14155550102', purpose: 'enroll', user: 'bob' });
    assert.equal([start.status, start.body.error.code, start.headers.get('retry-after')], [503, 'store_unavailable', '1']);
    const check = await s.api('POST', `${BASE}/verifications/${pending.id}/check`, { code });
    assert.equal([check.status, check.body.error.code], [503, 'store_unavailable']);
    assert.is((await s.api('GET', '/readyz')).status, 503, 'not ready while the store cannot be written');
    await s.verifier.drain();
    assert.is(s.gateways.get('primary')!.sent.length, 1, 'nothing was sent for the refused start');

    holder.stdin.end();
    await new Promise((r) => holder.once('exit', r));
    const after = await s.api('POST', `${BASE}/verifications/${pending.id}/check`, { code });
    assert.equal([after.status, after.body.status, after.body.attemptsLeft], [200, 'approved', 2], 'the refused check counted no attempt');
    assert.is((await s.api('GET', `${BASE}/users/alice/enrollments`)).body.enrollments.length, 1);
    assert.is((await s.api('POST', `${BASE}/verifications`, { to: '+14155550102', purpose: 'enroll', user: 'bob' })).status, 201);
  } finally {
    holder.kill();
    await s.close();
  }
});

sqlite.run();

// ---- Redis stopped mid-load ---------------------------------------------------------------------

const redisSuite = suite('Redis stopped and restarted under load');

redisSuite('requests fail cleanly with 503 while it is down and succeed after; no verification is lost or approved twice', async () => {
  const redis = await startRedis();
  const store = new RedisStore(redis.url, { keyPrefix: 'faults:' });
  await store.ready();
  // The store-wide limit (1,000 sends a minute by default) would cap this load before the outage does.
  const s: Stack = await startStack({ store, config: { limits: { ...DEFAULT_VERIFIER_CONFIG.limits, global: { limit: 1_000_000, windowMs: 60_000 } } } });
  const statuses = new Map<number, number>();
  const seen = (status: number): void => {
    statuses.set(status, (statuses.get(status) ?? 0) + 1);
    // A client answered 503 waits for Redis inside its iteration: its answer is the progress.
    progressed.fire();
  };
  /** Every verification a client was told about (201), with the code the phone got and every approval answered for it. */
  const verifications = new Map<string, { user: string; code: string; approvals: number; enrolled: boolean }>();
  /** Verifications stored by a start whose answer was lost in the outage, before their code was sent. */
  const unsent: string[] = [];
  try {
    // A client answered 503 retries once Redis is back: the event it waits for.
    let back!: () => void;
    const redisBack = new Promise<void>((resolve) => (back = resolve));
    // Each client enrolls a user: start (an Idempotency-Key makes retries safe), then two checks at once with the right code, retried on 503.
    const traffic = load(8, async (w, i) => {
      const user = `w${w}u${i}`;
      const to = numberFor(w, i);
      const key = randomUUID();
      let id: string | undefined;
      while (id === undefined) {
        const r = await s.api('POST', `${BASE}/verifications`, { to, purpose: 'enroll', user }, { 'idempotency-key': key });
        seen(r.status);
        if (r.status === 201) id = r.body.id as string;
        else if (r.status === 503) await redisBack;
        else throw new Error(`start answered ${r.status} ${JSON.stringify(r.body)}`);
      }
      if (!s.gateways.get('primary')!.sent.some((m) => m.to === to)) {
        // Redis stored the verification and went down before answering: the client saw 503, and
        // its retry replays the stored verification, whose code was never sent. It must read as
        // exactly that: pending, its delivery still 'sending' (the client resends or starts anew).
        unsent.push(id);
        return;
      }
      const v = { user, code: s.gateways.get('primary')!.lastCode(to), approvals: 0, enrolled: false };
      verifications.set(id, v);
      for (let settled = false; !settled;) {
        const answers = await Promise.all([0, 1].map(() => s.api('POST', `${BASE}/verifications/${id}/check`, { code: v.code })));
        for (const a of answers) {
          seen(a.status);
          if (a.status === 200 && a.body.status === 'approved') v.approvals += 1;
          else if (a.status !== 409 && a.status !== 503) throw new Error(`check answered ${a.status} ${JSON.stringify(a.body)}`);
        }
        settled = answers.some((a) => a.status === 200 || a.status === 409);
        if (!settled) await redisBack;
      }
    });
    await progress('20 verifications before the outage', () => verifications.size >= 20);
    await redis.stop();
    await progress('the outage felt: 8 answers 503 (the clients then wait for Redis)', () => (statuses.get(503) ?? 0) >= 8);
    await redis.start();
    await (s.store as RedisStore).ready(10_000);
    back();
    const atRestart = verifications.size;
    await progress('20 more verifications after it', () => verifications.size >= atRestart + 20);
    await traffic.stop();

    assert.ok((statuses.get(503) ?? 0) > 0, 'the outage was felt: some requests answered 503');
    assert.equal(
      [...statuses.keys()].filter((c) => ![200, 201, 409, 503].includes(c)),
      [],
      'no other answers (no 500s)',
    );
    assert.ok(verifications.size > 20, `the load ran: ${verifications.size} verifications`);
    for (const [id, v] of verifications) {
      const now = await s.api('GET', `${BASE}/verifications/${id}`);
      assert.is(now.status, 200, `verification ${id} is still there`);
      assert.is(now.body.status, 'approved', `verification ${id} ended approved`);
      assert.ok(v.approvals <= 1, `verification ${id} was approved ${v.approvals} times`);
      assert.is((await s.api('GET', `${BASE}/users/${v.user}/enrollments`)).body.enrollments.length, 1, `${v.user} is enrolled`);
    }
    assert.ok([...verifications.values()].filter((v) => v.approvals === 1).length > 0);
    for (const id of unsent) {
      const now = await s.api('GET', `${BASE}/verifications/${id}`);
      assert.equal([now.status, now.body.status, now.body.delivery.status], [200, 'pending', 'sending'], `verification ${id}, stored but never sent, reads so`);
    }
    console.log(
      `  Redis outage under load: ${verifications.size} verifications, ${statuses.get(503) ?? 0} answers 503, every one approved once after, 0 lost; ${unsent.length} stored by a start whose answer was lost, unsent`,
    );
  } finally {
    await s.close();
    await redis.stop();
  }
});

redisSuite.run();

// ---- SIGKILL of the verifier mid-load -----------------------------------------------------------

const kill = suite('verifier killed (SIGKILL) under load, then restarted');

kill('no enrollment a client saw approved is lost, no approved code works again, and pending verifications finish after the restart', async () => {
  const state = mkdtempSync(join(tmpdir(), 'smsauth-kill-'));
  const outbox = join(state, 'outbox.jsonl');
  const args = ['--dir', 'examples', '--state-dir', state, '--port', '0'];
  const base = '/v1/identity/corp-ad';
  /** codeFor reads the code of a verification from the console gateway's outbox (the development inbox). */
  const codeFor = (id: string): string | undefined => {
    const line = readFileSync(outbox, 'utf8')
      .split('\n')
      .find((l) => l.includes(`"reference":"${id}"`));
    return line === undefined ? undefined : /\b(\d{6,8})\b/.exec((JSON.parse(line) as { text: string }).text)?.[1];
  };
  let run = await startRun(args);
  const url = run.url;
  const post = async (path: string, body: unknown): Promise<{ status: number; body: any }> => {
    const res = await fetch(url + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: res.status, body: await res.json() };
  };
  const started = new Map<string, string>(); // verification id -> user
  const approved = new Map<string, string>(); // verification id -> user, approvals the client saw
  let errors = 0;
  const traffic = load(8, async (w, i) => {
    try {
      const user = `k${w}u${i}`;
      const v = await post(`${base}/verifications`, { to: numberFor(w, i), purpose: 'enroll', user });
      if (v.status !== 201) throw new Error(`start answered ${v.status}`);
      started.set(v.body.id, user);
      const c = await post(`${base}/verifications/${v.body.id}/check`, { code: codeFor(v.body.id) });
      if (c.status === 200 && c.body.status === 'approved') approved.set(v.body.id, user);
    } catch {
      errors += 1; // the connection died with the process
      await sleep(50); // a client's pace against a dead server, not a wait for anything
    }
  });
  await progress('20 approvals before the kill', () => approved.size >= 20);
  await run.stop('SIGKILL');
  await progress('the kill felt by the clients', () => errors > 0);
  await traffic.stop();
  assert.ok(errors > 0, 'the kill was felt mid-load');
  assert.ok(approved.size > 10, `the load ran: ${approved.size} approvals`);

  run = await startRun(args);
  try {
    const get = async (path: string): Promise<any> => (await fetch(run.url + path)).json();
    for (const [id, user] of approved) {
      assert.is((await get(`${base}/users/${user}/enrollments`)).enrollments.length, 1, `${user}'s enrollment survived`);
      const again = await fetch(`${run.url}${base}/verifications/${id}/check`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ code: codeFor(id) }),
      });
      assert.is(again.status, 409, `the approved verification ${id} cannot be used again`);
    }
    let finished = 0;
    for (const [id, user] of started) {
      if (approved.has(id)) continue;
      const v = await get(`${base}/verifications/${id}`);
      assert.ok(v.status === 'pending' || v.status === 'approved', `verification ${id} is ${String(v.status)}`);
      if (v.status === 'approved') {
        // Approved as the process died, before the client heard: the enrollment came with it.
        assert.is((await get(`${base}/users/${user}/enrollments`)).enrollments.length, 1);
        continue;
      }
      const c = await fetch(`${run.url}${base}/verifications/${id}/check`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ code: codeFor(id) }),
      });
      assert.is(((await c.json()) as { status: string }).status, 'approved', `the pending verification ${id} finishes after the restart`);
      finished += 1;
    }
    console.log(
      `  SIGKILL under load: ${started.size} verifications started, ${approved.size} approvals seen before the kill (all enrolled after the restart), ${finished} pending finished after it`,
    );
  } finally {
    await run.stop();
  }
});

kill.run();
