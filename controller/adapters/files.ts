import { randomBytes } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { link, lstat, mkdir, open, readFile, readdir, realpath, rename, stat, unlink } from 'node:fs/promises';
import { dirname, extname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DiagnosticCode, type Diagnostic } from '../core/diagnostics.ts';
import type { SchemaSet } from '../core/schema-tree.ts';

/** SourceFile is one YAML file's bytes, named as the user should see it. */
export interface SourceFile {
  path: string;
  bytes: Uint8Array;
}

/** TreeRead is what readYamlTree found: the files, problems with the input (exit 1) and I/O failures (exit 2). */
export interface TreeRead {
  files: SourceFile[];
  diagnostics: Diagnostic[];
  ioErrors: Diagnostic[];
}

/** packageRoot returns the directory holding smsauth's package.json, from source or from dist/. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) || !existsSync(join(dir, 'schemas'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('cannot find the smsauth package root (package.json beside schemas/)');
    dir = parent;
  }
  return dir;
}

/** readSchemaSet reads every *.schema.json of a directory. */
export async function readSchemaSet(dir: string): Promise<SchemaSet> {
  const set: Record<string, Record<string, unknown>> = {};
  for (const name of (await readdir(dir)).sort()) {
    if (name.endsWith('.schema.json')) set[name] = JSON.parse(await readFile(join(dir, name), 'utf8')) as Record<string, unknown>;
  }
  return set;
}

/**
 * readYamlTree reads files and folders: a named file is read whatever its extension; folders are
 * walked recursively for .yaml and .yml files, skipping hidden entries (.git, and the ..data and
 * timestamped folders of Kubernetes volume mounts, which are reached through their symlinks) and
 * node_modules folders.
 * Symlinks are followed once. A file over maxFileBytes is not read. `-` reads standard input.
 */
export async function readYamlTree(paths: readonly string[], maxFileBytes: number): Promise<TreeRead> {
  const walk: TreeWalk = { result: { files: [], diagnostics: [], ioErrors: [] }, seen: new Set(), maxFileBytes };
  for (const p of paths) {
    if (p === '-') await readStandardInput(walk);
    else await readPath(walk, p);
  }
  return walk.result;
}

/** TreeWalk is one readYamlTree's progress: what it found so far, and the real paths already visited. */
interface TreeWalk {
  result: TreeRead;
  seen: Set<string>;
  maxFileBytes: number;
}

/** realOf resolves a path's symlinks; a path with no real path (a pipe: /dev/stdin, <(…)) is known by its own name. */
function realOf(path: string): Promise<string> {
  return realpath(path).catch(() => resolve(path));
}

/** tooLarge is the diagnostic for input over the size limit, which is not read. */
function tooLarge(file: string, message: string): Diagnostic {
  return { file, code: DiagnosticCode.FileTooLarge, severity: 'error', pointer: '', message };
}

/** readStandardInput reads standard input (`helm template … | smsauth validate -`), whatever it is (a pipe, a socket), up to the limit. */
async function readStandardInput(walk: TreeWalk): Promise<void> {
  const bytes = await readStream(process.stdin, walk.maxFileBytes);
  if (bytes === undefined) walk.result.diagnostics.push(tooLarge('<stdin>', `standard input is over the limit of ${walk.maxFileBytes} bytes; split it`));
  else walk.result.files.push({ path: '<stdin>', bytes });
}

/** readPath reads a path named on the command line: a folder is walked, a file read, anything else read as a stream. */
async function readPath(walk: TreeWalk, p: string): Promise<void> {
  let st;
  try {
    st = await stat(p);
  } catch (err) {
    walk.result.ioErrors.push(ioDiagnostic(p, err));
    return;
  }
  if (st.isDirectory()) await visitDir(walk, p, 0);
  else if (st.isFile()) await visitFile(walk, p, st.size);
  else await readDevice(walk, p);
}

/** readDevice reads a pipe or a device (/dev/stdin, <(…)), which has no size to check first: up to the limit. */
async function readDevice(walk: TreeWalk, p: string): Promise<void> {
  const bytes = await readStream(createReadStream(p), walk.maxFileBytes).catch((err: unknown) => {
    walk.result.ioErrors.push(ioDiagnostic(p, err));
    return null;
  });
  if (bytes === undefined) walk.result.diagnostics.push(tooLarge(displayPath(p), `over the limit of ${walk.maxFileBytes} bytes; split it`));
  else if (bytes !== null) walk.result.files.push({ path: displayPath(p), bytes });
}

/** visitDir walks a folder, once and at most 32 levels deep, for its .yaml and .yml files, skipping hidden entries and node_modules. */
async function visitDir(walk: TreeWalk, dir: string, depth: number): Promise<void> {
  const real = await realOf(dir);
  if (walk.seen.has(real) || depth > 32) return;
  walk.seen.add(real);
  let names: string[];
  try {
    names = (await readdir(dir)).sort();
  } catch (err) {
    walk.result.ioErrors.push(ioDiagnostic(dir, err));
    return;
  }
  for (const name of names) {
    // Hidden entries, and node_modules: packages' own YAML is never a team's resources.
    if (name.startsWith('.') || name === 'node_modules') continue;
    const full = join(dir, name);
    let st;
    try {
      st = await stat(full);
    } catch (err) {
      // A dangling symlink: reported, not fatal.
      if ((await lstat(full).catch(() => undefined))?.isSymbolicLink()) continue;
      walk.result.ioErrors.push(ioDiagnostic(full, err));
      continue;
    }
    if (st.isDirectory()) await visitDir(walk, full, depth + 1);
    else if (st.isFile() && (extname(name) === '.yaml' || extname(name) === '.yml')) await visitFile(walk, full, st.size);
  }
}

/** visitFile reads a file once, unless it is over the size limit. */
async function visitFile(walk: TreeWalk, file: string, size: number): Promise<void> {
  const real = await realOf(file);
  if (walk.seen.has(real)) return;
  walk.seen.add(real);
  const shown = displayPath(file);
  if (size > walk.maxFileBytes) {
    walk.result.diagnostics.push(tooLarge(shown, `file is ${size} bytes, over the limit of ${walk.maxFileBytes}; split it into smaller files`));
    return;
  }
  try {
    walk.result.files.push({ path: shown, bytes: await readFile(file) });
  } catch (err) {
    walk.result.ioErrors.push(ioDiagnostic(file, err));
  }
}

/** readStream reads a stream to its end, or answers undefined once it is over maxBytes. */
function readStream(stream: NodeJS.ReadableStream, maxBytes: number): Promise<Uint8Array | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    stream.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= maxBytes) chunks.push(chunk);
    });
    stream.once('end', () => resolve(size > maxBytes ? undefined : Buffer.concat(chunks)));
    stream.once('error', reject);
  });
}

/** displayPath shows a path relative to the working directory when it is inside it. */
export function displayPath(file: string): string {
  const rel = relative(process.cwd(), resolve(file));
  return rel !== '' && !rel.startsWith('..') && !rel.startsWith(sep) ? rel.split(sep).join('/') : resolve(file);
}

function ioDiagnostic(path: string, err: unknown): Diagnostic {
  const code = (err as NodeJS.ErrnoException).code;
  return {
    file: displayPath(path),
    code: code === 'ENOENT' ? DiagnosticCode.PathNotFound : DiagnosticCode.FileUnreadable,
    severity: 'error',
    pointer: '',
    message: code === 'ENOENT' ? 'no such file or folder' : `cannot read (${code ?? 'error'})`,
  };
}

/** readJsonFile reads and parses a JSON file, answering a sentence instead of throwing. */
export async function readJsonFile(path: string): Promise<{ ok: true; value: unknown } | { ok: false; error: string; missing?: true }> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { ok: false, error: `cannot read (${code ?? 'error'})`, ...(code === 'ENOENT' ? { missing: true as const } : {}) };
  }
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch (err) {
    // Where it breaks, never what it says there: V8's message quotes the text (a secret, maybe).
    const at = /position (\d+)/.exec((err as Error).message)?.[1];
    return { ok: false, error: `not JSON${at !== undefined ? ` (it breaks at character ${Number(at) + 1})` : text.trim() === '' ? ' (it is empty)' : ''}` };
  }
}

/**
 * takeLock makes a lock file that holds this process's id, created only if absent; one left by a
 * process that is gone (killed, or another container's) is taken over. It answers the holder's id
 * when a running smsauth process holds it.
 */
export async function takeLock(path: string): Promise<{ ok: true; release: () => Promise<void> } | { ok: false; holder: number }> {
  for (let tries = 0; ; tries++) {
    try {
      const file = await open(path, 'wx', 0o600);
      try {
        await file.writeFile(`${process.pid}\n`);
      } finally {
        await file.close();
      }
      return { ok: true, release: () => unlink(path).catch(() => undefined) };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = Number((await readFile(path, 'utf8').catch(() => '')).trim());
    if (Number.isSafeInteger(holder) && holder > 0 && holder !== process.pid && (await runsSmsauth(holder))) return { ok: false, holder };
    if (tries > 0) return { ok: false, holder };
    // Left by a process that is gone: taken over (two taking it over at once: one wins the create).
    await unlink(path).catch(() => undefined);
  }
}

/** runsSmsauth tells whether a process runs, and is smsauth's where the system says what it runs (Linux's /proc). */
async function runsSmsauth(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const command = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => undefined);
  return command === undefined || command.includes('smsauth');
}

/** keepAside renames a file that cannot be used to `<path>.unreadable` (replacing an earlier one), so that it is kept for a look and not read again; it returns the new path, or undefined when it could not be moved. */
export async function keepAside(path: string): Promise<string | undefined> {
  const kept = `${path}.unreadable`;
  try {
    await rename(path, kept);
    return kept;
  } catch {
    return undefined;
  }
}

/**
 * writeFileAtomic writes a file through a temporary file and a rename, so readers never see half of
 * it, and durably: the file's data reaches the disk before the rename, and the rename before it
 * returns (a power cut leaves the old file or the new one, never an empty one).
 */
export async function writeFileAtomic(path: string, content: string, mode = 0o644): Promise<void> {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeDurably(tmp, content, mode, 'w');
  try {
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await syncFolder(dirname(path));
}

/** writeDurably writes a file and flushes it to the disk before closing it. */
async function writeDurably(path: string, content: string, mode: number, flag: 'w' | 'wx'): Promise<void> {
  const handle = await open(path, flag, mode);
  try {
    await handle.writeFile(content);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** syncFolder flushes a folder's entries (a rename, a new link) to the disk. */
async function syncFolder(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** LocalSecrets are the verifier's own keys for local mode: code-hashing keys (newest first) and the decoy secret. */
export interface LocalSecrets {
  codeKeys: { id: string; secret: Buffer }[];
  decoySecret: Buffer;
}

/**
 * loadOrCreateLocalSecrets reads the verifier's keys from a file in the state folder, creating it
 * (mode 0600) with fresh random keys the first time, so that codes and decoys survive restarts.
 */
export async function loadOrCreateLocalSecrets(path: string): Promise<LocalSecrets> {
  let text: string | undefined;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (text !== undefined) return parseLocalSecrets(path, text);
  const fresh: LocalSecrets = { codeKeys: [{ id: `k${Date.now().toString(36)}`, secret: randomBytes(32) }], decoySecret: randomBytes(32) };
  await mkdir(dirname(path), { recursive: true });
  // Written whole under another name, then linked into place: a crash never leaves half a file,
  // and of two processes starting at once the second finds the first one's keys.
  const partial = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeDurably(
    partial,
    JSON.stringify(
      { codeKeys: fresh.codeKeys.map((k) => ({ id: k.id, secret: k.secret.toString('base64') })), decoySecret: fresh.decoySecret.toString('base64') },
      null,
      2,
    ) + '\n',
    0o600,
    'wx',
  );
  try {
    await link(partial, path);
    await syncFolder(dirname(path));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return parseLocalSecrets(path, await readFile(path, 'utf8'));
  } finally {
    await unlink(partial);
  }
  return fresh;
}

/** parseLocalSecrets reads the keys file; what is wrong with it is said without quoting it (it holds the keys). */
function parseLocalSecrets(path: string, text: string): LocalSecrets {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    raw = undefined;
  }
  const r = raw as { codeKeys?: unknown; decoySecret?: unknown } | undefined;
  const keys = Array.isArray(r?.codeKeys) ? (r.codeKeys as { id?: unknown; secret?: unknown }[]) : [];
  const codeKeys: { id: string; secret: Buffer }[] = [];
  for (const k of keys)
    if (typeof k?.id === 'string' && typeof k.secret === 'string' && k.secret.length > 0) codeKeys.push({ id: k.id, secret: Buffer.from(k.secret, 'base64') });
  const decoy = r?.decoySecret;
  if (keys.length === 0 || codeKeys.length !== keys.length || typeof decoy !== 'string' || decoy.length === 0) {
    throw new Error(
      `the keys file ${path} is not valid (JSON with codeKeys [{id, secret}] and decoySecret); restore it from a backup, or delete it to make new keys (codes already sent then stop verifying)`,
    );
  }
  return { codeKeys, decoySecret: Buffer.from(decoy, 'base64') };
}

/** readDirectoryFiles reads the regular files of a folder (following symlinks, skipping hidden entries such as a volume's ..data), by name. */
export async function readDirectoryFiles(dir: string, maxBytes = 4 * 1024 * 1024): Promise<{ files: Map<string, string>; error?: string }> {
  const files = new Map<string, string>();
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    return { files, error: `cannot read ${dir} (${(err as NodeJS.ErrnoException).code ?? 'error'})` };
  }
  for (const name of names.sort()) {
    if (name.startsWith('.')) continue;
    try {
      const st = await stat(join(dir, name));
      if (!st.isFile() || st.size > maxBytes) continue;
      files.set(name, await readFile(join(dir, name), 'utf8'));
    } catch {
      // A file swapped out between readdir and read: the next change event reads again.
    }
  }
  return { files };
}
