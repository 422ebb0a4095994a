import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { DEFAULT_LIMITS, parseYamlFile } from '../controller/load/yaml-documents.ts';
import { utf8 } from './helpers/fixtures.ts';

const codes = (text: string | Uint8Array, limits = DEFAULT_LIMITS): string[] =>
  parseYamlFile('f.yaml', typeof text === 'string' ? utf8(text) : text, limits).diagnostics.map(
    (d) => `${d.range?.start.line}:${d.range?.start.column} ${d.severity} ${d.code}`,
  );

const parse = suite('parseYamlFile');

parse('reads every document of a stream with its start position', () => {
  const { documents, diagnostics } = parseYamlFile('f.yaml', utf8('# comment\na: 1\n---\n---\n# only a comment\n---\nb:\n  c: [1, 2]\n'));
  assert.equal(diagnostics, []);
  assert.equal(
    documents.map((d) => [d.index, d.range.start.line, d.value]),
    [
      [0, 2, { a: 1 }],
      [3, 7, { b: { c: [1, 2] } }],
    ],
  );
});

parse('locates values, keys, array items and absent fields by JSON pointer', () => {
  const [doc] = parseYamlFile('f.yaml', utf8('spec:\n  sms:\n    code: {length: 4}\n  types: [SMS, Email]\n')).documents;
  const at = (p: string, t?: 'key' | 'value'): string => {
    const r = doc!.locate(p, t);
    return `${r.start.line}:${r.start.column}`;
  };
  assert.is(at('/spec/sms/code/length'), '3:20');
  assert.is(at('/spec/sms/code', 'key'), '3:5');
  assert.is(at('/spec/types/1'), '4:16');
  assert.is(at('/spec/sms/missing'), '2:3', 'an absent field points at its parent key');
  assert.is(at(''), '1:1');
});

parse('follows aliases when locating', () => {
  const [doc] = parseYamlFile('f.yaml', utf8('base: &b {x: 1, y: 2}\nuse: *b\n')).documents;
  assert.equal(doc!.value, { base: { x: 1, y: 2 }, use: { x: 1, y: 2 } });
  assert.is(doc!.locate('/use/y').start.line, 1);
});

parse('refuses files over the size limit without parsing them', () => {
  assert.equal(codes('a: 1\n'.repeat(100), { ...DEFAULT_LIMITS, maxFileBytes: 100 }), ['1:1 error file-too-large']);
});

parse('refuses invalid UTF-8, UTF-16 and NUL bytes, pointing at the bad byte', () => {
  assert.equal(codes(new Uint8Array([0x61, 0x3a, 0x20, 0x0a, 0x62, 0x3a, 0x20, 0xc3, 0x28])), ['2:4 error invalid-encoding']);
  assert.equal(codes(new Uint8Array([0xff, 0xfe, 0x61, 0x00])), ['1:1 error invalid-encoding']);
  assert.equal(codes('a: 1\nb: "x\0y"\n'), ['2:6 error invalid-encoding']);
  assert.equal(codes(new Uint8Array([0xed, 0xa0, 0x80])), ['1:1 error invalid-encoding'], 'an encoded surrogate is not UTF-8');
});

parse('accepts a UTF-8 byte order mark', () => {
  const { documents, diagnostics } = parseYamlFile('f.yaml', new Uint8Array([0xef, 0xbb, 0xbf, ...utf8('a: é\n')]));
  assert.equal(diagnostics, []);
  assert.equal(documents[0]!.value, { a: 'é' });
});

parse('refuses duplicate keys, naming the key', () => {
  const r = parseYamlFile('f.yaml', utf8('a: 1\nspec:\n  text: x\n  text: z\n'));
  assert.equal(
    r.diagnostics.map((d) => d.code),
    ['duplicate-key'],
  );
  assert.match(r.diagnostics[0]!.message, 'key text appears twice');
  assert.equal(r.documents, []);
});

parse('refuses custom and non-core tags', () => {
  assert.equal(codes('a: !custom x\n'), ['1:4 error custom-tag']);
  assert.equal(codes('a: !!binary aGk=\n'), ['1:4 error custom-tag']);
  assert.equal(
    codes('a: !!set {x}\n').map((c) => c.split(' ')[2]),
    ['custom-tag'],
  );
  assert.equal(codes('a: !!str 12\nb: !!int "3"\n'), []);
});

parse('stops alias bombs at the alias limit', () => {
  let text = 'a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n';
  for (let i = 1; i < 9; i++)
    text += `a${i}: &a${i} [${Array(10)
      .fill(`*a${i - 1}`)
      .join(', ')}]\n`;
  // A 10^9 expansion: attempted, it would exhaust the memory before any answer.
  assert.equal(codes(text), ['1:1 error alias-limit']);
});

parse('an alias whose anchor is not set before it is a syntax error where the alias is, not an alias bomb', () => {
  assert.equal(codes('a: 1\nspec:\n  text: *nothere\n'), ['3:9 error yaml-syntax']);
  assert.equal(codes('a: *later\nb: &later 1\n'), ['1:4 error yaml-syntax'], 'an anchor set after its alias');
});

parse('refuses deep nesting, including 10,000 levels', () => {
  assert.equal(
    codes(`a: ${'['.repeat(65)}${']'.repeat(65)}\n`).map((c) => c.split(' ').slice(1).join(' ')),
    ['error nesting-too-deep'],
  );
  const deep = parseYamlFile('f.yaml', utf8(`${'['.repeat(10_000)}${']'.repeat(10_000)}`));
  assert.ok(deep.diagnostics.some((d) => d.code === 'nesting-too-deep'));
  assert.equal(deep.documents, []);
  let block = '';
  for (let i = 0; i < 2000; i++) block += `${' '.repeat(i)}a:\n`;
  assert.ok(parseYamlFile('f.yaml', utf8(block), { ...DEFAULT_LIMITS, maxFileBytes: 10_000_000 }).diagnostics.some((d) => d.code === 'nesting-too-deep'));
});

parse('refuses collection keys instead of stringifying them', () => {
  assert.equal(codes('? [a, b]\n: 1\n'), ['1:3 error yaml-syntax']);
});

parse('reports syntax errors with a position and a hint for unquoted [Code]', () => {
  const r = parseYamlFile('f.yaml', utf8('spec:\n  text: [Code] is your code\n'));
  assert.equal(
    r.diagnostics.map((d) => `${d.range?.start.line}:${d.range?.start.column} ${d.code}`),
    ['2:16 yaml-syntax'],
  );
  assert.match(r.diagnostics[0]!.message, 'quote texts that start with [Code]');
});

parse('warns where kubectl (YAML 1.1) would read a boolean', () => {
  assert.equal(codes('allowedCountries: [FR, NO]\n'), ['1:24 warning yaml-syntax']);
  assert.equal(codes('allowedCountries: [FR, "NO"]\n'), []);
  // Keys too (Norwegian locale `no:` is the key false there), and octal-looking numbers (base-60 ones stay strings in go-yaml).
  assert.equal(codes('locales: {no: "Kode [Code]", "nb": "x"}\n'), ['1:11 warning yaml-syntax']);
  assert.equal(codes('priority: 010\nwindow: 1:20\nplain: 10\nzero: 0\nquoted: "010"\n'), ['1:11 warning yaml-syntax']);
  assert.match(parseYamlFile('f.yaml', utf8('priority: 010\n')).diagnostics[0]!.message, 'as an octal number');
});

parse('never echoes source text in messages (a Secret value could be on the line)', () => {
  const r = parseYamlFile('f.yaml', utf8('stringData:\n  token: "s3cret-value\n'));
  assert.ok(r.diagnostics.length > 0);
  for (const d of r.diagnostics) assert.not.match(d.message, 's3cret');
});

parse('refuses a file with too many documents', () => {
  assert.equal(codes('a: 1\n---\n'.repeat(20), { ...DEFAULT_LIMITS, maxDocuments: 10 }), ['1:1 error file-too-large']);
});

parse('syntax errors never quote the source: a Secret value that breaks the YAML appears in no message', () => {
  const secret = 'Zq8Lw3vT9pR2kN7xY4mB';
  const secretFile = (value: string): string => `apiVersion: v1\nkind: Secret\nmetadata: {name: plivo}\nstringData:\n  authToken: ${value}\n`;
  const broken = [
    secretFile(`>${secret}`),
    secretFile(`|${secret}`),
    secretFile(`>-${secret} more`),
    secretFile(`"\\q${secret}"`),
    secretFile(`"\\x${secret}"`),
    secretFile(`@${secret}`),
    secretFile(`\`${secret}`),
    secretFile(`'${secret}`),
    secretFile(`"${secret}`),
    secretFile(`{a: ${secret}, ]`),
    secretFile(`[a, ${secret}: b: c]`),
    secretFile(`!${secret} x`),
    secretFile(`!<${secret}> x`),
    secretFile(`&a &b ${secret}`),
    secretFile(`${secret}\n   bad: indent`),
    `%YAML ${secret}\n---\na: 1\n`,
    `%${secret}\n---\na: 1\n`,
    `stringData: {authToken: ${secret} ${secret}: x}\n`,
    `stringData:\n  authToken: ${secret}\n  - ${secret}\n`,
    `- ${secret}\n${secret}: x\n`,
  ];
  for (const text of broken) {
    const { diagnostics } = parseYamlFile('secret.yaml', utf8(text));
    assert.ok(diagnostics.length > 0, `a diagnostic for ${JSON.stringify(text)}`);
    for (const d of diagnostics) {
      // Not the value, nor a piece of it long enough to narrow it down.
      for (let i = 0; i + 4 <= secret.length; i++) assert.not.ok(d.message.includes(secret.slice(i, i + 4)), `${d.message} (for ${JSON.stringify(text)})`);
    }
  }
});

parse.run();
