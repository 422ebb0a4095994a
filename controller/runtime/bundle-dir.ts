import type { Logger } from 'pino';
import { readDirectoryFiles } from '../adapters/files.ts';
import { parseBundleFile, type BundleFile } from './bundle-secret.ts';
import type { BundleRegistry } from '../verifier/bundle-registry.ts';
import type { SecretValues } from './credentials.ts';
import { contentHash, directoryCredentialRefs } from '../core/bundle.ts';
import type { GatewayPool } from './gateway-pool.ts';

/** BundleDirReport says what a read of the bundle folder did. */
export interface BundleDirReport {
  loaded: string[];
  removed: string[];
  /** Files that could not be used, with why; their stores keep their last good bundle. */
  kept: { file: string; error: string }[];
}

/**
 * BundleDir serves the bundles of a mounted folder (the smsauth-bundle Secret): one JSON file per
 * identity store. A file that cannot be used (truncated, edited, unreadable) leaves its store on
 * its last good bundle; a file that disappears stops serving its store; the verifier is ready once
 * one store is served.
 */
export class BundleDir {
  private readonly hashes = new Map<string, string>();

  private readonly dir: string;
  private readonly deps: { registry: BundleRegistry; pool: GatewayPool; log: Logger };

  constructor(dir: string, deps: { registry: BundleRegistry; pool: GatewayPool; log: Logger }) {
    this.dir = dir;
    this.deps = deps;
  }

  /** sync reads the folder and swaps what changed. */
  async sync(): Promise<BundleDirReport> {
    const report: BundleDirReport = { loaded: [], removed: [], kept: [] };
    const read = await readDirectoryFiles(this.dir);
    if (read.error !== undefined) {
      report.kept.push({ file: this.dir, error: read.error });
      return report;
    }
    const seen = new Set<string>();
    for (const [name, text] of read.files) {
      if (!name.endsWith('.json')) continue;
      const parsed = parseBundleFile(text);
      if (!parsed.ok) {
        report.kept.push({ file: name, error: parsed.error });
        const store = name.slice(0, -'.json'.length);
        for (const key of this.hashes.keys()) if (key.endsWith(`/${store}`)) seen.add(key);
        continue;
      }
      const { bundle } = parsed.value;
      const key = `${bundle.namespace}/${bundle.identityStore}`;
      seen.add(key);
      const values = valuesOf(parsed.value);
      const digest = resolutionDigestOf(parsed.value);
      if (this.hashes.get(key) === digest) continue;
      this.deps.registry.put(bundle.namespace, bundle.identityStore, this.deps.pool.resolve(bundle, values));
      for (const gw of bundle.sms.gateways) {
        const gateway = this.deps.pool.gateway(bundle.namespace, gw, values);
        this.deps.registry.putAccount(
          bundle.namespace,
          gw.name,
          gateway === undefined ? undefined : { gateway, ...(gw.statusCallbackUrl !== undefined ? { statusCallbackUrl: gw.statusCallbackUrl } : {}) },
        );
      }
      this.hashes.set(key, digest);
      report.loaded.push(key);
    }
    for (const key of [...this.hashes.keys()]) {
      if (seen.has(key)) continue;
      const [ns, store] = key.split('/') as [string, string];
      this.deps.registry.put(ns, store, undefined);
      this.deps.pool.forget(ns, store);
      this.hashes.delete(key);
      report.removed.push(key);
    }
    this.deps.pool.prune();
    if (this.hashes.size > 0) this.deps.registry.markLoaded();
    for (const k of report.kept) this.deps.log.warn({ file: k.file, error: k.error }, 'bundle file not used; the last good bundle keeps serving');
    return report;
  }
}

/**
 * resolutionDigestOf is a digest of everything a file's store is resolved from: the bundle (by its
 * hash) and every other field of the file, each Secret value it carries, so that a rotated value
 * alone is taken up (a field added to the file is covered with no change here); as a digest, not
 * the values themselves.
 */
function resolutionDigestOf(file: BundleFile): string {
  return contentHash({ ...file, bundle: file.bundle.hash });
}

// The file carries credentials by account and setting; the pool reads Secret values by reference.
function valuesOf(file: BundleFile): SecretValues {
  const values = new Map<string, Map<string, string>>();
  const put = (ref: { name: string; key: string } | undefined, value: string | undefined): void => {
    if (ref === undefined || value === undefined) return;
    const k = `${file.bundle.namespace}/${ref.name}`;
    if (!values.has(k)) values.set(k, new Map());
    values.get(k)!.set(ref.key, value);
  };
  for (const gw of file.bundle.sms.gateways) {
    const creds = file.credentials[gw.name] ?? {};
    for (const [field, ref] of Object.entries(gw.credentials)) put(ref, creds[field]);
    put(gw.proxy?.username, creds['proxy.username']);
    put(gw.proxy?.password, creds['proxy.password']);
  }
  if (file.bundle.directory !== null && file.bundle.directory !== undefined) {
    for (const [field, ref] of Object.entries(directoryCredentialRefs(file.bundle.directory))) put(ref, file.directoryCredentials?.[field]);
  }
  put(file.bundle.events?.signingSecret, file.eventsSigningSecret);
  put(file.bundle.twilioCompat?.authToken, file.twilioAuthToken);
  return values;
}
