import { readFileSync } from 'node:fs';

/** lastCode reads the code of the console gateway's latest message from its outbox file (the test plays the phone). */
export function lastCode(outbox: string): string {
  const lines = readFileSync(outbox, 'utf8').trim().split('\n');
  return /\d{6}/.exec((JSON.parse(lines.at(-1)!) as { text: string }).text)![0];
}
