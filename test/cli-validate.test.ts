import { execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { runCli } from './helpers/cli.ts';
import { ROOT } from './helpers/fixtures.ts';

const INVALID = 'test/fixtures/invalid';

const validate = suite('smsauth validate');

validate('accepts the examples: exit 0', async () => {
  const r = await runCli(['validate', 'examples']);
  assert.is(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /20 objects and 2 secrets in \d+ files: 0 errors, 1 warning/);
  assert.match(
    r.stdout,
    /examples\/identity\/branch-office\.yaml:\d+:\d+: warning directory-static /,
    'the one warning: the static directory that lets npm start run without a server',
  );
  assert.match(r.stdout, 'examples/00-namespaces.yaml:4:1: info skipped-kind');
});

validate('reports every expected diagnostic of the invalid fixtures at its line: exit 1', async () => {
  const r = await runCli(['validate', '--output', 'json', INVALID]);
  assert.is(r.stdout, (await runCli(['validate', '--format', 'json', INVALID])).stdout, '--format is --output by its other name');
  assert.is(r.code, 1);
  const out = JSON.parse(r.stdout) as { valid: boolean; diagnostics: { file: string; line: number; column: number; severity: string; code: string }[] };
  assert.is(out.valid, false);
  const got = new Set(out.diagnostics.map((d) => `${d.file}:${d.line}:${d.column} ${d.severity} ${d.code}`));
  let expected = 0;
  for (const f of readdirSync(join(ROOT, INVALID)).filter((n) => n.endsWith('.expected'))) {
    for (const line of readFileSync(join(ROOT, INVALID, f), 'utf8')
      .trim()
      .split('\n')) {
      const [pos, ...rest] = line.split(' ');
      assert.ok(got.has(`${INVALID}/${f.replace('.expected', '.yaml')}:${pos} ${rest.join(' ')}`), `missing ${f}: ${line}`);
      expected++;
    }
  }
  assert.is(out.diagnostics.length, expected, 'no diagnostic beyond the expected ones');
});

validate('reads standard input, as - or through a pipe path (helm template … | smsauth validate -)', async () => {
  const piped = (args: string[], input: string): Promise<{ code: number | null; out: string }> =>
    new Promise((resolve) => {
      const child = spawn(process.execPath, [join(ROOT, 'bin', 'smsauth.js'), 'validate', ...args], { cwd: ROOT });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      child.once('exit', (code) => resolve({ code, out }));
      child.stdin.end(input);
    });
  const good = readFileSync(join(ROOT, 'examples', 'identity', 'templates.yaml'), 'utf8');
  const r = await piped(['-'], good);
  assert.equal([r.code, /1 object and 0 secrets in 1 file: 0 errors/.test(r.out)], [0, true], r.out);
  // A shell pipe named by its path, which has no real path.
  const shell = await new Promise<{ code: number | null; out: string }>((resolve) => {
    execFile(
      'bash',
      ['-c', `cat examples/identity/templates.yaml | "${process.execPath}" bin/smsauth.js validate /dev/stdin`],
      { cwd: ROOT },
      (err, stdout, stderr) => resolve({ code: err === null ? 0 : ((err as { code?: number }).code ?? -1), out: stdout + stderr }),
    );
  });
  assert.equal([shell.code, /1 object and 0 secrets in 1 file: 0 errors/.test(shell.out)], [0, true], shell.out);
  // A pipe has no size to check first: it is read up to the limit, no further.
  const flood = await new Promise<string>((resolve) => {
    execFile(
      'bash',
      ['-c', `head -c 3000000 /dev/zero | tr '\\0' a | "${process.execPath}" bin/smsauth.js validate /dev/stdin`],
      { cwd: ROOT },
      (_err, stdout, stderr) => resolve(stdout + stderr),
    );
  });
  assert.match(flood, 'error file-too-large');
  const bad = await piped(['-'], 'apiVersion: smsauth.io/v1alpha1\nkind: SmsTemplate\nmetadata: {name: t, namespace: n}\nspec: {text: "no placeholder"}\n');
  assert.is(bad.code, 1, bad.out);
  // Standard input named twice: a usage error, not a wait for a second end of input.
  const twice = await piped(['-', '-'], good);
  assert.equal([twice.code, twice.out], [2, 'smsauth validate: - (standard input) is named more than once; name it once; see smsauth validate --help\n']);
});

validate("folders are walked without hidden entries and node_modules (packages' own YAML is not the team's)", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'smsauth-walk-'));
  for (const sub of ['node_modules/pkg', '.github/workflows', 'deploy']) mkdirSync(join(dir, sub), { recursive: true });
  writeFileSync(join(dir, 'node_modules/pkg/appveyor.yml'), 'build: {verbosity: off}\n');
  writeFileSync(join(dir, '.github/workflows/ci.yaml'), 'on: push\n');
  writeFileSync(join(dir, 'deploy/t.yaml'), readFileSync(join(ROOT, 'examples', 'identity', 'templates.yaml')));
  const r = await runCli(['validate', '--strict', dir]);
  assert.equal([r.code, /1 object and 0 secrets in 1 file: 0 errors, 0 warnings/.test(r.stdout)], [0, true], r.stdout + r.stderr);
});

validate('text format is file:line:col: severity code message', async () => {
  const r = await runCli(['validate', `${INVALID}/schema-enum.yaml`]);
  assert.is(r.code, 1);
  assert.match(
    r.stdout,
    `${INVALID}/schema-enum.yaml:7:13: error schema-enum spec.provider must be one of: plivo, twilio, vonage, webhook, console; did you mean plivo? [SmsGatewayAccount schema-enum/misspelled-provider]`,
  );
});

validate('sarif format is SARIF 2.1.0 with rules and regions', async () => {
  const r = await runCli(['validate', '-o', 'sarif', `${INVALID}/priority-conflict.yaml`, `${INVALID}/no-gateway.yaml`]);
  assert.is(r.code, 1);
  const log = JSON.parse(r.stdout);
  assert.is(log.version, '2.1.0');
  const run = log.runs[0];
  assert.is(run.tool.driver.name, 'smsauth');
  assert.equal(
    run.tool.driver.rules.map((x: { id: string }) => x.id),
    ['no-gateway', 'priority-conflict'],
  );
  const results = run.results.map(
    (x: any) => `${x.ruleId} ${x.level} ${x.locations[0].physicalLocation.artifactLocation.uri}:${x.locations[0].physicalLocation.region.startLine}`,
  );
  assert.equal(results, [
    `no-gateway warning ${INVALID}/no-gateway.yaml:10`,
    `priority-conflict error ${INVALID}/priority-conflict.yaml:17`,
    `priority-conflict error ${INVALID}/priority-conflict.yaml:26`,
  ]);
  for (const x of run.results) assert.is(run.tool.driver.rules[x.ruleIndex].id, x.ruleId);
  // A file outside the working folder is a file: URL, with a # in its name kept as part of it.
  const dir = mkdtempSync(join(tmpdir(), 'smsauth-sarif-'));
  const odd = join(dir, 'team#1.yaml');
  writeFileSync(odd, readFileSync(join(ROOT, INVALID, 'no-gateway.yaml')));
  const outside = JSON.parse((await runCli(['validate', '-o', 'sarif', odd])).stdout);
  const uri = outside.runs[0].results[0].locations[0].physicalLocation.artifactLocation.uri as string;
  assert.is(uri, pathToFileURL(odd).href);
  assert.match(uri, /team%231\.yaml$/);
});

validate('github format writes workflow annotations with real lines', async () => {
  const r = await runCli(['validate', '-o', 'github', '-q', `${INVALID}/duration-range.yaml`, `${INVALID}/text-multi-segment.yaml`]);
  assert.is(r.code, 1);
  const lines = r.stdout.trim().split('\n');
  assert.is(lines.length, 5, 'three errors, a warning, the summary');
  assert.match(
    lines[0]!,
    /^::error file=test\/fixtures\/invalid\/duration-range\.yaml,line=12,col=12,endLine=12,endColumn=\d+,title=smsauth duration-range::spec\.sms\.code\.ttl is 1h; it must be between 30s and 10m/,
  );
  assert.match(lines[1]!, /^::error file=test\/fixtures\/invalid\/duration-range\.yaml,line=14,col=38,.*spec\.sms\.limits\.perNumber\.window is 0s/);
  assert.match(lines[3]!, /^::warning file=test\/fixtures\/invalid\/text-multi-segment\.yaml,line=7,/);
});

validate('--strict turns warnings into errors', async () => {
  assert.is((await runCli(['validate', `${INVALID}/no-gateway.yaml`])).code, 0);
  const strict = await runCli(['validate', '--strict', `${INVALID}/no-gateway.yaml`]);
  assert.is(strict.code, 1);
  assert.match(strict.stdout, 'error no-gateway');
});

validate('--quiet drops notes', async () => {
  const r = await runCli(['validate', '-q', 'examples']);
  assert.is(r.code, 0);
  assert.not.match(r.stdout, 'skipped-kind');
});

validate('a missing path is an I/O error: exit 2', async () => {
  const r = await runCli(['validate', 'examples', 'no/such/folder']);
  assert.is(r.code, 2);
  assert.match(r.stdout, 'no/such/folder: error path-not-found');
});

validate('an unreadable path is an I/O error: exit 2', async () => {
  const r = await runCli(['validate', 'examples/00-namespaces.yaml/inside']);
  assert.is(r.code, 2);
  assert.match(r.stdout, 'error file-unreadable');
});

validate('a file over --max-file-size is refused: exit 1', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'smsauth-'));
  writeFileSync(join(dir, 'big.yaml'), `# ${'x'.repeat(500)}\napiVersion: v1\nkind: ConfigMap\n`);
  const r = await runCli(['validate', '--max-file-size', '200', dir]);
  assert.is(r.code, 1);
  assert.match(r.stdout, /big\.yaml: error file-too-large file is \d+ bytes, over the limit of 200/);
});

validate('usage mistakes exit 2 with one line that says what is wrong and where the options are', async () => {
  const cases: [string[], string][] = [
    [['validate'], 'smsauth validate: name at least one file or folder to validate; see smsauth validate --help'],
    [['validate', '-o', 'xml', 'examples'], 'smsauth validate: unknown output format xml; use one of '],
    [
      ['validate', '--max-file-size', '0x10', 'examples'],
      'smsauth validate: --max-file-size takes a positive number of bytes, in digits; see smsauth validate --help',
    ],
    [['validate', '--format', 'xml', 'examples'], 'smsauth validate: unknown output format xml; use one of '],
    [['validate', '--bogus', 'examples'], 'smsauth validate: unknown option --bogus; see smsauth validate --help'],
    [['validate', '--strcit', 'examples'], 'smsauth validate: unknown option --strcit (did you mean --strict?); see smsauth validate --help'],
    [['frobnicate'], 'smsauth: unknown command frobnicate (smsauth --help lists them)'],
    [['valdiate', 'examples'], 'smsauth: unknown command valdiate; did you mean validate? (smsauth --help lists them)'],
  ];
  for (const [args, said] of cases) {
    const r = await runCli(args);
    assert.is(r.code, 2, args.join(' '));
    assert.ok(r.stderr.startsWith(said), `${args.join(' ')}: ${r.stderr}`);
    assert.is(r.stderr.trimEnd().split('\n').length, 1, `one line: ${r.stderr}`);
  }
});

validate('--help and version exit 0', async () => {
  const help = await runCli(['validate', '--help']);
  assert.is(help.code, 0);
  assert.match(help.stdout, 'Exit status: 0 valid, 1 errors found');
  const version = await runCli(['version']);
  assert.match(version.stdout, /^smsauth \d+\.\d+\.\d+\n$/);
});

validate.run();
