import { Writable } from 'node:stream';

/** The console gateway's terminal print: the development inbox, the one place a code may show. */
const CONSOLE_PRINT = '[smsauth console gateway] ';

/** A full number in E.164 anywhere in a line: + and 8 to 15 digits. */
const E164 = /\+\d{8,15}(?!\d)/g;

/**
 * The sender numbers of the examples and fixtures: a company's own number, configuration that
 * `smsauth plan` shows, not a person's. Never used as a recipient in the suite.
 */
const SENDERS = new Set(['+14155550100']);

/** Leak is a secret found in a log line; the line is kept with the secret masked. */
export interface Leak {
  source: string;
  what: string;
  line: string;
}

/**
 * LogScan watches every log line the suite produces (in-process loggers, child processes' stdout
 * and stderr) for the secrets the suite handles: every code and number a gateway was asked to send,
 * every credential a fake provider checks. A line is checked when it arrives against the secrets
 * known by then, and a secret when it becomes known against the lines seen so far, so the order
 * does not matter. Numbers are also caught by shape (E.164), secrets or not.
 */
export class LogScan {
  private readonly lines: { source: string; line: string }[] = [];
  private readonly secrets = new Map<string, { what: string; pattern: RegExp }>();
  private readonly sources = new Set<string>();
  readonly leaks: Leak[] = [];
  private reported = 0;
  private armed = false;
  private readonly partial = new Map<string, string>();

  /** observe takes a chunk of log text (one or more lines) from a source. */
  observe(source: string, text: string): void {
    this.arm();
    this.sources.add(source);
    // A pipe cuts lines anywhere: keep the unfinished end of a chunk until its line is complete.
    const lines = ((this.partial.get(source) ?? '') + text).split('\n');
    this.partial.set(source, lines.pop()!);
    this.check(source, lines);
  }

  private check(source: string, lines: string[]): void {
    for (const line of lines) {
      if (line.trim() === '') continue;
      if (line.includes(CONSOLE_PRINT)) {
        // The printed message carries its code: learn it, so that it is caught everywhere else.
        const message = line.slice(line.indexOf('): ') + 3);
        for (const code of message.match(/(?<!\d)\d{4,10}(?!\d)/g) ?? []) this.secret('code', code);
        continue;
      }
      this.lines.push({ source, line });
      if ((line.match(E164) ?? []).some((n) => !SENDERS.has(n))) this.leak(source, 'full number', line, E164);
      for (const { what, pattern } of this.secrets.values()) if (pattern.test(line)) this.leak(source, what, line, pattern);
    }
  }

  /** stream is a writable for a logger (pino's destination) or a child process's output. */
  stream(source: string): Writable {
    return new Writable({
      write: (chunk: Buffer | string, _encoding, callback) => {
        this.observe(source, chunk.toString());
        callback();
      },
    });
  }

  /** secret adds a value that must not appear in any line; too short a value would match by chance and is ignored. */
  secret(what: string, value: string): void {
    const forms = what.includes('number') ? [value, value.replace(/^\+/, '')] : [value];
    for (const form of forms) {
      if (form.length < (/^\d+$/.test(form) ? 4 : 6) || this.secrets.has(form)) continue;
      const escaped = form.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      // Digits count only as a whole token: a 6-digit code inside a 13-digit timestamp, or among
      // the hex digits of a verification id, is not it.
      const pattern = /^\d+$/.test(form) ? new RegExp(`(?<![0-9A-Za-z])${escaped}(?![0-9A-Za-z])`) : new RegExp(escaped);
      this.secrets.set(form, { what, pattern });
      for (const { source, line } of this.lines) if (pattern.test(line)) this.leak(source, what, line, pattern);
    }
  }

  /** message learns the secrets of an outbound SMS: the full number and every code-like run of digits in the text. */
  message(to: string, text: string): void {
    this.secret('full number', to);
    for (const code of text.match(/(?<!\d)\d{4,10}(?!\d)/g) ?? []) this.secret('code', code);
  }

  /** assertClean throws on leaks not reported yet, naming the source and showing the line with the secret masked. */
  assertClean(): void {
    this.flush();
    const fresh = this.leaks.slice(this.reported);
    this.reported = this.leaks.length;
    if (fresh.length > 0) throw new Error(`secrets in log lines:\n${fresh.map((l) => `  ${l.source}: a ${l.what} in ${l.line.slice(0, 300)}`).join('\n')}`);
  }

  /** flush checks the unfinished last line of every source. */
  flush(): void {
    for (const [source, rest] of this.partial) if (rest !== '') this.check(source, [rest]);
    this.partial.clear();
  }

  /** summary counts what was scanned. */
  summary(): { lines: number; sources: number; secrets: number; leaks: number } {
    return { lines: this.lines.length, sources: this.sources.size, secrets: this.secrets.size, leaks: this.leaks.length };
  }

  /** arm reports the scan when the process exits (this is the suite's scanner), and fails the run on a leak no test reported. */
  private arm(): void {
    if (this.armed || this !== logScan) return;
    this.armed = true;
    process.once('exit', () => {
      this.flush();
      const s = this.summary();
      const unreported = this.leaks.slice(this.reported);
      if (unreported.length > 0) {
        process.stderr.write(
          `log scan: secrets leaked into log lines:\n${unreported.map((l) => `  ${l.source}: a ${l.what} in ${l.line.slice(0, 300)}`).join('\n')}\n`,
        );
        process.exitCode = 1;
      } else {
        process.stdout.write(
          `log scan: ${s.lines} log lines from ${s.sources} sources checked against ${s.secrets} codes, numbers and credentials; ${s.leaks} leaks\n`,
        );
      }
    });
  }

  private leak(source: string, what: string, line: string, pattern: RegExp): void {
    this.leaks.push({ source, what, line: line.replace(new RegExp(pattern.source, 'g'), (m) => (SENDERS.has(m) ? m : '<LEAKED>')) });
  }
}

/** logScan is the suite's one scanner; helpers feed it, and it reports when the process exits. */
export const logScan = new LogScan();
