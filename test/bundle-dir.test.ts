import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { contentHash, type Bundle } from '../controller/core/bundle.ts';
import { tokenDigest } from '../controller/core/http-route.ts';
import { BundleDir } from '../controller/runtime/bundle-dir.ts';
import { bundleSecretData } from '../controller/runtime/bundle-secret.ts';
import { GatewayPool } from '../controller/runtime/gateway-pool.ts';
import { BundleRegistry } from '../controller/verifier/bundle-registry.ts';
import { signingKeyOf } from '../controller/verifier/events.ts';
import { RecordingGateway } from './helpers/recording-gateway.ts';
import { writeSecretVolume } from './helpers/secret-volume.ts';
import { bundleDataOf } from './helpers/bundle-data.ts';
import { appStoreYaml } from './helpers/fixtures.ts';

// The sidecar's side of the bundle Secret: which changes of a mounted bundle file make its store
// resolved again. Serving a bundle end to end is in sidecar.test.ts.

const RESOURCES = appStoreYaml(
  'Code: [Code]',
  `  events:
    url: "https://hooks.example.com/smsauth"
    signingSecret: {secretRef: {name: hooks, key: whsec}}
  twilioCompat:
    serviceSid: VA0123456789abcdef0123456789abcdef
    accountSid: AC0123456789abcdef0123456789abcdef
    authToken: {secretRef: {name: twilio, key: token}}
`,
);

/** bundleData is the bundle Secret's data as the controller writes it, with these Secret values. */
function bundleData(values: { whsec: string; token: string }): Promise<Record<string, string>> {
  return bundleDataOf(
    RESOURCES,
    new Map([
      ['app/hooks', new Map([['whsec', values.whsec]])],
      ['app/twilio', new Map([['token', values.token]])],
    ]),
  );
}

const whsec = (): string => `whsec_${randomBytes(32).toString('base64')}`;
const token = (): string => randomBytes(16).toString('hex');

const test = suite('BundleDir: what makes a store resolved again');

test('a rotated Twilio auth token or events signing secret alone is taken up; an unchanged file swaps nothing', async () => {
  const dir = join(mkdtempSync(join(tmpdir(), 'smsauth-bundle-dir-')), 'bundle');
  const registry = new BundleRegistry();
  const log = pino({ level: 'silent' });
  const bundles = new BundleDir(dir, { registry, pool: new GatewayPool((gw) => new RecordingGateway(gw.name), log), log });
  const resolved = (): { token: Buffer | undefined; key: Buffer | undefined } => {
    const store = registry.get('app', 'corp');
    return { token: store?.twilioTokenDigest, key: store?.eventsKey?.ok === true ? store.eventsKey.value : undefined };
  };
  const keyOf = (secret: string): Buffer => {
    const key = signingKeyOf(secret);
    if (!key.ok) throw new Error(key.problem);
    return key.value;
  };

  const first = { whsec: whsec(), token: token() };
  writeSecretVolume(dir, await bundleData(first));
  assert.equal((await bundles.sync()).loaded, ['app/corp']);
  assert.equal(resolved(), { token: tokenDigest(first.token), key: keyOf(first.whsec) });

  writeSecretVolume(dir, await bundleData(first));
  assert.equal((await bundles.sync()).loaded, [], 'the same bundle and values: nothing swapped');

  const rotatedToken = { ...first, token: token() };
  writeSecretVolume(dir, await bundleData(rotatedToken));
  assert.equal((await bundles.sync()).loaded, ['app/corp'], 'the Twilio auth token alone changed');
  assert.equal(resolved(), { token: tokenDigest(rotatedToken.token), key: keyOf(first.whsec) });

  const rotatedSecret = { ...rotatedToken, whsec: whsec() };
  writeSecretVolume(dir, await bundleData(rotatedSecret));
  assert.equal((await bundles.sync()).loaded, ['app/corp'], 'the events signing secret alone changed');
  assert.equal(resolved(), { token: tokenDigest(rotatedToken.token), key: keyOf(rotatedSecret.whsec) });
});

test('a bundle published before directories existed (no directory field) is written again with the values of now, and served', async () => {
  const dir = join(mkdtempSync(join(tmpdir(), 'smsauth-bundle-dir-')), 'bundle');
  const file = JSON.parse((await bundleData({ whsec: whsec(), token: token() }))['corp.json']!) as { bundle: Bundle };
  // As an earlier controller made it: the same bundle without the field, hashed without it.
  const { hash: _hash, directory: _directory, ...body } = file.bundle;
  const old = { ...body, hash: contentHash(body) } as unknown as Bundle;
  const rotated = token();
  const secrets = new Map([['app/twilio', new Map([['token', rotated]])]]);
  const data = bundleSecretData([old], secrets).data;
  writeSecretVolume(dir, data);
  const registry = new BundleRegistry();
  const log = pino({ level: 'silent' });
  const bundles = new BundleDir(dir, { registry, pool: new GatewayPool((gw) => new RecordingGateway(gw.name), log), log });
  assert.equal((await bundles.sync()).loaded, ['app/corp']);
  assert.equal(registry.get('app', 'corp')?.twilioTokenDigest, tokenDigest(rotated));
});

test.run();
