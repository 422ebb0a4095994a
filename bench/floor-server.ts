// Child process for the verifier benchmark's floors: a bare node:http server that does, per
// request, only the durable writes an approving check cannot do without, with none of the
// verifier's other work (no routing, validation, HMAC, lockout, logging or metrics). What it
// reaches is a ceiling for any verifier on that store on this machine, measured in the same run
// as the baseline.
//
//   --store sqlite: one SQLite file in WAL mode with synchronous = NORMAL (as SqliteEngine), the
//     operations of one event-loop turn in one transaction (group commit), on the event loop;
//     per request: update the verification's record, write the enrollment, append a history row.
//   --store redis: one Lua script per request doing the same three writes (HSET, SET, LPUSH and
//     LTRIM), on the same redis-server as the verifier's figures.
//
// Deliberately outside controller/: it stands in for a minimal design, not for this one.
import { createServer } from 'node:http';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { Redis } from 'ioredis';

/** The sizes of what a check writes in the verifier: a verification record, an enrollment and a history event. */
const RECORD = JSON.stringify({
  id: 'V0',
  namespace: 'bench',
  store: 'corp',
  purpose: 'enroll',
  user: 'u0',
  to: '+33612345678',
  locale: null,
  status: 'approved',
  createdAt: 1,
  expiresAt: 2,
  code: { keyId: 'k', mac: 'ab'.repeat(32) },
  attempts: 1,
  maxAttempts: 10,
  sends: 1,
  maxSends: 10,
  lastSentAt: 1,
  resendCooldownMs: 30000,
  lockout: { threshold: 5, durationMs: 900000 },
  delivery: { status: 'sent', account: 'gw', messageId: '7d3c6a4e-1f2b-4c5d-8e9f-0a1b2c3d4e5f', updatedAt: 1 },
  client: { ip: '127.0.0.1', userAgent: 'autocannon' },
});
const ENROLLMENT = JSON.stringify({ user: 'u0', to: '+33612345678', enrolledAt: 1, verificationId: 'V0' });
const EVENT = JSON.stringify({
  namespace: 'bench',
  store: 'corp',
  user: 'u0',
  type: 'enroll',
  result: 'success',
  time: 1,
  clientIp: '127.0.0.1',
  userAgent: 'autocannon',
  verificationId: 'V0',
});

type Write = (id: string) => Promise<void>;

function sqliteWrites(prepare: number): Write {
  const db = new Database(join(mkdtempSync(join(tmpdir(), 'smsauth-floor-')), 'floor.sqlite'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec(`CREATE TABLE verifications (id TEXT PRIMARY KEY, record TEXT NOT NULL);
    CREATE TABLE enrollments (user TEXT PRIMARY KEY, record TEXT NOT NULL);
    CREATE TABLE history (seq INTEGER PRIMARY KEY AUTOINCREMENT, user TEXT NOT NULL, event TEXT NOT NULL)`);
  const insert = db.prepare('INSERT INTO verifications (id, record) VALUES (?, ?)');
  db.transaction(() => {
    for (let i = 0; i < prepare; i++) insert.run(`V${i}`, RECORD);
  })();
  const update = db.prepare('UPDATE verifications SET record = ? WHERE id = ?');
  const enroll = db.prepare('INSERT OR REPLACE INTO enrollments (user, record) VALUES (?, ?)');
  const append = db.prepare('INSERT INTO history (user, event) VALUES (?, ?)');
  let queue: { id: string; done: () => void }[] = [];
  const commit = db.transaction((batch: typeof queue) => {
    for (const { id } of batch) {
      update.run(RECORD, id);
      enroll.run(`u${id}`, ENROLLMENT);
      append.run(`u${id}`, EVENT);
    }
  });
  return (id) =>
    new Promise((resolve) => {
      if (queue.length === 0) {
        setImmediate(() => {
          const batch = queue;
          queue = [];
          commit(batch);
          for (const p of batch) p.done();
        });
      }
      queue.push({ id, done: resolve });
    });
}

async function redisWrites(url: string, prepare: number): Promise<Write> {
  const prefix = `floor${Date.now()}:`;
  const redis = new Redis(url) as Redis & { check(...args: (string | number)[]): Promise<unknown> };
  redis.defineCommand('check', {
    numberOfKeys: 3,
    lua: `redis.call('HSET', KEYS[1], 'status', 'approved', 'attempts', 1, 'rec', ARGV[1])
redis.call('SET', KEYS[2], ARGV[2])
redis.call('LPUSH', KEYS[3], ARGV[3])
redis.call('LTRIM', KEYS[3], 0, 99999)
return 1`,
  });
  for (let i = 0; i < prepare; i += 1000) {
    const pipeline = redis.pipeline();
    for (let k = i; k < Math.min(prepare, i + 1000); k++) pipeline.hset(`${prefix}v:V${k}`, 'status', 'pending', 'attempts', 0, 'rec', RECORD);
    await pipeline.exec();
  }
  return async (id) => {
    await redis.check(`${prefix}v:${id}`, `${prefix}e:u${id}`, `${prefix}h`, RECORD, ENROLLMENT, EVENT);
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { store: { type: 'string', default: 'sqlite' }, redis: { type: 'string' }, prepare: { type: 'string', default: '100000' } },
  });
  const prepare = Number(values.prepare);
  const write = values.store === 'redis' ? await redisWrites(values.redis!, prepare) : sqliteWrites(prepare);
  // The same shape as the baseline: read the body, parse it, answer JSON; the path names the verification.
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { code?: string };
      const id = (req.url ?? '').split('/')[2] ?? 'V0';
      void write(id).then(() => {
        const payload = JSON.stringify({ ok: true, code: typeof body.code });
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) });
        res.end(payload);
      });
    });
  });
  server.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ url: `http://127.0.0.1:${(server.address() as { port: number }).port}` })));
  // The parent asks for this process's CPU time around the load, as for the verifier.
  process.on('message', () => process.send?.(process.cpuUsage()));
}

await main();
