import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ownChild, stopChild } from './child-process.ts';

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
      { stdio: 'ignore' },
    );
    ownChild(child);
    const failed = new Promise<never>((_, reject) =>
      child!.once('error', (e) => reject(new Error(`cannot start redis-server (${e.message}); install it: apt-get install -y redis-server`))),
    );
    for (let i = 0; i < 100; i++) {
      if (await Promise.race([ping(port), failed])) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error('redis-server did not answer PING');
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
