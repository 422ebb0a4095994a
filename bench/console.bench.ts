import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { openBrowser } from '../test/helpers/browser.ts';
import { startRun } from '../test/helpers/run-process.ts';
import { row, type BenchRow } from './harness.ts';

// The console's resources view with 1,000 objects, in Chromium: how long the first render takes
// and how long a keystroke in the filter takes to redraw the table, beside a bare page (plain DOM
// calls, no framework) rendering the same rows in the same browser in the same run.

const OBJECTS = 1000;

/** folder declares 1,000 objects: a gateway account, and stores each with its template. */
function folder(): string {
  const dir = join(mkdtempSync(join(tmpdir(), 'smsauth-bench-console-')), 'config');
  mkdirSync(dir);
  const docs = [
    'apiVersion: smsauth.io/v1alpha1\nkind: SmsGatewayAccount\nmetadata: {name: console, namespace: b}\nspec: {provider: console, default: true}\n',
  ];
  for (let i = 0; docs.length < OBJECTS; i++) {
    docs.push(`apiVersion: smsauth.io/v1alpha1\nkind: SmsTemplate\nmetadata: {name: text-${i}, namespace: b}\nspec: {text: "Code ${i}: [Code]"}\n`);
    if (docs.length < OBJECTS)
      docs.push(
        `apiVersion: smsauth.io/v1alpha1\nkind: IdentityStore\nmetadata: {name: store-${i}, namespace: b}\nspec: {type: ActiveDirectory, authenticationTypes: [SMS], sms: {templateRef: {name: text-${i}}}}\n`,
      );
  }
  writeFileSync(join(dir, 'resources.yaml'), docs.join('---\n'));
  return dir;
}

/** BARE is the baseline page: the same table from the same rows, with DOM calls and no framework. */
const BARE = (rows: unknown[]): string => `<!doctype html><html lang="en"><head><title>bare</title></head><body>
<label>Filter <input id="f" type="search"></label> <span id="n"></span>
<table><tbody id="t"></tbody></table>
<script>
const rows = ${JSON.stringify(rows)};
const t = document.getElementById('t'), n = document.getElementById('n');
function draw(f) {
  const shown = rows.filter((o) => (o.kind + ' ' + o.namespace + '/' + o.name + ' ' + o.reason).toLowerCase().includes(f));
  t.replaceChildren(...shown.map((o) => {
    const tr = document.createElement('tr');
    for (const v of [o.kind, o.namespace + '/' + o.name, o.ready, o.reconciling, o.stalled, o.reason, o.message]) {
      const td = document.createElement('td'); td.textContent = v; tr.append(td);
    }
    tr.dataset.ready = o.ready;
    return tr;
  }));
  n.textContent = shown.length + ' of ' + rows.length + ' objects';
}
document.getElementById('f').addEventListener('input', (e) => draw(e.target.value.trim().toLowerCase()));
draw('');
</script></body></html>`;

/** firstRender is how long a page takes from navigation to its 1,000th row. */
async function firstRender(page: Page, url: string): Promise<number> {
  await page.goto('about:blank');
  const t0 = performance.now();
  await page.goto(url);
  await page.locator(`tbody tr:nth-child(${OBJECTS})`).waitFor({ state: 'attached' });
  return performance.now() - t0;
}

interface Row {
  kind: string;
  namespace: string;
  name: string;
  reason: string;
}

/** keystroke is how long typing a filter takes to redraw the table, the median of rounds. */
async function keystroke(page: Page, rows: readonly Row[], rounds: number): Promise<number> {
  const times: number[] = [];
  const input = page.getByLabel('Filter');
  for (let i = 0; i < rounds; i++) {
    const filter = `store-${i + 1}`;
    const expect = rows.filter((o) => `${o.kind} ${o.namespace}/${o.name} ${o.reason}`.toLowerCase().includes(filter)).length;
    const t0 = performance.now();
    await input.fill(filter);
    await page.getByText(`${expect} of ${OBJECTS} objects`, { exact: true }).waitFor();
    times.push(performance.now() - t0);
    await input.fill('');
    await page.getByText(`${OBJECTS} of ${OBJECTS} objects`).waitFor();
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

/** benchConsole renders 1,000 objects in the console and in a bare page, in one browser. */
export async function benchConsole(): Promise<BenchRow[]> {
  const dir = folder();
  const run = await startRun(['--dir', dir, '--state-dir', join(dir, '..', 'state'), '--port', '0']);
  const browser = await openBrowser();
  const bare = createServer();
  try {
    const page = await browser.context.newPage();
    // The rows as the console has them, for the bare page.
    await page.goto(`${run.url}/#/resources`);
    await page.locator(`tbody tr:nth-child(${OBJECTS})`).waitFor({ state: 'attached' });
    const feed = await fetch(`${run.url}/console/api/events`);
    const reader = feed.body!.getReader();
    let text = '';
    while (!/\n\n/.test(text.slice(text.indexOf('data: ')))) text += new TextDecoder().decode((await reader.read()).value);
    await reader.cancel();
    const rows = (JSON.parse(/^data: (.*)$/m.exec(text)![1]!) as { objects: Row[] }).objects;
    bare.on('request', (_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end(BARE(rows)));
    await new Promise<void>((resolve) => bare.listen(0, '127.0.0.1', resolve));
    const bareUrl = `http://127.0.0.1:${(bare.address() as AddressInfo).port}/`;

    const renders = { console: [] as number[], bare: [] as number[] };
    for (let i = 0; i < 7; i++) {
      renders.console.push(await firstRender(page, `${run.url}/#/resources`));
      renders.bare.push(await firstRender(page, bareUrl));
    }
    const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const consoleRender = median(renders.console);
    const bareRender = median(renders.bare);

    await page.goto(`${run.url}/#/resources`);
    await page.locator(`tbody tr:nth-child(${OBJECTS})`).waitFor({ state: 'attached' });
    const consoleKey = await keystroke(page, rows, 15);
    await page.goto(bareUrl);
    const bareKey = await keystroke(page, rows, 15);
    return [
      row(
        `console: first render of ${OBJECTS} objects`,
        consoleRender,
        'ms',
        { name: 'bare DOM page', value: bareRender },
        'navigation to the last row, the feed included',
      ),
      row(`console: filter keystroke, ${OBJECTS} objects`, consoleKey, 'ms', { name: 'bare DOM page', value: bareKey }, 'type to table redrawn (median of 15)'),
    ];
  } finally {
    bare.close();
    await browser.close();
    await run.stop();
  }
}
