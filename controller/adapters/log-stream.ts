import { writeSync } from 'node:fs';

/** How long a full pipe is waited on for one line, a little at a time, before the line is dropped. */
const FULL_PIPE_TRIES = 100;
const FULL_PIPE_PAUSE_MS = 10;

/**
 * stderrLog is where the commands' JSON logs go: standard error, each line written at once, as
 * pino.destination(2) does, with two differences. A reader gone (EPIPE: the process piped into
 * `head`, a collector that died) ends the writing: pino's writer, sonic-boom 4, retries such a
 * write for ever in its synchronous flush, on the event loop, so that not even SIGTERM is handled.
 * And a pipe full for a second (EAGAIN) drops the line rather than hold the process.
 */
export function stderrLog(fd = 2): { write(line: string): void } {
  let gone = false;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  return {
    write(line: string): void {
      if (gone) return;
      let rest = Buffer.from(line);
      let tries = 0;
      while (rest.length > 0) {
        try {
          rest = rest.subarray(writeSync(fd, rest));
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code !== 'EAGAIN' && code !== 'EBUSY') {
            gone = true;
            return;
          }
          if (++tries > FULL_PIPE_TRIES) return;
          Atomics.wait(pause, 0, 0, FULL_PIPE_PAUSE_MS);
        }
      }
    },
  };
}
