import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { readSchemaSet } from '../controller/adapters/files.ts';
import { createSchemaValidator } from '../controller/validate/schema-validator.ts';
import { validateFiles } from '../controller/validate/validate-files.ts';
import { medianOf, row, type BenchRow } from './harness.ts';

/** manifests writes n documents across the four kinds, as a platform team's folder would hold them. */
export function manifests(n: number): string {
  const docs: string[] = [];
  for (let i = 0; docs.length < n; i++) {
    const ns = `team-${i % 20}`;
    docs.push(`apiVersion: smsauth.io/v1alpha1
kind: SmsGatewayAccount
metadata: {name: gw-${i}, namespace: ${ns}}
spec:
  provider: plivo
  plivo:
    authId: {secretRef: {name: plivo, key: authId}}
    authToken: {secretRef: {name: plivo, key: authToken}}
    source: "+14155550100"
  timeout: 8s`);
    docs.push(`apiVersion: smsauth.io/v1alpha1
kind: SmsTemplate
metadata: {name: tpl-${i}, namespace: ${ns}}
spec:
  text: "[Code] is your verification code. It expires in [Minutes] minutes."
  locales:
    fr: "[Code] est votre code de vérification. Il expire dans [Minutes] minutes."`);
    docs.push(`apiVersion: smsauth.io/v1alpha1
kind: IdentityStore
metadata: {name: store-${i}, namespace: ${ns}}
spec:
  type: ActiveDirectory
  authenticationTypes: [SMS, Email, Authenticator]
  sms:
    gatewayAccountRef: {name: gw-${i}}
    templateRef: {name: tpl-${i}}
    code: {length: 8, ttl: 5m}
    allowedCountries: [US, FR, DE]`);
    docs.push(`apiVersion: smsauth.io/v1alpha1
kind: SecurityRole
metadata: {name: role-${i}, namespace: ${ns}}
spec:
  identityStoreRef: {name: store-${i}}
  priority: 10
  members: {groups: ["CN=Staff,DC=example,DC=com"]}
  authenticationPolicy: {enforced: [SMS], chosenByEndUser: 1}`);
  }
  return docs.slice(0, n).join('\n---\n') + '\n';
}

/** benchValidate measures parse+validate of 10,000 documents against yaml's bare parse of the same text. */
export async function benchValidate(root: string): Promise<BenchRow[]> {
  const validator = createSchemaValidator(await readSchemaSet(join(root, 'schemas')));
  const rows: BenchRow[] = [];
  for (const n of [1000, 10_000]) {
    const text = manifests(n);
    const bytes = new TextEncoder().encode(text);
    const baseline = await medianOf(5, () => parseAllDocuments(text).map((d) => d.toJS()));
    let diagnostics = -1;
    const ours = await medianOf(5, () => {
      const r = validateFiles([{ path: 'bench.yaml', bytes }], validator, { maxFileBytes: 1e9, maxAliasCount: 100, maxDepth: 64, maxDocuments: 1e6 });
      diagnostics = r.diagnostics.length;
    });
    if (diagnostics !== 0) throw new Error(`benchmark input is not valid: ${diagnostics} diagnostics`);
    rows.push(
      row(
        `parse+validate ${n} documents`,
        ours,
        'ms',
        { name: 'yaml parseAllDocuments+toJS', value: baseline },
        `${Math.round((n / ours) * 1000)} documents/s`,
      ),
    );
  }
  // Hostile shapes: each must cost about what parsing its bytes costs, never a multiple of it.
  const hostile: [string, string][] = [
    ['20,000 keys in one mapping, one repeated', `labels:\n${Array.from({ length: 20_000 }, (_, i) => `  k${i}: v\n`).join('')}  k7: again\n`],
    [
      'alias fan-out 10^9 (stopped at the alias limit)',
      [
        'a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]',
        ...Array.from({ length: 9 }, (_, i) => `a${i + 1}: &a${i + 1} [${Array(10).fill(`*a${i}`).join(', ')}]`),
      ].join('\n'),
    ],
    ['10,000-deep flow nesting', `spec: ${'['.repeat(10_000)}${']'.repeat(10_000)}`],
  ];
  for (const [name, text] of hostile) {
    const bytes = new TextEncoder().encode(text);
    const baseline = await medianOf(5, () => parseAllDocuments(text, { uniqueKeys: false }));
    const ours = await medianOf(5, () => validateFiles([{ path: 'bench.yaml', bytes }], validator));
    rows.push(row(`hostile: ${name}`, ours, 'ms', { name: 'yaml parse, no checks', value: baseline }));
  }
  return rows;
}
