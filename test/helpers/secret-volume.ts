import { existsSync, lstatSync, mkdirSync, readdirSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

let n = 0;

/**
 * writeSecretVolume updates a folder the way the kubelet updates a mounted Secret (its
 * AtomicWriter): the files go into a new timestamped folder, `..data` is swapped to it with one
 * rename, each key is a symlink `key -> ..data/key`, and the old folder is removed.
 */
export function writeSecretVolume(dir: string, data: Readonly<Record<string, string>>): void {
  mkdirSync(dir, { recursive: true });
  const stamp = `..${new Date().toISOString().replace(/[:.]/g, '_')}_${n++}`;
  mkdirSync(join(dir, stamp));
  for (const [key, value] of Object.entries(data)) writeFileSync(join(dir, stamp, key), value);
  const old = existsSync(join(dir, '..data')) ? readlinkSync(join(dir, '..data')) : undefined;
  symlinkSync(stamp, join(dir, '..data_tmp'));
  renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
  for (const entry of readdirSync(dir)) {
    if (entry.startsWith('..')) continue;
    if (!(entry in data) && lstatSync(join(dir, entry)).isSymbolicLink()) rmSync(join(dir, entry));
  }
  for (const key of Object.keys(data)) if (!existsSync(join(dir, key))) symlinkSync(join('..data', key), join(dir, key));
  if (old !== undefined && old !== stamp) rmSync(join(dir, old), { recursive: true, force: true });
}
