import { writeSync } from 'node:fs';

/** How long a full pipe is waited on for one line, a little at a time, before the line is dropped. */
const FULL_PIPE_TRIES = 100;
const FULL_PIPE_PAUSE_MS = 10;

/**
 * stderrLog is where the commands' JSON logs go: standard error, each line written at once, as
 * pino.destination(2) does, with these differences:
 * - a reader gone (EPIPE: the process piped into `head`, a collector that died) ends the writing,
 *   where pino's writer (sonic-boom 4) retries it for ever in its synchronous flush, on the event
 *   loop, so that not even SIGTERM is handled;
 * - a pipe full for a second (EAGAIN: a collector stalled) drops the line rather than hold the
 *   process, and the lines after it are dropped at once until one goes through;
 * - any other failure (a full disk where fd 2 is a file) drops that line only.
 * A line cut short by a drop is ended before the next one, so that no two lines run together.
 * Each line is written when write returns: there is nothing to flush.
 */
export function stderrLog(fd = 2): { write(line: string): void } {
  let gone = false;
  let stalled = false;
  let cut = false;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  return {
    write(line: string): void {
      if (gone) return;
      let rest = Buffer.from(cut ? `\n${line}` : line);
      const whole = rest.length;
      let tries = 0;
      while (rest.length > 0) {
        try {
          rest = rest.subarray(writeSync(fd, rest));
          stalled = false;
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code === 'EPIPE' || code === 'EBADF') {
            gone = true;
            return;
          }
          if ((code !== 'EAGAIN' && code !== 'EBUSY') || stalled || ++tries > FULL_PIPE_TRIES) {
            if (code === 'EAGAIN' || code === 'EBUSY') stalled = true;
            // Cut short, or a line cut before and not ended yet: the next line ends it first.
            cut = rest.length < whole || cut;
            return;
          }
          // A sleep outside the injected Clock (STYLE 6c), on purpose: pino writes synchronously, so a
          // line can wait for a full pipe only by blocking, and only once (see `stalled`).
          Atomics.wait(pause, 0, 0, FULL_PIPE_PAUSE_MS);
        }
      }
      cut = false;
    },
  };
}
