import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ROOT } from './helpers/fixtures.ts';
import { startRun, type RunEvent } from './helpers/run-process.ts';

const README = readFileSync(join(ROOT, 'README.md'), 'utf8');

/** block returns the shell code between <!-- quickstart:NAME --> and the next <!-- quickstart:end -->. */
function block(name: string): string {
  const start = README.indexOf(`<!-- quickstart:${name} -->`);
  assert.ok(start >= 0, `README has a quickstart:${name} block`);
  const body = README.slice(start, README.indexOf('<!-- quickstart:end -->', start));
  return /```sh\n([\s\S]*?)```/.exec(body)![1]!;
}

function sh(command: string): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile('sh', ['-c', command], { cwd: ROOT }, (err, stdout, stderr) => (err ? reject(new Error(stderr || err.message)) : resolve(stdout))),
  );
}

const quickstart = suite('README quick start');
quickstart('runs as written: npm start, then the two curl commands', async () => {
  assert.is(block('start').trim(), 'npm ci && npm start', 'the first command a newcomer runs');
  const state = mkdtempSync(join(tmpdir(), 'smsauth-quickstart-'));
  // `npm ci` has run already (the tests run from an installed checkout); the rest is npm start itself,
  // on a free port and its own state folder so that a developer's .smsauth is left alone.
  const run = await startRun(['--', '--port', '0', '--state-dir', state], { command: ['npm', 'start'] });
  try {
    const port = new URL(run.url).port;
    // The console page the quick start opens.
    assert.match(README, /Open \*\*http:\/\/127\.0\.0\.1:8787\/\*\* in a browser/);
    const page = await fetch(`http://127.0.0.1:${port}/`);
    assert.is(page.status, 200);
    assert.match(await page.text(), /<script type="module" src="\/console\/app\.js\?v=[0-9a-f]{12}"><\/script>/);
    const enroll = JSON.parse(await sh(block('enroll').replaceAll('8787', port))) as { id: string; status: string };
    assert.is(enroll.status, 'pending');
    // The first terminal shows the code.
    const printed = await run.stderrMatch(/console gateway\] identity\/dev-console to \+1 •+ \(1 segment\): (\d{6}) is your Contoso verification code/);
    const check = block('check').replaceAll('8787', port).replace('VE0123456789abcdef0123456789abcdef', enroll.id).replace('"123456"', `"${printed[1]}"`);
    const approved = JSON.parse(await sh(check)) as { status: string };
    assert.is(approved.status, 'approved');
    const enrollments = JSON.parse(await sh(`curl -s http://127.0.0.1:${port}/v1/identity/corp-ad/users/alice/enrollments`)) as {
      enrollments: { to: string }[];
    };
    assert.equal(
      enrollments.enrollments.map((e) => e.to),
      ['+1 ••••••••••'],
    );
    // The store with a (static) directory: how far its enforcing roles' members have enrolled.
    // The run says it is idle once the start's reload and what follows it (the count) are done.
    const isCount = (e: RunEvent): boolean => e.event === 'compliance' && e.store === 'branch-office';
    const idle = run.events.find((e) => e.event === 'idle') ?? (await run.next((e) => e.event === 'idle'));
    const counted = run.events.slice(0, run.events.indexOf(idle)).find(isCount);
    assert.ok(counted !== undefined, 'counted before idle');
    assert.equal(
      counted.roles!.map((r) => [r.role, r.members, r.enrolled]),
      [
        ['branch-managers', 1, 0],
        ['branch-staff', 1, 0],
      ],
    );
  } finally {
    await run.stop('SIGINT');
  }
});
quickstart.run();
