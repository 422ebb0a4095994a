import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { SqliteStore } from '../controller/adapters/sqlite-store.ts';
import { StoreUnavailableError } from '../controller/verifier/state-store.ts';
import type { VerificationRecord } from '../controller/verifier/types.ts';
import { record, T0 } from './helpers/verification-record.ts';

const WRONG = [{ keyId: 'k1', mac: 'cd'.repeat(32) }];

// What is particular to the SQLite store's thread: batches, a failing operation among others, a
// stopped thread, closing with operations in flight. The behaviour every store shares is in the
// StateStore contract suite.

const fresh = (): string => join(mkdtempSync(join(tmpdir(), 'smsauth-sqlite-')), 'state.sqlite');

const test = suite('SQLite store: its thread');

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

test('answers keep their order and their values across many batches in flight', async () => {
  const store = new SqliteStore(fresh());
  const ids = Array.from({ length: 500 }, (_, i) => `V${String(i).padStart(4, '0')}`);
  await Promise.all(ids.map((id, i) => store.createVerification(record(id, { user: `u${i}` }), undefined, [])));
  const read = await Promise.all(ids.map((id) => store.getVerification('ns', 'st', id)));
  assert.equal(
    read.map((r) => r?.user),
    ids.map((_, i) => `u${i}`),
  );
  await store.close();
});

test('a stopped thread fails what it had not answered as unavailable, and the next operation starts a new one', async () => {
  const store = new SqliteStore(fresh());
  await store.createVerification(record('VA'), undefined, []);
  // The thread is idle (never stop it inside a SQLite call: better-sqlite3 aborts the process).
  // The batch below goes to a thread already told to stop, so it can never be answered.
  const stopping = (store as unknown as { worker: Worker }).worker.terminate();
  const lost = await store.getVerification('ns', 'st', 'VA').then(
    () => undefined,
    (e: unknown) => e,
  );
  await stopping;
  assert.instance(lost, StoreUnavailableError);
  assert.match(String(lost), /thread stopped/);
  assert.is((await store.getVerification('ns', 'st', 'VA'))?.id, 'VA');
  await store.close();
});

test('a thread that cannot open the file fails fast, starts again no sooner than a second later, and recovers once the file can be opened', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'smsauth-sqlite-'));
  let now = T0;
  const store = new SqliteStore(join(dir, 'state.sqlite'), { now: () => now });
  rmSync(dir, { recursive: true }); // the volume went away after start-up
  const first = await store.getVerification('ns', 'st', 'VA').then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.instance(first, StoreUnavailableError);
  const second = await store.getVerification('ns', 'st', 'VA').then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.instance(second, StoreUnavailableError);
  assert.match(String(second), /could not be opened/, 'refused without starting another thread');
  mkdirSync(dir);
  now += 999;
  assert.instance(
    await store.getVerification('ns', 'st', 'VA').then(
      () => undefined,
      (e: unknown) => e,
    ),
    StoreUnavailableError,
    'not a second yet',
  );
  now += 1;
  assert.is((await store.createVerification(record('VA'), undefined, [])).outcome, 'created');
  assert.is((await store.getVerification('ns', 'st', 'VA'))?.id, 'VA');
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
