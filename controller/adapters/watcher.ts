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
  const pollMs = options.pollMs ?? 1000;
  const clock = options.clock ?? systemClock;
  const changes = new Debouncer(clock, options.debounceMs ?? 150, options.maxWaitMs ?? 2000, onChange);
  const watchers = new Map<string, { watcher: FSWatcher; real: string; id: string | undefined }>();
  const ignored = Promise.all((options.ignore ?? []).map(realPathOf));
  const start = async (root: string): Promise<void> => {
    const real = await realpath(root).catch(() => root);
    const id = await identity(real);
    const skip = await ignored;
    const isIgnored = (path: string): boolean =>
      skip.some((i) => path === i || path.startsWith(i + sep) || path.startsWith(`${i}.`) || path.startsWith(`${i}-`));
    const watcher = watch(real, { ignoreInitial: true, followSymlinks: true, depth: 32, atomic: true, ignorePermissionErrors: true, ignored: isIgnored });
    watcher.on('all', (event, path) => changes.add(`${event} ${path}`));
    watcher.on('error', () => changes.add(`watch error under ${root}`));
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
      if (changes.closed || real === undefined || current === undefined) continue;
      const id = await identity(real);
      if (real === current.real && id === current.id) continue;
      await current.watcher.close();
      await start(root);
      changes.add(real === current.real ? `${root} was replaced` : `${root} now points to ${real}`);
    }
  };
  let poll: TimerHandle | undefined;
  const schedulePoll = (): void => {
    poll = clock.setTimeout(() => {
      void checkRoots().finally(() => {
        if (!changes.closed) schedulePoll();
      });
    }, pollMs);
  };
  schedulePoll();

  return {
    ready,
    pending: () => changes.pending(),
    async close(): Promise<void> {
      changes.close();
      if (poll !== undefined) clock.clearTimeout(poll);
      await ready;
      await Promise.all([...watchers.values()].map((w) => w.watcher.close()));
    },
  };
}

/**
 * Debouncer gathers change reasons and reports them once the changes pause for debounceMs, or
 * maxWaitMs after the first one at the latest: a file that keeps changing does not hold reports back.
 */
class Debouncer {
  closed = false;
  private timer: TimerHandle | undefined;
  private firstPending = 0;
  private reasons: string[] = [];
  private readonly clock: Clock;
  private readonly debounceMs: number;
  private readonly maxWaitMs: number;
  private readonly report: (reason: string) => void;

  constructor(clock: Clock, debounceMs: number, maxWaitMs: number, report: (reason: string) => void) {
    this.clock = clock;
    this.debounceMs = debounceMs;
    this.maxWaitMs = maxWaitMs;
    this.report = report;
  }

  add(reason: string): void {
    if (this.closed) return;
    if (this.reasons.length === 0) this.firstPending = this.clock.now();
    this.reasons.push(reason);
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    const wait = Math.max(0, Math.min(this.debounceMs, this.firstPending + this.maxWaitMs - this.clock.now()));
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      const reasons = this.reasons;
      this.reasons = [];
      this.report([...new Set(reasons)].slice(0, 5).join(', '));
    }, wait);
  }

  pending(): boolean {
    return this.timer !== undefined;
  }

  close(): void {
    this.closed = true;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }
}

/** identity is a folder's (device, inode, creation time: a new folder may reuse a freed inode): one removed and made again, or renamed over, is another folder under the same path. */
function identity(path: string): Promise<string | undefined> {
  return stat(path).then(
    (st) => `${st.dev}:${st.ino}:${st.birthtimeMs}`,
    () => undefined,
  );
}

/** realPathOf resolves a path's symlinks, or its folder's when the path does not exist (yet). */
function realPathOf(p: string): Promise<string> {
  return realpath(p).catch(() =>
    realpath(dirname(p)).then(
      (d) => join(d, basename(p)),
      () => p,
    ),
  );
}
