import { createHash } from 'node:crypto';
import { relative } from 'node:path';
import type { Logger } from 'pino';
import { keepAside, readJsonFile, readYamlTree, writeFileAtomic, type TreeRead } from '../adapters/files.ts';
import { gitRevision } from '../adapters/git.ts';
import { canonicalJson, toGatewayBundle } from '../core/bundle.ts';
import { parseDuration } from '../core/duration.ts';
import { isSuspended } from '../core/suspend.ts';
import { diffDesired } from '../core/desired-diff.ts';
import { DiagnosticCode, type Diagnostic } from '../core/diagnostics.ts';
import { Generations } from '../core/generations.ts';
import { objectKey, objectRefOf } from '../core/object-key.ts';
import {
  Reconciler,
  type CredentialCheck,
  type DirectoryCheck,
  type Delta,
  type DesiredState,
  type InvalidVersion,
  type ReconcileState,
  type Ref,
} from '../core/reconciler.ts';
import { fromSnapshot, toSnapshot } from '../core/status-snapshot.ts';
import { cachingParser, DEFAULT_LIMITS } from '../load/yaml-documents.ts';
import type { SchemaValidator } from '../validate/schema-validator.ts';
import { desiredStateOf } from '../validate/desired-state.ts';
import { validateFiles, type ValidationResult } from '../validate/validate-files.ts';
import type { SecretManifest } from '../load/classify.ts';
import type { BundleRegistry } from '../verifier/bundle-registry.ts';
import { mergeSecretValues, secretKeysOf, type SecretValues } from './credentials.ts';
import { checkCredentials, isNewVerdict } from './credential-check.ts';
import { DIRECTORY_CHECK_INTERVAL_MS } from './directory-pool.ts';
import type { GatewayPool } from './gateway-pool.ts';

/** LocalRunOptions say what to watch and where state lives. */
export interface LocalRunOptions {
  dir: string;
  secretsDir?: string;
  /** The status snapshot kept across restarts (pins, generations, last valid versions). */
  snapshotPath: string;
  /** An extra copy of the snapshot for people and scripts (--status-file). */
  statusFile?: string;
  /** Apply a folder that renders no smsauth object at all (refused by default: a bad checkout). */
  allowEmpty: boolean;
  /** Secrets from the environment (SMSAUTH_SECRETS), read once. */
  envSecrets: SecretValues;
  maxFileBytes?: number;
}

/** Report is what one reload did, for the status output. */
export interface Report {
  revision: string;
  state: ReconcileState;
  delta: Delta;
  /** Problems with the files (errors and warnings), with positions. */
  diagnostics: Diagnostic[];
  /** Why the new content was not applied at all (an empty folder, an unreadable one), if so. */
  refused?: string;
  /** Stores whose bundle was swapped in the verifier. */
  swapped: string[];
  /** Where each object read this time is declared, with its document's text (empty when the reload was refused). */
  sources: ObjectSource[];
  /** Why the status snapshot (or its --status-file copy) could not be saved, when it could not: the reload is applied all the same. */
  statusNotWritten?: string;
  /** Why the status saved by an earlier run could not be used, on the first reload that found it so. */
  snapshotProblem?: string;
}

/**
 * ObjectSource is where an object is declared: its file, the line its document starts at, and the
 * document's lines (only its own: a Secret in the same file is not carried).
 */
export interface ObjectSource {
  kind: string;
  namespace: string;
  name: string;
  file: string;
  startLine: number;
  text: string;
}

/**
 * LocalRun keeps the verifier serving exactly what a folder declares: each reload reads the files
 * (parsing again only those whose bytes changed), validates, diffs against the previous content,
 * applies only the changes to the reconciler, and swaps in the verifier only the bundles that
 * changed, each in one assignment. Invalid objects keep their last valid version; a folder that
 * suddenly declares nothing is refused; the status snapshot is saved after every reload.
 */
export class LocalRun {
  private readonly parser = cachingParser();
  private reconciler: Reconciler | undefined;
  private generations = new Generations();
  /** Why the saved status could not be used, until a reload reports it. */
  private snapshotProblem: string | undefined;
  /** What each file declared when it last could be read whole (see keepUnreadable). */
  private readonly declaredByFile = new Map<string, Declared>();
  private lastDesired: DesiredState | undefined;
  private lastSecretsDigest = '';
  private reloading: Promise<Report> | undefined;
  private again = false;
  private lastValues: SecretValues = new Map();
  /** The last definitive credential check of each account that asks for one, and when each was last tried. */
  private readonly checks = new Map<string, CredentialCheck>();
  private readonly checkedAt = new Map<string, number>();
  /** The last directory check of each store with a directory, and when each was last tried (by namespace/name). */
  private readonly directoryChecks = new Map<string, DirectoryCheck>();
  private readonly directoryCheckedAt = new Map<string, number>();

  private readonly options: LocalRunOptions;
  private readonly deps: { validator: SchemaValidator; registry: BundleRegistry; pool: GatewayPool; log: Logger; now?: () => number };

  constructor(options: LocalRunOptions, deps: { validator: SchemaValidator; registry: BundleRegistry; pool: GatewayPool; log: Logger; now?: () => number }) {
    this.options = options;
    this.deps = deps;
  }

  /** reload reads and applies the folder; concurrent calls coalesce into one more run after the current one. */
  reload(): Promise<Report> {
    if (this.reloading !== undefined) {
      this.again = true;
      return this.reloading;
    }
    this.reloading = (async () => {
      let report: Report;
      do {
        this.again = false;
        report = await this.reloadOnce();
      } while (this.again);
      return report;
    })().finally(() => {
      this.reloading = undefined;
    });
    return this.reloading;
  }

  private async start(): Promise<Reconciler> {
    if (this.reconciler !== undefined) return this.reconciler;
    const path = this.options.snapshotPath;
    const read = await readJsonFile(path);
    const snapshot = read.ok ? fromSnapshot(read.value) : read;
    if (snapshot.ok) {
      this.generations = new Generations(snapshot.value.generations);
      this.reconciler = new Reconciler(snapshot.value);
    } else {
      if (read.ok || read.missing !== true) {
        // Said, and kept aside: what it held (the last valid versions of objects invalid now, the
        // pinned default accounts) is lost to this run, never silently.
        const kept = await keepAside(path);
        this.snapshotProblem = `the saved status ${path} cannot be used (${snapshot.error}); starting afresh: objects invalid now serve no earlier version, and default accounts are pinned again${kept !== undefined ? `; it is kept as ${kept}` : ''}`;
        this.deps.log.warn(
          { file: path, problem: snapshot.error, ...(kept !== undefined ? { keptAs: kept } : {}) },
          'the saved status cannot be used; starting afresh',
        );
      }
      this.reconciler = new Reconciler();
    }
    return this.reconciler;
  }

  /**
   * checkCredentialsDue asks the provider, for each account with spec.credentialCheck whose
   * interval has passed, whether its credentials are good (testCredentials). A definitive answer
   * that differs from the last one is applied through a reload (Ready then says so); a transient
   * failure changes nothing. It returns the reload's report when there was one.
   */
  async checkCredentialsDue(now = Date.now()): Promise<Report | undefined> {
    if (this.reconciler === undefined) return undefined;
    let changed = false;
    for (const obj of [...this.reconciler.liveObjects()]) {
      if (obj.kind !== 'SmsGatewayAccount' || obj.spec.credentialCheck === undefined) continue;
      const key = `${obj.metadata.namespace ?? 'default'}/${obj.metadata.name}`;
      const interval = parseDuration(obj.spec.credentialCheck.interval) ?? 3_600_000;
      if (now - (this.checkedAt.get(key) ?? 0) < interval) continue;
      this.checkedAt.set(key, now);
      const gateway = this.deps.pool.gateway(obj.metadata.namespace ?? 'default', toGatewayBundle(obj), this.lastValues);
      if (gateway === undefined) continue; // its credentials do not resolve: the status already says so
      const result = await checkCredentials(gateway, key, now, this.deps.log);
      if (result === undefined || !isNewVerdict(this.checks.get(key), result)) continue;
      this.checks.set(key, result);
      changed = true;
    }
    return changed ? this.reload() : undefined;
  }

  /** directoryAnswered tells whether a store's directory answered its last check (a static one always does). */
  directoryAnswered(namespace: string, store: string): boolean {
    if (this.deps.registry.get(namespace, store)?.bundle.directory?.kind === 'static') return true;
    return this.directoryChecks.get(`${namespace}/${store}`)?.ok === true;
  }

  /**
   * checkDirectoriesDue binds to and searches the base of each store's directory (static ones
   * excepted) that was not checked for DIRECTORY_CHECK_INTERVAL_MS, or whose bundle changed since.
   * A verdict that differs from the last one is applied through a reload (DirectoryConnected and
   * Ready say so). It returns the reload's report when there was one.
   */
  async checkDirectoriesDue(now = Date.now()): Promise<Report | undefined> {
    if (this.reconciler === undefined) return undefined;
    let changed = false;
    const due = [...this.reconciler.allBundles()].filter((b) => {
      const key = `${b.namespace}/${b.identityStore}`;
      return b.directory !== null && b.directory.kind !== 'static' && now - (this.directoryCheckedAt.get(key) ?? 0) >= DIRECTORY_CHECK_INTERVAL_MS;
    });
    await Promise.all(
      due.map(async (b) => {
        const key = `${b.namespace}/${b.identityStore}`;
        this.directoryCheckedAt.set(key, now);
        const directory = this.deps.registry.get(b.namespace, b.identityStore)?.directory;
        if (directory === undefined) return;
        const health = await directory.check();
        const result: DirectoryCheck = health.ok
          ? { ok: true, at: new Date(now).toISOString(), ...(health.server !== undefined ? { server: health.server } : {}) }
          : {
              ok: false,
              problem: health.problem,
              at: new Date(now).toISOString(),
              ...(health.server !== undefined ? { server: health.server } : {}),
              ...(health.code !== undefined ? { code: health.code } : {}),
            };
        if (!health.ok)
          this.deps.log.warn(
            { namespace: b.namespace, store: b.identityStore, problem: health.problem, server: health.server, code: health.code },
            'directory check failed',
          );
        const before = this.directoryChecks.get(key);
        // Only a change of verdict is news: the time of an unchanged one is not worth a status write.
        if (before?.ok !== result.ok || before.problem !== result.problem || before.code !== result.code || before.server !== result.server) {
          this.directoryChecks.set(key, result);
          changed = true;
        }
      }),
    );
    return changed ? this.reload() : undefined;
  }

  /**
   * reloadOnce is one reload, step by step: read and validate the folders, refuse what must not be
   * applied, reconcile the desired state, swap the changed bundles in the verifier, save the status.
   */
  private async reloadOnce(): Promise<Report> {
    const now = new Date((this.deps.now ?? Date.now)()).toISOString();
    const reconciler = await this.start();
    const said = this.snapshotProblem !== undefined ? { snapshotProblem: this.snapshotProblem } : {};
    this.snapshotProblem = undefined;
    const first = this.lastDesired === undefined;
    const sources = await this.readSources();
    const { revision, diagnostics } = sources;
    const refused = this.refusal(sources, reconciler);
    if (refused !== undefined) {
      const delta: Delta = { statuses: [], removedStatuses: [], bundles: [], removedBundles: [] };
      return { ...said, revision, state: reconciler.state(), delta, diagnostics, refused, swapped: [], sources: [] };
    }
    const { desired, values, kept } = this.desiredOf(sources, reconciler, first);
    const delta = first ? reconciler.replace(desired, now) : reconciler.apply(diffDesired(this.lastDesired, desired), now);
    this.lastDesired = desired;
    const state = reconciler.state();
    const swapped = this.applyBundles(state, delta, values, first);
    // Applied from here on, whether its status can be saved or not.
    const statusNotWritten = await this.writeStatus(state, revision);
    return {
      ...said,
      revision,
      state,
      delta,
      diagnostics: diagnostics.map((d) => resolvedToKept(d, kept)),
      swapped: swapped.sort(),
      sources: sourcesOf(sources),
      ...(statusNotWritten !== undefined ? { statusNotWritten } : {}),
    };
  }

  /** readSources reads and validates the folder and the Secrets folder (parsing again only changed files), and names the revision read. */
  private async readSources(): Promise<Sources> {
    const maxFileBytes = this.options.maxFileBytes ?? DEFAULT_LIMITS.maxFileBytes;
    const tree = await readYamlTree([this.options.dir], maxFileBytes);
    const secretsTree = this.options.secretsDir === undefined ? undefined : await readYamlTree([this.options.secretsDir], maxFileBytes);
    this.parser.prune(new Set([...tree.files, ...(secretsTree?.files ?? [])].map((f) => f.path)));
    const result = validateFiles(tree.files, this.deps.validator, { ...DEFAULT_LIMITS, maxFileBytes }, this.parser.parse);
    const secretResult =
      secretsTree === undefined ? undefined : validateFiles(secretsTree.files, this.deps.validator, { ...DEFAULT_LIMITS, maxFileBytes }, this.parser.parse);
    const diagnostics = [
      ...tree.ioErrors,
      ...tree.diagnostics,
      ...result.diagnostics,
      ...(secretsTree?.ioErrors ?? []),
      ...(secretsTree?.diagnostics ?? []),
      ...(secretResult?.diagnostics ?? []),
      ...emptyFiles([...tree.files, ...(secretsTree?.files ?? [])]),
    ].filter((d) => d.severity !== 'info');
    const revision = (await gitRevision(this.options.dir)) ?? contentRevision(tree.files, this.options.dir);
    return { tree, secretsTree, result, secretResult, diagnostics, revision };
  }

  /** refusal says why what was read must not be applied at all (an unreadable folder, a folder suddenly empty), or undefined. */
  private refusal({ tree, secretsTree, result }: Sources, reconciler: Reconciler): string | undefined {
    if (tree.ioErrors.length > 0) return `${this.options.dir} cannot be read; the last configuration stays live`;
    if (secretsTree !== undefined && secretsTree.ioErrors.length > 0) return `${this.options.secretsDir} cannot be read; the last configuration stays live`;
    // Compared with what serves (after a restart, the saved last valid versions), not with the last read.
    const declared = result.valid.length + result.rejected.length;
    if (declared === 0 && !this.options.allowEmpty && reconciler.liveCount() > 0) {
      return `${this.options.dir} declares no smsauth object any more (a bad checkout?); nothing was deleted. Start with --allow-empty to allow it`;
    }
    return undefined;
  }

  /**
   * desiredOf is the desired state of what was read, with the Secrets' values it resolves against:
   * the valid objects, the invalid versions, what unreadable files declared before, and the checks.
   */
  private desiredOf(
    { result, secretResult, diagnostics }: Sources,
    reconciler: Reconciler,
    first: boolean,
  ): { desired: DesiredState; values: SecretValues; kept: ReadonlySet<string> } {
    // A file that cannot be read (a YAML syntax error, say) takes nothing down: what it declared
    // when it last could be read stays, its objects as invalid versions, its Secrets as they were.
    // So does a file over the size limit (never read) and an empty one (a save in progress).
    const live = first ? [...reconciler.liveObjects()].map((o) => ({ kind: o.kind, namespace: o.metadata.namespace ?? 'default', name: o.metadata.name })) : [];
    const unread = diagnostics.filter((d) => d.code === DiagnosticCode.FileTooLarge || d.code === DiagnosticCode.FileEmpty);
    const kept = keepUnreadable([result, ...(secretResult !== undefined ? [secretResult] : [])], unread, this.declaredByFile, live);
    const values = mergeSecretValues(secretsOf(result), secretsOf(secretResult), secretsOf({ secrets: kept.secrets }), this.options.envSecrets);
    this.lastValues = values;
    const fresh = desiredStateOf(result, (kind, ns, name, object) => this.generations.generationOf(objectKey(kind, ns, name), object.spec));
    const invalid: InvalidVersion[] = kept.objects.map(({ ref, why }) => ({
      ref,
      generation: this.generations.generationOf(objectKey(ref.kind, ref.namespace, ref.name), { unreadable: why }),
      messages: [why],
    }));
    // A suspended object keeps the version that serves (saved across restarts), or is not served.
    const objects = fresh.objects.flatMap((o) => {
      if (!isSuspended(o)) return [o];
      const held = reconciler.liveObject(objectKey(o.kind, o.metadata.namespace ?? 'default', o.metadata.name));
      return held === undefined ? [] : [held];
    });
    const desired = {
      ...fresh,
      objects,
      invalid: [...fresh.invalid, ...invalid],
      secrets: secretKeysOf(values),
      credentialChecks: new Map(this.checks),
      directoryChecks: new Map(this.directoryChecks),
    };
    return { desired, values, kept: new Set(kept.objects.map(({ ref }) => objectKey(ref.kind, ref.namespace, ref.name))) };
  }

  /**
   * applyBundles brings the verifier up to the reconciled state and answers the keys of the bundles
   * it swapped: the changed ones (all of them on the first reload or when a Secret's values
   * changed) put, the removed ones taken out, and every gateway account put again.
   */
  private applyBundles(state: ReconcileState, delta: Delta, values: SecretValues, first: boolean): string[] {
    // A rotated Secret keeps its keys: the desired state does not see it, the gateways must.
    const secretsDigest = createHash('sha256')
      .update(canonicalJson([...values].map(([k, v]) => [k, [...v]])))
      .digest('hex');
    const refresh = new Set(first || secretsDigest !== this.lastSecretsDigest ? state.bundles.keys() : delta.bundles);
    // Changed Secret values are checked at once, not at the end of the interval: a fixed token
    // should not leave its account rejected for an hour.
    if (!first && secretsDigest !== this.lastSecretsDigest) {
      this.checkedAt.clear();
      this.directoryCheckedAt.clear();
    }
    this.lastSecretsDigest = secretsDigest;
    const swapped = [...this.putBundles(state, refresh, values), ...this.removeBundles(delta.removedBundles)];
    this.deps.pool.prune();
    this.putAccounts(state, values);
    this.deps.registry.markLoaded();
    return swapped;
  }

  /** putBundles swaps in the verifier each bundle named in keys that the state still has, and answers their keys. */
  private putBundles(state: ReconcileState, keys: ReadonlySet<string>, values: SecretValues): string[] {
    const swapped: string[] = [];
    for (const key of keys) {
      const bundle = state.bundles.get(key);
      if (bundle === undefined) continue;
      this.deps.registry.put(bundle.namespace, bundle.identityStore, this.deps.pool.resolve(bundle, values));
      // A new or changed directory is checked at once.
      this.directoryCheckedAt.delete(`${bundle.namespace}/${bundle.identityStore}`);
      swapped.push(key);
    }
    return swapped;
  }

  /** removeBundles takes removed bundles out of the verifier, with their gateways and directory checks, and answers their keys. */
  private removeBundles(keys: readonly string[]): string[] {
    for (const key of keys) {
      const [, ns, name] = key.split('/');
      this.deps.registry.put(ns!, name!, undefined);
      this.deps.pool.forget(ns!, name!);
      this.directoryChecks.delete(`${ns!}/${name!}`);
      this.directoryCheckedAt.delete(`${ns!}/${name!}`);
    }
    return [...keys];
  }

  /** putAccounts puts each gateway account of every bundle in the verifier, or takes it out when its credentials do not resolve. */
  private putAccounts(state: ReconcileState, values: SecretValues): void {
    for (const b of state.bundles.values()) {
      for (const gw of b.sms.gateways) {
        const gateway = this.deps.pool.gateway(b.namespace, gw, values);
        this.deps.registry.putAccount(
          b.namespace,
          gw.name,
          gateway === undefined ? undefined : { gateway, ...(gw.statusCallbackUrl !== undefined ? { statusCallbackUrl: gw.statusCallbackUrl } : {}) },
        );
      }
    }
  }

  /** writeStatus saves the status snapshot, and its extra copy when one is asked for; it says why one could not be written. */
  private async writeStatus(state: ReconcileState, revision: string): Promise<string | undefined> {
    const snapshot = JSON.stringify(toSnapshot(state, this.generations, revision), null, 2) + '\n';
    for (const file of [this.options.snapshotPath, ...(this.options.statusFile !== undefined ? [this.options.statusFile] : [])]) {
      try {
        await writeFileAtomic(file, snapshot);
      } catch (err) {
        return `${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`;
      }
    }
    return undefined;
  }
}

/** Sources is what one reload read and validated: the folder, the optional Secrets folder, their problems and the revision. */
interface Sources {
  tree: TreeRead;
  secretsTree: TreeRead | undefined;
  result: ValidationResult;
  secretResult: ValidationResult | undefined;
  /** Problems with the files, info ones left out. */
  diagnostics: Diagnostic[];
  revision: string;
}

/** What one file declared when it last could be read: its objects and its Secrets. */
interface Declared {
  refs: Ref[];
  secrets: SecretManifest[];
}

/**
 * resolvedToKept turns a reference to nothing into what it is when it names an object a file that
 * cannot be read now declared: that object keeps its last valid version, and the reference
 * resolves to it (the error was in the other file, not in this one).
 */
function resolvedToKept(d: Diagnostic, kept: ReadonlySet<string>): Diagnostic {
  if (d.code !== DiagnosticCode.ReferenceNotFound || d.refersTo === undefined || !kept.has(d.refersTo)) return d;
  const { kind, name } = objectRefOf(d.refersTo);
  return {
    ...d,
    code: DiagnosticCode.ReferenceInvalid,
    severity: 'info',
    message: `${kind} ${name} is declared in a file that cannot be read now; its last valid version serves, and this reference resolves to it`,
  };
}

/**
 * keepUnreadable finds the files with a document that could not be read (an error not about one
 * object: YAML syntax, a file too large or not UTF-8, a document without a kind) and returns what
 * they declared when they last could be read that no file declares now: objects, to keep as
 * invalid versions (their last valid versions keep serving), and Secrets, to keep as they were.
 * `fileProblems` are the problems of files never parsed (too large) or empty (being rewritten).
 * `declared` remembers, for the files read whole, what they declare. On the first reload of a
 * process nothing is remembered yet: while a file cannot be read then, every object of the saved
 * state (`live`) that no file declares is kept.
 */
function keepUnreadable(
  results: readonly ValidationResult[],
  fileProblems: readonly Diagnostic[],
  declared: Map<string, Declared>,
  live: readonly Ref[],
): { objects: { ref: Ref; why: string }[]; secrets: SecretManifest[] } {
  const now = new Map<string, Declared>();
  const entry = (file: string): Declared => {
    let d = now.get(file);
    if (d === undefined) now.set(file, (d = { refs: [], secrets: [] }));
    return d;
  };
  const unreadable = new Map<string, string>();
  // Empty files keep what they declared, but never adopt what no file declares (below): a
  // placeholder left empty must not keep objects deleted while the process was stopped.
  const empty = new Set<string>();
  for (const r of results) {
    for (const v of r.valid)
      entry(v.loaded.document.file).refs.push({ kind: v.object.kind, namespace: v.object.metadata.namespace ?? 'default', name: v.object.metadata.name });
    for (const j of r.rejected) entry(j.loaded.document.file).refs.push({ kind: j.loaded.kind, namespace: j.ref.namespace, name: j.ref.name });
    for (const s of r.secrets) entry(s.document.file).secrets.push(s);
  }
  for (const d of [...results.flatMap((r) => r.diagnostics), ...fileProblems]) {
    const unread = d.severity === 'error' || d.code === DiagnosticCode.FileEmpty;
    if (!unread || d.file === undefined || d.name !== undefined || unreadable.has(d.file)) continue;
    if (d.code === DiagnosticCode.FileEmpty) empty.add(d.file);
    const where = `${d.file}:${d.range?.start.line ?? 1}:${d.range?.start.column ?? 1}`;
    unreadable.set(
      d.file,
      d.code === DiagnosticCode.FileEmpty ? `${where}: ${d.message}` : `${where}: ${d.message} (the file could not be read; what it declared before stays)`,
    );
  }
  const declaredNow = new Set([...now.values()].flatMap((d) => d.refs.map((r) => objectKey(r.kind, r.namespace, r.name))));
  const secretsNow = new Set([...now.values()].flatMap((d) => d.secrets.map((s) => `${s.namespace}/${s.name}`)));
  const objects: { ref: Ref; why: string }[] = [];
  const secrets: SecretManifest[] = [];
  const kept = new Set<string>();
  const keep = (ref: Ref, why: string): boolean => {
    const key = objectKey(ref.kind, ref.namespace, ref.name);
    if (declaredNow.has(key) || kept.has(key)) return false;
    kept.add(key);
    objects.push({ ref, why });
    return true;
  };
  for (const [file, why] of unreadable) {
    const before = declared.get(file);
    for (const ref of before?.refs ?? []) keep(ref, why);
    for (const s of before?.secrets ?? []) if (!secretsNow.has(`${s.namespace}/${s.name}`)) secrets.push(s);
  }
  const [firstUnreadable] = [...unreadable].filter(([file]) => !empty.has(file));
  if (firstUnreadable !== undefined && live.length > 0) {
    // Nothing remembered yet (a fresh process): the saved state's objects that no file declares
    // stay, counted as the first unreadable file's until it can be read again.
    const [file, why] = firstUnreadable;
    const refs = live.filter((ref) => keep(ref, why));
    declared.set(file, { refs: [...(declared.get(file)?.refs ?? []), ...refs], secrets: declared.get(file)?.secrets ?? [] });
  }
  // Files read whole now declare what they declare; an unreadable one keeps its earlier entry.
  for (const [file, d] of now) if (!unreadable.has(file)) declared.set(file, d);
  for (const file of [...declared.keys()]) if (!now.has(file) && !unreadable.has(file)) declared.delete(file);
  return { objects, secrets };
}

/**
 * emptyFiles warns of the files that hold nothing but blanks: most often one being rewritten (a
 * shell's `>` empties it before the new content comes), so what it declared before stays; deleting
 * the file is how its objects are deleted.
 */
function emptyFiles(files: readonly { path: string; bytes: Uint8Array }[]): Diagnostic[] {
  return files
    .filter((f) => f.bytes.every((b) => b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09))
    .map((f) => ({
      file: f.path,
      code: DiagnosticCode.FileEmpty,
      severity: 'warning' as const,
      pointer: '',
      message: 'the file is empty (being rewritten?); what it declared before stays: delete the file to delete its objects',
    }));
}

function secretsOf(result: { secrets: readonly { namespace: string; name: string; data: ReadonlyMap<string, string> }[] } | undefined): SecretValues {
  return new Map((result?.secrets ?? []).map((s) => [`${s.namespace}/${s.name}`, s.data]));
}

function contentRevision(files: readonly { path: string; bytes: Uint8Array }[], dir: string): string {
  // Paths relative to the folder: the same content checked out elsewhere is the same revision.
  const h = createHash('sha256');
  const named = files.map((f) => ({ name: relative(dir, f.path), bytes: f.bytes })).sort((a, b) => a.name.localeCompare(b.name));
  for (const f of named) h.update(f.name).update('\0').update(f.bytes).update('\0');
  return `sha256:${h.digest('hex').slice(0, 16)}`;
}

/** sourcesOf says where each object read is declared, valid or not, with its document's lines. */
function sourcesOf({ tree, result }: Sources): ObjectSource[] {
  const lines = new Map<string, string[]>();
  const linesOf = (file: string): string[] => {
    let l = lines.get(file);
    if (l === undefined) {
      const bytes = tree.files.find((f) => f.path === file)?.bytes;
      lines.set(file, (l = bytes === undefined ? [] : Buffer.from(bytes).toString('utf8').split(/\r?\n/)));
    }
    return l;
  };
  const out: ObjectSource[] = [];
  const add = (kind: string, namespace: string, name: string, doc: { file: string; range: { start: { line: number }; end: { line: number } } }): void => {
    const { start, end } = doc.range;
    out.push({
      kind,
      namespace,
      name,
      file: doc.file,
      startLine: start.line,
      text: linesOf(doc.file)
        .slice(start.line - 1, end.line)
        .join('\n'),
    });
  };
  for (const v of result.valid) add(v.object.kind, v.object.metadata.namespace ?? 'default', v.object.metadata.name, v.loaded.document);
  for (const r of result.rejected) add(r.ref.kind, r.ref.namespace, r.ref.name, r.loaded.document);
  return out;
}
