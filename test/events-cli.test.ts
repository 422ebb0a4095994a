import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { runCli } from './helpers/cli.ts';
import { lastCode } from './helpers/outbox.ts';
import { startRun, type RunProcess } from './helpers/run-process.ts';
import { startReceiver, type Received, type Receiver } from './helpers/webhook-receiver.ts';

// smsauth run with spec.events, as a process: a SIGKILL between a change and its delivery loses
// nothing (the outbox is in the state file, written with the change), and `smsauth events replay`
// sends a range of history again with the ids the events had.

const SECRET = `whsec_${randomBytes(32).toString('base64')}`;

function folder(url: string): { dir: string; state: string; outbox: string } {
  const base = mkdtempSync(join(tmpdir(), 'smsauth-events-'));
  const dir = join(base, 'config');
  mkdirSync(dir);
  writeFileSync(
    join(dir, 'resources.yaml'),
    `apiVersion: smsauth.io/v1alpha1
kind: SmsGatewayAccount
metadata: {name: console, namespace: t}
spec: {provider: console, default: true}
---
apiVersion: v1
kind: Secret
metadata: {name: events, namespace: t}
stringData: {secret: "${SECRET}"}
---
apiVersion: smsauth.io/v1alpha1
kind: IdentityStore
metadata: {name: corp, namespace: t}
spec:
  type: ActiveDirectory
  authenticationTypes: [SMS]
  sms: {textMessage: "Code: [Code]"}
  events:
    url: "${url}"
    signingSecret: {secretRef: {name: events, key: secret}}
`,
  );
  return { dir, state: join(base, 'state'), outbox: join(base, 'state', 'outbox.jsonl') };
}

async function post(run: RunProcess, path: string, body: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(run.url + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
}

/** enroll enrolls a user through the running process, reading the code from the console gateway's outbox. */
async function enroll(run: RunProcess, outbox: string, user: string, to: string): Promise<void> {
  const started = await post(run, '/v1/t/corp/verifications', { to, purpose: 'enroll', user });
  assert.is(started.status, 201, JSON.stringify(started.body));
  assert.is((await post(run, `/v1/t/corp/verifications/${started.body.id}/check`, { code: lastCode(outbox) })).body.status, 'approved');
}

/** received waits for n accepted deliveries, at most 60 s (the dead process's lease on the outbox lasts 15 s). */
async function received(receiver: Receiver, n: number): Promise<Received[]> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>(
    (_, reject) => (timer = setTimeout(() => reject(new Error(`timed out waiting for ${n} events; got ${receiver.received.length}`)), 60_000)),
  );
  try {
    return await Promise.race([receiver.waitFor(n), late]);
  } finally {
    clearTimeout(timer);
  }
}

const cli = suite('events from smsauth run');

cli(
  'a SIGKILL after the change, before its delivery, loses nothing: the restarted process delivers it; replay sends a range again with the same ids',
  async () => {
    const receiver = await startReceiver(SECRET);
    const f = folder(receiver.url);
    const args = ['--dir', f.dir, '--state-dir', f.state, '--port', '0'];
    let run = await startRun(args);
    try {
      await receiver.down();
      await enroll(run, f.outbox, 'alice', '+14155550101');
      await enroll(run, f.outbox, 'bob', '+14155550102');
      assert.is(receiver.received.length, 0);
      assert.is(await run.stop('SIGKILL'), null, 'killed, not stopped');
      await receiver.up();
      run = await startRun(args);
      const got = [...(await received(receiver, 4))];
      assert.equal(got.map((r) => `${r.event.subject} ${r.event.type}`).sort(), [
        'alice io.smsauth.enrollment.changed',
        'alice io.smsauth.verification.approved',
        'bob io.smsauth.enrollment.changed',
        'bob io.smsauth.verification.approved',
      ]);
      for (const user of ['alice', 'bob']) {
        assert.equal(
          got.filter((r) => r.event.subject === user).map((r) => r.event.type),
          ['io.smsauth.verification.approved', 'io.smsauth.enrollment.changed'],
          'in order per user',
        );
      }
      assert.equal(receiver.refused, []);

      // The receiver lost them (a restore, say): replay the last hour from history.
      const ids = got.map((r) => r.id);
      const dry = await runCli(['events', 'replay', 't/corp', '--dir', f.dir, '--state-dir', f.state, '--since', '1h', '--dry-run']);
      assert.is(dry.code, 0, dry.stderr);
      assert.match(dry.stdout, /^4 events from 2 history entries would go to http:\/\/127\.0\.0\.1:\d+$/m);
      assert.is(receiver.received.length, 4, 'a dry run sends nothing');
      const replay = await runCli(['events', 'replay', 't/corp', '--dir', f.dir, '--state-dir', f.state, '--since', '1h', '--types', 'enrollment.changed']);
      assert.is(replay.code, 0, replay.stderr);
      assert.match(replay.stdout, /^replayed 2 events from 2 history entries to http:\/\/127\.0\.0\.1:\d+$/m);
      // Oldest first: alice enrolled before bob (the outbox may have delivered them in either order).
      const changedOf = (user: string) => got.find((r) => r.event.subject === user && r.event.type === 'io.smsauth.enrollment.changed')!.id;
      assert.equal(
        receiver.received.slice(4).map((r) => r.id),
        ['alice', 'bob'].map(changedOf),
        'the same ids, oldest first',
      );
      assert.ok(
        receiver.received.slice(4).every((r) => ids.includes(r.id)),
        'nothing new',
      );

      // A receiver that does not accept stops the replay, which says where to resume.
      await receiver.down();
      const stopped = await runCli(['events', 'replay', 't/corp', '--dir', f.dir, '--state-dir', f.state, '--since', '1h']);
      assert.is(stopped.code, 1);
      assert.match(
        stopped.stderr,
        /did not accept evt_\S+ \(verification\.approved, \S+\): network error \(ECONNREFUSED\); 0 of 4 sent; resume with --since \S+/,
      );
      const everything = dry.stdout + replay.stdout + stopped.stderr + run.stderr();
      assert.not.match(everything, SECRET.slice(6));
      assert.not.match(everything, '4155550101');
    } finally {
      await run.stop();
      await receiver.close();
    }
  },
);

cli('replay refuses what it cannot do, in one line each', async () => {
  const receiver = await startReceiver(SECRET);
  const f = folder(receiver.url);
  try {
    const cases: [string[], number, RegExp][] = [
      [['events', 'replay', 't/corp', '--dir', f.dir, '--state-dir', f.state], 2, /--since is required/],
      [['events', 'replay', 't/corp', '--dir', f.dir, '--state-dir', f.state, '--since', 'yesterday'], 2, /--since takes a time/],
      [['events', 'replay', 't/none', '--dir', f.dir, '--state-dir', f.state, '--since', '1h'], 2, /t\/none: no valid IdentityStore of that name/],
      [
        ['events', 'replay', 't/corp', '--dir', f.dir, '--state-dir', f.state, '--since', '1h', '--types', 'user.created'],
        2,
        /--types: user\.created is not one of/,
      ],
      [
        ['events', 'replay', 't/corp', '--dir', f.dir, '--state-dir', join(f.state, 'nowhere'), '--since', '1h'],
        1,
        /no state file .*state\.sqlite: give smsauth run's --state-dir/,
      ],
    ];
    for (const [args, code, said] of cases) {
      const r = await runCli(args);
      assert.is(r.code, code, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, said);
      assert.is(r.stderr.trim().split('\n').length, 1, 'one line');
    }
  } finally {
    await receiver.close();
  }
});

cli.run();
