import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { reconcile } from '../controller/core/reconciler.ts';
import { DEFAULT_LIMITS, parseYamlFile } from '../controller/load/yaml-documents.ts';
import { desiredStateOf } from '../controller/validate/desired-state.ts';
import { validateFiles } from '../controller/validate/validate-files.ts';
import { ROOT, schemaValidator, utf8 } from './helpers/fixtures.ts';

const EXAMPLES = readdirSync(join(ROOT, 'examples'), { recursive: true, withFileTypes: true })
  .filter((d) => d.isFile() && d.name.endsWith('.yaml'))
  .map((d) => readFileSync(join(d.parentPath, d.name)));

/** run puts bytes through everything a file goes through, and checks what comes out. */
async function run(bytes: Uint8Array): Promise<void> {
  const result = validateFiles([{ path: 'input.yaml', bytes }], await schemaValidator());
  for (const d of result.diagnostics) {
    assert.ok(d.file === 'input.yaml', 'every diagnostic names the file');
    assert.ok(d.range !== undefined && d.range.start.line >= 1 && d.range.start.column >= 1, `a position for ${d.code}`);
    assert.ok(d.message.length > 0 && d.code.length > 0);
  }
  reconcile(desiredStateOf(result), undefined, '2026-01-01T00:00:00Z');
}

const property = suite('hostile YAML, generated');

property('random bytes never crash or hang the loader, validator or reconciler', async () => {
  await fc.assert(fc.asyncProperty(fc.uint8Array({ maxLength: 2000 }), run), { numRuns: 300, seed: 7 });
});

property('random YAML-ish text never crashes them either', async () => {
  const token = fc.constantFrom(
    'apiVersion: smsauth.io/v1alpha1\n',
    'kind: IdentityStore\n',
    'kind: SmsTemplate\n',
    'metadata:\n',
    '  name: x\n',
    'spec:\n',
    '  text: "[Code]"\n',
    '---\n',
    '- ',
    '&a ',
    '*a ',
    '!!binary ',
    '!tag ',
    '{',
    '}',
    '[',
    ']',
    ': ',
    ', ',
    '? ',
    '|\n',
    '>\n',
    '"',
    "'",
    '#',
    '\t',
    '  ',
    '\n',
    'null',
    '0x1F',
    '1e999',
    '~',
    '<<: *a\n',
    '%YAML 1.1\n',
    '\u0000',
    '\ufeff',
    'é',
    '𝒳',
  );
  await fc.assert(
    fc.asyncProperty(
      fc.array(token, { maxLength: 120 }).map((t) => t.join('')),
      (text) => run(utf8(text)),
    ),
    { numRuns: 400, seed: 11 },
  );
});

property('mutations of the examples never crash them, and keep positions', async () => {
  const mutate = fc
    .tuple(
      fc.nat({ max: EXAMPLES.length - 1 }),
      fc.array(fc.tuple(fc.nat(), fc.nat({ max: 255 }), fc.constantFrom('flip', 'insert', 'delete', 'duplicate-line')), { minLength: 1, maxLength: 8 }),
    )
    .map(([i, edits]) => {
      let bytes = Buffer.from(EXAMPLES[i]!);
      for (const [at, value, op] of edits) {
        const pos = at % Math.max(1, bytes.length);
        if (op === 'flip') bytes[pos] = value;
        else if (op === 'insert') bytes = Buffer.concat([bytes.subarray(0, pos), Buffer.from([value]), bytes.subarray(pos)]);
        else if (op === 'delete') bytes = Buffer.concat([bytes.subarray(0, pos), bytes.subarray(pos + 1)]);
        else {
          const text = bytes.toString('latin1').split('\n');
          const line = pos % text.length;
          text.splice(line, 0, text[line]!);
          bytes = Buffer.from(text.join('\n'), 'latin1');
        }
      }
      return bytes;
    });
  await fc.assert(fc.asyncProperty(mutate, run), { numRuns: 400, seed: 13 });
});

property.run();

const corpus = suite('hostile YAML, corpus');

const cases: [string, () => Uint8Array, string, number?][] = [
  [
    'a billion laughs',
    () =>
      utf8(
        [
          'a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]',
          ...Array.from({ length: 9 }, (_, i) => `a${i + 1}: &a${i + 1} [${Array(10).fill(`*a${i}`).join(', ')}]`),
        ].join('\n'),
      ),
    'alias-limit',
  ],
  ['a 10 MB file', () => utf8(`# ${'x'.repeat(10 * 1024 * 1024)}\n`), 'file-too-large'],
  ['10,000-deep flow nesting', () => utf8(`spec: ${'['.repeat(10_000)}${']'.repeat(10_000)}`), 'nesting-too-deep'],
  ['10,000-deep maps in flow style', () => utf8(`spec: ${'{a: '.repeat(10_000)}1${'}'.repeat(10_000)}`), 'nesting-too-deep'],
  ['duplicate keys', () => utf8('apiVersion: smsauth.io/v1alpha1\nkind: SmsTemplate\nkind: SmsTemplate\n'), 'duplicate-key'],
  ['custom tags', () => utf8('apiVersion: smsauth.io/v1alpha1\nkind: !Ref SmsTemplate\n'), 'custom-tag'],
  ['binary bytes', () => new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13]), 'invalid-encoding'],
  ['UTF-16', () => Buffer.from('\ufeffapiVersion: v1\n', 'utf16le'), 'invalid-encoding'],
  ['a wrong version', () => utf8('apiVersion: smsauth.io/v2\nkind: SmsTemplate\nmetadata: {name: t}\nspec: {text: "[Code]"}\n'), 'unknown-api-version'],
  ['a wrong kind', () => utf8('apiVersion: smsauth.io/v1alpha1\nkind: SmsTemplates\nmetadata: {name: t}\n'), 'unknown-kind'],
  [
    'a look-alike [Code] (Cyrillic С)',
    () => utf8('apiVersion: smsauth.io/v1alpha1\nkind: SmsTemplate\nmetadata: {name: t}\nspec: {text: "Code: [\u0421ode]"}\n'),
    'placeholder-misspelled',
  ],
  [
    'a look-alike [Code] (full-width brackets)',
    () => utf8('apiVersion: smsauth.io/v1alpha1\nkind: SmsTemplate\nmetadata: {name: t}\nspec: {text: "Code: \uff3bCode\uff3d"}\n'),
    'placeholder-misspelled',
  ],
  [
    'a look-alike [Code] (zero-width space)',
    () => utf8('apiVersion: smsauth.io/v1alpha1\nkind: SmsTemplate\nmetadata: {name: t}\nspec: {text: "Code: [Co\u200bde]"}\n'),
    'placeholder-misspelled',
  ],
  [
    'an oversize text',
    () => utf8(`apiVersion: smsauth.io/v1alpha1\nkind: SmsTemplate\nmetadata: {name: t}\nspec: {text: "[Code] ${'x'.repeat(5000)}"}\n`),
    'schema-range',
  ],
  ['a huge number of documents', () => utf8('---\na: 1\n'.repeat(20_000)), 'file-too-large', 16 * 1024 * 1024],
  ['20,000 keys in one flow mapping', () => utf8(`metadata: {${Array.from({ length: 20_000 }, (_, i) => `k${i}: v`).join(', ')}}\n`), 'skipped-kind'],
  [
    '20,000 keys in one block mapping, one repeated',
    () => utf8(`labels:\n${Array.from({ length: 20_000 }, (_, i) => `  k${i}: v\n`).join('')}  k7: again\n`),
    'duplicate-key',
  ],
];
for (const [name, bytes, code, maxFileBytes] of cases) {
  corpus(`${name}: a clear ${code} diagnostic`, async () => {
    const input = bytes();
    const result = validateFiles([{ path: 'input.yaml', bytes: input }], await schemaValidator(), {
      ...DEFAULT_LIMITS,
      maxFileBytes: maxFileBytes ?? DEFAULT_LIMITS.maxFileBytes,
    });
    const found = result.diagnostics.find((d) => d.code === code);
    assert.ok(found !== undefined, `expected ${code}, got ${result.diagnostics.map((d) => d.code).join(', ')}`);
    assert.ok(found.range !== undefined);
  });
}
corpus('a 10 MB file is refused before it is read, at the default limit', () => {
  const r = parseYamlFile('big.yaml', new Uint8Array(10 * 1024 * 1024));
  assert.equal(
    r.diagnostics.map((d) => d.code),
    ['file-too-large'],
  );
});
corpus.run();
