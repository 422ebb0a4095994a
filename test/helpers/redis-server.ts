import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, watch } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { ownChild, stopChild, untilServing } from './child-process.ts';
import { Signal, waitUntil } from './wait.ts';

/** RedisServer is a real redis-server (Debian's package) on a free loopback port, owned by one test. */
export interface RedisServer {
  url: string;
  port: number;
  /** The folder it keeps its data (and whatever files its arguments name) in. */
  dir: string;
  /** stop kills the server (SIGKILL with hard=true). */
  stop(hard?: boolean): Promise<void>;
  /** start starts it again on the same port, with the data it had saved (appendonly). */
  start(): Promise<void>;
}

/** freePort asks the kernel for a free loopback port. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect(port, '127.0.0.1');
    sock.setTimeout(1000, () => {
      sock.destroy();
      resolve(false);
    });
    sock.once('error', () => resolve(false));
    sock.once('connect', () => sock.write('PING\r\n'));
    sock.once('data', (d) => {
      sock.destroy();
      // NOAUTH: a redis-server started with --requirepass answers, refusing who did not log in.
      resolve(d.toString().startsWith('+PONG') || d.toString().startsWith('-NOAUTH'));
    });
  });
}

/**
 * startRedis starts redis-server (on the given port, or a free one, with more arguments if given)
 * with append-only persistence in a temporary folder; `npm test` installs redis-server.
 */
export async function startRedis(options: { port?: number; args?: readonly string[] } = {}): Promise<RedisServer> {
  const port = options.port ?? (await freePort());
  const dir = mkdtempSync(join(tmpdir(), 'smsauth-redis-'));
  let child: ChildProcess | undefined;
  const start = async (): Promise<void> => {
    child = spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--dir',
        dir,
        '--appendonly',
        'yes',
        '--appendfsync',
        'everysec',
        '--save',
        '',
        '--protected-mode',
        'yes',
        ...(options.args ?? []),
      ],
      { stdio: ['ignore', 'pipe', 'ignore'] },
    );
    ownChild(child);
    // Asked again each time the server says something (on its output, or in the log file its
    // arguments name), which it does as it becomes ready.
    const said = new Signal();
    const logIndex = options.args?.indexOf('--logfile') ?? -1;
    const logFile = logIndex < 0 ? undefined : options.args![logIndex + 1];
    const watcher = logFile === undefined ? undefined : watch(dir, (_event, file) => file === logFile && said.fire());
    try {
      await untilServing(child, {
        name: 'redis-server',
        install: 'apt-get install -y redis-server',
        what: 'answer PING',
        serves: () => ping(port),
        ms: 10_000,
        said,
      });
    } finally {
      watcher?.close();
    }
  };
  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir,
    stop: (hard = false) => stopChild(child, hard ? 'SIGKILL' : 'SIGTERM'),
    start,
  };
}

/**
 * expiries listens for the keys Redis expires on its own clock (its keyspace events, switched on
 * here) on each of the given servers; `next` resolves with the first expired key that matches.
 */
export async function expiries(ports: readonly number[]): Promise<{ next(match: (key: string) => boolean): Promise<string>; close(): void }> {
  const clients = ports.map((port) => new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 1 }));
  const expired = new Signal();
  const keys: string[] = [];
  for (const c of clients) {
    await c.connect();
    await c.config('SET', 'notify-keyspace-events', 'Ex');
    c.on('pmessage', (_pattern: string, _channel: string, key: string) => {
      keys.push(key);
      expired.fire();
    });
    await c.psubscribe('__keyevent@*__:expired');
  }
  return {
    next: (match) =>
      waitUntil(
        'Redis to expire the key',
        () => keys.find(match),
        () => expired.next(),
      ),
    close: () => {
      for (const c of clients) c.disconnect();
    },
  };
}
