import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStore } from '../controller/adapters/sqlite-store.ts';
import { runCli } from './helpers/cli.ts';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Bundle } from '../controller/core/bundle.ts';
import { CachedDirectory, DirectoryUnavailableError, type Directory } from '../controller/directories/directory.ts';
import { createLdapDirectory } from '../controller/directories/ldap-directory.ts';
import { ROOT } from './helpers/fixtures.ts';
import { startSlapd, type Slapd } from './helpers/slapd.ts';
import { startStack, type Stack } from './helpers/verifier-stack.ts';

// The verifier with a directory (a real slapd): the directory says who a user is, their groups
// and their number; the caller's word is refused.

const BASE = '/v1/acme/ldap';
const HELPDESK_TOKEN = 'helpdesk-token-0123456789abcdef';
const SUFFIX = 'dc=acme,dc=example';

interface Ctx {
  slapd: Slapd;
  stack: Stack;
  /** The stack's SQLite state file. */
  stateFile: string;
  /** The clock the directories' caches read (the stack's own). */
  directories: Directory[];
}

const test = suite<Ctx>('verifier with an LDAP directory', {
  slapd: undefined as unknown as Ctx['slapd'],
  stack: undefined as unknown as Stack,
  directories: [],
  stateFile: '',
});

test.before(async (ctx) => {
  ctx.slapd = await startSlapd({ suffix: SUFFIX, ldif: readFileSync(join(ROOT, 'test', 'fixtures', 'directories', 'acme.ldif'), 'utf8') });
});
test.after(async (ctx) => {
  await ctx.slapd?.stop();
});
test.before.each(async (ctx) => {
  ctx.directories = [];
  const directoryOf = (bundle: Bundle): Directory => {
    const d = bundle.directory!;
    if (d.kind !== 'ldap') throw new Error('an LDAP store');
    const dir = new CachedDirectory(
      createLdapDirectory({
        flavor: d.flavor,
        urls: [ctx.slapd.ldapsUrl],
        startTLS: false,
        ca: ctx.slapd.ca,
        bindDN: ctx.slapd.bindDN,
        bindPassword: ctx.slapd.bindPassword,
        baseDN: d.baseDN,
        userAttribute: d.userAttribute,
        userFilter: d.userFilter,
        mobileAttribute: d.mobileAttribute,
        groupMemberAttribute: d.groupMemberAttribute,
        timeoutMs: 1000,
      }),
      { ttlMs: d.cacheTtlMs, now: () => ctx.stack.clock.now },
    );
    ctx.directories.push(dir);
    return dir;
  };
  ctx.stateFile = join(mkdtempSync(join(tmpdir(), 'smsauth-state-')), 'state.sqlite');
  ctx.stack = await startStack({
    fixture: 'verifier/directory-stores.yaml',
    directoryOf,
    helpdeskToken: HELPDESK_TOKEN,
    store: new SqliteStore(ctx.stateFile),
  });
});
test.after.each(async (ctx) => {
  await ctx.stack?.close();
  await Promise.all(ctx.directories.map((d) => d.close()));
});

test("a user in a nested group gets the outer group's role and its lockout, with no groups in the request", async ({ stack }) => {
  const alice = await stack.api('GET', `${BASE}/users/alice/policy`);
  assert.is(alice.status, 200, JSON.stringify(alice.body));
  assert.equal([alice.body.role, alice.body.lockout.failedAttemptsThreshold, alice.body.secondFactor], [{ name: 'admins', priority: 1 }, 2, true]);
  const bob = await stack.api('GET', `${BASE}/users/bob/policy`);
  assert.equal([bob.body.role.name, bob.body.lockout.failedAttemptsThreshold], ['everyone', 6], 'a contractor: not staff, but in People');
});

test('a user whose DN ends like an OU (an escaped comma) does not get its role', async ({ stack }) => {
  const smith = await stack.api('GET', `${BASE}/users/smith/policy`);
  assert.is(smith.body.role.name, 'everyone');
  assert.is((await stack.api('GET', `${BASE}/users/carol/policy`)).body.role.name, 'staff');
});

test('groups or containers in a request are refused, never used', async ({ stack }) => {
  const claims: [string, string, unknown, string][] = [
    ['POST', `${BASE}/users/bob/policy`, { groups: [`cn=admins,ou=Groups,${SUFFIX}`] }, '/groups'],
    ['POST', `${BASE}/users/bob/policy`, { containers: [`ou=Staff,ou=People,${SUFFIX}`] }, '/containers'],
    ['POST', `${BASE}/verifications`, { to: '+14155550102', purpose: 'enroll', user: 'bob', groups: [] }, '/groups'],
    ['POST', `${BASE}/users/bob/challenges`, { type: 'SMS', lastDigits: '0102', groups: [`cn=admins,ou=Groups,${SUFFIX}`] }, '/groups'],
  ];
  for (const [method, path, body, field] of claims) {
    const r = await stack.api(method, path, body);
    assert.equal([r.status, r.body.error.code, r.body.error.field], [400, 'membership_from_directory', field], path);
  }
  assert.equal(stack.gateways.get('primary')?.sent ?? [], [], 'nothing sent');
});

test('an unknown user is indistinguishable from wrong digits: same answer, nothing sent, never approved', async ({ stack }) => {
  const unknown = await stack.api('POST', `${BASE}/users/nobody/challenges`, { type: 'SMS', lastDigits: '0101' });
  const wrongDigits = await stack.api('POST', `${BASE}/users/alice/challenges`, { type: 'SMS', lastDigits: '9999' });
  const shape = (r: { status: number; body: Record<string, unknown> }): unknown => [
    r.status,
    Object.keys(r.body).sort(),
    r.body.status,
    r.body.to,
    r.body.attemptsLeft,
    r.body.sendsLeft,
  ];
  assert.equal(shape(unknown), shape(wrongDigits));
  await stack.verifier.drain();
  assert.equal(stack.gateways.get('primary')?.sent ?? [], []);
  for (const v of [unknown, wrongDigits]) {
    const check = await stack.api('POST', `${BASE}/verifications/${v.body.id}/check`, { code: '000000' });
    assert.is(check.body.status, 'pending');
  }
  const policy = await stack.api('GET', `${BASE}/users/nobody/policy`);
  assert.equal([policy.status, policy.body.role], [200, null], 'the policy of a user in no group');
  const enroll = await stack.api('POST', `${BASE}/verifications`, { to: '+14155550199', purpose: 'enroll', user: 'nobody' });
  assert.equal([enroll.status, enroll.body.error.code], [404, 'user_not_found'], 'the application enrolls users it has signed in');
});

test("second-way authentication: an unenrolled user gets the code at the directory's number, and it approves", async ({ stack }) => {
  const started = await stack.api('POST', `${BASE}/users/alice/challenges`, { type: 'SMS', lastDigits: '0101' });
  assert.equal([started.status, started.body.to], [201, '••••']);
  await stack.verifier.drain();
  const gateway = stack.gateways.get('primary')!;
  assert.equal(
    gateway.sent.map((m) => m.to),
    ['+14155550101'],
  );
  const check = await stack.api('POST', `${BASE}/verifications/${started.body.id}/check`, { code: gateway.lastCode('+14155550101') });
  assert.is(check.body.status, 'approved');
  assert.equal((await stack.api('GET', `${BASE}/users/alice/enrollments`)).body.enrollments, [], 'authenticating is not enrolling');
  assert.not.match(stack.logs.join(''), '5550101', "the directory's number is never logged");
});

test('second-way authentication turned off: the same request answers as an unknown user', async ({ stack }) => {
  const off = await stack.api('POST', '/v1/acme/ldap-no-second-way/users/alice/challenges', { type: 'SMS', lastDigits: '0101' });
  assert.equal([off.status, off.body.status, off.body.to], [201, 'pending', '••••']);
  await stack.verifier.drain();
  assert.equal(stack.gateways.get('primary')?.sent ?? [], []);
});

test("a user is one user however the name is cased: ALICE shares alice's lockout and enrollment", async ({ stack }) => {
  const gateway = (): ReturnType<Stack['gateways']['get']> => stack.gateways.get('primary');
  const enroll = await stack.api('POST', `${BASE}/verifications`, { to: '+14155550101', purpose: 'enroll', user: 'Alice' });
  assert.is(enroll.body.user, 'alice', "kept under the directory user's name, in lower case");
  await stack.api('POST', `${BASE}/verifications/${enroll.body.id}/check`, { code: gateway()!.lastCode('+14155550101') });
  assert.is((await stack.api('GET', `${BASE}/users/ALICE/enrollments`)).body.enrollments.length, 1);
  for (let i = 0; i < 2; i++) {
    const v = await stack.api('POST', `${BASE}/users/alice/challenges`, { type: 'SMS', lastDigits: '0101' });
    await stack.api('POST', `${BASE}/verifications/${v.body.id}/check`, { code: '000000' });
  }
  const locked = await stack.api('POST', `${BASE}/users/ALICE/challenges`, { type: 'SMS', lastDigits: '0101' });
  assert.equal([locked.status, locked.body.error?.code], [423, 'locked_out'], 'the lockout holds for every spelling');
});

test('a name the directory does not know is locked out as the strictest role is, so counting failures tells nothing', async ({ stack }) => {
  for (let i = 0; i < 2; i++) {
    const v = await stack.api('POST', `${BASE}/users/nobody/challenges`, { type: 'SMS', lastDigits: '0101' });
    await stack.api('POST', `${BASE}/verifications/${v.body.id}/check`, { code: '000000' });
  }
  const locked = await stack.api('POST', `${BASE}/users/nobody/challenges`, { type: 'SMS', lastDigits: '0101' });
  assert.is(locked.status, 423, 'at 2, as admins (the strictest role), not at the default 5');
});

test('the role the directory gives decides the lockout: 2 failures lock alice out', async ({ stack }) => {
  for (let i = 0; i < 2; i++) {
    const v = await stack.api('POST', `${BASE}/users/alice/challenges`, { type: 'SMS', lastDigits: '0101' });
    for (let a = 0; a < 3 && (await stack.api('GET', `${BASE}/verifications/${v.body.id}`)).body.status === 'pending'; a++) {
      await stack.api('POST', `${BASE}/verifications/${v.body.id}/check`, { code: '000000' });
      if ((await stack.api('GET', `${BASE}/users/alice/policy`)).body.lockedOut.locked) break;
    }
  }
  const policy = await stack.api('GET', `${BASE}/users/alice/policy`);
  assert.is(policy.body.lockedOut.locked, true);
  assert.is(policy.body.lockedOut.failedAttempts, 2);
});

test('the directory stopped: 503 for users not cached, cached ones keep working until cacheTTL; back up, no restart', async ({ stack, slapd }) => {
  assert.is((await stack.api('GET', `${BASE}/users/alice/policy`)).status, 200);
  await slapd.stop();
  try {
    const down = await stack.api('GET', `${BASE}/users/bob/policy`);
    assert.equal([down.status, down.body.error.code, down.headers.get('retry-after')], [503, 'directory_unavailable', '1']);
    const challenge = await stack.api('POST', `${BASE}/users/bob/challenges`, { type: 'SMS', lastDigits: '0102' });
    assert.equal([challenge.status, challenge.body.error.code], [503, 'directory_unavailable'], 'never decided as a user in no group');
    assert.is((await stack.api('GET', `${BASE}/users/alice/policy`)).body.role.name, 'admins', 'cached');
    stack.clock.advance(5 * 60_000 + 1);
    assert.is((await stack.api('GET', `${BASE}/users/alice/policy`)).status, 503, 'past cacheTTL nothing is guessed');
  } finally {
    await slapd.start();
  }
  assert.is((await stack.api('GET', `${BASE}/users/bob/policy`)).body.role.name, 'everyone');
});

test('a role that enforces SMS: its members must enroll, cannot unenroll, and only the helpdesk can remove the number', async ({ stack }) => {
  // alice is an admin through a nested group (admins enforce SMS); bob is in no enforcing role.
  const before = await stack.api('GET', `${BASE}/users/alice/policy`);
  assert.equal([before.body.role.name, before.body.mustEnroll, before.body.missing.enforced], ['admins', ['SMS'], ['SMS']]);
  for (const [user, to] of [
    ['alice', '+14155550101'],
    ['bob', '+14155550102'],
  ] as const) {
    const v = await stack.api('POST', `${BASE}/verifications`, { to, purpose: 'enroll', user });
    assert.is(
      (await stack.api('POST', `${BASE}/verifications/${v.body.id}/check`, { code: stack.gateways.get('primary')!.lastCode() })).body.status,
      'approved',
    );
  }
  const after = await stack.api('GET', `${BASE}/users/Alice/policy`);
  assert.equal([after.body.mustEnroll, after.body.enrolled], [[], ['SMS']]);
  const refused = await stack.api('DELETE', `${BASE}/users/alice/enrollments/sms`);
  assert.equal([refused.status, refused.body.error.code], [409, 'enforced_by_role']);
  assert.match(refused.body.error.message, 'security role admins enforces SMS');
  const c = await stack.api('POST', `${BASE}/users/bob/challenges`, { type: 'SMS', lastDigits: '0102' });
  await stack.verifier.drain();
  assert.is((await stack.api('POST', `${BASE}/verifications/${c.body.id}/check`, { code: stack.gateways.get('primary')!.lastCode() })).body.status, 'approved');
  assert.is((await stack.api('DELETE', `${BASE}/users/bob/enrollments/sms`, { proof: c.body.id })).status, 200, 'the everyone role enforces nothing');
  const byHelpdesk = await stack.api(
    'DELETE',
    `${BASE}/users/alice/helpdesk/enrollments/sms`,
    { actor: 'ann', reason: 'lost phone' },
    { authorization: `Bearer ${HELPDESK_TOKEN}` },
  );
  assert.equal([byHelpdesk.status, byHelpdesk.body.removed], [200, true]);
  const events = (await stack.api('GET', `${BASE}/history?type=unenroll`)).body.events;
  assert.equal(
    events.map((e: any) => [e.user, e.actor, e.role]),
    [
      ['alice', 'helpdesk:ann', 'admins'],
      ['bob', 'user', 'everyone'],
    ],
  );
});

test("compliance counts each enforcing role's directory members under the role that decides for them, and smsauth report enrollment lists exactly who has not enrolled", async ({
  stack,
  slapd,
  stateFile,
}) => {
  for (const [user, to] of [
    ['alice', '+14155550101'],
    ['frank', '+14155550106'],
  ] as const) {
    const v = await stack.api('POST', `${BASE}/verifications`, { to, purpose: 'enroll', user });
    assert.is(
      (await stack.api('POST', `${BASE}/verifications/${v.body.id}/check`, { code: stack.gateways.get('primary')!.lastCode() })).body.status,
      'approved',
    );
  }
  const r = await stack.api('GET', `${BASE}/compliance`);
  assert.is(r.status, 200, JSON.stringify(r.body));
  // admins: alice (through a nested group); support: erin, frank, grace (nested, in a cycle; the
  // service account outside the base, the device and the member gone are not users); staff:
  // carol (alice is in its container too, but admins decide for her); everyone enforces nothing.
  assert.equal(
    r.body.roles.map((x: any) => [x.role, x.members, x.enrolled, x.notEnrolled, x.truncated]),
    [
      ['admins', 1, 1, 0, false],
      ['support', 3, 1, 2, false],
      ['staff', 1, 0, 1, false],
    ],
  );
  const metrics = await (await fetch(`${stack.url}/metrics`)).text();
  assert.match(metrics, 'smsauth_role_members{namespace="acme",store="ldap",role="support"} 3');
  assert.match(metrics, 'smsauth_role_members_enrolled{namespace="acme",store="ldap",role="support"} 1');
  const other = await stack.api('GET', '/v1/acme/ldap-no-second-way/compliance');
  assert.equal(other.body.roles, [], 'no role of that store enforces SMS');

  // The same folder as a platform team has it: the store pointing at the slapd, its Secret.
  const dir = mkdtempSync(join(tmpdir(), 'smsauth-report-'));
  const fixture = readFileSync(join(ROOT, 'test', 'fixtures', 'verifier', 'directory-stores.yaml'), 'utf8')
    .replaceAll('url: ldaps://directory.invalid', `url: ${slapd.ldapsUrl}\n      caBundle: {secretRef: {name: ldap, key: ca.pem}}`)
    .replaceAll('bindDN: cn=reader,dc=acme,dc=example', `bindDN: ${slapd.bindDN}`);
  writeFileSync(
    join(dir, 'stores.yaml'),
    `${fixture}---\napiVersion: v1\nkind: Secret\nmetadata: {name: ldap, namespace: acme}\nstringData: ${JSON.stringify({ password: slapd.bindPassword, 'ca.pem': slapd.ca })}\n`,
  );
  const text = await runCli(['report', 'enrollment', 'acme/ldap', '--dir', dir, '--state', stateFile]);
  assert.is(text.code, 0, text.stderr);
  assert.is(
    text.stdout,
    [
      'acme/ldap role admins: 1 of 1 members enrolled SMS; 0 have not',
      'acme/ldap role support: 1 of 3 members enrolled SMS; 2 have not:',
      '  erin',
      '  grace',
      'acme/ldap role staff: 0 of 1 members enrolled SMS; 1 have not:',
      '  carol',
      '',
    ].join('\n'),
  );
  const names = await runCli(['report', 'enrollment', 'acme/ldap', '--dir', dir, '--state', stateFile, '--role', 'support', '-o', 'names']);
  assert.equal([names.code, names.stdout], [0, 'erin\ngrace\n']);
  const missing = await runCli(['report', 'enrollment', 'acme/ldap', '--dir', dir, '--state', join(dir, 'nope.sqlite')]);
  assert.equal([missing.code, missing.stderr.trim().split('\n').length], [2, 1]);
  assert.match(missing.stderr, 'nope.sqlite');
});

test.run();

const throttled = suite('verifier with a throttling directory');
throttled("the directory's Retry-After reaches the caller, bounded to a minute", async () => {
  for (const [afterMs, header] of [
    [30_000, '30'],
    [3_600_000, '60'],
    [undefined, '1'],
  ] as const) {
    const stack = await startStack({
      fixture: 'verifier/directory-stores.yaml',
      directoryOf: () => ({
        lookup: () =>
          Promise.reject(
            new DirectoryUnavailableError('Unreachable', 'throttled', { detail: 'HTTP 429', ...(afterMs !== undefined ? { retryAfterMs: afterMs } : {}) }),
          ),
        members: () => Promise.reject(new DirectoryUnavailableError('Unreachable', 'throttled')),
        check: () => Promise.resolve({ ok: false, problem: 'Unreachable' }),
        close: () => Promise.resolve(),
      }),
    });
    try {
      const r = await stack.api('GET', `${BASE}/users/alice/policy`);
      assert.equal([r.status, r.body.error.code, r.headers.get('retry-after')], [503, 'directory_unavailable', header]);
    } finally {
      await stack.close();
    }
  }
});
throttled.run();
