/**
 * waitUntil re-reads a condition each time something happens (`next` resolves at the next event:
 * an object written, a watch opened, a line printed) until it holds, and fails after `ms`: a test
 * waits on what it waits for, never on a clock.
 */
export async function waitUntil<T>(
  what: string,
  fn: () => T | undefined | false | Promise<T | undefined | false>,
  next: () => Promise<unknown>,
  ms = 20_000,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), ms)));
  try {
    for (;;) {
      // Listen before reading, so that an event between the read and the wait is not missed.
      const event = next();
      const v = await fn();
      if (v !== undefined && v !== false) return v;
      if ((await Promise.race([event.then(() => 'event' as const), late])) === 'late') throw new Error(`timed out waiting for ${what}`);
    }
  } finally {
    clearTimeout(timer);
  }
}

/** Signal is an event with no payload that tests await: whoever sees something happen fires it, and waiters re-read their condition. */
export class Signal {
  private waiting: (() => void)[] = [];

  /** next resolves at the next fire. */
  next(): Promise<void> {
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  fire(): void {
    for (const resolve of this.waiting.splice(0)) resolve();
  }
}
