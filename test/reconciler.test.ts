import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Reconciler, type Change, type ReconcileState } from '../controller/core/reconciler.ts';
import type { IdentityStore, IdentityStoreStatus, SmsGatewayAccountStatus, SmsObject, SmsTemplateStatus } from '../controller/generated/kinds.ts';
import { ConditionType, Reason } from '../controller/core/reasons.ts';
import { ROOT } from './helpers/fixtures.ts';
import { runScenario } from './helpers/reconcile.ts';

const ready = (s: ReconcileState, key: string): string => {
  const c = s.statuses.get(key)?.status.conditions?.find((x) => x.type === 'Ready');
  return c === undefined ? 'absent' : `${c.status} ${c.reason}`;
};
const cond = (s: ReconcileState, key: string, type: string): string => {
  const c = s.statuses.get(key)?.status.conditions?.find((x) => x.type === type);
  return c === undefined ? 'absent' : `${c.status} ${c.reason}`;
};
const sms = (s: ReconcileState, key: string): IdentityStoreStatus['sms'] => (s.statuses.get(key)?.status as IdentityStoreStatus | undefined)?.sms;
const message = (s: ReconcileState, key: string): string => s.statuses.get(key)?.status.conditions?.find((x) => x.type === 'Ready')?.message ?? '';

const rules = suite('reconcile rules');

rules('the default account is pinned when a store is first seen, and kept when the default moves', async () => {
  const [one, two] = await runScenario('default-pinning');
  assert.equal(sms(one!, 'IdentityStore/p/early'), { offered: true, gatewayAccount: 'first', selectedBy: 'Default', encoding: 'GSM-7', segments: 1 });
  assert.is(sms(two!, 'IdentityStore/p/early')!.gatewayAccount, 'first', 'an existing store keeps its pinned default');
  assert.equal(
    [sms(two!, 'IdentityStore/p/late')!.gatewayAccount, sms(two!, 'IdentityStore/p/late')!.selectedBy],
    ['second', 'Default'],
    'a new store gets the new default',
  );
  assert.equal([sms(two!, 'IdentityStore/p/explicit')!.gatewayAccount, sms(two!, 'IdentityStore/p/explicit')!.selectedBy], ['first', 'Explicit']);
  assert.equal((two!.statuses.get('SmsGatewayAccount/p/first')!.status as SmsGatewayAccountStatus).linkedIdentityStores, ['early', 'explicit']);
  assert.equal(
    two!.bundles.get('IdentityStore/p/early')!.sms.gateways.map((g) => g.name),
    ['first'],
  );
});

rules('a store created while no default exists stays unlinked until an account is named', async () => {
  const [one, two, three] = await runScenario('no-default-at-creation');
  assert.is(ready(one!, 'IdentityStore/n/orphan'), 'False NoGatewayAccount');
  assert.is(cond(one!, 'IdentityStore/n/orphan', 'GatewayLinked'), 'False NoGatewayAccount');
  assert.is(ready(two!, 'IdentityStore/n/orphan'), 'False NoGatewayAccount', 'a default that appears later does not link it');
  assert.match(message(two!, 'IdentityStore/n/orphan'), 'set spec.sms.gatewayAccountRef');
  assert.is(ready(three!, 'IdentityStore/n/orphan'), 'True SmsOffered');
  assert.is(two!.bundles.get('IdentityStore/n/orphan')!.sms.offered, false);
  assert.is(three!.bundles.get('IdentityStore/n/orphan')!.sms.offered, true);
});

rules('SMS is offered only when every piece is there, each missing piece with its own reason', async () => {
  const [s] = await runScenario('sms-offered');
  assert.is(ready(s!, 'IdentityStore/o/offered'), 'True SmsOffered');
  assert.is(ready(s!, 'IdentityStore/o/sms-not-enabled'), 'True SmsNotEnabled');
  // Closed enrollment stops new enrollments, not SMS: enrolled users keep authenticating.
  assert.is(ready(s!, 'IdentityStore/o/enrollment-disabled'), 'True SmsOffered');
  assert.match(message(s!, 'IdentityStore/o/enrollment-disabled'), 'new enrollments are closed');
  assert.is(s!.bundles.get('IdentityStore/o/enrollment-disabled')!.sms.offered, true);
  assert.is(s!.bundles.get('IdentityStore/o/enrollment-disabled')!.enrollmentEnabled, false);
  assert.is(ready(s!, 'IdentityStore/o/gateway-not-found'), 'False GatewayAccountNotFound');
  assert.is(ready(s!, 'IdentityStore/o/gateway-not-ready'), 'False GatewayAccountNotReady');
  assert.match(message(s!, 'IdentityStore/o/gateway-not-ready'), 'Secret plivo, which does not exist');
  assert.is(ready(s!, 'IdentityStore/o/template-not-found'), 'False TemplateNotFound');
  assert.is(cond(s!, 'IdentityStore/o/template-not-found', 'TemplateValid'), 'False TemplateNotFound');
  assert.is(cond(s!, 'SmsGatewayAccount/o/plivo', 'CredentialsResolved'), 'False SecretNotFound');
  for (const store of ['offered', 'sms-not-enabled', 'enrollment-disabled', 'gateway-not-found', 'gateway-not-ready', 'template-not-found']) {
    const b = s!.bundles.get(`IdentityStore/o/${store}`)!;
    assert.is(b.sms.offered, store === 'offered' || store === 'enrollment-disabled', store);
    if (!b.sms.offered) assert.equal(b.sms.gateways, [], `${store}: no gateway in a bundle that does not offer SMS`);
  }
});

rules('a store whose new generation names an account or a template that does not exist keeps serving the generation before', async () => {
  const [one, two, three, four] = await runScenario('broken-reference');
  const key = 'IdentityStore/b/corp';
  const bundle = (s: ReconcileState): [number, boolean, string[], string | undefined] => {
    const b = s.bundles.get(key)!;
    return [b.generation, b.sms.offered, b.sms.gateways.map((g) => g.name), b.sms.texts.default];
  };
  assert.is(ready(one!, key), 'True SmsOffered');
  assert.equal(bundle(one!), [1, true, ['main'], 'One: [Code]']);

  // A typo in gatewayAccountRef: Ready says what is wrong and what serves; the bundle is generation 1's.
  assert.is(ready(two!, key), 'False GatewayAccountNotFound');
  assert.match(message(two!, key), 'SmsGatewayAccount mian named in spec.sms.gatewayAccountRef does not exist in namespace b; generation 1 stays live');
  assert.is(cond(two!, key, 'GatewayLinked'), 'False GatewayAccountNotFound');
  assert.equal(bundle(two!), [1, true, ['main'], 'One: [Code]']);
  assert.equal(sms(two!, key), { offered: true, gatewayAccount: 'main', selectedBy: 'Explicit', encoding: 'GSM-7', segments: 1 });
  assert.is((two!.statuses.get(key)!.status as IdentityStoreStatus).liveGeneration, 1);
  const recorded = (two!.statuses.get(key)!.status as IdentityStoreStatus).liveVersion;
  assert.equal([recorded?.generation, (recorded?.spec as any).sms.gatewayAccountRef.name], [1, 'main'], 'what serves is recorded, spec and all');
  assert.equal(
    (two!.statuses.get('SmsGatewayAccount/b/main')!.status as SmsGatewayAccountStatus).linkedIdentityStores,
    ['corp'],
    'the account that serves stays in use',
  );

  // A missing template: still generation 1, which follows a change to its own template.
  assert.is(ready(three!, key), 'False TemplateNotFound');
  assert.match(message(three!, key), 'generation 1 stays live');
  assert.equal(bundle(three!), [1, true, ['main'], 'Uno: [Code]']);

  // The template appears: the newest generation serves.
  assert.is(ready(four!, key), 'True SmsOffered');
  assert.equal(bundle(four!), [3, true, ['main'], 'Two: [Code]']);
  assert.is((four!.statuses.get(key)!.status as IdentityStoreStatus).liveGeneration, 3);
  assert.is((four!.statuses.get(key)!.status as IdentityStoreStatus).liveVersion, undefined, 'the newest serves: nothing held is recorded');
});

/** In namespace h: an object's metadata, a console account, and the store corp at a generation, its sms block given. */
const meta = (name: string, generation = 1) => ({ name, namespace: 'h', generation });
const consoleAccount = (name: string) => ({
  apiVersion: 'smsauth.io/v1alpha1',
  kind: 'SmsGatewayAccount',
  metadata: meta(name),
  spec: { provider: 'console' },
});
const corpStore = (generation: number, sms: Record<string, unknown>) => ({
  apiVersion: 'smsauth.io/v1alpha1',
  kind: 'IdentityStore',
  metadata: meta('corp', generation),
  spec: { type: 'ActiveDirectory', authenticationTypes: ['SMS'], enrollment: { enabled: true }, sms: { ...sms, code: { length: 6, ttl: '5m' } } },
});

rules('a reconciler seeded with the generation that served (a restart) holds it as if it had seen it serve, until the newest can', () => {
  const account = consoleAccount;
  const store = (gateway: string, generation: number) => corpStore(generation, { gatewayAccountRef: { name: gateway }, textMessage: 'Code: [Code]' });
  const key = 'IdentityStore/h/corp';
  const linked = (r: Reconciler, name: string) =>
    (r.state().statuses.get(`SmsGatewayAccount/h/${name}`)!.status as SmsGatewayAccountStatus).linkedIdentityStores;
  const desired = (newest: unknown) => ({ objects: [account('main'), account('other'), newest] as SmsObject[], invalid: [], secrets: new Map() });

  const restarted = new Reconciler();
  restarted.seedServed(store('main', 1) as IdentityStore);
  restarted.replace(desired(store('mian', 2)), '2026-01-01T00:00:00Z');
  assert.is(restarted.state().bundles.get(key)!.generation, 1);
  assert.equal(
    restarted
      .state()
      .bundles.get(key)!
      .sms.gateways.map((g) => g.name),
    ['main'],
  );
  assert.match(message(restarted.state(), key), 'generation 1 stays live');
  assert.equal(linked(restarted, 'main'), ['corp'], 'the account that serves is in use');
  assert.is((restarted.state().statuses.get(key)!.status as IdentityStoreStatus).liveVersion?.generation, 1);

  // The newest mended: it serves, and the seed is forgotten.
  restarted.apply([{ type: 'upsert', object: store('other', 3) as SmsObject }], '2026-01-01T00:01:00Z');
  assert.equal([restarted.state().bundles.get(key)!.generation, ready(restarted.state(), key)], [3, 'True SmsOffered']);
  assert.equal(linked(restarted, 'main'), []);

  // A seed never overrides what the reconciler saw serve itself.
  const running = new Reconciler();
  running.replace(desired(store('other', 3)), '2026-01-01T00:00:00Z');
  running.seedServed(store('main', 1) as IdentityStore);
  running.apply([{ type: 'upsert', object: store('mian', 4) as SmsObject }], '2026-01-01T00:01:00Z');
  assert.equal(
    running
      .state()
      .bundles.get(key)!
      .sms.gateways.map((g) => g.name),
    ['other'],
    'generation 3 held, not the seed',
  );
});

rules('a held generation follows its template incrementally: gone, it stops serving; back, it serves again', () => {
  const r = new Reconciler();
  const account = consoleAccount('main');
  const t1 = { apiVersion: 'smsauth.io/v1alpha1', kind: 'SmsTemplate', metadata: meta('t1'), spec: { text: 'One: [Code]' } };
  const store = (template: string, generation: number) => corpStore(generation, { gatewayAccountRef: { name: 'main' }, templateRef: { name: template } });
  const upsert = (object: unknown): Change => ({ type: 'upsert', object: object as SmsObject });
  const key = 'IdentityStore/h/corp';
  const served = (): [boolean, string | undefined] => [r.state().bundles.get(key)!.sms.offered, r.state().bundles.get(key)!.sms.texts.default];
  r.apply([upsert(account), upsert(t1), upsert(store('t1', 1))], '2026-01-01T00:00:00Z');
  assert.equal(served(), [true, 'One: [Code]']);
  r.apply([upsert(store('t2', 2))], '2026-01-01T00:01:00Z');
  assert.equal(served(), [true, 'One: [Code]'], 'generation 1 held');
  r.apply([{ type: 'delete', ref: { kind: 'SmsTemplate', namespace: 'h', name: 't1' } }], '2026-01-01T00:02:00Z');
  assert.equal(served(), [false, undefined], 'its template gone, generation 1 cannot serve');
  r.apply([upsert({ ...t1, spec: { text: 'Back: [Code]' } })], '2026-01-01T00:03:00Z');
  assert.equal(served(), [true, 'Back: [Code]'], 'its template back, generation 1 serves again');
  assert.match(message(r.state(), key), 'generation 1 stays live');
});

rules('a linked account reports InUse; its removal is refused until no store links it', async () => {
  const [one, two, three] = await runScenario('in-use-removal');
  assert.is(cond(one!, 'SmsGatewayAccount/u/primary', 'InUse'), 'True LinkedByIdentityStores');
  assert.match(one!.statuses.get('SmsGatewayAccount/u/primary')!.status.conditions!.find((c) => c.type === 'InUse')!.message, 'linked by IdentityStore a, b');
  assert.is(cond(one!, 'SmsGatewayAccount/u/other', 'InUse'), 'False NotLinked');
  // Removed from the files while linked: refused, still live, the stores keep their bundles.
  assert.is(cond(two!, 'SmsGatewayAccount/u/primary', 'InUse'), 'True DeletionBlocked');
  assert.is(cond(two!, 'SmsGatewayAccount/u/primary', 'Ready'), 'True DeletionBlocked', 'still serving, and the Ready row says why it is still there');
  assert.ok(two!.live.has('SmsGatewayAccount/u/primary'));
  assert.is(two!.bundles.get('IdentityStore/u/a')!.hash, one!.bundles.get('IdentityStore/u/a')!.hash);
  assert.equal(
    two!.problems.map((p) => p.ref.name),
    ['primary'],
  );
  assert.match(two!.problems[0]!.message, 'SmsGatewayAccount u/primary was removed but IdentityStore u/a, u/b link it');
  // Relinked: the removal completes.
  assert.not.ok(three!.live.has('SmsGatewayAccount/u/primary'));
  assert.not.ok(three!.statuses.has('SmsGatewayAccount/u/primary'));
  assert.equal(three!.problems, []);
  assert.is(cond(three!, 'SmsGatewayAccount/u/other', 'InUse'), 'True LinkedByIdentityStores');
});

rules('roles: priorities unique, enforced types enabled, chosen types available, disabled roles match no one', async () => {
  const [one, two] = await runScenario('roles');
  assert.is(ready(one!, 'SecurityRole/r/admins'), 'True Reconciled');
  assert.is(ready(one!, 'SecurityRole/r/contractors'), 'True Disabled');
  assert.is(ready(one!, 'SecurityRole/r/orphans'), 'False IdentityStoreNotFound');
  const bundle = one!.bundles.get('IdentityStore/r/corp')!;
  assert.equal(
    bundle.roles.map((r) => [r.name, r.priority]),
    [
      ['admins', 1],
      ['staff', 50],
    ],
    'enabled roles by priority; a disabled one is left out',
  );
  assert.equal(bundle.roles[0]!.enforced, ['SMS', 'Authenticator']);
  // Step two breaks every rule; broken roles keep their last valid version applied.
  assert.is(ready(two!, 'SecurityRole/r/admins'), 'False AuthTypeNotEnabled');
  assert.is(ready(two!, 'SecurityRole/r/staff'), 'False ChosenByEndUserTooMany');
  assert.is(ready(two!, 'SecurityRole/r/contractors'), 'False PriorityConflict');
  assert.match(message(two!, 'SecurityRole/r/admins'), 'its last valid version stays applied');
  assert.not.ok(two!.statuses.has('SecurityRole/r/orphans'));
  assert.equal(
    two!.bundles.get('IdentityStore/r/corp')!.roles.map((r) => [r.name, r.enforced, r.chosenByEndUser]),
    [
      ['admins', ['SMS', 'Authenticator'], 0],
      ['staff', ['SMS'], 1],
    ],
  );
});

rules('last known good: invalid objects keep serving their last valid generation', async () => {
  const [one, two, three] = await runScenario('last-known-good');
  const b1 = one!.bundles.get('IdentityStore/l/corp')!;
  assert.equal([b1.generation, b1.sms.texts.default, b1.sms.code.length], [1, 'Version one: [Code]', 6]);
  // Both the store (code length 4) and the template (no [Code]) became invalid.
  assert.is(ready(two!, 'IdentityStore/l/corp'), 'False InvalidSpec');
  assert.match(message(two!, 'IdentityStore/l/corp'), 'generation 2 is invalid');
  assert.match(message(two!, 'IdentityStore/l/corp'), 'generation 1 stays live');
  const s2 = two!.statuses.get('IdentityStore/l/corp')!.status as IdentityStoreStatus;
  assert.equal([s2.observedGeneration, s2.liveGeneration, s2.liveVersion?.generation], [2, 1, 1]);
  assert.is(ready(two!, 'SmsTemplate/l/text'), 'False InvalidSpec');
  assert.is(two!.bundles.get('IdentityStore/l/corp')!.hash, b1.hash, 'the bundle that serves is unchanged');
  assert.is(two!.bundles.get('IdentityStore/l/corp')!.sms.offered, true);
  // Fixed: the new generation applies.
  const b3 = three!.bundles.get('IdentityStore/l/corp')!;
  assert.equal([b3.generation, b3.sms.texts.default, b3.sms.code.length], [3, 'Version three: [Code]', 8]);
  assert.is(ready(three!, 'IdentityStore/l/corp'), 'True SmsOffered');
});

rules('secrets: a missing Secret, a missing key, then resolved without anything else changing', async () => {
  const [one, two, three] = await runScenario('secrets');
  assert.is(cond(one!, 'SmsGatewayAccount/s/plivo', 'CredentialsResolved'), 'False SecretNotFound');
  assert.is(cond(two!, 'SmsGatewayAccount/s/plivo', 'CredentialsResolved'), 'False SecretKeyNotFound');
  assert.match(
    two!.statuses.get('SmsGatewayAccount/s/plivo')!.status.conditions!.find((c) => c.type === 'CredentialsResolved')!.message,
    'key authToken of Secret plivo',
  );
  assert.is(ready(two!, 'IdentityStore/s/corp'), 'False GatewayAccountNotReady');
  assert.is(cond(three!, 'SmsGatewayAccount/s/plivo', 'CredentialsResolved'), 'True SecretsResolved');
  assert.is(ready(three!, 'IdentityStore/s/corp'), 'True SmsOffered');
  const gw = three!.bundles.get('IdentityStore/s/corp')!.sms.gateways[0]!;
  assert.equal(gw.credentials, { authId: { name: 'plivo', key: 'authId' }, authToken: { name: 'plivo', key: 'authToken' } });
  assert.not.match(JSON.stringify([...three!.bundles.values()]), 'not-a-token', 'the core never sees secret values');
});

rules(
  'events: EventsConfigured says whether the signing secret resolves, without touching Ready; the bundle carries the endpoint in a fixed order of types',
  async () => {
    const [one, two] = await runScenario('events');
    assert.is(cond(one!, 'IdentityStore/e/corp', 'EventsConfigured'), 'False EventsSecretNotFound');
    assert.is(ready(one!, 'IdentityStore/e/corp'), 'True SmsOffered', 'SMS serves; events wait in the outbox');
    assert.is(cond(two!, 'IdentityStore/e/corp', 'EventsConfigured'), 'True EventsEndpointSet');
    const said = JSON.stringify(two!.statuses.get('IdentityStore/e/corp')!.status);
    assert.match(said, 'https://hooks.example.com');
    assert.not.match(said, 't0ken-in-query', "the URL's query is never in status");
    assert.equal(two!.bundles.get('IdentityStore/e/corp')!.events, {
      url: 'https://hooks.example.com/smsauth?token=t0ken-in-query',
      signingSecret: { name: 'events', key: 'secret' },
      types: ['verification.approved', 'user.locked_out'],
    });
    assert.is(cond(two!, 'SmsGatewayAccount/e/console', 'EventsConfigured'), 'absent');
    // The Twilio-compatible API's token, alike.
    assert.is(cond(one!, 'IdentityStore/e/corp', 'TwilioCompatConfigured'), 'False TwilioTokenNotFound');
    assert.is(cond(two!, 'IdentityStore/e/corp', 'TwilioCompatConfigured'), 'True TwilioServiceServed');
    assert.equal(two!.bundles.get('IdentityStore/e/corp')!.twilioCompat, {
      serviceSid: 'VA0123456789abcdef0123456789abcdef',
      accountSid: 'AC0123456789abcdef0123456789abcdef',
      authToken: { name: 'twilio', key: 'token' },
    });
    assert.not.match(said + JSON.stringify([...two!.bundles.values()]), 'twilio-token-0123456789abcdef');
  },
);

rules('fallbacks: chain in the bundle up to the first unusable account; missing and unready fallbacks reported', async () => {
  const [s] = await runScenario('fallback');
  assert.equal(
    s!.bundles.get('IdentityStore/f/corp')!.sms.gateways.map((g) => g.name),
    ['a', 'b'],
  );
  assert.is(ready(s!, 'SmsGatewayAccount/f/b'), 'False FallbackNotReady');
  assert.is(ready(s!, 'SmsGatewayAccount/f/d'), 'False FallbackNotFound');
  assert.is(ready(s!, 'SmsGatewayAccount/f/c'), 'False SecretNotFound');
  assert.is(ready(s!, 'IdentityStore/f/corp'), 'True SmsOffered');
});

rules('several defaults: both accounts say so, and a new store waits for a single default', async () => {
  const [one, two] = await runScenario('default-conflict');
  assert.is(ready(one!, 'SmsGatewayAccount/c/x'), 'False DefaultConflict');
  assert.is(ready(one!, 'IdentityStore/c/corp'), 'False NoGatewayAccount');
  assert.is(sms(one!, 'IdentityStore/c/corp'), undefined, 'the choice is not made yet');
  assert.is(ready(two!, 'SmsGatewayAccount/c/x'), 'True Reconciled');
  assert.equal([sms(two!, 'IdentityStore/c/corp')!.gatewayAccount, sms(two!, 'IdentityStore/c/corp')!.selectedBy], ['x', 'Default']);
});

rules('templates report encoding and segments per locale and warn beyond one segment', async () => {
  const [s] = await runScenario('last-known-good');
  const t = s!.statuses.get('SmsTemplate/l/text')!.status as SmsTemplateStatus;
  assert.equal(t.locales, [{ locale: 'default', encoding: 'GSM-7', characters: 23, segments: 1 }]);
  assert.is(cond(s!, 'SmsTemplate/l/text', 'MultiSegment'), 'False SingleSegment');
});
rules.run();

const conditions = suite('conditions');
conditions('keep lastTransitionTime while their status holds, and take the new time when it changes', async () => {
  const [one, two, three] = await runScenario('secrets');
  const t = (s: ReconcileState, type: string): string =>
    s.statuses.get('SmsGatewayAccount/s/plivo')!.status.conditions!.find((c) => c.type === type)!.lastTransitionTime;
  assert.is(t(one!, 'CredentialsResolved'), '2026-01-01T00:00:00Z');
  assert.is(t(two!, 'CredentialsResolved'), '2026-01-01T00:00:00Z', 'False to False with a new reason keeps the time');
  assert.is(t(three!, 'CredentialsResolved'), '2026-01-01T00:02:00Z');
  const g = three!.statuses.get('SmsGatewayAccount/s/plivo')!.status.conditions!;
  for (const c of g) assert.is(c.observedGeneration, 1);
});
conditions.run();

const determinism = suite('determinism');
determinism('the same input gives the same statuses and bundle hashes, and an apply without change writes nothing', async () => {
  const [a] = await runScenario('roles');
  const [b] = await runScenario('roles');
  assert.equal(
    [...a!.bundles.values()].map((x) => x.hash),
    [...b!.bundles.values()].map((x) => x.hash),
  );
  assert.equal(JSON.stringify([...a!.statuses]), JSON.stringify([...b!.statuses]));
  const r = new Reconciler(a);
  const delta = r.apply([], '2026-02-01T00:00:00Z', true);
  assert.equal(delta, { statuses: [], removedStatuses: [], bundles: [], removedBundles: [] });
});
determinism.run();

const docs = suite('docs/conditions.md');
docs('documents every reason and condition type', () => {
  const text = readFileSync(join(ROOT, 'docs', 'conditions.md'), 'utf8');
  for (const r of Object.values(Reason)) assert.match(text, `\`${r}\``, `reason ${r}`);
  for (const c of Object.values(ConditionType)) assert.match(text, c, `condition ${c}`);
});
docs.run();
