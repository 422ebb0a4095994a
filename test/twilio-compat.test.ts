import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { Redis } from 'ioredis';
import addFormatsModule from 'ajv-formats';
import twilio from 'twilio';
import RequestClient from 'twilio/lib/base/RequestClient.js';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ROOT } from './helpers/fixtures.ts';
import { startRedis, type RedisServer } from './helpers/redis-server.ts';
import { DECOY_KEY, freshCodeKeys } from '../controller/runtime/code-keys.ts';
import { lastCode } from './helpers/outbox.ts';
import { startRun } from './helpers/run-process.ts';
import { waitUntil } from './helpers/wait.ts';
import { writeSecretVolume } from './helpers/secret-volume.ts';
import { startSidecar } from './helpers/sidecar-process.ts';
import { bundleDataOf } from './helpers/bundle-data.ts';

// The Twilio Verify-compatible API, driven by the official twilio SDK: its requests go to smsauth
// through the client's own extension point (a custom httpClient that rewrites the host), never by
// patching the SDK. Every answer is validated against the schemas of Twilio's published OpenAPI
// description (test/fixtures/twilio/, with their source).

const SERVICE = 'VA0123456789abcdef0123456789abcdef';
const ACCOUNT = 'AC0123456789abcdef0123456789abcdef';
const TOKEN = 'twilio-auth-token-0123456789abcdef';

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;
const OAS = JSON.parse(readFileSync(join(ROOT, 'test/fixtures/twilio/verify_v2.schemas.json'), 'utf8')) as { schemas: Record<string, object> };
/** jsonSchemaOf reads OpenAPI 3.0's `nullable` as JSON Schema does (a type that also admits null; without a type, anything). */
function jsonSchemaOf(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(jsonSchemaOf);
  if (typeof v !== 'object' || v === null) return v;
  const { nullable, ...rest } = v as Record<string, unknown>;
  const out = Object.fromEntries(Object.entries(rest).map(([k, x]) => [k, k === 'description' ? x : jsonSchemaOf(x)]));
  if (nullable === true && typeof out.type === 'string') out.type = [out.type, 'null'];
  if (nullable === true && Array.isArray(out.enum)) out.enum = [...(out.enum as unknown[]), null];
  return out;
}
const ajv = addFormats(new Ajv({ strict: false, allErrors: true }));
for (const [name, schema] of Object.entries(OAS.schemas)) ajv.addSchema(jsonSchemaOf(schema) as object, `#/components/schemas/${name}`);

/** Recorder is the SDK's HTTP client, pointed at smsauth, keeping each answer to validate it. */
class Recorder extends RequestClient {
  readonly answers: { path: string; status: number; body: unknown }[] = [];
  private readonly base: string;
  constructor(base: string) {
    super();
    this.base = base;
  }
  override async request<T>(opts: RequestClient.RequestOptions<T>) {
    const uri = opts.uri.replace('https://verify.twilio.com', `${this.base}/twilio`);
    const res = await super.request({ ...opts, uri });
    this.answers.push({ path: new URL(uri).pathname, status: res.statusCode, body: typeof res.body === 'string' ? JSON.parse(res.body) : res.body });
    return res;
  }
}

/** schemaOf names the Twilio schema an answer must satisfy. */
function checkAnswers(rec: Recorder): void {
  for (const a of rec.answers) {
    const name =
      a.status >= 400 ? undefined : a.path.endsWith('/VerificationCheck') ? 'verify.v2.service.verification_check' : 'verify.v2.service.verification';
    if (name === undefined) {
      const e = a.body as { code: unknown; message: unknown; more_info: unknown; status: unknown };
      assert.equal([typeof e.code, typeof e.message, typeof e.more_info, e.status], ['number', 'string', 'string', a.status], `error shape at ${a.path}`);
      continue;
    }
    const validate = ajv.getSchema(`#/components/schemas/${name}`)!;
    assert.ok(validate(a.body), `${a.path}: ${ajv.errorsText(validate.errors)}`);
  }
}

const RESOURCES = `apiVersion: smsauth.io/v1alpha1
kind: SmsGatewayAccount
metadata: {name: console, namespace: t}
spec: {provider: console, default: true}
---
apiVersion: v1
kind: Secret
metadata: {name: twilio, namespace: t}
stringData: {token: "${TOKEN}"}
---
apiVersion: smsauth.io/v1alpha1
kind: IdentityStore
metadata: {name: signup, namespace: t}
spec:
  type: ActiveDirectory
  authenticationTypes: [SMS]
  sms:
    textMessage: "Your code is [Code]"
    code: {length: 6, ttl: 10m, maxAttempts: 3, maxSends: 3, resendCooldown: 0s}
  twilioCompat:
    serviceSid: ${SERVICE}
    accountSid: ${ACCOUNT}
    authToken: {secretRef: {name: twilio, key: token}}
`;

/** writeBundleVolume writes the bundle Secret the controller would publish of the resources, as the kubelet mounts it. */
async function writeBundleVolume(dir: string): Promise<void> {
  writeSecretVolume(dir, await bundleDataOf(RESOURCES, new Map([['t/twilio', new Map([['token', TOKEN]])]])));
}

/** Server is smsauth serving the resources, in `run` or in the sidecar, with the console gateway's outbox. */
interface Server {
  url: string;
  outbox: string;
  stop(): Promise<unknown>;
}

/** serve starts `smsauth run` on a folder of the resources, or the sidecar on the bundle the controller would publish of them. */
async function serve(mode: 'run' | 'sidecar', backend: 'SQLite' | 'Redis'): Promise<Server> {
  const base = mkdtempSync(join(tmpdir(), 'smsauth-twilio-'));
  const redisArgs = backend === 'Redis' ? ['--redis', redis!.url] : [];
  if (backend === 'Redis') {
    // Each case on an empty Redis: the numbers repeat from case to case.
    const client = new Redis(redis!.url);
    await client.flushdb();
    client.disconnect();
  }
  if (mode === 'run') {
    const dir = join(base, 'config');
    mkdirSync(dir);
    writeFileSync(join(dir, 'resources.yaml'), RESOURCES);
    const run = await startRun(['--dir', dir, '--state-dir', join(base, 'state'), '--port', '0', '--twilio-compat', ...redisArgs]);
    return { url: run.url, outbox: join(base, 'state', 'outbox.jsonl'), stop: () => run.stop() };
  }
  await writeBundleVolume(join(base, 'bundle'));
  writeSecretVolume(join(base, 'keys'), freshCodeKeys());
  const outbox = join(base, 'outbox.jsonl');
  const sidecar = await startSidecar([
    '--bundle-dir',
    join(base, 'bundle'),
    '--code-keys-dir',
    join(base, 'keys'),
    '--port',
    '0',
    '--allow-console',
    '--outbox',
    outbox,
    '--twilio-compat',
    ...(backend === 'Redis' ? redisArgs : ['--state', join(base, 'state.sqlite')]),
  ]);
  return { url: sidecar.url, outbox, stop: () => sidecar.stop() };
}

async function restError(p: Promise<unknown>): Promise<{ status: number; code: number | undefined }> {
  try {
    await p;
  } catch (err) {
    const e = err as { constructor: { name: string }; status: number; code?: number };
    assert.is(e.constructor.name, 'RestException');
    return { status: e.status, code: e.code };
  }
  assert.unreachable('a RestException');
  return { status: 0, code: undefined };
}

let redis: RedisServer | undefined;
const compat = suite('the Twilio Verify-compatible API, through the twilio SDK');
compat.before(async () => {
  redis = await startRedis();
});
compat.after(async () => {
  await redis?.stop();
});

for (const [mode, backend] of [
  ['run', 'SQLite'],
  ['run', 'Redis'],
  ['sidecar', 'SQLite'],
  ['sidecar', 'Redis'],
] as const) {
  compat(`${mode}, ${backend}: create, check with the code from the outbox, and every refusal as a RestException with Twilio's code`, async () => {
    const run = await serve(mode, backend);
    const f = { outbox: run.outbox };
    const rec = new Recorder(run.url);
    const client = twilio(ACCOUNT, TOKEN, { httpClient: rec });
    const service = client.verify.v2.services(SERVICE);
    try {
      const v = await service.verifications.create({ to: '+14155550101', channel: 'sms' });
      assert.equal([v.status, v.to, v.channel, v.serviceSid, v.accountSid, v.valid], ['pending', '+14155550101', 'sms', SERVICE, ACCOUNT, false]);
      assert.match(v.sid, /^VE[0-9a-f]{32}$/);
      const code = lastCode(f.outbox);
      // A wrong code: pending, not valid.
      const wrong = await service.verificationChecks.create({ to: '+14155550101', code: code === '000000' ? '111111' : '000000' });
      assert.equal([wrong.status, wrong.valid], ['pending', false]);
      // The right one, by the number: approved.
      const ok = await service.verificationChecks.create({ to: '+14155550101', code });
      assert.equal([ok.status, ok.valid, ok.sid], ['approved', true, v.sid]);
      assert.is((await service.verifications(v.sid).fetch()).status, 'approved');
      // Checked again: no longer pending, 404 as Twilio answers.
      assert.equal(await restError(service.verificationChecks.create({ verificationSid: v.sid, code })), { status: 404, code: 20404 });

      // Too many wrong codes: 60202.
      const second = await service.verifications.create({ to: '+14155550102', channel: 'sms' });
      const secondCode = lastCode(f.outbox);
      const bad = secondCode === '000000' ? '111111' : '000000';
      for (let i = 0; i < 3; i++) await service.verificationChecks.create({ verificationSid: second.sid, code: bad });
      assert.is((await service.verifications(second.sid).fetch()).status, 'max_attempts_reached');
      assert.equal(await restError(service.verificationChecks.create({ verificationSid: second.sid, code: secondCode })), { status: 429, code: 60202 });

      // A second start to a pending number sends a new code for the same verification; past maxSends, 60203.
      const third = await service.verifications.create({ to: '+14155550103', channel: 'sms' });
      const again = await service.verifications.create({ to: '+14155550103', channel: 'sms' });
      assert.is(again.sid, third.sid);
      assert.is(again.sendCodeAttempts.length, 2);
      await service.verifications.create({ to: '+14155550103', channel: 'sms' });
      assert.equal(await restError(service.verifications.create({ to: '+14155550103', channel: 'sms' })), { status: 429, code: 60203 });

      // Cancel: canceled, and a check finds nothing to check.
      const fourth = await service.verifications.create({ to: '+14155550104', channel: 'sms' });
      assert.is((await service.verifications(fourth.sid).update({ status: 'canceled' })).status, 'canceled');
      assert.equal(await restError(service.verificationChecks.create({ verificationSid: fourth.sid, code: lastCode(f.outbox) })), { status: 404, code: 20404 });

      // Approved without a code (the application confirmed the holder another way).
      const fifth = await service.verifications.create({ to: '+14155550108', channel: 'sms' });
      const approved = await service.verifications(fifth.sid).update({ status: 'approved' });
      assert.equal([approved.status, approved.valid], ['approved', true]);
      assert.equal(await restError(service.verifications(fifth.sid).update({ status: 'canceled' })), { status: 404, code: 20404 });

      // Invalid parameters, unknown SIDs, bad credentials.
      assert.equal(await restError(service.verifications.create({ to: 'not a number', channel: 'sms' })), { status: 400, code: 60200 });
      assert.equal(await restError(service.verifications.create({ to: '+14155550105', channel: 'call' })), { status: 400, code: 60200 });
      assert.equal(await restError(service.verifications('VE00000000000000000000000000000000').fetch()), { status: 404, code: 20404 });
      assert.equal(
        await restError(client.verify.v2.services('VAffffffffffffffffffffffffffffffff').verifications.create({ to: '+14155550106', channel: 'sms' })),
        {
          status: 404,
          code: 20404,
        },
      );
      const stranger = twilio(ACCOUNT, 'not-the-token-0123456789abcdef', { httpClient: new Recorder(run.url) });
      assert.equal(await restError(stranger.verify.v2.services(SERVICE).verifications.create({ to: '+14155550107', channel: 'sms' })), {
        status: 401,
        code: 20003,
      });

      checkAnswers(rec);
      // The store's history has the verifications, none of them an enrollment.
      const history = (await (await fetch(`${run.url}/v1/t/signup/history?limit=50`)).json()) as { events: { type: string; result: string }[] };
      assert.ok(history.events.every((e) => e.type === 'verify'));
      assert.ok(history.events.some((e) => e.result === 'success'));
    } finally {
      await run.stop();
    }
  });
}

compat("sidecars on one Redis find a number's pending verification whichever started it, also after one takes up a new decoy secret", async () => {
  const base = mkdtempSync(join(tmpdir(), 'smsauth-twilio-replicas-'));
  const client = new Redis(redis!.url);
  await client.flushdb();
  client.disconnect();
  await writeBundleVolume(join(base, 'bundle'));
  // One code key for both; the decoy secret (which names a number's alias) differs, as when the
  // code keys Secret was made again while A was running and B started after.
  const keys = freshCodeKeys();
  const decoyB = freshCodeKeys()[DECOY_KEY]!;
  writeSecretVolume(join(base, 'keys-a'), keys);
  writeSecretVolume(join(base, 'keys-b'), { ...keys, [DECOY_KEY]: decoyB });
  const start = (name: string) =>
    startSidecar([
      '--bundle-dir',
      join(base, 'bundle'),
      '--code-keys-dir',
      join(base, `keys-${name}`),
      '--port',
      '0',
      '--allow-console',
      '--outbox',
      join(base, `outbox-${name}.jsonl`),
      '--twilio-compat',
      '--redis',
      redis!.url,
    ]);
  const a = await start('a');
  const b = await start('b');
  const service = (url: string) => twilio(ACCOUNT, TOKEN, { httpClient: new Recorder(url) }).verify.v2.services(SERVICE);
  /** stderrLine resolves at A's next line on stderr. */
  const stderrLine = (): Promise<void> => new Promise((resolve) => a.child.stderr?.once('data', () => resolve()));
  try {
    const to = '+14155550121';
    await service(b.url).verifications.create({ to, channel: 'sms' });
    const code = lastCode(join(base, 'outbox-b.jsonl'));
    const wrong = code === '000000' ? '111111' : '000000';
    // A names the number's alias under its own decoy secret: it finds nothing (and counts nothing).
    assert.equal(await restError(service(a.url).verificationChecks.create({ to, code: wrong })), { status: 404, code: 20404 });
    const seen = a.stderr().length;
    writeSecretVolume(join(base, 'keys-a'), { ...keys, [DECOY_KEY]: decoyB });
    await waitUntil('A to read the new decoy secret', () => a.stderr().slice(seen).includes('code keys read'), stderrLine, 10_000);
    const pending = await service(a.url).verificationChecks.create({ to, code: wrong });
    assert.equal([pending.status, pending.valid], ['pending', false]);
    const approved = await service(a.url).verificationChecks.create({ to, code });
    assert.equal([approved.status, approved.valid], ['approved', true]);
  } finally {
    await Promise.all([a.stop(), b.stop()]);
  }
});

compat.run();
