import { mkdtempSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { loadOrCreateLocalSecrets } from '../controller/adapters/files.ts';
import { describeFailure } from '../controller/cli/main.ts';
import { runCli } from './helpers/cli.ts';

const SECRET = 'c2VjcmV0LWtleS1aUTh4TDN2VDlwUjJrTjd4WTRtQg==';
const TOKEN = 'sk-SUPERSECRET-kube-token-Zq8Lw3vT9pR2kN7';

const failures = suite('commands that fail on a broken file say so without quoting it');

failures('smsauth run with a keys file that is not JSON names the file and quotes none of it', async () => {
  const state = mkdtempSync(join(tmpdir(), 'smsauth-keys-'));
  writeFileSync(join(state, 'keys.json'), `{\n  "codeKeys": [{"id": "k1", "secret": "${SECRET}}],\n  "decoySecret": "${SECRET}"\n}\n`);
  const r = await runCli(['run', '--dir', 'examples', '--state-dir', state, '--port', '0']);
  assert.is.not(r.code, 0);
  assert.match(r.stderr, /keys file .*keys\.json is not valid/);
  assert.not.match(r.stdout + r.stderr, /c2VjcmV0|Zq8/, 'no part of the key is printed');
});

failures('smsauth controller with a kubeconfig that is not YAML gives the line, not the token around it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'smsauth-kubeconfig-'));
  const file = join(dir, 'config');
  writeFileSync(file, `apiVersion: v1\nkind: Config\nusers:\n- name: admin\n  user:\n    token: ${TOKEN}\n   client-key-data: LS0tLS1CRUdJTi\nclusters: []\n`);
  const r = await runCli(['controller', '--kubeconfig', file]);
  assert.is(r.code, 1);
  assert.match(r.stderr, /could not be read: not valid YAML at line \d+/);
  assert.not.match(r.stdout + r.stderr, /SUPERSECRET|Zq8|LS0tLS1/);
});

failures('a wrong --log-level is a usage error (exit 2), not a crash', async () => {
  for (const command of [
    ['sidecar', '--bundle-dir', '/nonexistent', '--code-keys-dir', '/nonexistent'],
    ['controller', '--kubeconfig', '/nonexistent'],
  ]) {
    const r = await runCli([...command, '--log-level', 'loud']);
    assert.equal([r.code, /--log-level is debug, info, warn or error/.test(r.stderr)], [2, true], r.stderr);
  }
});

failures('an unexpected error is named by its class and code, never by its message', () => {
  let parseError: unknown;
  try {
    JSON.parse(`{"secret": ${TOKEN}}`);
  } catch (err) {
    parseError = err;
  }
  assert.is(describeFailure(parseError), 'failed: SyntaxError', 'one line');
  const said = describeFailure(parseError, { stack: true });
  assert.match(said, /^failed: SyntaxError\n\s+at /, 'where, when asked for (--log-level debug)');
  assert.not.match(said, /SUPERSECRET/);
  assert.is(describeFailure(Object.assign(new Error(`token ${TOKEN}`), { code: 'ERR_X' })).split('\n')[0], 'failed: Error (ERR_X)');
});

const keys = suite('the local keys file');

keys('is made once, whole, even by processes starting together, and read back the same', async () => {
  const state = mkdtempSync(join(tmpdir(), 'smsauth-keys-'));
  mkdirSync(join(state, 'nested'));
  const path = join(state, 'nested', 'keys.json');
  const made = await Promise.all(Array.from({ length: 8 }, () => loadOrCreateLocalSecrets(path)));
  const first = made[0]!;
  for (const k of made)
    assert.equal(
      [k.codeKeys[0]!.secret.toString('hex'), k.decoySecret.toString('hex')],
      [first.codeKeys[0]!.secret.toString('hex'), first.decoySecret.toString('hex')],
    );
  const again = await loadOrCreateLocalSecrets(path);
  assert.is(again.codeKeys[0]!.secret.toString('hex'), first.codeKeys[0]!.secret.toString('hex'));
  assert.equal(JSON.parse(readFileSync(path, 'utf8')).codeKeys.length, 1);
});

keys('a file without keys is refused, not replaced', async () => {
  const path = join(mkdtempSync(join(tmpdir(), 'smsauth-keys-')), 'keys.json');
  writeFileSync(path, '{"codeKeys": [], "decoySecret": ""}\n');
  try {
    await loadOrCreateLocalSecrets(path);
    assert.unreachable('a file without keys was accepted');
  } catch (err) {
    assert.instance(err, Error);
    assert.match((err as Error).message, /is not valid/);
  }
  assert.is(readFileSync(path, 'utf8'), '{"codeKeys": [], "decoySecret": ""}\n');
});

failures.run();
keys.run();
