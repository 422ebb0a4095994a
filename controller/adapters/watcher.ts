import { realpath, stat } from 'node:fs/promises';
import { basename, dirname, join, sep } from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import { systemClock, type Clock, type TimerHandle } from '../core/clock.ts';

/** TreeWatcher watches folders until closed. */
export interface TreeWatcher {
  /** ready resolves once every root is watched: read the folders after it, and no change is missed. */
  ready: Promise<void>;
  /** pending tells whether a change was seen and onChange is still to run for it (the debounce is waiting). */
  pending(): boolean;
  close(): Promise<void>;
}

/** WatchOptions tune the watcher. */
export interface WatchOptions {
  /** Quiet time after the last event before onChange runs (editors write in several steps). */
  debounceMs?: number;
  /** How often each root's real path and identity are checked (a swapped symlink, a folder replaced or made again). */
  pollMs?: number;
  /** Longest wait for quiet: a file that keeps changing does not hold reloads back for longer. */
  maxWaitMs?: number;
  /**
   * Paths whose changes are not news: what the watching process writes itself under a root (its
   * state folder, a status file, an outbox), which would otherwise start a reload that writes them
   * again, without end. A path covers what is under it and its siblings named after it
   * (status.json.123.tmp, state.sqlite-wal).
   */
  ignore?: readonly string[];
  /** Time and timers for the debounce and the poll; default the system clock. */
  clock?: Clock;
}

/**
 * watchTrees calls onChange (debounced) when anything changes under the roots: files written in
 * place or by an editor's atomic rename, added, removed, and symlinks swapped, including the
 * `..data` link of Kubernetes volume mounts and a root that is itself a symlink replaced by
 * git-sync (watching files alone misses that: the root's real path is polled, and the watch moved).
 */
export function watchTrees(roots: readonly string[], onChange: (reason: string) => void, options: WatchOptions = {}): TreeWatcher {
  const debounceMs = options.debounceMs ?? 150;
  const maxWaitMs = options.maxWaitMs ?? 2000;
  const pollMs = options.pollMs ?? 1000;
  const clock = options.clock ?? systemClock;
  let timer: TimerHandle | undefined;
  let firstPending = 0;
  let reasons: string[] = [];
  let closed = false;
  const fire = (reason: string): void => {
    if (closed) return;
    if (reasons.length === 0) firstPending = clock.now();
    reasons.push(reason);
    if (timer !== undefined) clock.clearTimeout(timer);
    timer = clock.setTimeout(
      () => {
        timer = undefined;
        const r = reasons;
        reasons = [];
        onChange([...new Set(r)].slice(0, 5).join(', '));
      },
      Math.max(0, Math.min(debounceMs, firstPending + maxWaitMs - clock.now())),
    );
  };

  const watchers = new Map<string, { watcher: FSWatcher; real: string; id: string | undefined }>();
  /** A folder's identity (device, inode, creation time: a new folder may reuse a freed inode): one removed and made again, or renamed over, is another folder under the same path. */
  const identity = (path: string): Promise<string | undefined> =>
    stat(path).then(
      (st) => `${st.dev}:${st.ino}:${st.birthtimeMs}`,
      () => undefined,
    );
  const ignored = Promise.all(
    (options.ignore ?? []).map(async (p) =>
      realpath(p).catch(() =>
        realpath(dirname(p)).then(
          (d) => join(d, basename(p)),
          () => p,
        ),
      ),
    ),
  );
  const start = async (root: string): Promise<void> => {
    const real = await realpath(root).catch(() => root);
    const id = await identity(real);
    const skip = await ignored;
    const isIgnored = (path: string): boolean =>
      skip.some((i) => path === i || path.startsWith(i + sep) || path.startsWith(`${i}.`) || path.startsWith(`${i}-`));
    const watcher = watch(real, { ignoreInitial: true, followSymlinks: true, depth: 32, atomic: true, ignorePermissionErrors: true, ignored: isIgnored });
    watcher.on('all', (event, path) => fire(`${event} ${path}`));
    watcher.on('error', () => fire(`watch error under ${root}`));
    watchers.set(root, { watcher, real, id });
    await new Promise<void>((resolve) => watcher.once('ready', () => resolve()));
  };
  const ready = Promise.all(roots.map(start)).then(() => undefined);

  /** checkRoots restarts the watch of each root whose real path or identity changed. */
  const checkRoots = async (): Promise<void> => {
    await ready;
    for (const root of roots) {
      const real = await realpath(root).catch(() => undefined);
      const current = watchers.get(root);
      if (closed || real === undefined || current === undefined) continue;
      const id = await identity(real);
      if (real === current.real && id === current.id) continue;
      await current.watcher.close();
      await start(root);
      fire(real === current.real ? `${root} was replaced` : `${root} now points to ${real}`);
    }
  };
  let poll: TimerHandle | undefined;
  const schedulePoll = (): void => {
    poll = clock.setTimeout(() => {
      void checkRoots().finally(() => {
        if (!closed) schedulePoll();
      });
    }, pollMs);
  };
  schedulePoll();

  return {
    ready,
    pending: () => timer !== undefined,
    async close(): Promise<void> {
      closed = true;
      if (poll !== undefined) clock.clearTimeout(poll);
      if (timer !== undefined) clock.clearTimeout(timer);
      await ready;
      await Promise.all([...watchers.values()].map((w) => w.watcher.close()));
    },
  };
}
