import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, connect, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { runCli, type CliResult } from './helpers/cli.ts';
import { ROOT } from './helpers/fixtures.ts';
import { freePort, startRedis } from './helpers/redis-server.ts';
import { startRun } from './helpers/run-process.ts';
import { writeSecretVolume } from './helpers/secret-volume.ts';

// A command that cannot start says so in one line that names the thing and what to do, and exits
// (2 for what the command line says, 1 for the rest): never a stack trace, never a process that
// stays alive serving nothing. runCli resolves only once the process has exited.

const tmp = (name: string): string => mkdtempSync(join(tmpdir(), `smsauth-${name}-`));

/** holdPort listens on a free loopback port, as another program would. */
async function holdPort(): Promise<{ port: number; server: Server }> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as { port: number }).port, server };
}

function assertOneLine(r: CliResult, code: number, said: string | RegExp): void {
  const text = r.stderr.trimEnd();
  assert.is(r.code, code, r.stderr);
  assert.is(text.split('\n').length, 1, `one line: ${r.stderr}`);
  assert.not.match(text, /\n\s+at |\(node:/, 'no stack trace');
  if (typeof said === 'string') assert.ok(text.startsWith(said), `${said}\n  got: ${text}`);
  else assert.match(text, said);
}

const run = suite('smsauth run: failures to start');

run('a port in use names the address and --port', async () => {
  const held = await holdPort();
  try {
    const r = await runCli(['run', '--dir', 'examples', '--state-dir', tmp('run'), '--port', String(held.port)]);
    assertOneLine(r, 1, `smsauth run: 127.0.0.1:${held.port} is already in use by another process: stop what holds it, or choose another port with --port`);
  } finally {
    held.server.close();
  }
});

const usage: { name: string; args: string[]; said: string }[] = [
  { name: 'a folder that does not exist', args: ['--dir', 'nosuch'], said: 'smsauth run: --dir nosuch: no such file or folder; see smsauth run --help' },
  { name: 'a file given as the folder', args: ['--dir', 'package.json'], said: 'smsauth run: --dir package.json is a file, not a folder' },
  {
    name: 'a Redis URL that is not one',
    args: ['--dir', 'examples', '--redis', 'notaurl'],
    said: 'smsauth run: --redis takes a URL such as redis://127.0.0.1:6379',
  },
  {
    name: 'another --host without a token',
    args: ['--dir', 'examples', '--host', '0.0.0.0'],
    said: 'smsauth run: --host 0.0.0.0 needs a bearer token of at least 16 characters (--token-file FILE or SMSAUTH_TOKEN)',
  },
  {
    name: 'a --token-file that does not exist',
    args: ['--dir', 'examples', '--token-file', 'no/such/token'],
    said: 'smsauth run: --token-file no/such/token: no such file or folder',
  },
  {
    name: 'a misspelt option',
    args: ['--dir', 'examples', '--prot', '9000'],
    said: 'smsauth run: unknown option --prot (did you mean --port?); see smsauth run --help',
  },
  { name: 'an option without its value', args: ['--dir', 'examples', '--port'], said: 'smsauth run: --port takes a value' },
  {
    name: 'a switch given a value',
    args: ['--dir', 'examples', '--allow-empty=yes'],
    said: 'smsauth run: --allow-empty is a switch and takes no value (give --allow-empty alone)',
  },
  {
    name: 'a port that is not one',
    args: ['--dir', 'examples', '--port', '99999'],
    said: 'smsauth run: --port takes a port number from 0 to 65535, not "99999"',
  },
  { name: 'an empty port', args: ['--dir', 'examples', '--port='], said: 'smsauth run: --port takes a port number from 0 to 65535, not ""' },
  { name: 'an empty host', args: ['--dir', 'examples', '--host='], said: 'smsauth run: --host takes an address, such as 127.0.0.1' },
  {
    name: 'a status file whose folder does not exist',
    args: ['--dir', 'examples', '--status-file', 'no/such/status.json'],
    said: 'smsauth run: --status-file no/such/status.json: its folder no/such: no such file or folder',
  },
  {
    name: 'a state file and a Redis at once',
    args: ['--dir', 'examples', '--state', 'state.sqlite', '--redis', 'redis://127.0.0.1:6379'],
    said: 'smsauth run: --state names a SQLite file and --redis a Redis: the state lives in one of them; give one',
  },
  {
    name: 'an outbox that is a folder',
    args: ['--dir', 'examples', '--outbox', 'examples'],
    said: 'smsauth run: --outbox examples is a folder; name a file to write',
  },
  {
    name: 'a status file that is a folder',
    args: ['--dir', 'examples', '--status-file', 'examples'],
    said: 'smsauth run: --status-file examples is a folder; name a file to write',
  },
  {
    name: 'a status file that is a device',
    args: ['--dir', 'examples', '--status-file', '/dev/null'],
    said: 'smsauth run: --status-file /dev/null is not a regular file; name a file to write',
  },
];
for (const c of usage) {
  run(`${c.name}: exit 2`, async () => {
    assertOneLine(await runCli(['run', ...c.args, '--state-dir', tmp('run')]), 2, c.said);
  });
}

run('a token too short to guard the API: its length and how to make one, never the token', async () => {
  const file = join(tmp('token'), 'token');
  writeFileSync(file, 'sh0rt\n');
  const r = await runCli(['run', '--dir', 'examples', '--host', '0.0.0.0', '--token-file', file, '--state-dir', tmp('run')]);
  assertOneLine(r, 2, 'smsauth run: the bearer token is 5 characters; --host 0.0.0.0 needs at least 16 (make one with: openssl rand -hex 32)');
  assert.not.match(r.stderr, 'sh0rt');
});

run('a state folder whose keys file cannot be read or written: exit 1, naming it', async () => {
  const state = tmp('run');
  mkdirSync(join(state, 'keys.json'));
  assertOneLine(
    await runCli(['run', '--dir', 'examples', '--port', '0', '--state-dir', state]),
    1,
    /^smsauth run: cannot read or write \S+keys\.json \(is a folder, not a file\): choose another state folder with --state-dir$/,
  );
});

run('a state folder another run uses: exit 1, naming the process; a lock left by a process that is not smsauth is taken over', async () => {
  const state = tmp('run');
  const args = ['--dir', 'examples', '--port', '0', '--state-dir', state];
  const first = await startRun(args);
  try {
    assertOneLine(
      await runCli(['run', ...args]),
      1,
      new RegExp(
        `^smsauth run: the state folder \\S+ is in use by another smsauth run \\(process ${first.child.pid}\\): stop it, or choose another with --state-dir$`,
      ),
    );
  } finally {
    await first.stop();
  }
  assert.not.ok(existsSync(join(state, 'run.lock')), 'released when it stops');
  // A lock naming a process that runs something else (its id reused since): taken over.
  const other = spawn('sleep', ['60'], { stdio: 'ignore' });
  try {
    writeFileSync(join(state, 'run.lock'), `${other.pid}\n`);
    const second = await startRun(args);
    assert.is(readFileSync(join(state, 'run.lock'), 'utf8'), `${second.child.pid}\n`);
    await second.stop();
  } finally {
    other.kill();
  }
});

run('a state folder that cannot be made, a state file whose folder is missing: exit 1, naming them', async () => {
  assertOneLine(
    await runCli(['run', '--dir', 'examples', '--port', '0', '--state-dir', 'package.json/state']),
    1,
    /^smsauth run: cannot make the state folder .*package\.json\/state \(a part of the path is not a folder\): choose another with --state-dir$/,
  );
  assertOneLine(
    await runCli(['run', '--dir', 'examples', '--port', '0', '--state-dir', tmp('run'), '--state', '/nonexistent/state.sqlite']),
    1,
    'smsauth run: cannot open the state file /nonexistent/state.sqlite: its folder /nonexistent does not exist; choose another with --state',
  );
});

run('a Redis that refuses the credentials (a wrong password, or none): exit 1 before serving, one line, never the password', async () => {
  const redis = await startRedis({ args: ['--requirepass', 'the-right-password'] });
  try {
    const said = (reply: string): string =>
      `smsauth run: Redis at redis://127.0.0.1:${redis.port} refused the credentials of --redis (${reply}): fix the user name and password in the URL`;
    const wrong = await runCli([
      'run',
      '--dir',
      'examples',
      '--port',
      '0',
      '--state-dir',
      tmp('run'),
      '--redis',
      `redis://:hunter2hunter2@127.0.0.1:${redis.port}`,
    ]);
    assertOneLine(wrong, 1, said('WRONGPASS'));
    assert.not.match(wrong.stdout + wrong.stderr, 'hunter2');
    assertOneLine(await runCli(['run', '--dir', 'examples', '--port', '0', '--state-dir', tmp('run'), '--redis', redis.url]), 1, said('NOAUTH'));
    const base = tmp('sidecar-auth');
    writeSecretVolume(join(base, 'bundle'), {});
    writeSecretVolume(join(base, 'keys'), { 'key.k1': 'k'.repeat(64), decoy: 'd'.repeat(64) });
    const sidecarRun = await runCli(['sidecar', '--bundle-dir', join(base, 'bundle'), '--code-keys-dir', join(base, 'keys'), '--port', '0'], {
      SMSAUTH_REDIS_URL: `redis://:hunter2hunter2@127.0.0.1:${redis.port}`,
    });
    assertOneLine(
      sidecarRun,
      1,
      `smsauth sidecar: Redis at redis://127.0.0.1:${redis.port} refused the credentials of --redis (WRONGPASS): fix the user name and password in the URL`,
    );
  } finally {
    await redis.stop();
  }
});

run('Redis down at start-up: 503 and /readyz say so, then it recovers by itself once Redis answers', async () => {
  const port = await freePort();
  const smsauth = await startRun(['--dir', 'examples', '--port', '0', '--state-dir', tmp('run'), '--redis', `redis://:hunter2hunter2@127.0.0.1:${port}`]);
  try {
    const waiting = await smsauth.next((e) => e.event === 'note' && /does not answer yet/.test(e.message ?? ''));
    assert.is(
      waiting.message,
      `Redis at redis://127.0.0.1:${port} does not answer yet: the API answers 503 and /readyz says so until it does; start it, or fix --redis`,
    );
    const down = await fetch(`${smsauth.url}/readyz`);
    assert.equal([down.status, ((await down.json()) as { checks: unknown }).checks], [503, { bundles: 'ok', store: 'unreachable' }]);
    const start = await fetch(`${smsauth.url}/v1/identity/corp-ad/verifications`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ to: '+14155550123', purpose: 'enroll', user: 'alice' }),
    });
    assert.equal([start.status, start.headers.get('retry-after')], [503, '1']);
    const redis = await startRedis({ port });
    try {
      await smsauth.next((e) => e.event === 'note' && e.message === `Redis at redis://127.0.0.1:${port} answers: ready`);
      assert.is((await fetch(`${smsauth.url}/readyz`)).status, 200);
      const again = await fetch(`${smsauth.url}/v1/identity/corp-ad/verifications`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ to: '+14155550123', purpose: 'enroll', user: 'alice' }),
      });
      assert.is(again.status, 201);
    } finally {
      assert.is(await smsauth.stop(), 0);
      await redis.stop();
    }
  } finally {
    await smsauth.stop();
  }
  assert.not.match(smsauth.stderr() + JSON.stringify(smsauth.events), 'hunter2', 'the password is never printed');
});

run('Redis down at start-up that comes up refusing the password: said, 503 meanwhile, and ready once the password is mended', async () => {
  const port = await freePort();
  const smsauth = await startRun(['--dir', 'examples', '--port', '0', '--state-dir', tmp('run'), '--redis', `redis://:right-password-1@127.0.0.1:${port}`]);
  try {
    await smsauth.next((e) => e.event === 'note' && /does not answer yet/.test(e.message ?? ''));
    const redis = await startRedis({ port, args: ['--requirepass', 'other-password-2'] });
    try {
      const refused = await smsauth.next((e) => e.event === 'note' && /refused the credentials/.test(e.message ?? ''));
      assert.is(
        refused.message,
        `Redis at redis://127.0.0.1:${port} refused the credentials of --redis (WRONGPASS): the API answers 503 until it accepts them; fix the user name and password in the URL`,
      );
      assert.is((await fetch(`${smsauth.url}/readyz`)).status, 503);
      const admin = new Redis({ port, password: 'other-password-2', lazyConnect: true });
      await admin.connect();
      await admin.config('SET', 'requirepass', 'right-password-1');
      admin.disconnect();
      await smsauth.next((e) => e.event === 'note' && e.message === `Redis at redis://127.0.0.1:${port} answers: ready`);
      assert.is((await fetch(`${smsauth.url}/readyz`)).status, 200);
    } finally {
      assert.is(await smsauth.stop(), 0);
      await redis.stop();
    }
  } finally {
    await smsauth.stop();
  }
  assert.not.match(smsauth.stderr() + JSON.stringify(smsauth.events), /right-password|other-password/, 'no password is printed');
});

run('kill of the npm process behind npm start stops the server: no orphan holds the port', async () => {
  const child = spawn('npm', ['start', '--', '--port', '0', '--state-dir', tmp('npm-start')], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const serving = new Promise<string>((resolve) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /"serving (http:\/\/[^ ]+) /.exec(out);
      if (m !== null) resolve(m[1]!);
    });
  });
  // stdout closes once every process writing to it has exited: npm, and the server it started.
  const closed = new Promise<void>((resolve) => child.stdout.once('close', resolve));
  const url = new URL(await serving);
  child.kill('SIGTERM');
  // Bounded, so that a regression fails here instead of hanging the suite: the orphan is then stopped.
  let guard: NodeJS.Timeout | undefined;
  const outlived = await Promise.race([closed.then(() => false), new Promise<boolean>((resolve) => (guard = setTimeout(() => resolve(true), 20_000)))]);
  clearTimeout(guard);
  if (outlived) {
    const pid = /"pid":(\d+)/.exec(err)?.[1];
    if (pid !== undefined) process.kill(Number(pid), 'SIGKILL');
    assert.unreachable('the server outlived the npm process that started it');
  }
  const refused = await new Promise<boolean>((resolve) => {
    const socket = connect(Number(url.port), url.hostname);
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
  assert.ok(refused, `nothing listens on ${url.host} any more`);
  assert.match(out, 'SIGTERM: finishing requests in flight and stopping', out.slice(-1500) + '\n---\n' + err.slice(-1500));
});

run('a reader of its output gone (piped into head): SIGTERM still stops it', async () => {
  const child = spawn(process.execPath, [join(ROOT, 'bin', 'smsauth.js'), 'run', '--dir', 'examples', '--port', '0', '--state-dir', tmp('epipe')], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await new Promise<void>((resolve) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('"serving ')) resolve();
    });
  });
  // As `| head` does: the reading ends close, and every later write of the process meets EPIPE.
  child.stdout.destroy();
  child.stderr.destroy();
  child.kill('SIGTERM');
  // Bounded, so that a regression fails here instead of hanging the suite.
  let guard: NodeJS.Timeout | undefined;
  const code = await Promise.race([exited, new Promise<'hung'>((resolve) => (guard = setTimeout(() => resolve('hung'), 20_000)))]);
  clearTimeout(guard);
  if (code === 'hung') child.kill('SIGKILL');
  assert.is(code, 0, 'stopped by SIGTERM, as with a reader');
});

run.run();

const sidecar = suite('smsauth sidecar: failures to start');

sidecar('a port in use, a missing folder, a bad Redis URL, keys that are not keys', async () => {
  const base = tmp('sidecar');
  writeSecretVolume(join(base, 'bundle'), {});
  writeSecretVolume(join(base, 'keys'), { decoy: 'short' });
  const held = await holdPort();
  try {
    const args = ['sidecar', '--bundle-dir', join(base, 'bundle'), '--code-keys-dir', join(base, 'keys')];
    assertOneLine(
      await runCli([...args, '--port', String(held.port)]),
      1,
      `smsauth sidecar: 127.0.0.1:${held.port} is already in use by another process: stop what holds it, or choose another port with --port`,
    );
    assertOneLine(
      await runCli(['sidecar', '--bundle-dir', join(base, 'nosuch'), '--code-keys-dir', join(base, 'keys')]),
      2,
      /^smsauth sidecar: --bundle-dir \S+nosuch: no such file or folder; see smsauth sidecar --help$/,
    );
    assertOneLine(
      await runCli([...args, '--port', '0'], { SMSAUTH_REDIS_URL: 'http://redis:6379' }),
      2,
      'smsauth sidecar: SMSAUTH_REDIS_URL takes a URL such as redis://127.0.0.1:6379',
    );
    assertOneLine(
      await runCli([...args, '--port', '0']),
      1,
      /^smsauth sidecar: --code-keys-dir \S+keys: holds no key\.<id> file: mount the smsauth-code-keys Secret there$/,
    );
    // An outbox is the console gateway's: without --allow-console it would be written by nothing.
    assertOneLine(
      await runCli([...args, '--port', '0', '--outbox', join(base, 'outbox.jsonl')]),
      2,
      "smsauth sidecar: --outbox is the console gateway's, which the sidecar refuses without --allow-console; give both, or neither; see smsauth sidecar --help",
    );
    assertOneLine(
      await runCli([...args, '--port', '0', '--allow-console', '--outbox', base]),
      2,
      /^smsauth sidecar: --outbox \S+ is a folder; name a file to write; see smsauth sidecar --help$/,
    );
  } finally {
    held.server.close();
  }
});

sidecar.run();

const controller = suite('smsauth controller: failures to start');

controller('a probe or metrics port in use names its flag', async () => {
  const held = await holdPort();
  try {
    assertOneLine(
      await runCli(['controller', '--metrics-bind-address', `127.0.0.1:${held.port}`, '--health-probe-bind-address', '0']),
      1,
      `smsauth controller: 127.0.0.1:${held.port} is already in use by another process: stop what holds it, or choose another port with --metrics-bind-address`,
    );
    assertOneLine(
      await runCli(['controller', '--metrics-bind-address', '0', '--health-probe-bind-address', `127.0.0.1:${held.port}`]),
      1,
      `smsauth controller: 127.0.0.1:${held.port} is already in use by another process: stop what holds it, or choose another port with --health-probe-bind-address`,
    );
  } finally {
    held.server.close();
  }
});

controller('a bind address whose port is not one names its flag', async () => {
  assertOneLine(
    await runCli(['controller', '--metrics-bind-address', ':99999']),
    2,
    'smsauth controller: --metrics-bind-address :99999 is not an address; use :8080, 127.0.0.1:8080 or 0',
  );
  assertOneLine(
    await runCli(['controller', '--metrics-bind-address', '0', '--health-probe-bind-address', ':']),
    2,
    'smsauth controller: --health-probe-bind-address : is not an address; use :8080, 127.0.0.1:8080 or 0',
  );
});

controller('a kubeconfig that does not exist, an API server that does not answer', async () => {
  assertOneLine(
    await runCli(['controller', '--kubeconfig', 'no/such/kubeconfig']),
    2,
    'smsauth controller: --kubeconfig no/such/kubeconfig: no such file or folder; see smsauth controller --help',
  );
  const port = await freePort();
  const kubeconfig = join(tmp('kubeconfig'), 'config');
  writeFileSync(
    kubeconfig,
    `apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "https://127.0.0.1:${port}"}}]\nusers: [{name: u, user: {token: t0ken-never-printed}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n`,
  );
  const r = await runCli(['controller', '--kubeconfig', kubeconfig, '--metrics-bind-address', '0', '--health-probe-bind-address', '0']);
  assert.is(r.code, 1, r.stderr);
  assert.is(
    r.stderr,
    `smsauth controller: cannot reach the Kubernetes API server at https://127.0.0.1:${port} (ECONNREFUSED): check --kubeconfig (or the in-cluster service account) and that the cluster is up\n`,
  );
  assert.not.match(r.stdout + r.stderr, 't0ken');
});

controller('bad values: exit 2 in one line', async () => {
  assertOneLine(await runCli(['controller', '--workers', '0']), 2, 'smsauth controller: --workers takes a positive number; see smsauth controller --help');
  assertOneLine(
    await runCli(['controller', '--metrics-bind-address', 'eighty']),
    2,
    'smsauth controller: --metrics-bind-address eighty is not an address; use :8080, 127.0.0.1:8080 or 0',
  );
});

controller.run();
