import { findCondition, isReady } from '../core/conditions.ts';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { readJsonFile, writeFileAtomic } from '../adapters/files.ts';
import type { Bundle } from '../core/bundle.ts';
import { maskNumber, normalizeNumber } from '../core/phone.ts';
import { countBySeverity } from '../core/diagnostics.ts';
import { Generations } from '../core/generations.ts';
import { KINDS } from '../core/kinds.ts';
import { objectKey } from '../core/object-key.ts';
import { reconcile, type AnyStatus, type DirectoryCheck, type ReconcileState } from '../core/reconciler.ts';
import { fromSnapshot, toSnapshot, type SnapshotRead } from '../core/status-snapshot.ts';
import type { SuspendedVersion } from '../core/suspend.ts';
import { desiredStateOf } from '../validate/desired-state.ts';
import { pino } from 'pino';
import { mergeSecretValues, secretKeysOf, secretsFromEnv, type SecretValues } from '../runtime/credentials.ts';
import { DirectoryPool } from '../runtime/directory-pool.ts';
import { UsageError, type CliIo } from './cli-io.ts';
import { requireFolder, requireOutputFile } from './startup.ts';
import { formatDiagnostics } from './output-formats.ts';
import { formatTable } from './table.ts';
import { loadTree, outputOption } from './validate-command.ts';

/** PLAN_USAGE is the help text of `smsauth plan`. */
export const PLAN_USAGE = `Usage: smsauth plan --dir DIR [options]

Loads, validates and reconciles a folder once, and prints each object's conditions and each
identity store's bundle (secret values are never read; credentials show as references).

Options:
      --dir DIR              the folder of resources (required)
  -o, --output FORMAT        table (default), json or yaml; --format is the same option
      --previous FILE        start from an earlier status (written by --write-status), so that
                             pinned default accounts and generations carry over
      --write-status FILE    save the new status there
      --secrets-dir DIR      Kubernetes Secret manifests kept out of the folder
      --check-directories    bind to each store's directory and search its base, so that
                             DirectoryConnected (and Ready) say whether it works; otherwise it
                             reads DirectoryNotChecked. Secrets come from the folder,
                             --secrets-dir and SMSAUTH_SECRETS; they are used, never printed.

Exit status: 0 when every object is Ready, 1 when anything is not, 2 on usage or I/O errors.
`;

const OUTPUTS = ['table', 'json', 'yaml'] as const;

/** runPlan is `smsauth plan`; it returns the exit status. */
export async function runPlan(argv: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      dir: { type: 'string' },
      output: { type: 'string', short: 'o' },
      format: { type: 'string' },
      previous: { type: 'string' },
      'write-status': { type: 'string' },
      'secrets-dir': { type: 'string' },
      'check-directories': { type: 'boolean', default: false },
    },
  });
  if (values.dir === undefined) throw new UsageError('--dir is required');
  const output = outputOption(values.output, values.format, 'table');
  if (!(OUTPUTS as readonly string[]).includes(output)) throw new UsageError(`unknown output format ${output}; use one of ${OUTPUTS.join(', ')}`);
  const env = secretsFromEnv(process.env);
  if (!env.ok) throw new UsageError(env.error);
  if (values['secrets-dir'] !== undefined) await requireFolder('--secrets-dir', values['secrets-dir']);
  const writeStatus = values['write-status'] === undefined ? undefined : await requireOutputFile('--write-status', values['write-status']);

  let previous: SnapshotRead | undefined;
  if (values.previous !== undefined) {
    const read = await readJsonFile(values.previous);
    const snapshot = read.ok ? fromSnapshot(read.value) : read;
    // Not there yet: nothing was applied before. Expected on the first run of `--previous F
    // --write-status F`; otherwise likely a typo, which would silently drop pinned defaults.
    const missing = !read.ok && read.missing === true;
    if (!snapshot.ok && !missing) {
      io.stderr(`smsauth plan: --previous ${values.previous}: ${snapshot.error}\n`);
      return 2;
    }
    if (missing) {
      const firstRun = values['write-status'] !== undefined && resolve(values['write-status']) === resolve(values.previous);
      io.stderr(
        firstRun
          ? `smsauth plan: note: --previous ${values.previous} does not exist yet (a first run): starting with no earlier status\n`
          : `smsauth plan: warning: --previous ${values.previous} does not exist: starting with no earlier status, so pinned default accounts and generations start afresh; check the path\n`,
      );
    }
    if (snapshot.ok) previous = snapshot.value;
  }

  const { result, ioErrors } = await loadTree([values.dir]);
  const secretsTree = values['secrets-dir'] === undefined ? undefined : await loadTree([values['secrets-dir']]);
  if (secretsTree !== undefined) {
    ioErrors.push(...secretsTree.ioErrors);
    result.secrets = [...result.secrets, ...secretsTree.result.secrets];
    result.diagnostics.push(...secretsTree.result.diagnostics.filter((d) => d.severity === 'error'));
  }
  if (ioErrors.length > 0) {
    io.stderr(formatDiagnostics('text', ioErrors, { files: 0, objects: 0, secrets: 0 }, ''));
    return 2;
  }
  const problems = result.diagnostics.filter((d) => d.severity !== 'info');
  if (problems.length > 0)
    io.stderr(problems.map((d) => `${d.file}:${d.range?.start.line ?? 1}:${d.range?.start.column ?? 1}: ${d.severity} ${d.code} ${d.message}\n`).join(''));

  const generations = new Generations(previous?.generations);
  const fresh = desiredStateOf(result, (kind, ns, name, object) => generations.generationOf(objectKey(kind, ns, name), object.spec));
  const secretValues = mergeSecretValues(new Map(result.secrets.map((s) => [`${s.namespace}/${s.name}`, s.data])), env.value);
  const desired = { ...fresh, secrets: secretKeysOf(secretValues) };
  let state = reconcile(desired, previous, new Date().toISOString());
  if (values['check-directories']) {
    const directoryChecks = await checkDirectories(state, secretValues);
    state = reconcile({ ...desired, directoryChecks }, previous, new Date().toISOString());
  }
  const secretKeys = desired.secrets;

  if (writeStatus !== undefined) {
    try {
      await writeFileAtomic(writeStatus, JSON.stringify(toSnapshot(state, generations), null, 2) + '\n');
    } catch (err) {
      io.stderr(
        `smsauth plan: --write-status ${values['write-status']}: cannot be written (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})\n`,
      );
      return 2;
    }
  }

  const view = planView(state, secretKeys);
  if (output === 'json') io.stdout(JSON.stringify(view, null, 2) + '\n');
  else if (output === 'yaml') io.stdout(stringify(view, { lineWidth: 0 }));
  else io.stdout(planTable(state));
  for (const p of state.problems) io.stderr(`error: ${p.message}\n`);

  const allReady = [...state.statuses.values()].every((e) => isReady(e.status.conditions));
  return allReady && state.problems.length === 0 && countBySeverity(result.diagnostics).error === 0 ? 0 : 1;
}

/** checkDirectories binds to each store's directory (static ones excepted) once, and says what each answered. */
async function checkDirectories(state: ReconcileState, values: SecretValues): Promise<Map<string, DirectoryCheck>> {
  const { createDirectory } = await import('../directories/create-directory.ts');
  const pool = new DirectoryPool(createDirectory, pino({ level: 'silent' }));
  const out = new Map<string, DirectoryCheck>();
  try {
    await Promise.all(
      [...state.bundles.values()].map(async (b) => {
        if (b.directory === null || b.directory.kind === 'static') return;
        const health = await pool.directory(b.namespace, b.identityStore, b.directory, values).check();
        const at = new Date().toISOString();
        out.set(
          `${b.namespace}/${b.identityStore}`,
          health.ok
            ? { ok: true, at, ...(health.server !== undefined ? { server: health.server } : {}) }
            : {
                ok: false,
                problem: health.problem,
                at,
                ...(health.server !== undefined ? { server: health.server } : {}),
                ...(health.code !== undefined ? { code: health.code } : {}),
              },
        );
      }),
    );
  } finally {
    await pool.close();
  }
  return out;
}

/** planView is the JSON/YAML shape of a plan: objects with their status, bundles with credentials as references. */
export function planView(state: ReconcileState, secretKeys: ReadonlyMap<string, readonly string[]>): Record<string, unknown> {
  return {
    objects: orderedEntries(state).map(([, e]) => ({ kind: e.ref.kind, namespace: e.ref.namespace, name: e.ref.name, status: maskedStatus(e.status) })),
    bundles: [...state.bundles.values()].map((b) => redactBundle(b, secretKeys)),
    problems: state.problems.map((p) => p.message),
  };
}

/** redactBundle shows a bundle with each credential as its Secret reference and whether it resolves (values are never shown), and numbers masked. */
export function redactBundle(bundle: Bundle, secretKeys: ReadonlyMap<string, readonly string[]>): Record<string, unknown> {
  const resolved = (name: string, key: string): boolean => secretKeys.get(`${bundle.namespace}/${name}`)?.includes(key) ?? false;
  // A static directory's numbers are shown masked, as everywhere numbers are printed.
  const directory =
    bundle.directory?.kind === 'static'
      ? { ...bundle.directory, users: bundle.directory.users.map((u) => ({ ...u, mobile: u.mobile === null ? null : maskedNumber(u.mobile) })) }
      : bundle.directory;
  return {
    ...bundle,
    directory,
    sms: {
      ...bundle.sms,
      gateways: bundle.sms.gateways.map((g) => ({
        ...g,
        credentials: Object.fromEntries(
          Object.entries(g.credentials).map(([field, ref]) => [field, { secretRef: ref, value: '<redacted>', resolved: resolved(ref.name, ref.key) }]),
        ),
      })),
    },
  };
}

/** maskedNumber is a number as printed: masked, whichever way it is written. */
function maskedNumber(number: string): string {
  const n = normalizeNumber(number, null);
  return n.ok ? maskNumber(n.value.e164) : '+•••';
}

/** maskedStatus masks the numbers in the versions a status copies (status.liveVersion, status.suspended). */
function maskedStatus(status: AnyStatus): AnyStatus {
  const masked: Record<string, unknown> = { ...status };
  for (const field of ['liveVersion', 'suspended']) {
    const version = masked[field] as SuspendedVersion | undefined;
    if (version !== undefined) masked[field] = { ...version, spec: maskedSpec(version.spec) };
  }
  return masked;
}

/** maskedSpec masks a static directory's numbers in a store's spec. */
function maskedSpec(spec: Record<string, unknown>): Record<string, unknown> {
  const directory = spec['directory'] as { static?: { users: { mobile?: string }[] } } | undefined;
  if (directory?.static === undefined) return spec;
  const users = directory.static.users.map((u) => (u.mobile === undefined ? u : { ...u, mobile: maskedNumber(u.mobile) }));
  return { ...spec, directory: { ...directory, static: { ...directory.static, users } } };
}

function orderedEntries(state: ReconcileState): [string, ReturnType<ReconcileState['statuses']['get']> & object][] {
  const order = (kind: string): number => KINDS.findIndex((k) => k.kind === kind);
  return [...state.statuses.entries()].sort(
    ([, a], [, b]) => order(a.ref.kind) - order(b.ref.kind) || a.ref.namespace.localeCompare(b.ref.namespace) || a.ref.name.localeCompare(b.ref.name),
  );
}

function planTable(state: ReconcileState): string {
  const rows = orderedEntries(state).map(([, e]) => {
    const ready = findCondition(e.status.conditions, 'Ready');
    return [e.ref.kind, e.ref.namespace, e.ref.name, ready?.status ?? 'Unknown', ready?.reason ?? '', ready?.message ?? ''];
  });
  const bundles = [...state.bundles.values()].map((b) => [
    b.namespace,
    b.identityStore,
    String(b.generation),
    b.sms.offered ? 'offered' : `not offered (${b.sms.reason})`,
    b.sms.gateways.map((g) => g.name).join(' → ') || '-',
    b.roles.map((r) => `${r.name}(${r.priority})`).join(', ') || '-',
    b.hash.slice(0, 12),
  ]);
  return (
    formatTable(['KIND', 'NAMESPACE', 'NAME', 'READY', 'REASON', 'MESSAGE'], rows) +
    '\n' +
    formatTable(['NAMESPACE', 'IDENTITY STORE', 'GENERATION', 'SMS', 'GATEWAYS', 'ROLES', 'BUNDLE'], bundles)
  );
}
