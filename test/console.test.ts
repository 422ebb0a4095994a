import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { Page } from 'playwright-core';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { buildConsole } from '../controller/tools/build-console.ts';
import { openBrowser } from './helpers/browser.ts';
import { ROOT } from './helpers/fixtures.ts';
import { startRun, type RunProcess } from './helpers/run-process.ts';

// The console page of `smsauth run`, in Debian's Chromium through playwright-core: the try-it
// flow end to end, a broken file and its fix followed live, accessibility (axe-core), the
// Content-Security-Policy and the CSRF defence.

const TEMPLATE = (text: string): string => `apiVersion: smsauth.io/v1alpha1
kind: SmsTemplate
metadata: {name: text, namespace: t}
spec:
  text: "${text}"
`;

function folder(): { dir: string; state: string } {
  const base = mkdtempSync(join(tmpdir(), 'smsauth-console-'));
  const dir = join(base, 'config');
  mkdirSync(dir);
  writeFileSync(
    join(dir, 'resources.yaml'),
    `apiVersion: smsauth.io/v1alpha1
kind: SmsGatewayAccount
metadata: {name: console, namespace: t}
spec: {provider: console, default: true}
---
apiVersion: smsauth.io/v1alpha1
kind: IdentityStore
metadata: {name: corp, namespace: t}
spec:
  type: ActiveDirectory
  authenticationTypes: [SMS]
  sms: {templateRef: {name: text}}
---
apiVersion: smsauth.io/v1alpha1
kind: SecurityRole
metadata: {name: staff, namespace: t}
spec:
  identityStoreRef: {name: corp}
  priority: 1
  enabled: true
  members: {groups: ["CN=Staff,DC=t,DC=example"]}
  authenticationPolicy: {enforced: [SMS], chosenByEndUser: 0, secondFactor: false}
  lockout: {failedAttemptsThreshold: 3, duration: 10m}
`,
  );
  writeFileSync(join(dir, 'template.yaml'), TEMPLATE('Your code: [Code]'));
  return { dir, state: join(base, 'state') };
}

const AXE = readFileSync(join(ROOT, 'node_modules', 'axe-core', 'axe.min.js'), 'utf8');

/** violations runs axe-core on the page as it is (injected through the debugging protocol, which the page's CSP does not govern). */
async function violations(page: Page): Promise<string[]> {
  await page.evaluate(AXE);
  // Evaluated in the page (as text: the tests' types have no DOM).
  return await page.evaluate<string[]>(`(async () => {
    const r = await axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] } });
    return r.violations.map((v) => v.id + ': ' + v.nodes.map((n) => n.target.join(' ')).join(', '));
  })()`);
}

const page_ = suite<{ run: RunProcess; f: { dir: string; state: string } }>('the console page', {} as { run: RunProcess; f: { dir: string; state: string } });
page_.before.each(async (ctx) => {
  ctx.f = folder();
  ctx.run = await startRun(['--dir', ctx.f.dir, '--state-dir', ctx.f.state, '--port', '0']);
});
page_.after.each(async (ctx) => {
  await ctx.run.stop();
});

page_('walks the try-it flow, then follows a broken file and its fix, without reloading the page', async ({ run, f }) => {
  const browser = await openBrowser();
  try {
    const page = await browser.context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    await page.goto(`${run.url}/#/try`);
    await page.evaluate(() => ((globalThis as unknown as { marker: number }).marker = 42));
    await page.getByText('live', { exact: true }).waitFor();

    // 1. Enroll: the code arrives in the outbox pane, masked number and all.
    await page.getByLabel('User', { exact: true }).fill('alice');
    await page.getByLabel('Mobile number').fill('+14155550101');
    await page.getByRole('button', { name: 'Send a code' }).click();
    await page.getByRole('button', { name: 'Use this code' }).click();
    await page.getByRole('button', { name: 'Check' }).click();
    await page.getByText("Approved: +14155550101 is alice's SMS factor now.").waitFor();
    // 3. Authenticate with the last digits (filled in from the number), then the new code.
    assert.is(await page.getByLabel('Last four digits of the number').inputValue(), '0101');
    await page.getByRole('button', { name: 'Send a sign-in code' }).click();
    await page.locator('.pane li').nth(0).waitFor();
    await page.getByRole('button', { name: 'Use this code' }).click();
    await page.getByRole('button', { name: 'Check' }).click();
    await page.getByText('Approved: alice authenticated by SMS.').waitFor();

    // The outbox shows both messages, newest first, the number by its last four digits only.
    await page.getByRole('link', { name: /^Outbox/ }).click();
    await page.locator('li.message').nth(1).waitFor();
    const shown = await page.locator('li.message').allTextContents();
    assert.is(shown.length, 2);
    for (const m of shown) {
      assert.match(m, /to \+•{7}0101/);
      assert.not.match(m, '4155550101');
      assert.match(m, /Your code: \d{6}/);
    }
    await page.getByLabel('Number ends with').fill('9999');
    await page.getByText('0 messages').waitFor();
    await page.getByLabel('Number ends with').fill('0101');
    await page.getByText('2 messages').waitFor();

    // The user's page: the enrollment, no lockout, the history.
    await page.getByRole('link', { name: 'Users' }).click();
    await page.getByLabel('User', { exact: true }).fill('alice');
    await page.getByRole('button', { name: 'Look up' }).click();
    await page.getByText('Not locked out (0 consecutive failures).').waitFor();
    const history = await page.locator('table tbody tr').allTextContents();
    assert.equal(
      history.map((r) => /(enroll|authenticate)(success)/.exec(r)?.slice(1).join(' ')),
      ['authenticate success', 'enroll success'],
    );

    // A broken file: the template turns not Ready, live, with the diagnostic at its line.
    await page.getByRole('link', { name: /^Resources/ }).click();
    const templateRow = page.locator('tr', { has: page.getByRole('link', { name: 't/text' }) });
    await templateRow.locator('.cond.good').first().waitFor();
    writeFileSync(join(f.dir, 'template.yaml'), TEMPLATE('Your code is coming'));
    await page.locator('tr[data-ready="False"]', { has: page.getByRole('link', { name: 't/text' }) }).waitFor();
    await page.getByRole('link', { name: 't/text' }).click();
    const diag = page.locator('p.diag.error').first();
    await diag.waitFor();
    assert.equal([await diag.getAttribute('data-line'), await diag.getAttribute('data-column')], ['5', '9']);
    assert.match((await diag.textContent()) ?? '', /template\.yaml:5:9 error code-placeholder-missing/);
    // The diagnostic sits under its line, and the last valid generation keeps serving.
    assert.match((await page.locator('#L5 + p.diag').textContent()) ?? '', /code-placeholder-missing/);
    await page.getByText('serving generation 1 (the last valid one)').waitFor();
    // Fixed: Ready again, the diagnostic gone.
    writeFileSync(join(f.dir, 'template.yaml'), TEMPLATE('Your new code: [Code]'));
    await page.locator('.summary .cond.good').waitFor();
    assert.is(await page.locator('p.diag').count(), 0);
    assert.is(await page.evaluate(() => (globalThis as unknown as { marker?: number }).marker), 42, 'never reloaded');
    assert.equal(errors, []);

    // The README's picture: the resources view.
    await page.getByRole('link', { name: /^Resources/ }).click();
    await page.locator('tr[data-ready="True"]', { has: page.getByRole('link', { name: 't/text' }) }).waitFor();
    const picture = await page.screenshot({ fullPage: false });
    const path = join(ROOT, 'docs', 'console.png');
    if (!existsSync(path) || !readFileSync(path).equals(picture)) writeFileSync(path, picture);
  } finally {
    await browser.close();
  }
});

page_('has no accessibility violation on any page, works under a CSP that forbids inline script, and refuses cross-site requests', async ({ run }) => {
  const browser = await openBrowser();
  try {
    const page = await browser.context.newPage();
    const response = await page.goto(`${run.url}/#/resources`);
    const csp = response!.headers()['content-security-policy']!;
    assert.match(csp, "script-src 'self';");
    assert.not.match(csp, 'unsafe-inline');
    await page.getByText('live', { exact: true }).waitFor();
    await page.locator('tr[data-ready]').first().waitFor();
    assert.equal(await violations(page), [], 'resources');

    // An inline script is refused by the browser; the page still works.
    const inline = await page.evaluate(`(async () => {
      const violated = new Promise((resolve) => document.addEventListener('securitypolicyviolation', (e) => resolve(e.violatedDirective), { once: true }));
      const s = document.createElement('script');
      s.textContent = 'globalThis.inlineRan = true';
      document.body.append(s);
      return { ran: globalThis.inlineRan === true, directive: await violated };
    })()`);
    assert.equal(inline, { ran: false, directive: 'script-src-elem' });

    await page.getByRole('link', { name: 't/corp' }).click();
    await page.locator('.source').waitFor();
    assert.equal(await violations(page), [], 'an object');
    await page.goto(`${run.url}/#/try`);
    await page.getByLabel('User', { exact: true }).fill('bob');
    await page.getByLabel('Mobile number').fill('+14155550102');
    await page.getByRole('button', { name: 'Send a code' }).click();
    await page.getByRole('button', { name: 'Use this code' }).waitFor();
    assert.equal(await violations(page), [], 'try it');
    await page.getByRole('link', { name: /^Outbox/ }).click();
    await page.locator('li.message').first().waitFor();
    assert.equal(await violations(page), [], 'outbox');
    await page.getByRole('link', { name: 'Users' }).click();
    await page.getByLabel('User', { exact: true }).fill('bob');
    await page.getByRole('button', { name: 'Look up' }).click();
    await page.getByText('No SMS enrollment.').waitFor();
    assert.equal(await violations(page), [], 'users');

    // Keyboard: the tabs are links in order, each reachable with Tab.
    await page.goto('about:blank');
    await page.goto(`${run.url}/#/resources`);
    await page.locator('tr[data-ready]').first().waitFor();
    await page.keyboard.press('Tab');
    await page.keyboard.press('Tab');
    assert.match(await page.evaluate<string>('document.activeElement?.textContent ?? ""'), /^Outbox/);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Outbox' }).waitFor();

    // A cross-site page posts a form at the console (the only kind of request a browser sends
    // across sites without asking): refused, and nothing is sent.
    const sent = await page.locator('li.message').count();
    const evil = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(`<!doctype html><form method="post" action="${run.url}/console/api/enroll" enctype="text/plain">
<input name='{"namespace":"t","store":"corp","user":"eve","to":"+14155550199","x":"' value='"}'></form>
<script>document.forms[0].submit()</script>`);
    });
    await new Promise<void>((resolve) => evil.listen(0, '127.0.0.2', resolve));
    try {
      const other = await browser.context.newPage();
      const answered = other.waitForResponse((r) => r.url().endsWith('/console/api/enroll'));
      await other.goto(`http://127.0.0.2:${(evil.address() as AddressInfo).port}/`);
      const refused = await answered;
      assert.ok(refused.status() === 403 || refused.status() === 415, `refused (${refused.status()})`);
      await other.close();
    } finally {
      evil.close();
    }
    // The same request with a JSON body, from another origin, carrying even the right token: refused.
    const token = await page.locator('meta[name="smsauth-csrf"]').getAttribute('content');
    const forged = await fetch(`${run.url}/console/api/enroll`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: 'http://127.0.0.2:9', 'sec-fetch-site': 'cross-site', 'x-smsauth-csrf': token! },
      body: JSON.stringify({ namespace: 't', store: 'corp', user: 'eve', to: '+14155550199' }),
    });
    assert.is(forged.status, 403);
    const noToken = await fetch(`${run.url}/console/api/enroll`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ namespace: 't', store: 'corp', user: 'eve', to: '+14155550199' }),
    });
    assert.is(noToken.status, 403);
    const rebound = await new Promise<number>((resolve, reject) =>
      request(`${run.url}/`, { headers: { host: 'attacker.example' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      })
        .on('error', reject)
        .end(),
    );
    assert.is(rebound, 421, 'a DNS-rebinding page (another Host) gets nothing');
    await page.reload();
    await page.locator('li.message').first().waitFor();
    assert.is(await page.locator('li.message').count(), sent, 'nothing was sent for them');
  } finally {
    await browser.close();
  }
});

page_.run();

const helpdesk = suite('the console and the helpdesk');
helpdesk("a user locked out by wrong codes is shown locked, and the helpdesk's unlock (with a reason) frees them", async () => {
  const f = folder();
  const tokenFile = join(f.state, '..', 'helpdesk-token');
  writeFileSync(tokenFile, 'helpdesk-token-0123456789abcdef\n');
  const run = await startRun(['--dir', f.dir, '--state-dir', f.state, '--port', '0', '--helpdesk-token-file', tokenFile]);
  const browser = await openBrowser();
  try {
    const page = await browser.context.newPage();
    await page.goto(`${run.url}/#/try`);
    await page.getByLabel('User', { exact: true }).fill('carol');
    await page.getByLabel('Mobile number').fill('+14155550103');
    await page.getByRole('button', { name: 'Send a code' }).click();
    await page.getByRole('button', { name: 'Use this code' }).click();
    await page.getByRole('button', { name: 'Check' }).click();
    await page.getByText("Approved: +14155550103 is carol's SMS factor now.").waitFor();
    await page.getByRole('button', { name: 'Send a sign-in code' }).click();
    await page.getByRole('button', { name: 'Use this code' }).waitFor();
    // Three wrong codes: the role's threshold locks carol out.
    const right = await page.locator('.pane mark.code').first().textContent();
    for (let i = 0; i < 3; i++) {
      await page.getByLabel('Code').fill(right === '000000' ? '111111' : '000000');
      await page.getByRole('button', { name: 'Check' }).click();
      await page.getByText(/^Not approved: pending/).waitFor();
      await page.getByText(`${4 - i} attempts left`, { exact: false }).waitFor();
    }
    await page.getByRole('link', { name: 'Users' }).click();
    await page.getByLabel('User', { exact: true }).fill('carol');
    await page.getByRole('button', { name: 'Look up' }).click();
    await page.getByText('Locked out').waitFor();
    assert.equal(await violations(page), []);
    await page.getByLabel('Reason').fill('caller verified on the phone');
    // Without the helpdesk's token (the page's own credentials are not the helpdesk's): refused.
    await page.getByLabel('Helpdesk token').fill('not-the-helpdesk-token-0123');
    await page.getByRole('button', { name: 'Unlock (helpdesk)' }).click();
    await page.getByText('unauthorized: the helpdesk token is required').waitFor();
    await page.getByLabel('Helpdesk token').fill('helpdesk-token-0123456789abcdef');
    await page.getByRole('button', { name: 'Unlock (helpdesk)' }).click();
    await page.getByText('carol is unlocked.').waitFor();
    await page.getByText('Not locked out (0 consecutive failures).').waitFor();
    const events = await page.locator('table tbody tr').allTextContents();
    assert.match(events[0]!, /unlocksuccesshelpdesk:console/);
  } finally {
    await browser.close();
    await run.stop();
  }
});
helpdesk.run();

const guard = suite('the console behind a token, and without a console');
guard('with a token, the page and its feed need it: once in the address, then a same-site cookie', async () => {
  const f = folder();
  const token = 'console-token-0123456789abcdef';
  const run = await startRun(['--dir', f.dir, '--state-dir', f.state, '--port', '0'], { env: { SMSAUTH_TOKEN: token } });
  try {
    assert.is((await fetch(`${run.url}/`)).status, 401);
    assert.is((await fetch(`${run.url}/console/api/events`)).status, 401);
    assert.is((await fetch(`${run.url}/?token=wrong-token-0123456789`, { redirect: 'manual' })).status, 401);
    const landed = await fetch(`${run.url}/?token=${token}`, { redirect: 'manual' });
    assert.is(landed.status, 303);
    const cookie = landed.headers.get('set-cookie')!;
    assert.match(cookie, /; HttpOnly; SameSite=Strict$/);
    assert.not.match(cookie, token, 'the cookie is not the token');
    const jar = cookie.split(';')[0]!;
    const page = await fetch(`${run.url}/`, { headers: { cookie: jar } });
    assert.is(page.status, 200);
    assert.is((await fetch(`${run.url}/`, { headers: { authorization: `Bearer ${token}` } })).status, 200);
    const feed = await fetch(`${run.url}/console/api/events`, { headers: { cookie: jar } });
    assert.is(feed.status, 200);
    assert.match(feed.headers.get('content-type')!, /^text\/event-stream/);
    await feed.body!.cancel();
    assert.is(
      (await fetch(`${run.url}/v1/t/corp/users/alice/enrollments`, { headers: { cookie: jar } })).status,
      401,
      'the cookie opens the console, not the API',
    );
  } finally {
    await run.stop();
  }
});

/** snapshotOf reads the first event of the console's feed: the snapshot. */
async function snapshotOf(url: string): Promise<{ messages: { to: string; code: string | null; store: string | null }[] }> {
  const feed = await fetch(`${url}/console/api/events`);
  const reader = feed.body!.getReader();
  let text = '';
  while (!/^data: .*\n\n/m.test(text)) text += new TextDecoder().decode((await reader.read()).value);
  await reader.cancel();
  return JSON.parse(/^data: (.*)$/m.exec(text)![1]!) as { messages: { to: string; code: string | null; store: string | null }[] };
}

guard('a restart keeps the outbox pane: the messages an earlier run left in the outbox file', async () => {
  const f = folder();
  const args = ['--dir', f.dir, '--state-dir', f.state, '--port', '0'];
  let run = await startRun(args);
  try {
    const started = await fetch(`${run.url}/v1/t/corp/verifications`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ to: '+14155550104', purpose: 'enroll', user: 'dave' }),
    });
    assert.is(started.status, 201);
    const before = await snapshotOf(run.url);
    assert.equal(
      before.messages.map((m) => [m.to, m.store]),
      [['+•••••••0104', 'corp']],
    );
    await run.stop();
    run = await startRun(args);
    assert.equal((await snapshotOf(run.url)).messages, before.messages);
  } finally {
    await run.stop();
  }
});

guard('--no-console serves the API alone', async () => {
  const f = folder();
  const run = await startRun(['--dir', f.dir, '--state-dir', f.state, '--port', '0', '--no-console']);
  try {
    assert.is((await fetch(`${run.url}/`)).status, 404);
    assert.is((await fetch(`${run.url}/console/app.js`)).status, 404);
    assert.is((await fetch(`${run.url}/readyz`)).status, 200);
  } finally {
    await run.stop();
  }
});
guard.run();

const built = suite('the console build');
built('matches its sources (npm run gen builds it) and its script is far under 100 KB compressed', async () => {
  const fresh = await buildConsole(ROOT);
  // Compared whole (a diff of minified code says nothing): run npm run gen after editing controller/console/.
  assert.ok(readFileSync(join(ROOT, 'controller/generated/console/app.js'), 'utf8') === fresh.js, 'app.js drifted: run npm run gen');
  assert.ok(readFileSync(join(ROOT, 'controller/generated/console/app.css'), 'utf8') === fresh.css, 'app.css drifted: run npm run gen');
  assert.is(gzipSync(fresh.js, { level: 9 }).length, fresh.gzipBytes);
  assert.ok(fresh.gzipBytes < 100 * 1024, `${fresh.gzipBytes} bytes compressed`);
  // Only XML namespaces (Preact's SVG and MathML) are URLs in it: no CDN, no external resource.
  assert.equal(
    [...new Set(fresh.js.match(/https?:\/\/[^"'`\s)]+/g) ?? [])].filter((u) => !u.startsWith('http://www.w3.org/')),
    [],
  );
});
built.run();
