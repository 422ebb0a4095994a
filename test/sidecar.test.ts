import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { waitUntil } from './helpers/wait.ts';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Redis } from 'ioredis';
import { reconcile } from '../controller/core/reconciler.ts';
import { bundleSecretData } from '../controller/runtime/bundle-secret.ts';
import { freshCodeKeys } from '../controller/runtime/code-keys.ts';
import { desiredStateOf } from '../controller/validate/desired-state.ts';
import { validateFiles } from '../controller/validate/validate-files.ts';
import { appStoreYaml, ROOT, schemaValidator, utf8 } from './helpers/fixtures.ts';
import { writeSecretVolume } from './helpers/secret-volume.ts';
import { logScan } from './helpers/log-scan.ts';
import { startRedis } from './helpers/redis-server.ts';
import { runCli } from './helpers/cli.ts';
import { startReceiver } from './helpers/webhook-receiver.ts';
import { startSidecar } from './helpers/sidecar-process.ts';
import { bundleDataOf } from './helpers/bundle-data.ts';

/** bundleData is the bundle Secret's data of the app/corp resources with this text message. */
const bundleData = (text: string): Promise<Record<string, string>> => bundleDataOf(appStoreYaml(text));

/** synced resolves at the sidecar's next bundle sync (its `bundles synced` log line). */
function synced(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    const on = (d: Buffer): void => {
      if (!d.toString().includes('bundles synced')) return;
      child.stderr?.off('data', on);
      resolve();
    };
    child.stderr?.on('data', on);
  });
}

/** until re-reads a condition at each of the sidecar's bundle syncs until it holds. */
function until<T>(child: ChildProcess, what: string, fn: () => Promise<T | undefined>, ms = 10_000): Promise<T> {
  return waitUntil(what, fn, () => synced(child), ms);
}

const enroll = async (url: string, user: string): Promise<{ status: number; body: any }> => {
  const res = await fetch(`${url}/v1/app/corp/verifications`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ to: '+14155550101', purpose: 'enroll', user }),
  });
  return { status: res.status, body: await res.json() };
};

const sidecar = suite('smsauth sidecar');

sidecar("serves the mounted bundle, follows the kubelet's ..data swaps, keeps the last good bundle, and stops serving a removed store", async () => {
  const base = mkdtempSync(join(tmpdir(), 'smsauth-sidecar-'));
  const bundles = join(base, 'bundle');
  const keys = join(base, 'keys');
  const outbox = join(base, 'outbox.jsonl');
  writeSecretVolume(bundles, await bundleData('One: [Code]'));
  writeSecretVolume(keys, freshCodeKeys());
  const s = await startSidecar([
    '--bundle-dir',
    bundles,
    '--code-keys-dir',
    keys,
    '--state',
    join(base, 'state.sqlite'),
    '--port',
    '0',
    '--allow-console',
    '--outbox',
    outbox,
  ]);
  const lastText = (): string => (JSON.parse(readFileSync(outbox, 'utf8').trim().split('\n').at(-1)!) as { text: string }).text;
  try {
    assert.is((await fetch(`${s.url}/readyz`)).status, 200);
    assert.is((await fetch(`${s.url}/`)).status, 404, 'the sidecar never serves the console page');
    const first = await enroll(s.url, 'alice');
    assert.is(first.status, 201);
    assert.match(lastText(), /^One: \d{6}$/);

    writeSecretVolume(bundles, await bundleData('Two: [Code]'));
    await until(s.child, 'the new bundle', async () => ((await enroll(s.url, 'bob')).status === 201 && /^Two: /.test(lastText()) ? true : undefined));

    // A file that does not match its hash (truncated, hand-edited) leaves the last good bundle serving.
    const broken = await bundleData('Three: [Code]');
    broken['corp.json'] = broken['corp.json']!.replace('Three', 'Tampered');
    writeSecretVolume(bundles, broken);
    await until(s.child, 'the sidecar to see the broken bundle', () => Promise.resolve(s.stderr().includes('bundle file not used') ? true : undefined));
    await enroll(s.url, 'carol');
    assert.match(lastText(), /^Two: \d{6}$/);

    // The pending verification of the first bundle is still checkable.
    const code = /\d{6}/.exec((JSON.parse(readFileSync(outbox, 'utf8').split('\n')[0]!) as { text: string }).text)![0];
    const checked = await fetch(`${s.url}/v1/app/corp/verifications/${first.body.id}/check`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ code }),
    });
    assert.is(((await checked.json()) as { status: string }).status, 'approved');

    writeSecretVolume(bundles, {});
    await until(s.child, 'the store to go', async () => ((await enroll(s.url, 'dave')).status === 404 ? true : undefined));
  } finally {
    assert.is(await s.stop(), 0);
  }
});

sidecar('serves /healthz and /readyz alone on --health-probe-bind-address, for the kubelet', async () => {
  const base = mkdtempSync(join(tmpdir(), 'smsauth-sidecar-'));
  writeSecretVolume(join(base, 'bundle'), await bundleData('Code: [Code]'));
  writeSecretVolume(join(base, 'keys'), freshCodeKeys());
  const args = ['--bundle-dir', join(base, 'bundle'), '--code-keys-dir', join(base, 'keys'), '--state', join(base, 'state.sqlite'), '--port', '0'];
  const s = await startSidecar([...args, '--allow-console', '--outbox', join(base, 'outbox.jsonl'), '--health-probe-bind-address', '127.0.0.1:0']);
  try {
    assert.ok(s.probes !== null && s.probes !== s.url, 'a listener of its own');
    assert.equal(await (await fetch(`${s.probes}/healthz`)).json(), { status: 'ok' });
    const ready = await fetch(`${s.probes}/readyz`);
    assert.equal([ready.status, await ready.json()], [200, { status: 'ok', checks: { bundles: 'ok', store: 'ok' } }]);
    // Nothing else: no verification, no metrics, no history.
    assert.is((await enroll(s.probes, 'alice')).status, 404);
    assert.is((await fetch(`${s.probes}/metrics`)).status, 404);
    assert.is((await enroll(s.url, 'alice')).status, 201, 'the API serves on its own port');
    // A probe port in use is told at once, on one line, and nothing serves.
    const taken = new URL(s.probes).port;
    const second = spawn(
      process.execPath,
      [join(ROOT, 'bin', 'smsauth.js'), 'sidecar', ...args, '--allow-console', '--health-probe-bind-address', `127.0.0.1:${taken}`],
      {
        cwd: ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let err = '';
    second.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((r) => second.once('exit', (c) => r(c)));
    assert.is.not(code, 0);
    assert.is(err.trim().split('\n').length, 1, err);
    assert.match(err, /--health-probe-bind-address/);
  } finally {
    assert.is(await s.stop(), 0);
  }
});

sidecar('takes its Redis URL from SMSAUTH_REDIS_URL, so that a password stays out of the process list', async () => {
  const redis = await startRedis();
  const base = mkdtempSync(join(tmpdir(), 'smsauth-sidecar-'));
  writeSecretVolume(join(base, 'bundle'), await bundleData('Code: [Code]'));
  writeSecretVolume(join(base, 'keys'), freshCodeKeys());
  const s = await startSidecar(
    ['--bundle-dir', join(base, 'bundle'), '--code-keys-dir', join(base, 'keys'), '--port', '0', '--allow-console', '--outbox', join(base, 'outbox.jsonl')],
    { SMSAUTH_REDIS_URL: redis.url },
  );
  const client = new Redis(redis.url);
  try {
    assert.is((await enroll(s.url, 'alice')).status, 201);
    assert.ok((await client.keys('smsauth:*')).length > 0, 'the verification is in Redis');
    assert.not.match(readFileSync(`/proc/${s.child.pid}/cmdline`, 'utf8'), redis.url);
  } finally {
    client.disconnect();
    await s.stop();
    await redis.stop();
  }
});

sidecar(
  'delivers the events of a store with spec.events, signed with the secret the controller put in the bundle, from Redis; replay reads the mounted bundle',
  async () => {
    const redis = await startRedis();
    const secret = `whsec_${randomBytes(32).toString('base64')}`;
    const receiver = await startReceiver(secret);
    const base = mkdtempSync(join(tmpdir(), 'smsauth-sidecar-'));
    const withEvents = appStoreYaml(
      'Code: [Code]',
      `  events:
    url: "${receiver.url}"
    signingSecret: {secretRef: {name: hooks, key: whsec}}
`,
    );
    const result = validateFiles([{ path: 'r.yaml', bytes: utf8(withEvents) }], await schemaValidator());
    assert.equal(
      result.diagnostics.filter((d) => d.severity === 'error'),
      [],
    );
    const state = reconcile(desiredStateOf(result), undefined, new Date().toISOString());
    const data = bundleSecretData([...state.bundles.values()], new Map([['app/hooks', new Map([['whsec', secret]])]])).data;
    writeSecretVolume(join(base, 'bundle'), data);
    writeSecretVolume(join(base, 'keys'), freshCodeKeys());
    const outbox = join(base, 'outbox.jsonl');
    const s = await startSidecar(
      ['--bundle-dir', join(base, 'bundle'), '--code-keys-dir', join(base, 'keys'), '--port', '0', '--allow-console', '--outbox', outbox],
      { SMSAUTH_REDIS_URL: redis.url },
    );
    try {
      const started = await enroll(s.url, 'alice');
      assert.is(started.status, 201);
      const code = /\d{6}/.exec((JSON.parse(readFileSync(outbox, 'utf8').trim().split('\n').at(-1)!) as { text: string }).text)![0];
      const checked = await fetch(`${s.url}/v1/app/corp/verifications/${started.body.id}/check`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ code }),
      });
      assert.is(((await checked.json()) as { status: string }).status, 'approved');
      const got = [...(await receiver.waitFor(2))];
      assert.equal(
        got.map((r) => r.event.type),
        ['io.smsauth.verification.approved', 'io.smsauth.enrollment.changed'],
      );
      assert.equal(receiver.refused, []);
      const replay = await runCli(['events', 'replay', 'app/corp', '--bundle-dir', join(base, 'bundle'), '--redis', redis.url, '--since', '1h']);
      assert.is(replay.code, 0, replay.stderr);
      assert.equal(
        receiver.received.slice(2).map((r) => r.id),
        got.map((r) => r.id),
      );
    } finally {
      await s.stop();
      await receiver.close();
      await redis.stop();
    }
  },
);

sidecar('refuses the console gateway unless --allow-console, and needs code keys', async () => {
  const base = mkdtempSync(join(tmpdir(), 'smsauth-sidecar-'));
  writeSecretVolume(join(base, 'bundle'), await bundleData('Code: [Code]'));
  writeSecretVolume(join(base, 'keys'), freshCodeKeys());
  const s = await startSidecar([
    '--bundle-dir',
    join(base, 'bundle'),
    '--code-keys-dir',
    join(base, 'keys'),
    '--state',
    join(base, 'state.sqlite'),
    '--port',
    '0',
  ]);
  try {
    const r = await enroll(s.url, 'alice');
    assert.equal([r.status, r.body.error.code], [502, 'gateway_failed']);
    assert.match(s.stderr(), /gateway account left out: its settings are refused/);
  } finally {
    await s.stop();
  }
  writeSecretVolume(join(base, 'nokeys'), { decoy: 'short' });
  const child = spawn(
    process.execPath,
    [join(ROOT, 'bin', 'smsauth.js'), 'sidecar', '--bundle-dir', join(base, 'bundle'), '--code-keys-dir', join(base, 'nokeys'), '--port', '0'],
    { cwd: ROOT },
  );
  let err = '';
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString();
    logScan.observe('smsauth sidecar (stderr)', d.toString());
  });
  const code = await new Promise((r) => child.once('exit', r));
  assert.is(code, 1);
  assert.match(err, 'holds no key.<id> file: mount the smsauth-code-keys Secret there');
});

sidecar.run();
