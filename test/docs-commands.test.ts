import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { main } from '../controller/cli/main.ts';
import { ROOT } from './helpers/fixtures.ts';

// The commands the README and docs/ tell a reader to type use one form, `npx smsauth …` (a bare
// `smsauth` is not on PATH in a checkout), name commands that exist, and options those commands take.

const DOCS = [
  'README.md',
  ...readdirSync(join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => join('docs', f)),
];

/** shellLines are the lines of a document's sh code blocks and of its table cells in backticks that run smsauth. */
function shellLines(file: string): string[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const blocks = [...text.matchAll(/```(?:sh|bash|yaml)\n([\s\S]*?)```/g)].flatMap((m) => m[1]!.split('\n'));
  const cells = [...text.matchAll(/`((?:npx )?smsauth [^`]+)`/g)].map((m) => m[1]!);
  return [...blocks, ...cells].map((l) => l.replace(/^\s*-?\s*(run: )?/, '').trim()).filter((l) => /^(npx )?smsauth /.test(l) || /\| npx smsauth /.test(l));
}

async function usageOf(command: string): Promise<string> {
  let out = '';
  const code = await main([command, '--help'], { stdout: (t) => (out += t), stderr: (t) => (out += t), isTTY: false });
  assert.is(code, 0, `smsauth ${command} --help: ${out}`);
  return out;
}

const docs = suite('commands in the README and docs/');

docs('a shell command runs smsauth as npx smsauth, never a bare smsauth', () => {
  const bare: string[] = [];
  for (const file of DOCS) {
    const text = readFileSync(join(ROOT, file), 'utf8');
    for (const m of text.matchAll(/```(?:sh|bash)\n([\s\S]*?)```/g)) {
      for (const line of m[1]!.split('\n')) if (/^\s*smsauth /.test(line)) bare.push(`${file}: ${line}`);
    }
  }
  assert.equal(bare, []);
});

docs('each npx smsauth command exists and takes the options it is shown with', async () => {
  const seen: string[] = [];
  for (const file of DOCS) {
    for (const line of shellLines(file)) {
      const words = line.slice(line.indexOf('smsauth ') + 'smsauth '.length).split(/\s+/);
      const command = words[0]!;
      if (command.startsWith('-') || command === 'COMMAND') continue;
      const usage = await usageOf(command);
      for (const option of words.filter((w) => /^--?[a-z]/.test(w)).map((w) => w.split('=')[0]!)) {
        assert.ok(new RegExp(`(^|[\\s,])${option}\\b`).test(usage), `${file}: "${line}": smsauth ${command} takes no ${option}`);
      }
      seen.push(command);
    }
  }
  for (const command of ['run', 'validate', 'plan', 'gateway', 'controller', 'sidecar']) assert.ok(seen.includes(command), `the docs show smsauth ${command}`);
});

docs.run();
