// The Dockerfile, checked without a Docker engine: parsed and compared with the CLI, the chart and
// package.json; then the runtime stage's file layout is assembled from its COPY instructions (and
// .dockerignore) and run: the CLI from dist/, and the sidecar with the chart's args and probes.
import { spawn } from 'node:child_process';
import { builtinModules } from 'node:module';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, posix, relative } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { parse } from 'yaml';
import { readYamlTree } from '../controller/adapters/files.ts';
import { CONTROLLER_USAGE } from '../controller/cli/controller-command.ts';
import { main } from '../controller/cli/main.ts';
import { SIDECAR_USAGE } from '../controller/cli/sidecar-command.ts';
import { WEBHOOK_USAGE } from '../controller/cli/webhook-command.ts';
import { reconcile } from '../controller/core/reconciler.ts';
import { bundleSecretData } from '../controller/runtime/bundle-secret.ts';
import { DEFAULT_LIMITS } from '../controller/load/yaml-documents.ts';
import { freshCodeKeys } from '../controller/runtime/code-keys.ts';
import { desiredStateOf } from '../controller/validate/desired-state.ts';
import { validateFiles } from '../controller/validate/validate-files.ts';
import { ROOT, schemaValidator } from './helpers/fixtures.ts';
import { writeSecretVolume } from './helpers/secret-volume.ts';
import { Signal, waitUntil } from './helpers/wait.ts';
import { renderChart } from './helm/renderer.ts';

type Json = Record<string, any>;

const read = (path: string): string => readFileSync(join(ROOT, path), 'utf8');
const pkg = (): Json => JSON.parse(read('package.json')) as Json;

interface Instruction {
  keyword: string;
  /** The arguments after the keyword and its --flags. */
  args: string;
  flags: Record<string, string>;
  /** The exec (JSON array) form, when used. */
  json?: string[];
  line: number;
}

interface Stage {
  name: string | undefined;
  base: string;
  instructions: Instruction[];
}

/** parseDockerfile splits a Dockerfile into stages of instructions (comments, continuations and global ARGs resolved). */
function parseDockerfile(text: string): { globalArgs: Record<string, string>; stages: Stage[] } {
  const globalArgs: Record<string, string> = {};
  const stages: Stage[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const start = i + 1;
    let line = lines[i]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    while (line.endsWith('\\')) {
      line = line.slice(0, -1);
      i++;
      const next = (lines[i] ?? '').trim();
      if (!next.startsWith('#')) line += ` ${next}`;
    }
    const m = /^(\w+)\s+([\s\S]*)$/.exec(line);
    assert.ok(m !== null, `line ${start}: ${line}`);
    const keyword = m[1]!.toUpperCase();
    let rest = m[2]!.trim();
    const flags: Record<string, string> = {};
    for (let f = /^--([\w-]+)=(\S+)\s+/.exec(rest); f !== null; f = /^--([\w-]+)=(\S+)\s+/.exec(rest)) {
      flags[f[1]!] = f[2]!;
      rest = rest.slice(f[0].length);
    }
    const instruction: Instruction = { keyword, args: rest, flags, line: start, ...(rest.startsWith('[') ? { json: JSON.parse(rest) as string[] } : {}) };
    if (keyword === 'FROM') {
      const from = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(rest);
      assert.ok(from !== null, `line ${start}: FROM ${rest}`);
      const base = from[1]!.replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a?: string, b?: string) => globalArgs[a ?? b!] ?? '');
      stages.push({ name: from[2], base, instructions: [] });
    } else if (stages.length === 0) {
      assert.is(keyword, 'ARG', `line ${start}: only ARG may come before FROM`);
      const [name, value] = rest.split('=');
      globalArgs[name!] = value ?? '';
    } else {
      stages.at(-1)!.instructions.push(instruction);
    }
  }
  return { globalArgs, stages };
}

const dockerfile = (): { globalArgs: Record<string, string>; stages: Stage[] } => parseDockerfile(read('Dockerfile'));
const runtimeStage = (): Stage => dockerfile().stages.at(-1)!;
const stageNamed = (name: string): Stage => {
  const stage = dockerfile().stages.find((s) => s.name === name);
  assert.ok(stage !== undefined, `a stage named ${name}`);
  return stage;
};
const of = (stage: Stage, keyword: string): Instruction[] => stage.instructions.filter((i) => i.keyword === keyword);

/** copySources lists a COPY's sources and destination (exec or shell form). */
function copyParts(i: Instruction): { sources: string[]; dest: string } {
  const parts = i.json ?? i.args.split(/\s+/);
  return { sources: parts.slice(0, -1), dest: parts.at(-1)! };
}

/**
 * copyTarget is where a COPY puts a source, relative to the image's final WORKDIR, as Docker does:
 * a directory's contents go into the destination; a file goes into a destination that ends with a
 * slash (or is "."), else becomes it.
 */
function copyTarget(stage: Stage, i: Instruction, source: string, isDirectory: boolean): string {
  const { dest } = copyParts(i);
  const at = posix.resolve(workdirAt(stage, i), dest);
  const into = isDirectory || !(dest.endsWith('/') || dest === '.') ? at : posix.join(at, posix.basename(source));
  return posix.relative(workdirAt(stage), into);
}

const isContextDirectory = (source: string): boolean => statSync(join(ROOT, source)).isDirectory();

/** workdirAt is the WORKDIR in force at an instruction of a stage (at its end without one), inherited from the stage it is built FROM. */
function workdirAt(stage: Stage, i?: Instruction): string {
  const parent = dockerfile().stages.find((s) => s.name === stage.base);
  let dir = parent === undefined ? '/' : workdirAt(parent);
  for (const x of stage.instructions) {
    if (x === i) break;
    if (x.keyword === 'WORKDIR') dir = posix.resolve(dir, x.args);
  }
  return dir;
}

/** ancestry lists a stage and the stages it is built FROM, nearest first. */
function ancestry(stages: Stage[], stage: Stage): Stage[] {
  const parent = stages.find((s) => s.name === stage.base);
  return parent === undefined ? [stage] : [stage, ...ancestry(stages, parent)];
}

// ---------------------------------------------------------------------------

const stages = suite('Dockerfile stages');

stages('is multi-stage: named stages, the runtime last, on the Node version package.json asks for', () => {
  const { stages: all } = dockerfile();
  assert.ok(all.length >= 3, `${all.length} stages`);
  for (const s of all) assert.type(s.name, 'string', `every stage is named (${s.base})`);
  const runtime = all.at(-1)!;
  const image = /^node:(\d+)-/.exec(runtime.base)?.[1];
  const engines = /^>=(\d+)$/.exec(pkg().engines.node)?.[1];
  assert.ok(image !== undefined && Number(image) >= 24, `${runtime.base}: a maintained Node.js LTS (24 or newer)`);
  assert.is(image, engines, 'the image runs the Node.js major that package.json "engines" names');
  assert.is(Number(image) % 2, 0, 'an even major: a Node.js LTS line');
  assert.not.ok(
    all.some((s) => s.name === runtime.base),
    'the runtime starts from the plain Node image, not from a stage with compilers or dev dependencies',
  );
});

stages('the tests, npm start and npm test run on the Node.js that engines names: the one npm ci installs in node_modules/.bin', () => {
  const engines = Number(/^>=(\d+)$/.exec(pkg().engines.node)![1]);
  assert.ok(Number(process.versions.node.split('.')[0]) >= engines, `this test runs on Node.js ${process.version}`);
  assert.is(Number(String(pkg().devDependencies.node).split('.')[0]), engines, 'the node dev dependency is the engines major');
  assert.match(
    pkg().scripts.start,
    /^exec node bin\/smsauth\.js /,
    "npm start runs node from the scripts' PATH (node_modules/.bin first), and execs it so that signals reach it",
  );
});

stages('the build stage installs every dependency and runs npm run build (tsc to dist/)', () => {
  const build = stageNamed('build');
  const runs = of(build, 'RUN').map((i) => i.args);
  const ci = runs.findIndex((r) => /\bnpm ci\b/.test(r));
  const compile = runs.findIndex((r) => /\bnpm run build\b/.test(r));
  assert.ok(ci >= 0 && compile > ci, runs.join(' | '));
  assert.not.match(runs[ci]!, /--omit=dev|--production/, 'tsc is a dev dependency');
  assert.match(pkg().scripts.build, /^tsc -p tsconfig\.build\.json$/);
  const buildConfig = JSON.parse(read('tsconfig.build.json')) as Json;
  const copied = of(build, 'COPY').flatMap((i) => copyParts(i).sources);
  for (const needed of ['tsconfig.json', 'tsconfig.build.json', ...(buildConfig.include as string[]).map((g) => g.split('/')[0]!)]) {
    assert.ok(copied.includes(needed), `the build stage copies ${needed}`);
  }
  assert.is((JSON.parse(read('tsconfig.json')) as Json).compilerOptions.outDir, 'dist');
});

stages('production dependencies come from a stage that omits dev dependencies and runs install scripts', () => {
  const { stages: all } = dockerfile();
  const runtime = all.at(-1)!;
  const modules = of(runtime, 'COPY').filter((i) => copyParts(i).sources.some((s) => /node_modules/.test(s)));
  assert.is(modules.length, 1, 'node_modules is copied once');
  const from = all.find((s) => s.name === modules[0]!.flags.from);
  assert.ok(from !== undefined, 'node_modules comes from a stage');
  const installs = ancestry(all, from)
    .flatMap((s) => of(s, 'RUN'))
    .filter((i) => /\bnpm (ci|install|i)\b/.test(i.args));
  assert.is(installs.length, 1, installs.map((i) => i.args).join(' | '));
  assert.match(installs[0]!.args, /\bnpm ci\b[^&|;]*--omit=dev/);
  assert.match(installs[0]!.args, /--ignore-scripts/, 'no install script runs in the image build');
  const lock = JSON.parse(read('package-lock.json')) as Json;
  const scripted = Object.entries(lock.packages as Record<string, Json>)
    .filter(([, p]) => p.hasInstallScript === true && p.dev !== true)
    .map(([name]) => name);
  assert.equal(scripted, [], 'no production dependency needs an install script (better-sqlite3 ships its binaries in its package)');
  assert.not.ok(
    ancestry(all, from)
      .flatMap((s) => of(s, 'COPY'))
      .some((i) => /node_modules/.test(i.args)),
    'nothing else brings node_modules into that stage',
  );
  assert.ok(pkg().dependencies['better-sqlite3'] !== undefined);
});

stages.run();

// ---------------------------------------------------------------------------

const runtime = suite('Dockerfile runtime stage');

runtime('runs as a non-root numeric user: the one the chart runs pods as', () => {
  const users = of(runtimeStage(), 'USER');
  assert.ok(users.length > 0, 'a USER instruction');
  const user = users.at(-1)!.args;
  const m = /^(\d+)(?::(\d+))?$/.exec(user);
  assert.ok(m !== null, `USER ${user} is numeric, so that the kubelet can check runAsNonRoot`);
  assert.ok(Number(m[1]) > 0 && Number(m[2] ?? 1) > 0, `USER ${user} is not root`);
  const values = parse(read('charts/smsauth/values.yaml')) as Json;
  for (const sc of [values.controller.securityContext, values.sidecar.securityContext]) {
    assert.equal([sc.runAsUser, sc.runAsGroup], [Number(m[1]), Number(m[2] ?? m[1])]);
  }
});

runtime('installs nothing and compiles nothing: no dev dependencies, no toolchain', () => {
  const stage = runtimeStage();
  for (const i of of(stage, 'RUN'))
    assert.not.match(i.args, /\bnpm (ci|install|i|run)\b|\byarn\b|\bpnpm\b|apt-get install|\bg\+\+|\bmake\b/, `line ${i.line}: ${i.args}`);
  for (const i of of(stage, 'COPY')) assert.not.equal(copyParts(i).sources, ['.'], `line ${i.line}: the whole context`);
  const fromBuild = of(stage, 'COPY')
    .filter((i) => i.flags.from === 'build')
    .flatMap((i) => copyParts(i).sources);
  assert.equal(fromBuild, ['/src/dist'], 'only the compiled output comes from the build stage');
});

runtime('the entrypoint is the smsauth CLI, which knows controller and sidecar', async () => {
  const entrypoint = of(runtimeStage(), 'ENTRYPOINT').at(-1);
  assert.ok(entrypoint?.json !== undefined, 'ENTRYPOINT in exec form (signals reach node)');
  assert.equal(entrypoint.json, ['node', pkg().bin.smsauth]);
  assert.ok(existsSync(join(ROOT, 'bin', 'smsauth.js')));
  for (const [command, usage] of [
    ['controller', CONTROLLER_USAGE],
    ['sidecar', SIDECAR_USAGE],
  ] as const) {
    let out = '';
    const code = await main([command, '--help'], { stdout: (t) => (out += t), stderr: (t) => (out += t), isTTY: false });
    assert.is(code, 0);
    assert.is(out, usage);
  }
});

runtime("EXPOSE lists the CLI's ports (its defaults, and the sidecar's probe port it suggests), which are the ports of the chart", async () => {
  const exposed = of(runtimeStage(), 'EXPOSE')
    .flatMap((i) => i.args.split(/\s+/))
    .map((p) => Number(p.replace(/\/tcp$/, '')))
    .sort();
  const cli = [
    /--metrics-bind-address ADDR\s+default :(\d+)/.exec(CONTROLLER_USAGE)?.[1],
    /--health-probe-bind-address ADDR\s+[^\n]*default :(\d+)/.exec(CONTROLLER_USAGE)?.[1],
    /--port N\s+default (\d+)/.exec(SIDECAR_USAGE)?.[1],
    /--health-probe-bind-address ADDR[^-]*such as :(\d+)/.exec(SIDECAR_USAGE)?.[1],
    /--bind-address ADDR\s+default :(\d+)/.exec(WEBHOOK_USAGE)?.[1],
  ]
    .map(Number)
    .sort();
  assert.equal(exposed, cli);
  assert.equal(exposed, [8080, 8081, 8787, 8788, 9443]);
  const controller = (await renderChart(join(ROOT, 'charts', 'smsauth'))).find((m) => m.object['kind'] === 'Deployment')!.object as Json;
  const sidecar = (parse(read('examples/app/deployment.yaml')) as Json).spec.template.spec.initContainers[0];
  const chartPorts = [...controller.spec.template.spec.containers.flatMap((c: Json) => c.ports), ...sidecar.ports]
    .map((p: Json) => p.containerPort as number)
    .sort();
  assert.equal(chartPorts, exposed);
});

runtime('copies what the runtime needs (package.json "files", package.json itself) and not the sources', () => {
  const stage = runtimeStage();
  const workdir = workdirAt(stage);
  const copied = of(stage, 'COPY').map((i) => {
    const { sources } = copyParts(i);
    assert.is(sources.length, 1, `line ${i.line}: one source per COPY`);
    const source = sources[0]!;
    const from = i.flags.from;
    return { source, dest: copyTarget(stage, i, source, from !== undefined || isContextDirectory(source)), from };
  });
  const fromContext = copied.filter((c) => c.from === undefined);
  for (const c of fromContext) assert.is(c.dest, c.source, `${c.source} keeps its path under ${workdir}`);
  const destinations = copied.map((c) => c.dest);
  for (const file of [...(pkg().files as string[]), 'package.json', 'node_modules']) assert.ok(destinations.includes(file), `${file} is copied`);
  for (const needed of ['bin', 'dist', 'schemas', 'docs/openapi.yaml']) assert.ok(destinations.includes(needed), needed);
  assert.not.ok(
    destinations.some((d) => d === 'controller' || d.startsWith('controller/') || d === '.'),
    'no TypeScript sources: bin/smsauth.js then runs dist/',
  );
  assert.match(read('bin/smsauth.js'), "'../controller/cli/main.ts'");
  assert.match(read('bin/smsauth.js'), "'../dist/controller/cli/main.js'");
});

runtime('what the runtime imports is production dependencies and Node built-ins only', () => {
  const deps = new Set(Object.keys(pkg().dependencies as Json));
  const builtins = new Set(builtinModules);
  const seen = new Set<string>();
  const packages = new Set<string>();
  const visit = (file: string): void => {
    if (seen.has(file)) return;
    seen.add(file);
    const source = readFileSync(file, 'utf8');
    for (const m of source.matchAll(/(?:^import\s(?!type\s)[^;]*?from\s|^export\s(?!type\s)[^;]*?from\s|\bimport\()\s*'([^']+)'/gm)) {
      const spec = m[1]!;
      if (spec.startsWith('.')) visit(join(dirname(file), spec.replace(/\.js$/, '.ts')));
      else if (!spec.startsWith('node:') && !builtins.has(spec))
        packages.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);
    }
  };
  visit(join(ROOT, 'controller', 'cli', 'main.ts'));
  assert.ok(seen.size > 50, `${seen.size} modules reached`);
  for (const p of packages) assert.ok(deps.has(p), `${p} is imported at runtime but is not a production dependency`);
  assert.ok(packages.has('better-sqlite3') && packages.has('@kubernetes/client-node'));
});

runtime.run();

// ---------------------------------------------------------------------------

/** dockerignore answers whether a context path (relative, slash-separated) is sent to the builder, as Docker's patternmatcher does. */
function dockerignore(text: string): (path: string) => boolean {
  const rules = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const exception = l.startsWith('!');
      const pattern = posix.normalize((exception ? l.slice(1) : l).trim()).replace(/^\/+|\/+$/g, '');
      const source = pattern
        .split('')
        .map((ch) => ('.+^${}()|[]\\'.includes(ch) ? `\\${ch}` : ch))
        .join('')
        .replace(/\*\*\//g, '\uE000')
        .replace(/\*\*/g, '.*')
        .replace(/\*/g, '[^/]*')
        .replace(/\?/g, '[^/]')
        .replace(/\uE000/g, '(?:.*/)?');
      return { exception, re: new RegExp(`^${source}$`) };
    });
  return (path) => {
    const parts = path.split('/');
    const prefixes = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
    let excluded = false;
    for (const rule of rules) if (prefixes.some((p) => rule.re.test(p))) excluded = !rule.exception;
    return !excluded;
  };
}

function filesUnder(path: string): string[] {
  const full = join(ROOT, path);
  if (!statSync(full).isDirectory()) return [path];
  return (readdirSync(full, { recursive: true }) as string[])
    .filter((f) => statSync(join(full, f)).isFile())
    .map((f) => posix.join(path, f.split('\\').join('/')));
}

const context = suite('.dockerignore');

context('sends every file the Dockerfile copies from the context', () => {
  const included = dockerignore(read('.dockerignore'));
  const sources = dockerfile().stages.flatMap((s) =>
    of(s, 'COPY')
      .filter((i) => i.flags.from === undefined)
      .flatMap((i) => copyParts(i).sources),
  );
  assert.ok(sources.length >= 8);
  for (const source of sources) {
    assert.ok(existsSync(join(ROOT, source)), `${source} exists`);
    for (const file of filesUnder(source)) assert.ok(included(file), `${file} reaches the builder`);
  }
});

context('keeps out dependencies, build output, state, secrets and what the image does not need', () => {
  const included = dockerignore(read('.dockerignore'));
  for (const path of [
    'node_modules/yaml/package.json',
    'dist/controller/cli/main.js',
    '.git/HEAD',
    '.smsauth/state.sqlite',
    'test/helm-chart.test.ts',
    'examples/secrets/plivo-credentials.yaml',
    'controller/x.sqlite',
    'Dockerfile',
    'docs/operations.md',
    'charts/smsauth/values.yaml',
  ]) {
    assert.not.ok(included(path), path);
  }
  // The matcher itself: a later exception re-includes, a later exclusion wins again.
  const m = dockerignore('*\n!a/\na/b.txt\n');
  assert.equal([m('a/x'), m('a/b.txt'), m('c')], [true, false, false]);
});

context.run();

// ---------------------------------------------------------------------------

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

function run(
  command: string,
  args: string[],
  opts: { cwd: string; env?: NodeJS.ProcessEnv },
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const layout = suite('the runtime image layout, assembled and run');

let image = '';
const imageEnv: NodeJS.ProcessEnv = {};
let assembled: Promise<string> | undefined;

/** assembleImage builds the runtime stage's file tree once (uvu would hide a failing before hook). */
function assembleImage(): Promise<string> {
  assembled ??= assemble();
  return assembled;
}

async function assemble(): Promise<string> {
  image = mkdtempSync(join(tmpdir(), 'smsauth-image-'));
  const { stages: all } = dockerfile();
  const stage = all.at(-1)!;
  const included = dockerignore(read('.dockerignore'));
  for (const i of of(stage, 'ENV')) {
    const [name, value] = i.args.split('=');
    imageEnv[name!] = value!;
  }
  for (const i of of(stage, 'COPY')) {
    const source = copyParts(i).sources[0]!;
    const directory = i.flags.from !== undefined || isContextDirectory(source);
    const target = join(image, copyTarget(stage, i, source, directory));
    if (i.flags.from === undefined) {
      for (const file of filesUnder(source).filter(included)) {
        const to = directory ? join(target, relative(source, file)) : target;
        mkdirSync(dirname(to), { recursive: true });
        cpSync(join(ROOT, file), to);
      }
    } else if (i.flags.from === 'build') {
      // `npm run build` in the build stage, whose WORKDIR holds the sources: tsc with the same config.
      const from = all.find((s) => s.name === 'build')!;
      assert.is(source, posix.join(workdirAt(from), 'dist'));
      const tsc = await run(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json', '--outDir', target], {
        cwd: ROOT,
      });
      assert.is(tsc.code, 0, tsc.stdout + tsc.stderr);
    } else {
      // The production node_modules: this checkout's (it has the dev dependencies too; the import check above covers that).
      assert.match(source, /\/node_modules$/);
      symlinkSync(join(ROOT, 'node_modules'), target, 'dir');
    }
  }
  return image;
}

layout.after(() => {
  if (image !== '') rmSync(image, { recursive: true, force: true });
});

layout('has the package files and no TypeScript sources', async () => {
  await assembleImage();
  for (const path of ['package.json', 'bin/smsauth.js', 'dist/controller/cli/main.js', 'schemas', 'docs/openapi.yaml', 'charts/smsauth/files/crds'])
    assert.ok(existsSync(join(image, path)), path);
  assert.not.ok(existsSync(join(image, 'controller')));
  assert.not.ok(existsSync(join(image, 'test')));
});

layout('the entrypoint runs the compiled CLI: version, controller --help', async () => {
  await assembleImage();
  const entry = of(runtimeStage(), 'ENTRYPOINT').at(-1)!.json!;
  const version = await run(process.execPath, [...entry.slice(1), 'version'], { cwd: image, env: imageEnv });
  assert.is(version.code, 0, version.stderr);
  assert.is(version.stdout, `smsauth ${String(pkg().version)}\n`);
  const help = await run(process.execPath, [...entry.slice(1), 'controller', '--help'], { cwd: image, env: imageEnv });
  assert.is(help.stdout, CONTROLLER_USAGE);
});

layout("the sidecar serves with the example's args, and its HTTP probes pass", async () => {
  await assembleImage();
  const example = parse(read('examples/app/deployment.yaml')) as Json;
  const pod = example.spec.template.spec;
  const container = pod.initContainers.find((c: Json) => c.name === 'smsauth');
  const store = /\/v1\/([^/]+)\/([^/]+)$/.exec(pod.containers[0].env.find((e: Json) => e.name === 'SMSAUTH_URL').value)!;
  // The volumes, as the kubelet mounts them: the bundle the controller would publish for the store, fresh code keys.
  const mounts = join(image, 'mnt');
  const bundleDir = join(mounts, 'bundle');
  const keysDir = join(mounts, 'keys');
  const tree = await readYamlTree([join(ROOT, 'examples')], DEFAULT_LIMITS.maxFileBytes);
  const state = reconcile(desiredStateOf(validateFiles(tree.files, await schemaValidator())), undefined, new Date().toISOString());
  const bundles = [...state.bundles.values()].filter((b) => b.namespace === store[1] && b.identityStore === store[2]);
  assert.is(bundles.length, 1);
  writeSecretVolume(bundleDir, bundleSecretData(bundles, new Map()).data);
  writeSecretVolume(keysDir, freshCodeKeys());
  const port = await freePort();
  const probePort = await freePort();
  const original = container.args as string[];
  const args = original.map((a) =>
    a.startsWith('--bundle-dir=')
      ? `--bundle-dir=${bundleDir}`
      : a.startsWith('--code-keys-dir=')
        ? `--code-keys-dir=${keysDir}`
        : a.startsWith('--port=')
          ? `--port=${port}`
          : a.startsWith('--health-probe-bind-address=')
            ? `--health-probe-bind-address=127.0.0.1:${probePort}`
            : a,
  );
  // What the kubelet does: GET the path on the named port of the container; 200-399 passes.
  const probe = async (name: string, at = probePort): Promise<number> => {
    const get = container[name].httpGet as { path: string; port: string };
    const named = (container.ports as Json[]).find((p) => p.name === get.port);
    assert.ok(named !== undefined, `${name} names a port of the container`);
    assert.ok(original.includes(`--health-probe-bind-address=:${String(named.containerPort)}`), `${name}'s port is where the probes listen`);
    try {
      const res = await fetch(`http://127.0.0.1:${at}${get.path}`);
      return res.status >= 200 && res.status < 400 ? 0 : 1;
    } catch {
      return 1;
    }
  };
  const entry = of(runtimeStage(), 'ENTRYPOINT').at(-1)!.json!;
  const child = spawn(process.execPath, [...entry.slice(1), ...args], { cwd: image, env: { ...process.env, ...imageEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const output = new Signal();
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
    output.fire();
  });
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  child.once('exit', () => output.fire());
  try {
    await waitUntil(
      'the serving line',
      () => {
        assert.ok(child.exitCode === null, `the sidecar exited: ${stderr}`);
        return stdout.includes('"event":"serving"');
      },
      () => output.next(),
      15_000,
    );
    assert.match(stdout, `"stores":["${store[1]!}/${store[2]!}"]`);
    assert.is(await probe('startupProbe'), 0);
    assert.is(await probe('livenessProbe'), 0);
    assert.is(await probe('readinessProbe'), 0);
    assert.is(await probe('readinessProbe', await freePort()), 1, 'a probe fails when nothing answers');
  } finally {
    child.kill('SIGTERM');
    assert.is(await exited, 0, stderr);
  }
});

layout.run();
