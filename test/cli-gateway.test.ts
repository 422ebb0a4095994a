import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { runCli } from './helpers/cli.ts';
import { startPlivoServer, type FakePlivo } from './gateways/plivo-server.ts';

const account = (baseUrl: string): string => `apiVersion: smsauth.io/v1alpha1
kind: SmsGatewayAccount
metadata: {name: plivo, namespace: ops}
spec:
  provider: plivo
  plivo:
    authId: {secretRef: {name: plivo, key: authId}}
    authToken: {secretRef: {name: plivo, key: authToken}}
    source: "+14155550100"
    baseUrl: ${baseUrl}
`;
const secret = (token: string): string =>
  `apiVersion: v1\nkind: Secret\nmetadata: {name: plivo, namespace: ops}\nstringData: {authId: MATEST, authToken: ${token}}\n`;

const gw = suite<{ plivo: FakePlivo; dir: string; secrets: string }>('smsauth gateway test', {} as never);
gw.before.each(async (ctx) => {
  ctx.plivo = await startPlivoServer({ authId: 'MATEST', authToken: 'right-token' });
  const base = mkdtempSync(join(tmpdir(), 'smsauth-gw-'));
  ctx.dir = join(base, 'config');
  ctx.secrets = join(base, 'secrets');
  mkdirSync(ctx.dir);
  mkdirSync(ctx.secrets);
  writeFileSync(join(ctx.dir, 'account.yaml'), account(ctx.plivo.baseUrl));
});
gw.after.each(async (ctx) => {
  await ctx.plivo.close();
});

gw('sends a test message through the real plivo SDK: exit 0, number masked', async (ctx) => {
  writeFileSync(join(ctx.secrets, 'plivo.yaml'), secret('right-token'));
  const r = await runCli(['gateway', 'test', 'ops/plivo', '--to', '+33 6 12 34 56 78', '--dir', ctx.dir, '--secrets-dir', ctx.secrets]);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, /^ops\/plivo: plivo accepted the message to \+33 •{9}: id \S+, 1 segment\n$/);
  assert.is(ctx.plivo.messages.length, 1);
  assert.is(ctx.plivo.messages[0]!.dst, '33612345678', 'Plivo takes E.164 digits without the +');
  assert.not.match(r.stdout + r.stderr, '612345678');
});

gw('checks credentials only, and reports a refusal by its code: exit 1', async (ctx) => {
  writeFileSync(join(ctx.secrets, 'plivo.yaml'), secret('right-token'));
  const ok = await runCli(['gateway', 'test', 'ops/plivo', '--credentials-only', '--dir', ctx.dir, '--secrets-dir', ctx.secrets]);
  assert.equal([ok.code, ok.stdout], [0, 'ops/plivo: plivo accepted the credentials\n']);
  assert.is(ctx.plivo.messages.length, 0, 'nothing was sent');
  writeFileSync(join(ctx.secrets, 'plivo.yaml'), secret('wrong-token'));
  const refused = await runCli(['gateway', 'test', 'ops/plivo', '--to', '+33612345678', '--dir', ctx.dir, '--secrets-dir', ctx.secrets]);
  assert.is(refused.code, 1);
  assert.match(refused.stderr, /ops\/plivo: AuthFailed: /);
  assert.not.match(refused.stderr + refused.stdout, /wrong-token|right-token/);
});

gw('names what is missing: an unresolved Secret (exit 1), an unknown account (exit 2)', async (ctx) => {
  const missing = await runCli(['gateway', 'test', 'ops/plivo', '--to', '+33612345678', '--dir', ctx.dir]);
  assert.is(missing.code, 1);
  assert.match(missing.stderr, 'the Secret referenced by authId does not resolve');
  const unknown = await runCli(['gateway', 'test', 'ops/nope', '--to', '+33612345678', '--dir', ctx.dir]);
  assert.equal([unknown.code, unknown.stderr.trim()], [2, `smsauth gateway: SmsGatewayAccount ops/nope is not declared in ${ctx.dir}`]);
  assert.is((await runCli(['gateway', 'test', 'ops/plivo', '--dir', ctx.dir])).code, 2, '--to or --credentials-only is required');
});

gw('uses SMSAUTH_SECRETS when no file gives the Secret', async (ctx) => {
  const r = await runCli(['gateway', 'test', 'ops/plivo', '--credentials-only', '--dir', ctx.dir], {
    SMSAUTH_SECRETS: JSON.stringify({ 'ops/plivo': { authId: 'MATEST', authToken: 'right-token' } }),
  });
  assert.is(r.code, 0, r.stderr);
});

gw.run();
