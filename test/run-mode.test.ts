import { mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync, mkdirSync, existsSync, lstatSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { startRun, type RunProcess } from './helpers/run-process.ts';

const GATEWAY = `apiVersion: smsauth.io/v1alpha1
kind: SmsGatewayAccount
metadata: {name: console, namespace: t}
spec: {provider: console, default: true}
`;
const template = (text: string): string => `apiVersion: smsauth.io/v1alpha1
kind: SmsTemplate
metadata: {name: text, namespace: t}
spec: {text: "${text}"}
`;
const STORE = `apiVersion: smsauth.io/v1alpha1
kind: IdentityStore
metadata: {name: corp, namespace: t}
spec:
  type: ActiveDirectory
  authenticationTypes: [SMS]
  sms: {templateRef: {name: text}}
`;

interface Folder {
  dir: string;
  state: string;
  outbox: string;
}

function folder(): Folder {
  const base = mkdtempSync(join(tmpdir(), 'smsauth-run-'));
  const dir = join(base, 'config');
  mkdirSync(dir);
  writeFileSync(join(dir, 'gateway.yaml'), GATEWAY);
  writeFileSync(join(dir, 'template.yaml'), template('First: [Code]'));
  writeFileSync(join(dir, 'store.yaml'), STORE);
  return { dir, state: join(base, 'state'), outbox: join(base, 'state', 'outbox.jsonl') };
}

async function post(run: RunProcess, path: string, body: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(run.url + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
}

function lastSent(outbox: string): { text: string; reference: string; code: string } {
  const lines = readFileSync(outbox, 'utf8').trim().split('\n');
  const m = JSON.parse(lines.at(-1)!) as { text: string; reference: string };
  return { ...m, code: /\d{6}/.exec(m.text)![0] };
}

const applied =
  (store: string) =>
  (e: { event: string; swapped?: string[] }): boolean =>
    e.event === 'applied' && (e.swapped ?? []).includes(store);

const e2e = suite('smsauth run');

e2e('follows edits, breaks, fixes and deletions, keeping the last good version and every pending verification', async () => {
  const f = folder();
  const run = await startRun(['--dir', f.dir, '--state-dir', f.state, '--port', '0', '--status-file', join(f.state, 'status-copy.json')]);
  try {
    const first = run.events.find((e) => e.event === 'applied')!;
    assert.equal(first.objects!.map((o) => `${o.kind}/${o.name}:${o.ready}`).sort(), [
      'IdentityStore/corp:True',
      'SmsGatewayAccount/console:True',
      'SmsTemplate/text:True',
    ]);
    assert.is((await fetch(`${run.url}/readyz`)).status, 200);

    // A verification started before the edits must stay checkable through all of them.
    const pending = await post(run, '/v1/t/corp/verifications', { to: '+14155550101', purpose: 'enroll', user: 'alice' });
    assert.is(pending.status, 201);
    const pendingCode = lastSent(f.outbox);
    assert.match(pendingCode.text, /^First: \d{6}$/);
    // The console prints the code with the number masked.
    await run.stderrMatch(/console gateway\] t\/console to \+1 •+ \(1 segment\): First: \d{6}/);

    // Edit in place.
    writeFileSync(join(f.dir, 'template.yaml'), template('Second: [Code]'));
    await run.next(applied('IdentityStore/t/corp'));
    await post(run, '/v1/t/corp/verifications', { to: '+14155550102', purpose: 'enroll', user: 'bob' });
    assert.match(lastSent(f.outbox).text, /^Second: \d{6}$/);

    // Break it: the diagnostics point at the file; the last valid text keeps serving.
    writeFileSync(join(f.dir, 'template.yaml'), template('Third has no placeholder'));
    const broken = await run.next((e) => e.event === 'applied' && (e.diagnostics ?? []).length > 0);
    assert.match(broken.diagnostics!.join('\n'), /template\.yaml:4:\d+: error code-placeholder-missing/);
    const tpl = broken.objects!.find((o) => o.name === 'text')!;
    assert.equal([tpl.ready, tpl.reason, tpl.observedGeneration], ['False', 'InvalidSpec', 3]);
    assert.match(tpl.message, /generation 2 stays live/);
    await post(run, '/v1/t/corp/verifications', { to: '+14155550103', purpose: 'enroll', user: 'carol' });
    assert.match(lastSent(f.outbox).text, /^Second: \d{6}$/);
    const status = JSON.parse(readFileSync(join(f.state, 'status-copy.json'), 'utf8')) as {
      objects: { name: string; status: { conditions: { type: string; reason: string }[] } }[];
    };
    assert.is(status.objects.find((o) => o.name === 'text')!.status.conditions.find((c) => c.type === 'Ready')!.reason, 'InvalidSpec');

    // Fix it with an editor's atomic save (write elsewhere, rename over).
    writeFileSync(join(f.dir, '.template.yaml.swp'), template('Fourth: [Code]'));
    renameSync(join(f.dir, '.template.yaml.swp'), join(f.dir, 'template.yaml'));
    await run.next(applied('IdentityStore/t/corp'));
    await post(run, '/v1/t/corp/verifications', { to: '+14155550104', purpose: 'enroll', user: 'dave' });
    assert.match(lastSent(f.outbox).text, /^Fourth: \d{6}$/);

    // The first verification survived every swap.
    const checked = await post(run, `/v1/t/corp/verifications/${pending.body.id}/check`, { code: pendingCode.code });
    assert.is(checked.body.status, 'approved');

    // Removing the linked account is refused, naming both objects; it keeps serving.
    rmSync(join(f.dir, 'gateway.yaml'));
    const refusedRemoval = await run.next((e) => e.event === 'applied' && (e.problems ?? []).length > 0);
    assert.match(refusedRemoval.problems![0]!, /SmsGatewayAccount t\/console was removed but IdentityStore t\/corp links it/);
    assert.is((await post(run, '/v1/t/corp/verifications', { to: '+14155550105', purpose: 'enroll', user: 'erin' })).status, 201);
    writeFileSync(join(f.dir, 'gateway.yaml'), GATEWAY);
    await run.next((e) => e.event === 'applied' && (e.problems ?? []).length === 0);

    // Deleting the store stops serving it.
    rmSync(join(f.dir, 'store.yaml'));
    await run.next((e) => e.event === 'applied' && (e.swapped ?? []).includes('IdentityStore/t/corp'));
    assert.is((await post(run, '/v1/t/corp/verifications', { to: '+14155550106', purpose: 'enroll', user: 'fay' })).status, 404);

    // A folder that suddenly declares nothing is refused.
    writeFileSync(join(f.dir, 'store.yaml'), STORE);
    await run.next(applied('IdentityStore/t/corp'));
    for (const name of ['gateway.yaml', 'template.yaml', 'store.yaml']) rmSync(join(f.dir, name));
    const refused = await run.next((e) => e.event === 'refused');
    assert.match(refused.refused!, /declares no smsauth object any more/);
    assert.is((await post(run, '/v1/t/corp/verifications', { to: '+14155550107', purpose: 'enroll', user: 'gus' })).status, 201);
  } finally {
    assert.is(await run.stop('SIGTERM'), 0);
  }
});

e2e('follows a symlink swap of the folder itself (git-sync, volume mounts)', async () => {
  const base = mkdtempSync(join(tmpdir(), 'smsauth-swap-'));
  for (const [v, text] of [
    ['v1', 'One: [Code]'],
    ['v2', 'Two: [Code]'],
  ] as const) {
    mkdirSync(join(base, v));
    writeFileSync(join(base, v, 'all.yaml'), `${GATEWAY}---\n${template(text)}---\n${STORE}`);
  }
  symlinkSync(join(base, 'v1'), join(base, 'current'));
  const run = await startRun(['--dir', join(base, 'current'), '--state-dir', join(base, 'state'), '--port', '0']);
  try {
    symlinkSync(join(base, 'v2'), join(base, 'next'));
    renameSync(join(base, 'next'), join(base, 'current'));
    await run.next(applied('IdentityStore/t/corp'));
    await post(run, '/v1/t/corp/verifications', { to: '+14155550101', purpose: 'enroll', user: 'alice' });
    assert.match(lastSent(join(base, 'state', 'outbox.jsonl')).text, /^Two: \d{6}$/);
    // And edits inside the new target are followed.
    writeFileSync(join(base, 'v2', 'all.yaml'), `${GATEWAY}---\n${template('Three: [Code]')}---\n${STORE}`);
    await run.next(applied('IdentityStore/t/corp'));
  } finally {
    await run.stop();
  }
});

e2e('says when it is idle: once a reload and what follows it are done, with the revision it serves', async () => {
  const f = folder();
  const run = await startRun(['--dir', f.dir, '--state-dir', f.state, '--port', '0']);
  try {
    const isIdle = (e: { event: string }): boolean => e.event === 'idle';
    const first = run.events.find(isIdle) ?? (await run.next(isIdle));
    const start = run.events.find((e) => e.event === 'applied')!;
    assert.ok(run.events.indexOf(start) < run.events.indexOf(first), 'idle after the start was applied');
    assert.is(first.revision, start.revision);
    // Written whole and renamed in, as editors save: one change, not a truncation then a write.
    writeFileSync(join(f.dir, '..', 'template.yaml.new'), template('Second: [Code]'));
    renameSync(join(f.dir, '..', 'template.yaml.new'), join(f.dir, 'template.yaml'));
    // (The first idle may follow the line that startRun consumed: next looks from there, so it is excluded by name.)
    const second = await run.next((e) => isIdle(e) && e !== first);
    const reloads = run.events.slice(run.events.indexOf(first), run.events.indexOf(second)).filter((e) => e.event === 'applied');
    assert.is(reloads.length, 1, 'the edit, applied before the next idle');
    assert.ok(reloads[0]!.swapped?.includes('IdentityStore/t/corp'));
    assert.is(second.revision, reloads[0]!.revision);
    assert.is.not(second.revision, first.revision);
  } finally {
    await run.stop();
  }
});

e2e('a state folder inside the watched folder (--dir .) is no news: what the run writes there starts no reload', async () => {
  const f = folder();
  const run = await startRun(['--dir', '.', '--port', '0'], { cwd: f.dir });
  try {
    // A marker file is news: the reload it starts says so, and anything the watcher saw before it
    // (what the run wrote under .smsauth) would be in that reload's reason or an earlier one.
    let markers = 0;
    const marked = async (): Promise<void> => {
      const name = `marker-${++markers}.yaml`;
      writeFileSync(join(f.dir, name), '# nothing to apply\n');
      await run.next((e) => e.event === 'applied' && (e.reason ?? '').includes(name));
    };
    await marked();
    const before = run.events.length;
    assert.is((await post(run, '/v1/t/corp/verifications', { to: '+14155550101', purpose: 'enroll', user: 'alice' })).status, 201);
    await marked();
    const reloads = run.events.slice(before).filter((e) => e.event === 'applied');
    assert.is(reloads.length, 1, `only the marker's: ${reloads.map((e) => e.reason).join(' | ')}`);
    assert.not.match(reloads[0]!.reason ?? '', '.smsauth', 'the status snapshot, state and outbox written under .smsauth reload nothing');
    // An edit is still news.
    writeFileSync(join(f.dir, 'template.yaml'), template('Second: [Code]'));
    await run.next(applied('IdentityStore/t/corp'));
  } finally {
    await run.stop();
  }
});

e2e('takes secrets from --secrets-dir, follows their rotation, and never prints them', async () => {
  const f = folder();
  const secretsDir = join(f.dir, '..', 'secrets');
  mkdirSync(secretsDir);
  writeFileSync(
    join(f.dir, 'webhook.yaml'),
    `apiVersion: smsauth.io/v1alpha1
kind: SmsGatewayAccount
metadata: {name: hook, namespace: t}
spec:
  provider: webhook
  webhook: {url: "http://127.0.0.1:9/send", signingSecret: {secretRef: {name: hook, key: secret}}}
`,
  );
  const run = await startRun(['--dir', f.dir, '--secrets-dir', secretsDir, '--state-dir', f.state, '--port', '0']);
  try {
    const start = run.events.find((e) => e.event === 'applied')!;
    const hook = start.objects!.find((o) => o.name === 'hook')!;
    assert.equal([hook.ready, hook.reason], ['False', 'SecretNotFound']);
    writeFileSync(
      join(secretsDir, 'hook.yaml'),
      'apiVersion: v1\nkind: Secret\nmetadata: {name: hook, namespace: t}\nstringData: {secret: first-super-secret-value}\n',
    );
    const resolved = await run.next((e) => e.event === 'applied' && (e.objects ?? []).some((o) => o.name === 'hook' && o.ready === 'True'));
    assert.ok(resolved);
    writeFileSync(
      join(secretsDir, 'hook.yaml'),
      'apiVersion: v1\nkind: Secret\nmetadata: {name: hook, namespace: t}\nstringData: {secret: second-super-secret-value}\n',
    );
    await run.next((e) => e.event === 'applied');
  } finally {
    await run.stop();
  }
  const everything = JSON.stringify(run.events) + run.stderr() + readFileSync(join(f.state, 'status.json'), 'utf8');
  assert.not.match(everything, 'super-secret-value');
});

e2e('a restart keeps enrollments, pending verifications, pins and the last valid versions', async () => {
  const f = folder();
  const args = ['--dir', f.dir, '--state-dir', f.state, '--port', '0'];
  let run = await startRun(args);
  const pending = await post(run, '/v1/t/corp/verifications', { to: '+14155550101', purpose: 'enroll', user: 'alice' });
  const { code } = lastSent(f.outbox);
  writeFileSync(join(f.dir, 'template.yaml'), template('Broken'));
  await run.next((e) => e.event === 'applied' && (e.diagnostics ?? []).length > 0);
  assert.is(await run.stop('SIGINT'), 0);
  run = await startRun(args);
  try {
    const checked = await post(run, `/v1/t/corp/verifications/${pending.body.id}/check`, { code });
    assert.is(checked.body.status, 'approved');
    await post(run, '/v1/t/corp/verifications', { to: '+14155550102', purpose: 'enroll', user: 'bob' });
    assert.match(lastSent(f.outbox).text, /^First: \d{6}$/, 'the last valid template serves after the restart');
    assert.ok(existsSync(join(f.state, 'keys.json')));
  } finally {
    await run.stop();
  }
});

e2e('a saved status that cannot be used is said at start and kept aside, never dropped in silence', async () => {
  const f = folder();
  const args = ['--dir', f.dir, '--state-dir', f.state, '--port', '0'];
  let run = await startRun(args);
  assert.is(await run.stop('SIGINT'), 0);
  const saved = join(f.state, 'status.json');
  const whole = readFileSync(saved, 'utf8');
  writeFileSync(saved, whole.slice(0, whole.length / 2)); // cut short, as by a full disk or a hand
  run = await startRun(args);
  try {
    const note = run.events.find((e) => e.event === 'note' && String(e.message).startsWith('the saved status'));
    assert.ok(note !== undefined, `a note says so: ${JSON.stringify(run.events)}`);
    assert.match(
      String(note.message),
      /^the saved status \S+status\.json cannot be used \(not JSON \(it breaks at character \d+\)\); starting afresh: .*; it is kept as \S+status\.json\.unreadable$/,
    );
    assert.is(readFileSync(`${saved}.unreadable`, 'utf8'), whole.slice(0, whole.length / 2), 'kept as it was');
    assert.ok(JSON.parse(readFileSync(saved, 'utf8')).objects.length > 0, 'a new status is saved');
  } finally {
    await run.stop();
  }
});

e2e('a status file behind a symbolic link stays one; one that can no longer be written leaves the reload applied, and says so', async () => {
  const f = folder();
  const elsewhere = mkdtempSync(join(tmpdir(), 'smsauth-status-'));
  const link = join(f.dir, '..', 'status-link.json');
  writeFileSync(join(elsewhere, 'status.json'), '{}');
  symlinkSync(join(elsewhere, 'status.json'), link);
  const run = await startRun(['--dir', f.dir, '--state-dir', f.state, '--port', '0', '--status-file', link]);
  try {
    assert.ok(lstatSync(link).isSymbolicLink(), 'the link is still a link');
    assert.is(JSON.parse(readFileSync(join(elsewhere, 'status.json'), 'utf8')).objects.length, 3, 'its target holds the status');
    // The target's folder goes away: the next reload applies, and a note says its status was not saved.
    rmSync(elsewhere, { recursive: true });
    writeFileSync(join(f.dir, 'template.yaml'), template('Second: [Code]'));
    await run.next(applied('IdentityStore/t/corp'));
    const note = await run.next((e) => e.event === 'note');
    assert.match(
      String(note.message),
      /^configuration applied; its status could not be saved \(.*status\.json: ENOENT\): a restart serves the last status saved$/,
    );
    assert.is((await post(run, '/v1/t/corp/verifications', { to: '+14155550101', purpose: 'enroll', user: 'alice' })).status, 201);
    assert.match(lastSent(f.outbox).text, /^Second: \d{6}$/, 'the new text serves');
  } finally {
    await run.stop();
  }
});

e2e.run();
