// Renders Helm charts in tests without a helm binary: test/helm/render.go (Go's
// text/template + sprig + sigs.k8s.io/yaml, the engines Helm itself uses) is
// built once into a cache directory and run per render.
import { spawn } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { access, constants, mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { AnySchema, ErrorObject, ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { parseAllDocuments } from 'yaml';
import type { DocumentOptions, ParseOptions, SchemaOptions, ToJSOptions } from 'yaml';

/** Options of {@link renderChart}, named after the `helm template` flags they stand for. */
export interface RenderOptions {
  /** Values merged over the chart's values.yaml like a `-f` file (a null deletes a key). */
  values?: object;
  /** Release name (`helm template NAME`); default "release-name". */
  releaseName?: string;
  /** Release namespace (`--namespace`); default "default". */
  namespace?: string;
  /** Kubernetes version for `.Capabilities.KubeVersion` (`--kube-version`); default v1.32.0. */
  kubeVersion?: string;
  /** API versions added to `.Capabilities.APIVersions` (`--api-versions`). */
  apiVersions?: string[];
  /** Put the files of crds/ first, verbatim (`--include-crds`). */
  includeCrds?: boolean;
  /** Do not check the values against values.schema.json (`--skip-schema-validation`). */
  skipSchemaValidation?: boolean;
}

/** One YAML document of the rendered output and the chart file it came from. */
export interface RenderedManifest {
  /** Path inside the chart, e.g. "templates/deployment.yaml" or "crds/widgets.yaml". */
  template: string;
  object: Record<string, unknown>;
}

/** One values.schema.json violation, located by a JSON pointer into the values. */
export interface ValuesError {
  /** JSON pointer of the offending value ("" is the root); for a missing or extra property, the property itself. */
  pointer: string;
  message: string;
  keyword: string;
  schemaPath: string;
}

/** Where and how {@link buildRenderer} builds the Go program. */
export interface BuildOptions {
  /** Directory for the built binary; default `<os.tmpdir()>/helm-render-cache`. */
  cacheDir?: string;
  /** The go command; default "go" from PATH. */
  go?: string;
}

/** The Debian packages that render.go needs (Go toolchain and the libraries, in GOPATH layout). */
export const GO_DEBIAN_PACKAGES: readonly string[] = [
  'golang-go',
  'golang-github-masterminds-sprig-dev',
  'golang-k8s-sigs-yaml-dev',
  'golang-github-burntsushi-toml-dev',
];

const DEBIAN_GOPATH = '/usr/share/gocode';
const INSTALL_HINT = `apt-get install -y ${GO_DEBIAN_PACKAGES.join(' ')}`;

// Helm's releaseutil.InstallOrder: helm template prints manifests in this kind order.
const INSTALL_ORDER = [
  'PriorityClass',
  'Namespace',
  'NetworkPolicy',
  'ResourceQuota',
  'LimitRange',
  'PodSecurityPolicy',
  'PodDisruptionBudget',
  'ServiceAccount',
  'Secret',
  'SecretList',
  'ConfigMap',
  'StorageClass',
  'PersistentVolume',
  'PersistentVolumeClaim',
  'CustomResourceDefinition',
  'ClusterRole',
  'ClusterRoleList',
  'ClusterRoleBinding',
  'ClusterRoleBindingList',
  'Role',
  'RoleList',
  'RoleBinding',
  'RoleBindingList',
  'Service',
  'DaemonSet',
  'Pod',
  'ReplicationController',
  'ReplicaSet',
  'Deployment',
  'HorizontalPodAutoscaler',
  'StatefulSet',
  'Job',
  'CronJob',
  'IngressClass',
  'Ingress',
  'APIService',
];

interface GoOutput {
  manifests: { template: string; content: string }[];
  notes: string | null;
  values: Record<string, unknown>;
  warnings: string[];
}

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

const builds = new Map<string, Promise<string>>();

/** Builds test/helm/render.go once per process into a cache keyed by its source hash, and returns the binary's path. */
export function buildRenderer(opts: BuildOptions = {}): Promise<string> {
  const goCommand = opts.go ?? 'go';
  const cacheDir = resolve(opts.cacheDir ?? join(tmpdir(), 'helm-render-cache'));
  const key = `${goCommand}\0${cacheDir}`;
  let build = builds.get(key);
  if (build === undefined) {
    build = buildBinary(goCommand, cacheDir);
    builds.set(key, build);
    // A failed build is not remembered, so a later call can try again.
    build.catch(() => builds.delete(key));
  }
  return build;
}

async function buildBinary(goCommand: string, cacheDir: string): Promise<string> {
  const source = fileURLToPath(new URL('./render.go', import.meta.url));
  const hash = createHash('sha256')
    .update(await readFile(source))
    .update(`${process.platform}-${process.arch}`)
    .digest('hex')
    .slice(0, 16);
  const binary = join(cacheDir, `render-${hash}`);
  if (await isExecutable(binary)) return binary;

  await mkdir(cacheDir, { recursive: true });
  // Build to a unique name and rename, so concurrent test processes never see a partial binary.
  const partial = `${binary}.${process.pid}.${randomUUID()}.tmp`;
  const env: NodeJS.ProcessEnv = { ...process.env, GO111MODULE: 'off', GOPATH: DEBIAN_GOPATH, GOFLAGS: '' };
  if (env.GOCACHE === undefined && env.XDG_CACHE_HOME === undefined && env.HOME === undefined) {
    env.GOCACHE = join(cacheDir, 'go-build');
  }
  let result: RunResult;
  try {
    result = await run(goCommand, ['build', '-o', partial, 'render.go'], { cwd: dirname(source), env });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new Error(`cannot build the Helm renderer: the Go toolchain ("${goCommand}") was not found. ` + `Install Debian's packages: ${INSTALL_HINT}`, {
        cause: err,
      });
    }
    throw err;
  }
  if (result.code !== 0) {
    await rm(partial, { force: true });
    const missingLibrary = /cannot find package/.test(result.stderr);
    throw new Error(
      `cannot build the Helm renderer (go build exited ${String(result.code)})` +
        (missingLibrary ? `: Go libraries are missing; install Debian's packages: ${INSTALL_HINT}` : '') +
        `\n${result.stderr.trim()}`,
    );
  }
  await rename(partial, binary);
  await pruneOldBinaries(cacheDir, binary);
  return binary;
}

// Binaries built from earlier versions of render.go are removed, best effort.
async function pruneOldBinaries(cacheDir: string, keep: string): Promise<void> {
  for (const name of await readdir(cacheDir)) {
    const file = join(cacheDir, name);
    if (/^render-[0-9a-f]{16}$/.test(name) && file !== keep) await rm(file, { force: true }).catch(() => undefined);
  }
}

/** Renders a chart directory like `helm template` and returns its documents, parsed, in Helm's output order. */
export async function renderChart(chartDir: string, opts: RenderOptions = {}): Promise<RenderedManifest[]> {
  const binary = await buildRenderer();
  const dir = resolve(chartDir);
  const args = ['--name', opts.releaseName ?? 'release-name', '--namespace', opts.namespace ?? 'default'];
  if (opts.kubeVersion !== undefined) args.push('--kube-version', opts.kubeVersion);
  for (const api of opts.apiVersions ?? []) args.push('--api-versions', api);
  if (opts.includeCrds === true) args.push('--include-crds');
  const input = opts.values === undefined ? undefined : JSON.stringify(opts.values);
  if (input !== undefined) args.push('--values-json', '-');
  args.push('--', dir);

  const result = await run(binary, args, input === undefined ? {} : { input });
  const validator = opts.skipSchemaValidation === true ? undefined : await loadValidator(dir);
  if (result.code !== 0) {
    // Helm checks the schema before it renders: a schema error wins over a template error.
    if (validator !== undefined) {
      const errors = validateAgainst(validator, await coalescedValues(dir, opts.values));
      if (errors.length > 0) throw schemaFailure(dir, errors);
    }
    throw new Error(result.stderr.trim().replace(/^Error: /, '') || `render exited ${String(result.code)}`);
  }
  const output = JSON.parse(result.stdout) as GoOutput;
  if (validator !== undefined) {
    const errors = validateAgainst(validator, output.values);
    if (errors.length > 0) throw schemaFailure(dir, errors);
  }
  return sortLikeHelm(output.manifests.flatMap((m) => parseManifest(m.template, m.content)));
}

/** Validates values, coalesced with the chart's values.yaml as Helm does, against its values.schema.json (none: no errors). */
export async function validateValues(chartDir: string, values: object = {}): Promise<ValuesError[]> {
  const dir = resolve(chartDir);
  const validator = await loadValidator(dir);
  if (validator === undefined) return [];
  return validateAgainst(validator, await coalescedValues(dir, values));
}

async function coalescedValues(dir: string, values: object | undefined): Promise<unknown> {
  const binary = await buildRenderer();
  const args = ['--show-values'];
  const input = values === undefined ? undefined : JSON.stringify(values);
  if (input !== undefined) args.push('--values-json', '-');
  args.push('--', dir);
  const result = await run(binary, args, input === undefined ? {} : { input });
  if (result.code !== 0) throw new Error(result.stderr.trim().replace(/^Error: /, ''));
  return (JSON.parse(result.stdout) as GoOutput).values;
}

const validators = new Map<string, ValidateFunction>();

/** Compiles the chart's values.schema.json (cached by its text), or undefined when the chart has none. */
async function loadValidator(dir: string): Promise<ValidateFunction | undefined> {
  const file = join(dir, 'values.schema.json');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const cached = validators.get(text);
  if (cached !== undefined) return cached;
  let schema: AnySchema;
  try {
    schema = JSON.parse(text) as AnySchema;
  } catch (err) {
    throw new Error(`${file}: ${(err as Error).message}`, { cause: err });
  }
  const declared = typeof schema === 'object' && typeof schema.$schema === 'string' ? schema.$schema : '';
  // values.schema.json is draft-07 by convention; newer drafts get ajv's matching class.
  const options = { allErrors: true, strict: false } as const;
  const ajv = declared.includes('2020-12') ? new Ajv2020(options) : declared.includes('2019-09') ? new Ajv2019(options) : new Ajv(options);
  addFormatsModule.default(ajv);
  const validate = ajv.compile(schema);
  validators.set(text, validate);
  return validate;
}

function validateAgainst(validate: ValidateFunction, values: unknown): ValuesError[] {
  if (validate(values)) return [];
  return (validate.errors ?? []).map(toValuesError);
}

function toValuesError(error: ErrorObject): ValuesError {
  let pointer = error.instancePath;
  const params = error.params as Record<string, unknown>;
  const property =
    error.keyword === 'required' ? params['missingProperty'] : error.keyword === 'additionalProperties' ? params['additionalProperty'] : undefined;
  if (typeof property === 'string') pointer += `/${property.replace(/~/g, '~0').replace(/\//g, '~1')}`;
  const message = error.keyword === 'additionalProperties' ? 'must NOT be present (additionalProperties)' : (error.message ?? error.keyword);
  return { pointer, message, keyword: error.keyword, schemaPath: error.schemaPath };
}

function schemaFailure(dir: string, errors: ValuesError[]): Error {
  const lines = errors.map((e) => `- ${e.pointer === '' ? '(root)' : e.pointer}: ${e.message}`);
  return new Error(`values don't meet the specifications of the schema in ${join(dir, 'values.schema.json')}:\n${lines.join('\n')}`);
}

// Kubernetes (and Helm, through sigs.k8s.io/yaml) reads manifests as YAML 1.1
// with go-yaml v2: yes/no/on/off are booleans and 0644 is octal, but timestamps
// stay strings and there are no base-60 numbers.
const YAML_OPTIONS: ParseOptions & DocumentOptions & SchemaOptions = {
  version: '1.1',
  customTags: (tags) => tags.filter((tag) => typeof tag !== 'object' || (tag.tag !== 'tag:yaml.org,2002:timestamp' && tag.format !== 'TIME')),
};
const TO_JS: ToJSOptions = { maxAliasCount: 1000 };

function parseManifest(template: string, content: string): RenderedManifest[] {
  const manifests: RenderedManifest[] = [];
  for (const doc of parseAllDocuments(content, YAML_OPTIONS)) {
    const [error] = doc.errors;
    if (error !== undefined) throw new Error(`YAML parse error on ${template}: ${error.message}`);
    const value: unknown = doc.toJS(TO_JS);
    // Empty and comment-only documents are dropped, as Helm does.
    if (value === null || value === undefined) continue;
    if (typeof value !== 'object' || Array.isArray(value)) {
      throw new Error(`YAML parse error on ${template}: a manifest must be a mapping, got ${JSON.stringify(value)}`);
    }
    manifests.push({ template, object: value as Record<string, unknown> });
  }
  return manifests;
}

function isHook(object: Record<string, unknown>): boolean {
  const metadata = object['metadata'];
  if (typeof metadata !== 'object' || metadata === null) return false;
  const annotations = (metadata as Record<string, unknown>)['annotations'];
  return typeof annotations === 'object' && annotations !== null && 'helm.sh/hook' in annotations;
}

// helm template prints CRDs (with --include-crds), then the manifests sorted by
// kind (known kinds in install order, then unknown kinds alphabetically, the
// file order kept otherwise), then the hooks, sorted the same way.
function sortLikeHelm(manifests: RenderedManifest[]): RenderedManifest[] {
  const crds = manifests.filter((m) => m.template.startsWith('crds/'));
  const rest = manifests.filter((m) => !m.template.startsWith('crds/'));
  const byKind = (a: RenderedManifest, b: RenderedManifest): number => {
    const ka = typeof a.object['kind'] === 'string' ? a.object['kind'] : '';
    const kb = typeof b.object['kind'] === 'string' ? b.object['kind'] : '';
    const ia = INSTALL_ORDER.indexOf(ka);
    const ib = INSTALL_ORDER.indexOf(kb);
    if (ia >= 0 && ib >= 0) return ia - ib;
    if (ia >= 0) return -1;
    if (ib >= 0) return 1;
    return ka < kb ? -1 : ka > kb ? 1 : 0;
  };
  // Array.prototype.sort is stable, which keeps the file order within a kind.
  const generic = rest.filter((m) => !isHook(m.object)).sort(byKind);
  const hooks = rest.filter((m) => isHook(m.object)).sort(byKind);
  return [...crds, ...generic, ...hooks];
}

async function isExecutable(file: string): Promise<boolean> {
  try {
    await access(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function run(command: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string }): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: 'pipe' });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.on('error', reject);
    child.on('close', (code) =>
      resolvePromise({
        code,
        stdout: Buffer.concat(stdout).toString('utf8'),
        stderr: Buffer.concat(stderr).toString('utf8'),
      }),
    );
    // The renderer may exit before reading stdin (e.g. on a bad chart); ignore EPIPE.
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
  });
}
