import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { kubectl } from './helpers/kubectl.ts';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readSchemaSet } from '../controller/adapters/files.ts';
import { connectCluster, loadKubeConfig } from '../controller/adapters/kubernetes.ts';
import { createDirectory } from '../controller/directories/create-directory.ts';
import { createGateway } from '../controller/gateways/create-gateway.ts';
import { SmsauthController } from '../controller/kube/controller.ts';
import { DirectoryPool } from '../controller/runtime/directory-pool.ts';
import { GatewayPool } from '../controller/runtime/gateway-pool.ts';
import { LocalRun, type Report } from '../controller/runtime/local-run.ts';
import { createSchemaValidator } from '../controller/validate/schema-validator.ts';
import { BundleRegistry } from '../controller/verifier/bundle-registry.ts';
import { makeCertificates, startSlapd, type Slapd } from './helpers/slapd.ts';
import { ROOT, schemaValidator } from './helpers/fixtures.ts';
import { logScan } from './helpers/log-scan.ts';
import { runCli } from './helpers/cli.ts';
import { startApiServer } from './kube/api-server.ts';

// DirectoryConnected, as smsauth run and the cluster controller find it, against a real slapd:
// connected, a wrong bind password, an untrusted certificate, the server down.

const SUFFIX = 'dc=acme,dc=example';

const store = (slapd: Slapd, ns: string): string => `apiVersion: smsauth.io/v1alpha1
kind: IdentityStore
metadata: {name: ldap, namespace: ${ns}}
spec:
  type: GenericLDAP
  authenticationTypes: [Email]
  directory:
    ldap:
      url: ${slapd.ldapsUrl}
      caBundle: {secretRef: {name: ldap, key: ca.pem}}
      bindDN: ${slapd.bindDN}
      bindPassword: {secretRef: {name: ldap, key: password}}
      baseDN: ou=People,${SUFFIX}
`;
const secret = (ns: string, password: string, ca: string): string => `apiVersion: v1
kind: Secret
metadata: {name: ldap, namespace: ${ns}, labels: {smsauth.io/credentials: "true"}}
stringData: ${JSON.stringify({ password, 'ca.pem': ca })}
`;

const condition = (r: Report, type: string): string => {
  const e = [...r.state.statuses.values()].find((x) => x.ref.kind === 'IdentityStore' && x.ref.name === 'ldap')!;
  const c = e.status.conditions!.find((x) => x.type === type)!;
  return `${c.status} ${c.reason}`;
};

const run = suite<{ slapd: Slapd; otherCa: string }>('DirectoryConnected in smsauth run', {} as never);
run.before(async (ctx) => {
  ctx.slapd = await startSlapd({ suffix: SUFFIX, ldif: readFileSync(join(ROOT, 'test', 'fixtures', 'directories', 'acme.ldif'), 'utf8') });
  const other = mkdtempSync(join(tmpdir(), 'smsauth-otherca-'));
  ctx.otherCa = readFileSync((await makeCertificates(other)).ca, 'utf8');
});
run.after(async (ctx) => {
  await ctx.slapd?.stop();
});

run('connected; then a wrong bind password, another CA, the server down: each is Ready=False with its reason, and back', async ({ slapd, otherCa }) => {
  const base = mkdtempSync(join(tmpdir(), 'smsauth-dirstatus-'));
  const dir = join(base, 'config');
  mkdirSync(dir);
  const write = (password: string, ca: string): void => writeFileSync(join(dir, 'all.yaml'), `${store(slapd, 'd')}---\n${secret('d', password, ca)}`);
  write(slapd.bindPassword, slapd.ca);
  const log = pino({ level: 'debug' }, logScan.stream('local run'));
  const directories = new DirectoryPool(createDirectory, log);
  const registry = new BundleRegistry();
  const localRun = new LocalRun(
    { dir, snapshotPath: join(base, 'status.json'), allowEmpty: false, envSecrets: new Map() },
    { validator: await schemaValidator(), registry, pool: new GatewayPool((gw, creds) => createGateway(gw, creds, { logger: log }), log, directories), log },
  );
  try {
    let now = Date.now();
    const first = await localRun.reload();
    assert.is(condition(first, 'DirectoryConnected'), 'Unknown DirectoryNotChecked');
    const connected = (await localRun.checkDirectoriesDue(now))!;
    assert.equal([condition(connected, 'DirectoryConnected'), condition(connected, 'Ready')], ['True Connected', 'True SmsNotEnabled']);
    assert.is(await localRun.checkDirectoriesDue(now), undefined, 'checked already: nothing due');

    const cases: [() => void | Promise<void>, string][] = [
      [() => write('wrong-Pw-22q', slapd.ca), 'DirectoryCredentialsRejected'],
      [() => write(slapd.bindPassword, otherCa), 'DirectoryCertificateUntrusted'],
      [() => write(slapd.bindPassword, slapd.ca), 'Connected'],
      [() => slapd.stop(), 'DirectoryUnreachable'],
      [() => slapd.start(), 'Connected'],
    ];
    for (const [change, reason] of cases) {
      await change();
      await localRun.reload();
      now += 61_000; // the next check is due (a changed Secret makes it due at once too)
      const report = (await localRun.checkDirectoriesDue(now))!;
      assert.ok(report !== undefined, `a new verdict: ${reason}`);
      assert.is(condition(report, 'DirectoryConnected').split(' ')[1], reason);
      assert.is(condition(report, 'Ready'), reason === 'Connected' ? 'True SmsNotEnabled' : `False ${reason}`);
      const message = JSON.stringify([...report.state.statuses.values()]);
      assert.not.match(message, /Pw-/, 'the password is never in a status');
    }
  } finally {
    await directories.close();
    await slapd.start().catch(() => undefined);
  }
});

run('smsauth plan: DirectoryNotChecked, or with --check-directories what the directory answers (exit 1 when it does not work)', async ({ slapd, otherCa }) => {
  const dir = mkdtempSync(join(tmpdir(), 'smsauth-dirplan-'));
  const secrets = mkdtempSync(join(tmpdir(), 'smsauth-dirplan-secrets-'));
  writeFileSync(join(dir, 'store.yaml'), store(slapd, 'd'));
  const plan = async (password: string, ...args: string[]): Promise<{ code: number; reason: string; stdout: string }> => {
    const ca = args.includes('--other-ca') ? otherCa : slapd.ca;
    args = args.filter((a) => a !== '--other-ca');
    writeFileSync(join(secrets, 'ldap.yaml'), secret('d', password, ca));
    const r = await runCli(['plan', '--dir', dir, '--secrets-dir', secrets, '-o', 'json', ...args]);
    const storeStatus = (JSON.parse(r.stdout) as { objects: { kind: string; status: { conditions: { type: string; reason: string }[] } }[] }).objects.find(
      (o) => o.kind === 'IdentityStore',
    )!;
    return { code: r.code, reason: storeStatus.status.conditions.find((c) => c.type === 'DirectoryConnected')!.reason, stdout: r.stdout + r.stderr };
  };
  assert.equal((({ code, reason }) => [code, reason])(await plan(slapd.bindPassword)), [0, 'DirectoryNotChecked']);
  assert.equal((({ code, reason }) => [code, reason])(await plan(slapd.bindPassword, '--check-directories')), [0, 'Connected']);
  const wrong = await plan('wrong-Pw-77z', '--check-directories');
  assert.equal([wrong.code, wrong.reason], [1, 'DirectoryCredentialsRejected']);
  assert.not.match(wrong.stdout, /Pw-/);
  assert.equal((({ code, reason }) => [code, reason])(await plan(slapd.bindPassword, '--check-directories', '--other-ca')), [
    1,
    'DirectoryCertificateUntrusted',
  ]);
});

run('smsauth directory test: what a lookup returns, never the number; a wrong bind password says so', async ({ slapd }) => {
  const dir = mkdtempSync(join(tmpdir(), 'smsauth-dirtest-'));
  writeFileSync(join(dir, 'store.yaml'), `${store(slapd, 'd')}---\n${secret('d', slapd.bindPassword, slapd.ca)}`);
  const ok = await runCli(['directory', 'test', 'd/ldap', '--dir', dir, '--user', 'alice']);
  assert.is(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, `d/ldap: ldap directory answered (${slapd.ldapsUrl})`);
  assert.match(ok.stdout, `user alice: uid=alice,ou=Staff,ou=People,${SUFFIX}`);
  assert.match(
    ok.stdout,
    `  mobile number: present\n  groups (2, nested included):\n    cn=helpdesk-leads,ou=Groups,${SUFFIX}\n    cn=admins,ou=Groups,${SUFFIX}\n`,
  );
  assert.not.match(ok.stdout + ok.stderr, '555', 'never the number');
  const json = JSON.parse((await runCli(['directory', 'test', 'd/ldap', '--dir', dir, '--user', 'nobody', '-o', 'json'])).stdout) as {
    user: unknown;
    check: { ok: boolean };
  };
  assert.equal([json.check.ok, json.user], [true, null]);
  writeFileSync(join(dir, 'store.yaml'), `${store(slapd, 'd')}---\n${secret('d', 'wrong-Pw-45t', slapd.ca)}`);
  const wrong = await runCli(['directory', 'test', 'd/ldap', '--dir', dir, '--user', 'alice']);
  assert.equal([wrong.code, wrong.stdout], [1, `d/ldap: ldap directory did not answer: CredentialsRejected (LDAP 49) at ${slapd.ldapsUrl}\n`]);
  assert.not.match(wrong.stdout + wrong.stderr, /Pw-/);
});

run.run();

const controller = suite<{ slapd: Slapd }>('DirectoryConnected in the cluster controller', {} as never);
controller.before(async (ctx) => {
  ctx.slapd = await startSlapd({ suffix: SUFFIX, ldif: readFileSync(join(ROOT, 'test', 'fixtures', 'directories', 'acme.ldif'), 'utf8') });
});
controller.after(async (ctx) => {
  await ctx.slapd?.stop();
});

controller('the controller checks the directory, and a rotated bind password or CA is checked at once', async ({ slapd }) => {
  const server = await startApiServer({ namespaces: ['d'] });
  const dir = mkdtempSync(join(tmpdir(), 'smsauth-dirctl-'));
  const kubeconfig = join(dir, 'kubeconfig');
  await server.writeKubeconfig(kubeconfig);
  await kubectl(kubeconfig, 'apply', '-f', 'charts/smsauth/files/crds/');
  writeFileSync(join(dir, 'store.yaml'), `${store(slapd, 'd')}---\n${secret('d', 'wrong-Pw-31k', slapd.ca)}`);
  await kubectl(kubeconfig, 'apply', '-f', join(dir, 'store.yaml'));
  const log = pino({ level: 'info' }, logScan.stream('controller'));
  const c = new SmsauthController(connectCluster(loadKubeConfig(kubeconfig), { requestTimeoutMs: 5000 }), {
    identity: 'test',
    log,
    registry: new Registry(),
    validator: createSchemaValidator(await readSchemaSet(join(ROOT, 'schemas'))),
    workers: 2,
    directories: new DirectoryPool(createDirectory, log),
  });
  try {
    await c.watch();
    c.run();
    await kubectl(
      kubeconfig,
      'wait',
      '--for=jsonpath={.status.conditions[?(@.type=="DirectoryConnected")].reason}=DirectoryCredentialsRejected',
      'idstore/ldap',
      '-n',
      'd',
      '--timeout=20s',
    );
    writeFileSync(join(dir, 'secret.yaml'), secret('d', slapd.bindPassword, slapd.ca));
    await kubectl(kubeconfig, 'apply', '-f', join(dir, 'secret.yaml'));
    await kubectl(kubeconfig, 'wait', '--for=condition=DirectoryConnected', 'idstore/ldap', '-n', 'd', '--timeout=20s');
    const status = (
      server.get({ apiVersion: 'smsauth.io/v1alpha1', kind: 'IdentityStore', namespace: 'd', name: 'ldap' }) as {
        status: { conditions: { type: string; status: string; reason: string; message: string }[] };
      }
    ).status;
    const connected = status.conditions.find((x) => x.type === 'DirectoryConnected')!;
    assert.equal([connected.status, connected.reason], ['True', 'Connected']);
    assert.match(connected.message, slapd.ldapsUrl);
    assert.not.match(JSON.stringify(status), /Pw-/);
    const otherCa = readFileSync((await makeCertificates(mkdtempSync(join(tmpdir(), 'smsauth-otherca-')))).ca, 'utf8');
    writeFileSync(join(dir, 'secret.yaml'), secret('d', slapd.bindPassword, otherCa));
    await kubectl(kubeconfig, 'apply', '-f', join(dir, 'secret.yaml'));
    await kubectl(
      kubeconfig,
      'wait',
      '--for=jsonpath={.status.conditions[?(@.type=="Ready")].reason}=DirectoryCertificateUntrusted',
      'idstore/ldap',
      '-n',
      'd',
      '--timeout=20s',
    );
  } finally {
    await c.stop();
    await server.close();
  }
});

controller.run();
