import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ROOT } from './helpers/fixtures.ts';

// The structure docs/architecture.md describes: imports between the folders of controller/ run
// one way (no cycle), and the core does no I/O.

const CONTROLLER = join(ROOT, 'controller');

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

/** imports lists a file's import specifiers, static and dynamic, type-only ones included. */
function imports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/(?:from\s+|import\s*\(\s*)'([^']+)'/g)].map((m) => m[1]!);
}

const folderOf = (file: string): string => relative(CONTROLLER, dirname(file)).split('/')[0]!;

const structure = suite('the structure');

structure('imports between the folders of controller/ form no cycle', () => {
  const edges = new Map<string, Set<string>>();
  for (const file of files(CONTROLLER)) {
    for (const spec of imports(file).filter((s) => s.startsWith('.'))) {
      const from = folderOf(file);
      const to = folderOf(resolve(dirname(file), spec));
      if (from !== to) edges.set(from, (edges.get(from) ?? new Set()).add(to));
    }
  }
  assert.ok(edges.size > 5, 'the graph was read');
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (node: string, path: string[]): void => {
    if (state.get(node) === 'done') return;
    if (state.get(node) === 'visiting') assert.unreachable(`a cycle between folders: ${[...path, node].join(' → ')}`);
    state.set(node, 'visiting');
    for (const next of edges.get(node) ?? []) visit(next, [...path, node]);
    state.set(node, 'done');
  };
  for (const node of edges.keys()) visit(node, []);
});

structure('the core does no I/O and imports only itself and the generated types', () => {
  const io =
    /^(node:(fs|fs\/promises|net|http|https|child_process|worker_threads|dgram|tls)|ioredis|better-sqlite3|ldapts|plivo|twilio|undici|chokidar|@kubernetes\/client-node|pino)$/;
  for (const file of files(join(CONTROLLER, 'core'))) {
    for (const spec of imports(file)) {
      if (spec.startsWith('.')) assert.ok(['core', 'generated'].includes(folderOf(resolve(dirname(file), spec))), `${relative(ROOT, file)} imports ${spec}`);
      else assert.not.ok(io.test(spec), `${relative(ROOT, file)} imports ${spec}, which does I/O`);
    }
  }
});

structure('the verifier decides domain outcomes and knows nothing of HTTP: one table at the edge maps them', () => {
  for (const spec of imports(join(CONTROLLER, 'verifier', 'verifier.ts'))) assert.not.match(spec, /http/, spec);
  assert.not.match(readFileSync(join(CONTROLLER, 'verifier', 'verifier.ts'), 'utf8'), /\bstatus: (2|4|5)\d\d\b/, 'no HTTP status in the domain');
});

structure.run();
