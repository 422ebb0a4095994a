import { inspect } from 'node:util';
import pino, { type Logger } from 'pino';
import * as assert from 'uvu/assert';
import { logScan } from '../helpers/log-scan.ts';

/** CapturedLogs is a real pino logger at trace level whose lines are kept in memory. */
export interface CapturedLogs {
  logger: Logger;
  /** Every line written so far. */
  text(): string;
  lines(): Record<string, unknown>[];
}

/** captureLogs returns a pino logger writing JSON lines to a buffer. */
export function captureLogs(): CapturedLogs {
  const chunks: string[] = [];
  const logger = pino(
    { level: 'trace', base: null },
    {
      write: (line: string) => {
        chunks.push(line);
        logScan.observe('gateway adapter', line);
      },
    },
  );
  return {
    logger,
    text: () => chunks.join(''),
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

/**
 * errorText is everything an error could show: message, stack, own and hidden properties, and the
 * same for each error in its cause chain (util.inspect walks causes and nested objects).
 */
export function errorText(err: unknown): string {
  const parts: string[] = [inspect(err, { showHidden: true, depth: 20, maxStringLength: null, maxArrayLength: null })];
  let current: unknown = err;
  for (let i = 0; i < 10 && current !== undefined && current !== null; i++) {
    if (current instanceof Error) parts.push(current.message, current.stack ?? '');
    else if (typeof current === 'string') parts.push(current);
    try {
      parts.push(JSON.stringify(current) ?? '');
    } catch {
      // Circular: inspect covered it.
    }
    current = typeof current === 'object' ? (current as { cause?: unknown }).cause : undefined;
  }
  return parts.join('\n');
}

/** Secrets are the values that must never appear in logs or errors, by what they are. */
export type Secrets = Record<string, string>;

/** assertNoLeak fails when any secret (or its digits-only form, for numbers) appears in the text. */
export function assertNoLeak(text: string, secrets: Secrets, where: string): void {
  assert.ok(text.length > 0, `${where}: nothing to check (the check would pass vacuously)`);
  for (const [what, value] of Object.entries(secrets)) {
    const forms = new Set([value, value.replace(/^\+/, '')]);
    for (const form of forms) assert.not.ok(text.includes(form), `${where} contains the ${what}`);
  }
}

/** messageSecrets are the secrets of a test message: its code, its full number in both spellings. */
export function messageSecrets(code: string, to: string): Secrets {
  return { code, 'full number': to, 'number without +': to.replace(/^\+/, '') };
}
