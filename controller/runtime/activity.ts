/**
 * Activity counts the work of a running process in flight (a reload, the checks and counts that
 * follow it) and says when it has all settled after a reload, with nothing else pending: the idle
 * signal that tests and scripts await instead of guessing how long a reload takes.
 */
export class Activity {
  private inFlight = 0;
  private sinceReload = false;
  private readonly pendingElsewhere: () => boolean;
  private readonly onIdle: () => void;

  /** pendingElsewhere tells of work about to start that is not tracked yet (a watcher's debounce). */
  constructor(pendingElsewhere: () => boolean, onIdle: () => void) {
    this.pendingElsewhere = pendingElsewhere;
    this.onIdle = onIdle;
  }

  /** track counts p in flight until it settles; a reload makes the next settling an idle one. */
  track<T>(p: Promise<T>, kind: 'reload' | 'follow-up' = 'follow-up'): Promise<T> {
    this.inFlight++;
    if (kind === 'reload') this.sinceReload = true;
    return p.finally(() => {
      this.inFlight--;
      this.settle();
    });
  }

  /** settle tells idle once nothing is in flight or pending after a reload. */
  private settle(): void {
    if (this.inFlight > 0 || !this.sinceReload || this.pendingElsewhere()) return;
    this.sinceReload = false;
    this.onIdle();
  }
}
