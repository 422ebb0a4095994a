import { createHash } from 'node:crypto';
import { CST, LineCounter, Parser, isAlias, isMap, isScalar, isSeq, parseAllDocuments, visit, type Alias, type Document, type Node } from 'yaml';
import { DiagnosticCode, type Diagnostic, type Position, type Range } from '../core/diagnostics.ts';

/** LoaderLimits bounds what one file may cost to read. */
export interface LoaderLimits {
  /** Largest file read, in bytes. */
  maxFileBytes: number;
  /** Most alias expansions per document (yaml's maxAliasCount), against alias bombs. */
  maxAliasCount: number;
  /** Deepest nesting of maps and sequences. */
  maxDepth: number;
  /** Most documents in one file. */
  maxDocuments: number;
}

/** DEFAULT_LIMITS fits any real manifest with room to spare (Kubernetes stores objects up to 1.5 MiB). */
export const DEFAULT_LIMITS: LoaderLimits = { maxFileBytes: 1024 * 1024, maxAliasCount: 100, maxDepth: 64, maxDocuments: 10_000 };

/** YamlDocument is one parsed document with its place in the file and a way to find any field in it. */
export interface YamlDocument {
  file: string;
  /** Index of the document in its file's stream, from 0. */
  index: number;
  /** Where the document's content starts. */
  range: Range;
  /** The document as plain JSON data. */
  value: unknown;
  /** locate returns the best range for a JSON pointer: the value, or with `key` the key; the deepest existing ancestor when the field is absent. */
  locate(pointer: string, target?: 'value' | 'key'): Range;
}

/** ParsedFile is what parseYamlFile returns: the documents that parsed, and diagnostics for those that did not. */
export interface ParsedFile {
  documents: YamlDocument[];
  diagnostics: Diagnostic[];
}

const CORE_TAGS = new Set(['str', 'int', 'float', 'bool', 'null', 'map', 'seq'].map((t) => `tag:yaml.org,2002:${t}`));
// What YAML 1.1 (kubectl's parser) reads as a boolean while YAML 1.2 reads a string.
const YAML11_BOOLEAN = /^(y|Y|yes|Yes|YES|n|N|no|No|NO|on|On|ON|off|Off|OFF)$/;

/**
 * yaml11Reading is what kubectl's YAML 1.1 parser makes of a plain scalar that this YAML 1.2
 * parser reads otherwise: a boolean (yes, no, on, off) or an octal number (010 is 8). Undefined
 * when both read it alike (go-yaml leaves YAML 1.1's base-60 numbers, 1:20, as strings).
 */
function yaml11Reading(source: string): string | undefined {
  if (YAML11_BOOLEAN.test(source)) return 'a boolean';
  if (/^[-+]?0[0-7]+$/.test(source)) return 'an octal number';
  return undefined;
}

/**
 * parseYamlFile decodes and parses one file's bytes into documents. It never throws: hostile input
 * (invalid UTF-8, duplicate keys, custom tags, alias bombs, deep nesting, syntax errors) becomes a
 * diagnostic with its position, and the documents of the file that are sound are still returned.
 */
export function parseYamlFile(file: string, bytes: Uint8Array, limits: LoaderLimits = DEFAULT_LIMITS): ParsedFile {
  const diagnostics: Diagnostic[] = [];
  if (bytes.length > limits.maxFileBytes) {
    diagnostics.push(
      fileDiagnostic(file, DiagnosticCode.FileTooLarge, `file is ${bytes.length} bytes, over the limit of ${limits.maxFileBytes}; split it into smaller files`),
    );
    return { documents: [], diagnostics };
  }
  const text = decodeUtf8(file, bytes, diagnostics);
  if (text === undefined) return { documents: [], diagnostics };

  const positions = textPositions(text);
  const parsed = parseStream(file, text, limits, positions);
  if (!Array.isArray(parsed)) {
    diagnostics.push(parsed);
    return { documents: [], diagnostics };
  }
  const documents: YamlDocument[] = [];
  parsed.forEach((doc, index) => {
    const read = readDocument(file, text, doc, index, limits, positions);
    diagnostics.push(...read.problems);
    if (read.document !== undefined) documents.push(read.document);
  });
  return { documents, diagnostics };
}

/** TextPositions turns offsets into a file's text into lines and columns. */
interface TextPositions {
  pos(offset: number): Position;
  /** rangeOf is the range of a node's yaml range, or the file's first position without one. */
  rangeOf(r: readonly [number, number, number] | undefined | null): Range;
}

/** ReportAt records a problem found at an offset of the file's text (an error unless said otherwise). */
type ReportAt = (code: DiagnosticCode, offset: number, message: string, severity?: Diagnostic['severity']) => void;

/** textPositions indexes the lines of a text once, to place offsets in it. */
function textPositions(text: string): TextPositions {
  const lineCounter = new LineCounter();
  lineCounter.addNewLine(0);
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) lineCounter.addNewLine(i + 1);
  const pos = (offset: number): Position => {
    const p = lineCounter.linePos(offset);
    return { line: p.line, column: p.col };
  };
  return {
    pos,
    rangeOf: (r) => (r ? { start: pos(r[0]), end: pos(r[1]) } : { start: { line: 1, column: 1 }, end: { line: 1, column: 1 } }),
  };
}

/**
 * parseStream parses a decoded text into its documents, or answers the one diagnostic that refuses
 * the whole file: nesting too deep to parse safely, a parser failure, or too many documents.
 */
function parseStream(file: string, text: string, limits: LoaderLimits, positions: TextPositions): Document.Parsed[] | Diagnostic {
  // yaml's composer recurses once per level; refuse absurd nesting before it can exhaust the stack.
  const tooDeep = findExcessiveNesting(text, limits.maxDepth * 2);
  if (tooDeep !== undefined) {
    return {
      file,
      code: DiagnosticCode.NestingTooDeep,
      severity: 'error',
      pointer: '',
      message: `nesting is deeper than ${limits.maxDepth} levels`,
      range: { start: positions.pos(tooDeep), end: positions.pos(tooDeep) },
    };
  }

  let parsed: Document.Parsed[];
  try {
    const stream = parseAllDocuments(text, {
      // yaml's own check compares each key with every earlier one (quadratic: 20,000 keys take
      // seconds); walkNodes finds duplicates with a set per mapping instead.
      uniqueKeys: false,
      prettyErrors: false,
      strict: true,
      version: '1.2',
      schema: 'core',
      logLevel: 'silent',
    });
    parsed = Array.isArray(stream) ? stream : [];
  } catch (err) {
    // yaml reports recursion limits itself; this is a last resort for anything it does not.
    return fileDiagnostic(
      file,
      DiagnosticCode.NestingTooDeep,
      `the file could not be parsed (${err instanceof RangeError ? 'nesting too deep' : 'parser failure'})`,
    );
  }
  if (parsed.length > limits.maxDocuments) {
    return fileDiagnostic(file, DiagnosticCode.FileTooLarge, `file has ${parsed.length} documents, over the limit of ${limits.maxDocuments}`);
  }
  return parsed;
}

/**
 * readDocument checks one parsed document (yaml's errors and warnings, then its nodes, then its
 * aliases while converting it to data) and answers the problems found, with the document unless
 * one of them is an error or the document is empty.
 */
function readDocument(
  file: string,
  text: string,
  doc: Document.Parsed,
  index: number,
  limits: LoaderLimits,
  positions: TextPositions,
): { problems: Diagnostic[]; document?: YamlDocument } {
  const problems: Diagnostic[] = [];
  const at: ReportAt = (code, offset, message, severity = 'error') => {
    problems.push({ file, code, severity, pointer: '', message, range: { start: positions.pos(offset), end: positions.pos(offset) } });
  };
  const failed = (): boolean => problems.some((p) => p.severity === 'error');
  reportParserProblems(doc, text, at);
  if (!failed()) walkNodes(doc, text, limits, at);
  const value = failed() ? undefined : toData(doc, limits, at);
  if (failed()) return { problems };
  if (value === null || value === undefined) return { problems }; // an empty document: only comments or '---'
  const contents = doc.contents as Node | null;
  return {
    problems,
    document: {
      file,
      index,
      range: positions.rangeOf(contents?.range ?? doc.range),
      value,
      locate: (pointer, target = 'value') => positions.rangeOf(locateNode(doc, pointer, target)),
    },
  };
}

/**
 * reportParserProblems reports yaml's own errors, up to the first about nesting, and its warnings
 * but unresolved tags (explicit non-core tags, which walkNodes reports at the tag).
 */
function reportParserProblems(doc: Document.Parsed, text: string, at: ReportAt): void {
  for (const e of doc.errors) {
    const code =
      e.code === 'DUPLICATE_KEY' ? DiagnosticCode.DuplicateKey : e.code === 'RESOURCE_EXHAUSTION' ? DiagnosticCode.NestingTooDeep : DiagnosticCode.YamlSyntax;
    const message =
      code === DiagnosticCode.NestingTooDeep
        ? 'nesting is too deep to parse'
        : code === DiagnosticCode.DuplicateKey
          ? `key ${keyAt(text, e.pos[0])} appears twice in this mapping; YAML parsers disagree on which value wins, so keep one`
          : firstLine(e.message) + bracketHint(text, e.pos[0]);
    // A quoted text left open is found by yaml at the end of the input: it is told where it opens.
    const open = e.code === 'MISSING_CHAR' && /quote/.test(e.message) ? openQuoteBefore(text, e.pos[0]) : undefined;
    at(code, open ?? e.pos[0], open === undefined ? message : `${message}: the quoted text opened here is never closed`);
    if (code === DiagnosticCode.NestingTooDeep) break;
  }
  for (const w of doc.warnings) {
    // Unresolved tags are explicit non-core tags: walkNodes reports them at the tag.
    if (w.code !== 'TAG_RESOLVE_FAILED') at(DiagnosticCode.YamlSyntax, w.pos[0], firstLine(w.message), 'warning');
  }
}

/** openQuoteBefore is where the last quoted scalar before an offset opens when it is never closed (yaml's CST), if one is. */
function openQuoteBefore(text: string, offset: number): number | undefined {
  let open: number | undefined;
  for (const token of new Parser().parse(text)) {
    if (token.type !== 'document') continue;
    CST.visit(token, (item) => {
      for (const t of [item.key, item.value]) {
        if (t?.type !== 'double-quoted-scalar' && t?.type !== 'single-quoted-scalar') continue;
        const quote = t.source[0]!;
        const closed = t.source.length > 1 && t.source.trimEnd().endsWith(quote) && !(quote === '"' && /(^|[^\\])(\\\\)*\\"$/.test(t.source.trimEnd()));
        if (!closed && t.offset <= offset) open = t.offset;
      }
    });
  }
  return open;
}

/**
 * toData converts a checked document to plain JSON data within the alias limit; an alias bomb or a
 * failed conversion is reported, at the document's start, and answers undefined.
 */
function toData(doc: Document.Parsed, limits: LoaderLimits, at: ReportAt): unknown {
  try {
    return doc.toJS({ maxAliasCount: limits.maxAliasCount });
  } catch (err) {
    const bomb = err instanceof ReferenceError && /excessive alias/i.test(err.message);
    if (bomb) {
      at(DiagnosticCode.AliasLimit, doc.range[0], `aliases expand beyond the limit of ${limits.maxAliasCount}; write the values out`);
      return undefined;
    }
    // An alias whose anchor is not set before it: said where the alias is.
    let unresolved: Alias | undefined;
    visit(doc, {
      Alias(_key, node) {
        if (node.resolve(doc) !== undefined) return undefined;
        unresolved = node;
        return visit.BREAK;
      },
    });
    if (unresolved !== undefined) {
      at(
        DiagnosticCode.YamlSyntax,
        unresolved.range?.[0] ?? doc.range[0],
        `the alias *${unresolved.source} names no anchor (&${unresolved.source}) set before it in this document`,
      );
      return undefined;
    }
    at(DiagnosticCode.YamlSyntax, doc.range[0], 'the document could not be converted to data');
    return undefined;
  }
}

/** walkNodes checks each node of a document, depth first without recursion: custom tags, YAML 1.1 readings, map keys, duplicate keys and depth. */
function walkNodes(doc: Document.Parsed, text: string, limits: LoaderLimits, at: ReportAt): void {
  // Iterative, so that depth is checked before anything recursive touches the tree.
  const stack: { node: unknown; depth: number }[] = [{ node: doc.contents, depth: 0 }];
  while (stack.length > 0) {
    const { node, depth } = stack.pop()!;
    if (node === null || node === undefined || isAlias(node)) continue;
    const n = node as Node;
    const offset = n.range?.[0] ?? 0;
    if (n.tag !== undefined && !CORE_TAGS.has(n.tag)) {
      // Only YAML's own tags are named: any other could be a value typed without quotes (!s3cr3t).
      const known = /^tag:yaml\.org,2002:(binary|set|omap|pairs|timestamp|merge|value|yaml)$/.exec(n.tag)?.[1];
      at(
        DiagnosticCode.CustomTag,
        tagOffset(text, offset),
        `${known !== undefined ? `tag !!${known}` : 'a custom tag'} is not accepted; remove it (only plain YAML data is read; quote a value that starts with !)`,
      );
    }
    if (isScalar(n)) {
      const reading = n.type === 'PLAIN' && typeof n.source === 'string' ? yaml11Reading(n.source) : undefined;
      if (reading !== undefined) {
        at(DiagnosticCode.YamlSyntax, offset, `this value reads differently in kubectl's YAML 1.1 parser, as ${reading}; quote it`, 'warning');
      }
      continue;
    }
    if (depth >= limits.maxDepth) {
      at(DiagnosticCode.NestingTooDeep, offset, `nesting is deeper than ${limits.maxDepth} levels`);
      return;
    }
    if (isMap(n)) {
      const keys = new Set<string>();
      for (const pair of n.items) {
        if (pair.key !== null && !isScalar(pair.key)) {
          at(DiagnosticCode.YamlSyntax, (pair.key as Node).range?.[0] ?? offset, 'map keys must be plain scalars');
          continue;
        }
        const key = pair.key === null ? '' : String((pair.key as { value: unknown }).value);
        const keyNode = pair.key;
        const keyReading = keyNode?.type === 'PLAIN' && typeof keyNode.source === 'string' ? yaml11Reading(keyNode.source) : undefined;
        // A key too: `no:` (Norwegian) is the key false in kubectl's parser.
        if (keyReading !== undefined)
          at(
            DiagnosticCode.YamlSyntax,
            keyNode?.range?.[0] ?? offset,
            `this key reads differently in kubectl's YAML 1.1 parser, as ${keyReading}; quote it`,
            'warning',
          );
        if (keys.has(key)) {
          at(
            DiagnosticCode.DuplicateKey,
            (pair.key as Node | null)?.range?.[0] ?? offset,
            `key ${key.slice(0, 80)} appears twice in this mapping; YAML parsers disagree on which value wins, so keep one`,
          );
        }
        keys.add(key);
        stack.push({ node: pair.value, depth: depth + 1 });
      }
    } else if (isSeq(n)) {
      for (const item of n.items) stack.push({ node: item, depth: depth + 1 });
    }
  }
}

function locateNode(doc: Document.Parsed, pointer: string, target: 'value' | 'key'): [number, number, number] | undefined {
  let node: unknown = doc.contents;
  let best: [number, number, number] | undefined = (node as Node | null)?.range ?? undefined;
  const segments =
    pointer === ''
      ? []
      : pointer
          .split('/')
          .slice(1)
          .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i]!;
    if (isAlias(node)) node = node.resolve(doc);
    const last = i === segments.length - 1;
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === seg);
      if (pair === undefined) return best;
      const key = pair.key as Node;
      const value = pair.value as Node | null;
      if (last && target === 'key') return key.range ?? best;
      // An absent child is reported at its parent's key: the line the author must edit.
      best = (last ? value?.range : key.range) ?? key.range ?? best;
      node = value;
    } else if (isSeq(node)) {
      const item = node.items[Number(seg)] as Node | undefined;
      if (item === undefined || !/^\d+$/.test(seg)) return best;
      best = item.range ?? best;
      node = item;
    } else {
      return best;
    }
  }
  return best;
}

function decodeUtf8(file: string, bytes: Uint8Array, diagnostics: Diagnostic[]): string | undefined {
  if ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff)) {
    diagnostics.push(fileDiagnostic(file, DiagnosticCode.InvalidEncoding, 'file is UTF-16; save it as UTF-8'));
    return undefined;
  }
  const start = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
  const body = bytes.subarray(start);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(body);
  } catch {
    const offset = firstInvalidUtf8(body);
    const prefix = new TextDecoder('utf-8').decode(body.subarray(0, offset));
    diagnostics.push({
      ...positioned(file, prefix),
      code: DiagnosticCode.InvalidEncoding,
      severity: 'error',
      pointer: '',
      message: `invalid UTF-8 at byte ${offset + start}; save the file as UTF-8`,
    });
    return undefined;
  }
  const nul = text.indexOf('\0');
  if (nul >= 0) {
    diagnostics.push({
      ...positioned(file, text.slice(0, nul)),
      code: DiagnosticCode.InvalidEncoding,
      severity: 'error',
      pointer: '',
      message: 'file contains NUL bytes; it is binary, not YAML',
    });
    return undefined;
  }
  return text;
}

function positioned(file: string, prefix: string): Pick<Diagnostic, 'file' | 'range'> {
  const lines = prefix.split('\n');
  const start = { line: lines.length, column: [...(lines[lines.length - 1] ?? '')].length + 1 };
  return { file, range: { start, end: start } };
}

function firstInvalidUtf8(b: Uint8Array): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i]!;
    const need = c < 0x80 ? 0 : c >= 0xc2 && c <= 0xdf ? 1 : c >= 0xe0 && c <= 0xef ? 2 : c >= 0xf0 && c <= 0xf4 ? 3 : -1;
    if (need < 0) return i;
    for (let k = 1; k <= need; k++) {
      const cc = b[i + k];
      if (cc === undefined || (cc & 0xc0) !== 0x80) return i;
    }
    // Overlong three-byte forms, surrogates and code points past U+10FFFF.
    const c1 = b[i + 1] ?? 0;
    if ((c === 0xe0 && c1 < 0xa0) || (c === 0xed && c1 > 0x9f) || (c === 0xf0 && c1 < 0x90) || (c === 0xf4 && c1 > 0x8f)) return i;
    i += need + 1;
  }
  return b.length;
}

/**
 * findExcessiveNesting over-approximates nesting lexically (flow brackets plus block indentation
 * levels, skipping quoted text, comments and block scalars) and returns the offset where it passes
 * limit, or undefined. It only guards the parser; the exact depth is checked on the parsed tree.
 */
export function findExcessiveNesting(text: string, limit: number): number | undefined {
  const indents: number[] = [];
  let flow = 0;
  let blockScalarIndent = -1;
  let lineStart = 0;
  while (lineStart < text.length) {
    let lineEnd = text.indexOf('\n', lineStart);
    if (lineEnd === -1) lineEnd = text.length;
    let i = lineStart;
    while (i < lineEnd && text[i] === ' ') i++;
    const indent = i - lineStart;
    const blank = i >= lineEnd || text[i] === '#' || text[i] === '\r';
    if (blockScalarIndent >= 0 && (blank || indent > blockScalarIndent)) {
      lineStart = lineEnd + 1;
      continue;
    }
    blockScalarIndent = -1;
    if (!blank) {
      if (flow === 0) {
        while (indents.length > 0 && indents[indents.length - 1]! >= indent) indents.pop();
        indents.push(indent);
        // '- - - x' nests a sequence per dash on one line.
        while (text[i] === '-' && text[i + 1] === ' ') {
          indents.push(indent + (i - lineStart) + 1);
          i += 2;
          while (text[i] === ' ') i++;
        }
      }
      if (indents.length + flow > limit) return i;
      let quote = '';
      for (; i < lineEnd; i++) {
        const c = text[i]!;
        if (quote !== '') {
          if (c === quote && !(quote === '"' && text[i - 1] === '\\')) quote = '';
        } else if (c === '"' || c === "'") {
          quote = c;
        } else if (c === '#' && (i === lineStart || text[i - 1] === ' ')) {
          break;
        } else if (c === '[' || c === '{') {
          flow++;
          if (indents.length + flow > limit) return i;
        } else if (c === ']' || c === '}') {
          flow = Math.max(0, flow - 1);
        }
      }
      if (flow === 0 && /[|>][-+0-9]*\s*(#.*)?$/.test(text.slice(lineStart, lineEnd).replace(/\r$/, ''))) blockScalarIndent = indent;
    }
    lineStart = lineEnd + 1;
  }
  return undefined;
}

// A node's range starts after its tag; find the tag's '!' on the same line.
function tagOffset(text: string, nodeStart: number): number {
  let k = text.lastIndexOf('!', nodeStart);
  if (k < 0 || text.slice(k, nodeStart).includes('\n')) return nodeStart;
  while (k > 0 && text[k - 1] === '!') k--;
  return k;
}

function keyAt(text: string, offset: number): string {
  return /^[^:\s]{1,80}/.exec(text.slice(offset))?.[0] ?? '(unknown)';
}

// `text: [Code] is your code` is a flow sequence followed by junk: the commonest mistake with these texts.
function bracketHint(text: string, offset: number): string {
  const lineStart = text.lastIndexOf('\n', offset - 1) + 1;
  const line = text.slice(lineStart, text.indexOf('\n', offset) === -1 ? undefined : text.indexOf('\n', offset));
  return /:\s+\[/.test(line) ? '; a value that starts with [ is a YAML list: quote texts that start with [Code]' : '';
}

function fileDiagnostic(file: string, code: DiagnosticCode, message: string): Diagnostic {
  return { file, code, severity: 'error', pointer: '', message, range: { start: { line: 1, column: 1 }, end: { line: 1, column: 1 } } };
}

/**
 * Messages of yaml's that name a piece of the source, with what is said instead (each pattern
 * matches the whole message). Those that end in ": <source>" are cut at the colon (see firstLine).
 */
const QUOTING_MESSAGES: [RegExp, string][] = [
  [/^Invalid escape sequence\b.*$/, 'Invalid escape sequence in a double-quoted string'],
  [/^Plain value cannot start with\b.*$/, 'A plain value cannot start with this character; quote the value'],
  [/^Unexpected (?!,|empty item )(.+?) in (flow map|flow sequence|flow collection|collection|block map|block sequence)$/, 'Unexpected token in $2'],
  [/^Unresolved plain scalar\b.*$/, 'Unresolved plain scalar'],
  [/^Unknown directive\b.*$/, 'Unknown directive'],
  [/^Unsupported YAML version\b.*$/, 'Unsupported YAML version'],
  [/^Anchors and tags must be after the .* indicator$/, 'Anchors and tags must be after the indicator'],
  [/^The .* tag has no suffix$|^Verbatim tags aren't resolved\b.*$/, 'Invalid tag'],
  [/^Ordered maps must not include duplicate keys\b.*$/, 'Ordered maps must not include duplicate keys'],
];

/**
 * firstLine is yaml's message without any of the source: the excerpt that follows its first line,
 * the text after a colon (some messages end with the offending token, which can be a Secret's
 * value: "Block scalar header includes extra characters: >s3cr3t"), and the token some messages
 * name in their middle.
 */
function firstLine(message: string): string {
  const line = (message.split('\n')[0] ?? message).replace(/ at line \d+, column \d+:?$/, '').trim();
  const colon = line.indexOf(': ');
  const head = colon === -1 ? line : line.slice(0, colon);
  if (head.startsWith('Block scalar header includes extra characters'))
    return 'A block scalar header (| or >) is followed by other characters; quote a value that starts with | or >';
  for (const [pattern, instead] of QUOTING_MESSAGES) if (pattern.test(head)) return head.replace(pattern, instead);
  return head;
}

/**
 * cachingParser returns a FileParser that parses a file again only when its bytes changed, and
 * hands out fresh copies of the document values (validation applies defaults in place). Files no
 * longer seen are forgotten by prune.
 */
export function cachingParser(): { parse: (path: string, bytes: Uint8Array, limits: LoaderLimits) => ParsedFile; prune(paths: ReadonlySet<string>): void } {
  const cache = new Map<string, { digest: string; parsed: ParsedFile }>();
  return {
    parse(path, bytes, limits) {
      const digest = createHash('sha256').update(bytes).digest('hex');
      let hit = cache.get(path);
      if (hit?.digest !== digest) cache.set(path, (hit = { digest, parsed: parseYamlFile(path, bytes, limits) }));
      return {
        documents: hit.parsed.documents.map((d) => ({ ...d, value: structuredClone(d.value) })),
        diagnostics: hit.parsed.diagnostics,
      };
    },
    prune(paths) {
      for (const p of cache.keys()) if (!paths.has(p)) cache.delete(p);
    },
  };
}
