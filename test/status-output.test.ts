import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { logNote } from '../controller/cli/run-serve.ts';
import { createStatusOutput } from '../controller/cli/status-output.ts';
import { createGateway } from '../controller/gateways/create-gateway.ts';
import type { Report } from '../controller/runtime/local-run.ts';
import { runScenario } from './helpers/reconcile.ts';

// The terminal view of `smsauth run`: the table redrawn on every change, with the console
// gateway's messages and the process's notes under it. Read here as a terminal would show it.

function terminal(): { io: { stdout(t: string): void; stderr(t: string): void; isTTY: boolean }; screen(): string } {
  let last = '';
  return {
    io: { stdout: (t) => (last = t), stderr: () => undefined, isTTY: true },
    // Each render clears the screen and draws it whole: the last one is what shows.
    screen: () => last.replace('\x1b[H\x1b[2J', ''),
  };
}

const view = suite('smsauth run on a terminal');

view('a console message shows its lines as sent, under its heading with the number masked', async () => {
  const t = terminal();
  const output = createStatusOutput(t.io, () => 'header');
  const gateway = createGateway(
    { name: 'dev', provider: 'console', settings: {}, credentials: {}, timeoutMs: 100 } as never,
    {},
    { console: { print: (line, parts) => output.message(line, parts) } },
  );
  await gateway.send({ namespace: 'identity', to: '+14155550123', text: '123456 is your code.\n\n@login.example #123456' } as never);
  const screen = t.screen();
  assert.match(screen, '  [smsauth console gateway] identity/dev to +1 •••••••••• (1 segment):\n    123456 is your code.\n    \n    @login.example #123456\n');
  assert.not.match(screen, '\\n', 'no escaped line break');
  assert.not.match(screen, '4155550123', 'the number is masked');
});

view('a line per role that enforces SMS says how many of its members have enrolled', () => {
  const t = terminal();
  const output = createStatusOutput(t.io, () => 'header');
  output.compliance([
    {
      namespace: 'identity',
      store: 'corp-ad',
      generatedAt: '2026-01-01T00:00:00Z',
      roles: [
        { role: 'administrators', priority: 1, members: 8, enrolled: 8, notEnrolled: 0, truncated: false },
        { role: 'employees', priority: 50, members: 400, enrolled: 297, notEnrolled: 103, truncated: false },
      ],
    },
  ]);
  assert.match(
    t.screen(),
    [
      'Enrollment (roles that enforce SMS):',
      '  identity/corp-ad role administrators: 8 of 8 members enrolled SMS (100%)',
      '  identity/corp-ad role employees: 297 of 400 members enrolled SMS (74%); list them with smsauth report enrollment identity/corp-ad',
    ].join('\n'),
  );
});

view('a removal refused while stores link the account reads DeletionBlocked in its row, not Reconciled', async () => {
  const [, removed] = await runScenario('in-use-removal');
  const t = terminal();
  const output = createStatusOutput(
    t.io,
    () => 'header',
    () => Date.parse('2026-01-01T00:05:00Z'),
  );
  output.report({
    revision: 'r2',
    state: removed!,
    delta: { statuses: [], removedStatuses: [], bundles: [], removedBundles: [] },
    diagnostics: [],
    swapped: [],
    sources: [],
  } satisfies Report);
  const row = t
    .screen()
    .split('\n')
    .find((l) => l.startsWith('SmsGatewayAccount') && l.includes('u/primary'));
  assert.ok(row !== undefined, t.screen());
  assert.match(row, /u\/primary\s+True\s+DeletionBlocked\s+\S+\s+SmsGatewayAccount u\/primary was removed but IdentityStore u\/a, u\/b link it/);
});

view('warnings of the log (a lockout) show as notes, with the fields that say where', () => {
  const line = JSON.stringify({
    level: 40,
    time: 1,
    msg: 'user locked out after consecutive failures',
    namespace: 'identity',
    store: 'corp-ad',
    user: 'alice',
    to: 'never shown',
  });
  assert.is(logNote(line), 'warning: user locked out after consecutive failures (namespace identity, store corp-ad, user alice)');
  assert.is(logNote(JSON.stringify({ level: 50, msg: 'reload failed' })), 'error: reload failed');
  const t = terminal();
  const output = createStatusOutput(t.io, () => 'header');
  output.note(logNote(line));
  assert.match(t.screen(), 'warning: user locked out after consecutive failures (namespace identity, store corp-ad, user alice)');
});

view.run();
