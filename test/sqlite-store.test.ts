import { chmodSync, mkdtempSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { fileIdentity, SqliteEngine } from '../controller/adapters/sqlite-engine.ts';
import { SqliteStore } from '../controller/adapters/sqlite-store.ts';
import { StoreUnavailableError } from '../controller/verifier/state-store.ts';
import type { VerificationRecord } from '../controller/verifier/types.ts';
import { record, T0 } from './helpers/verification-record.ts';

const WRONG = [{ keyId: 'k1', mac: 'cd'.repeat(32) }];

// What is particular to the SQLite store's two connections (the event loop's, the thread's):
// batches, a failing operation among others, a locked file, checkpoints, a stopped thread, a file
// gone or replaced, closing with operations in flight. The behaviour every store shares is in the
// StateStore contract suite.

const fresh = (): string => join(mkdtempSync(join(tmpdir(), 'smsauth-sqlite-')), 'state.sqlite');

const test = suite('SQLite store: its connections');

const failureOf = (p: Promise<unknown>): Promise<unknown> =>
  p.then(
    () => undefined,
    (e: unknown) => e,
  );
/** turn resolves after the store's batches asked so far have been run or sent (their setImmediate). */
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const historyOf = (store: SqliteStore): Promise<unknown> => store.listHistory('ns', 'st', { limit: 10 });
const workerOf = (store: SqliteStore): Worker | undefined => (store as unknown as { worker: Worker | undefined }).worker;

test('the file holds full numbers: it is made 0600, its -wal and -shm too, and a file readable by others is made private', async () => {
  const mode = (path: string): string => (statSync(path).mode & 0o777).toString(8);
  const file = fresh();
  const store = new SqliteStore(file);
  try {
    await store.putEnrollment('ns', 'st', { user: 'a', to: '+14155550123', enrolledAt: T0, verificationId: 'VE0' });
    assert.equal([mode(file), mode(`${file}-wal`), mode(`${file}-shm`)], ['600', '600', '600']);
  } finally {
    await store.close();
  }
  const shared = fresh();
  writeFileSync(shared, '');
  chmodSync(shared, 0o644);
  const opened = new SqliteStore(shared);
  try {
    assert.is(mode(shared), '600');
  } finally {
    await opened.close();
  }
});

test('lockout counters are forgotten a month after the last failure, as the Redis keys expire; files made before that column are upgraded', async () => {
  const file = fresh();
  // A file as an earlier version made it: lockouts without updated_at, one user with two failures.
  const old = new Database(file);
  old.exec(
    'CREATE TABLE lockouts (ns TEXT NOT NULL, store TEXT NOT NULL, user TEXT NOT NULL, failures INTEGER NOT NULL, locked_until INTEGER, PRIMARY KEY (ns, store, user))',
  );
  old.prepare('INSERT INTO lockouts VALUES (?, ?, ?, ?, ?)').run('ns', 'st', 'old', 2, null);
  old.close();
  const store = new SqliteStore(file);
  try {
    assert.equal(await store.getLockout('ns', 'st', 'old', T0), { failures: 0, lockedUntil: null }, 'an upgraded counter of unknown age is forgotten');
    const month = 30 * 24 * 3_600_000;
    const auth = (id: string): VerificationRecord =>
      record(id, { purpose: 'authenticate', user: 'bob', maxAttempts: 5, expiresAt: T0 + 2 * month, lockout: { threshold: 3, durationMs: 600_000 } });
    await store.putEnrollment('ns', 'st', { user: 'bob', to: record('x').to, enrolledAt: T0, verificationId: 'VE0' });
    for (const id of ['VA1', 'VA2']) await store.createVerification(auth(id), undefined, []);
    await store.attempt('ns', 'st', 'VA1', T0 + 1, WRONG);
    await store.attempt('ns', 'st', 'VA1', T0 + 2, WRONG);
    assert.equal(await store.getLockout('ns', 'st', 'bob', T0 + month), { failures: 2, lockedUntil: null });
    const third = await store.attempt('ns', 'st', 'VA2', T0 + 2 + month, WRONG);
    assert.equal([third!.counted, third!.lockedNow], [true, false], 'a failure a month later starts a new count');
    await store.sweep(T0 + 3 * month, { maxEvents: 100, maxAgeMs: 1e12 });
    assert.equal(await store.getLockout('ns', 'st', 'bob', T0 + 3 * month), { failures: 0, lockedUntil: null });
  } finally {
    await store.close();
  }
});

test('files made with the earlier history indexes are upgraded: every store counted with its last seq, swept store by store, listed by actor', async () => {
  const file = fresh();
  // A file as an earlier version made it: an index of all events by time, an actor index of every
  // event, counts without the last seq, and a store whose events were never counted (written
  // before history_counts existed).
  const old = new Database(file);
  old.exec(`CREATE TABLE history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, ns TEXT NOT NULL, store TEXT NOT NULL, user TEXT NOT NULL, type TEXT NOT NULL,
    result TEXT NOT NULL, time INTEGER NOT NULL, client_ip TEXT NOT NULL, user_agent TEXT NOT NULL, verification_id TEXT,
    actor TEXT NOT NULL DEFAULT 'user', role TEXT, detail TEXT);
    CREATE INDEX history_all_time ON history (time);
    CREATE INDEX history_actor ON history (ns, store, actor, seq);
    CREATE TABLE history_counts (ns TEXT NOT NULL, store TEXT NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (ns, store));
    INSERT INTO history_counts VALUES ('ns', 'st', 3);`);
  const insert = old.prepare(
    "INSERT INTO history (ns, store, user, type, result, time, client_ip, user_agent, actor) VALUES ('ns', ?, 'u', 'authenticate', 'success', ?, '', '', ?)",
  );
  for (let i = 0; i < 6; i++) insert.run(i % 2 === 0 ? 'st' : 'quiet', T0 + i, i % 3 === 0 ? 'helpdesk:ann' : 'user');
  old.close();
  const store = new SqliteStore(file);
  try {
    const view = new Database(file, { readonly: true });
    try {
      assert.equal(
        view.prepare("SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'history' AND name NOT LIKE 'sqlite_%' ORDER BY name").pluck().all(),
        ['history_staff', 'history_store', 'history_time', 'history_user'],
      );
      assert.equal(view.prepare('SELECT store, n, last_seq FROM history_counts ORDER BY store').all(), [
        { store: 'quiet', n: 3, last_seq: 6 },
        { store: 'st', n: 3, last_seq: 0 },
      ]);
    } finally {
      view.close();
    }
    const times = async (st: string, actor?: string): Promise<number[]> =>
      (await store.listHistory('ns', st, { limit: 10, ...(actor !== undefined ? { actor } : {}) })).events.map((e) => e.time - T0);
    assert.equal(await times('st', 'helpdesk:ann'), [0]);
    assert.equal(await times('st', 'user'), [4, 2]);
    assert.equal(await times('quiet', 'helpdesk:ann'), [3]);
    // The store that never recorded since is swept by age all the same.
    await store.sweep(T0 + 10, { maxEvents: 1000, maxAgeMs: 7 });
    assert.equal(await times('quiet'), [5, 3]);
    assert.equal(await times('st'), [4]);
    // Once every event is gone, a store counted before last_seq existed still never gives a seq
    // twice: the file's AUTOINCREMENT counter (6) is above it.
    await store.sweep(T0 + 1_000_000, { maxEvents: 1000, maxAgeMs: 7 });
    const event = { namespace: 'ns', store: 'st', user: 'u', type: 'enroll', result: 'success', time: T0 + 1_000_000, clientIp: '', userAgent: '' } as const;
    await store.addHistory(event, { maxEvents: 1000, maxAgeMs: 7 });
    assert.equal(
      (await store.listHistory('ns', 'st', { limit: 10 })).events.map((e) => e.seq),
      [7],
    );
  } finally {
    await store.close();
  }
});

test('a path that cannot be opened fails the constructor, at once', () => {
  assert.throws(() => new SqliteStore(join(tmpdir(), 'no-such-dir-smsauth', 'x', 'state.sqlite')), /directory does not exist|unable to open/);
});

test('an operation that fails among others in the same batch fails alone, and the others are kept', async () => {
  const file = fresh();
  const store = new SqliteStore(file);
  // Asked in one event-loop turn, so they travel and commit as one batch; the middle one breaks a NOT NULL constraint.
  const results = await Promise.allSettled([
    store.createVerification(record('VA'), undefined, []),
    store.createVerification(record('VB', { namespace: undefined as unknown as string }), undefined, []),
    store.createVerification(record('VC'), undefined, []),
  ]);
  assert.equal(
    results.map((r) => r.status),
    ['fulfilled', 'rejected', 'fulfilled'],
  );
  assert.match(String((results[1] as PromiseRejectedResult).reason), /NOT NULL/);
  await store.close();
  const reopened = new SqliteStore(file);
  assert.is((await reopened.getVerification('ns', 'st', 'VA'))?.id, 'VA');
  assert.is((await reopened.getVerification('ns', 'st', 'VC'))?.id, 'VC');
  await reopened.close();
});

test('answers keep their order and their values across many batches in flight, on the event loop and on the thread', async () => {
  const file = fresh();
  const store = new SqliteStore(file, { busyTimeoutMs: 30_000 });
  // Fewer than a checkpoint's worth of operations, so that none waits for one.
  const ids = Array.from({ length: 150 }, (_, i) => `V${String(i).padStart(4, '0')}`);
  // On the event loop: one batch.
  await Promise.all(ids.map((id, i) => store.createVerification(record(id, { user: `u${i}` }), undefined, [])));
  await historyOf(store); // the thread, started with that batch, is idle again
  // On the thread, with the file locked: reads asked over ten turns, ten batches, more than may be in flight at once.
  const holder = new Database(file);
  holder.exec('BEGIN IMMEDIATE');
  const reads: Promise<VerificationRecord | undefined>[] = [];
  for (let k = 0; k < 10; k++) {
    for (const id of ids.slice(k * 15, k * 15 + 15)) reads.push(store.getVerification('ns', 'st', id));
    await turn();
  }
  assert.ok((store as unknown as { inFlight: unknown[] }).inFlight.length > 1, 'several batches in flight');
  holder.exec('COMMIT');
  holder.close();
  assert.equal(
    (await Promise.all(reads)).map((r) => r?.user),
    ids.map((_, i) => `u${i}`),
  );
  await store.close();
});

test('a stopped thread fails what it had not answered as unavailable, and the next operation starts a new one', async () => {
  const store = new SqliteStore(fresh());
  await store.createVerification(record('VA'), undefined, []);
  await historyOf(store); // history pages are read on the thread: it is started
  // The thread is idle (never stop it inside a SQLite call: better-sqlite3 aborts the process).
  // The batch below goes to a thread already told to stop, so it can never be answered.
  const stopping = workerOf(store)!.terminate();
  const lost = await failureOf(historyOf(store));
  await stopping;
  assert.instance(lost, StoreUnavailableError);
  assert.match(String(lost), /thread stopped/);
  assert.equal(await historyOf(store), { events: [], next: null });
  assert.ok(workerOf(store) !== undefined, 'a new thread answered');
  await store.close();
});

test('a thread that cannot open the file fails fast, starts again no sooner than a second later, and recovers once the same file is back', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'smsauth-sqlite-'));
  const file = join(dir, 'state.sqlite');
  let now = T0;
  const store = new SqliteStore(file, { now: () => now });
  renameSync(file, join(dir, 'away.sqlite')); // the file went away after start-up
  const first = await failureOf(historyOf(store));
  assert.instance(first, StoreUnavailableError);
  const second = await failureOf(historyOf(store));
  assert.instance(second, StoreUnavailableError);
  assert.match(String(second), /could not be opened/, 'refused without starting another thread');
  renameSync(join(dir, 'away.sqlite'), file);
  now += 999;
  assert.instance(await failureOf(historyOf(store)), StoreUnavailableError, 'not a second yet');
  now += 1;
  assert.equal(await historyOf(store), { events: [], next: null });
  await store.close();
});

test('a file made at the path since the store opened its own is never opened beside it: the store refuses every operation until restarted', async () => {
  // Found when the thread starts: it never opens the new file.
  const file = fresh();
  const store = new SqliteStore(file);
  rmSync(file); // deleted, and another file made in its place (a volume remounted, an operator's reset)
  new Database(file).close();
  const refused = await failureOf(historyOf(store));
  assert.instance(refused, StoreUnavailableError);
  assert.match(String(refused), /replaced since the store opened it: restart/);
  assert.match(String(await failureOf(store.getVerification('ns', 'st', 'VA'))), /replaced since/, 'nor does the event loop go on with the old one');
  await store.close();
  const other = new Database(file, { readonly: true });
  try {
    assert.equal(other.prepare("SELECT name FROM sqlite_schema WHERE type = 'table'").all(), [], 'nothing was written into the new file');
  } finally {
    other.close();
  }
  // Found at a checkpoint when the thread had started before: within a checkpoint's worth of operations.
  const runningFile = file.replace('state.sqlite', 'running.sqlite');
  const running = new SqliteStore(runningFile);
  await historyOf(running); // the thread runs, with the file as it was
  rmSync(runningFile);
  new Database(runningFile).close();
  let failure: unknown;
  let created = 0;
  for (let i = 0; i < 400 && failure === undefined; i++) {
    failure = await failureOf(running.createVerification(record(`VB${i}`), undefined, []));
    if (failure === undefined) created++;
  }
  assert.match(String(failure), /replaced since/);
  assert.ok(created > 0, 'seen at a checkpoint, not at once');
  await running.close();
});

test('a batch that finds the file locked waits for the lock on the thread, not on the event loop; what is asked next follows it there, in order', async () => {
  const file = fresh();
  const store = new SqliteStore(file, { busyTimeoutMs: 30_000 });
  await store.createVerification(record('VA'), undefined, []);
  // The thread, started with that batch, is idle again: the next batch runs on the event loop.
  await historyOf(store);
  const holder = new Database(file);
  holder.exec('BEGIN IMMEDIATE');
  const answered: string[] = [];
  const created = store.createVerification(record('VB'), undefined, []).then((r) => answered.push(r.outcome));
  await turn(); // the batch found the lock on the event loop and went to the thread
  assert.equal(answered, [], 'it waits for the lock');
  // This test's code runs on the same event loop: had the store waited for the lock there, the
  // holder could never commit.
  holder.exec('COMMIT');
  holder.close();
  // Asked once the file is free but before the thread has run the waiting batch: it follows that
  // batch to the thread, and reads its write.
  const read = store.getVerification('ns', 'st', 'VB').then((r) => answered.push(`read ${r?.id}`));
  await Promise.all([created, read]);
  assert.equal(answered, ['created', 'read VB']);
  // Once those are answered the event loop's connection runs again: with the thread stopped, an
  // operation is answered without starting another.
  await workerOf(store)!.terminate();
  assert.is((await store.getVerification('ns', 'st', 'VA'))?.id, 'VA');
  assert.is(workerOf(store), undefined);
  await store.close();
});

test("the event loop's connection never waits for a lock and never checkpoints: it only appends to the WAL; the thread copies the WAL into the file and starts it over", async () => {
  const file = fresh();
  const engine = new SqliteEngine(file, { role: 'event-loop', busyTimeoutMs: 30_000 });
  const size = (): number => statSync(file).size;
  const before = size();
  try {
    // Whether a connection waits cannot be seen without a clock: its busy timeout is read instead.
    assert.is((engine as unknown as { db: Database.Database }).db.pragma('busy_timeout', { simple: true }), 0);
    // Well past the 1,000 pages at which a connection checkpoints by default.
    for (let i = 0; i < 1500; i++) {
      const [result] = engine.runBatchUnlessLocked([{ op: 'createVerification', args: [record(`V${i}`, { user: 'u'.repeat(3000) }), undefined, []] }])!;
      assert.ok(result!.ok);
    }
    assert.ok(statSync(`${file}-wal`).size > 1000 * 4096, 'the WAL holds every commit');
    assert.is(size(), before, 'nothing copied into the file');
  } finally {
    engine.close();
  }
  // The store asks its thread for a checkpoint every 200 operations of the event loop.
  const store = new SqliteStore(file);
  const grown = size();
  const checkpointing = (): boolean => (store as unknown as { checkpointing: boolean }).checkpointing;
  const untilCheckpoint = async (prefix: string): Promise<Worker> => {
    for (let i = 0; i < 400 && !checkpointing(); i++) await store.createVerification(record(`${prefix}${i}`, { user: 'u'.repeat(3000) }), undefined, []);
    assert.ok(checkpointing(), 'a checkpoint was asked');
    return workerOf(store)!;
  };
  const order: string[] = [];
  const checkpointed = (worker: Worker): Promise<void> =>
    new Promise((resolve, reject) => {
      const on = (m: { type: string }): void => {
        if (m.type !== 'checkpointed') return;
        worker.off('message', on);
        order.push('checkpointed');
        resolve();
      };
      worker.on('message', on);
      worker.once('exit', () => reject(new Error('the thread stopped before it checkpointed')));
    });
  await checkpointed(await untilCheckpoint('W'));
  assert.ok(size() > grown, 'the thread copied the WAL into the file');
  // And wrote once more, so that the WAL started over there (with the sync of its new header), not
  // at the event loop's next write.
  const framesInWal = (): number => {
    const look = new Database(file);
    try {
      return (look.pragma('wal_checkpoint(PASSIVE)') as { log: number }[])[0]!.log;
    } finally {
      look.close();
    }
  };
  assert.ok(framesInWal() < 10, `the WAL started over (${framesInWal()} frames)`);
  // What is asked while a checkpoint is unanswered waits for it, so that the checkpoint copies the
  // whole WAL.
  order.length = 0;
  const worker = await untilCheckpoint('Y');
  await Promise.all([checkpointed(worker), store.createVerification(record('X'), undefined, []).then(() => order.push('X'))]);
  assert.equal(order, ['checkpointed', 'X']);
  assert.ok(framesInWal() < 10, 'it ran after the WAL started over');
  await store.close();
});

test('an operation asked before another is never overtaken by it, whichever connection each would run on', async () => {
  const store = new SqliteStore(fresh());
  const event = { namespace: 'ns', store: 'st', user: 'u', type: 'enroll', result: 'success', time: T0, clientIp: '', userAgent: '' } as const;
  // In one turn: an event recorded (short: the event loop's) and a page of history read (long: the thread's).
  const added = store.addHistory(event, { maxEvents: 100, maxAgeMs: 60_000 });
  const page = await store.listHistory('ns', 'st', { limit: 10 });
  await added;
  assert.equal(
    page.events.map((e) => e.user),
    ['u'],
    'the page reads the event asked for before it',
  );
  await store.close();
});

test('a thread that is never idle is asked for a checkpoint all the same, behind its work', async () => {
  const store = new SqliteStore(fresh());
  await historyOf(store); // the thread is started
  const worker = workerOf(store)!;
  let checkpointed = 0;
  worker.on('message', (m: { type: string }) => {
    if (m.type === 'checkpointed') checkpointed++;
  });
  // Each round reads a page of history (the thread's) and creates a verification (which follows it
  // there); the next round is asked before this one is answered, so the thread always has work.
  let previous: Promise<unknown> = Promise.resolve();
  for (let i = 0; i < 800 && checkpointed === 0; i++) {
    const current = Promise.all([historyOf(store), store.createVerification(record(`V${i}`), undefined, [])]);
    await previous;
    previous = current;
  }
  await previous;
  assert.ok(checkpointed > 0, 'a checkpoint ran although the thread was never idle');
  assert.is(workerOf(store), worker, 'on the same thread');
  await store.close();
});

test('a path that cannot be looked at counts as no file at all: never an exception on the event loop', () => {
  const file = fresh();
  new Database(file).close();
  assert.match(fileIdentity(file) ?? '', /^\d+:\d+$/);
  assert.is(fileIdentity(join(tmpdir(), 'x'.repeat(5000))), undefined, 'a name too long (ENAMETOOLONG)');
  assert.is(fileIdentity(join(file, 'inside')), undefined, 'under a file (ENOTDIR)');
});

test('a file moved away or deleted: writes are refused, and readiness says so, until the same file is back at its path', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'smsauth-sqlite-'));
  const file = join(dir, 'state.sqlite');
  const store = new SqliteStore(file);
  await store.createVerification(record('VA'), undefined, []);
  renameSync(file, join(dir, 'away.sqlite'));
  const refused = await failureOf(store.ping());
  assert.instance(refused, StoreUnavailableError);
  assert.match(String(refused), /no longer at its path/);
  assert.match(String(await failureOf(store.createVerification(record('VB'), undefined, []))), /no longer at its path/, 'no write is said kept');
  renameSync(join(dir, 'away.sqlite'), file);
  await store.ping();
  assert.is((await store.createVerification(record('VB'), undefined, [])).outcome, 'created');
  assert.equal(
    (await Promise.all(['VA', 'VB'].map((id) => store.getVerification('ns', 'st', id)))).map((r) => r?.id),
    ['VA', 'VB'],
  );
  // Deleted, it never comes back: refused until the store is restarted on a file.
  rmSync(file);
  assert.match(String(await failureOf(store.ping())), /no longer at its path/);
  await store.close();
});

test('an outbox release never overtakes the lease claim asked before it (the claim runs on the thread, the release follows it there)', async () => {
  const store = new SqliteStore(fresh());
  await store.createVerification(record('VA'), undefined, []);
  await Promise.all([store.outboxClaim('ns', 'st', 'first', T0, 60_000, 0), store.outboxRelease('ns', 'st', 'first')]);
  assert.equal(await store.outboxClaim('ns', 'st', 'second', T0 + 1, 60_000, 10), [], 'the lease was released');
  await store.close();
});

test('close answers what was asked before it; afterwards every operation is refused as unavailable', async () => {
  const store = new SqliteStore(fresh());
  const before = store.createVerification(record('VA'), undefined, []);
  const closed = store.close();
  assert.is((await before).outcome, 'created');
  await closed;
  const after = await store.getVerification('ns', 'st', 'VA').then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.instance(after, StoreUnavailableError);
});

test.run();
