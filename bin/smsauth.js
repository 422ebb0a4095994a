#!/usr/bin/env node
// The smsauth command. In a source checkout it runs the TypeScript through tsx; an installed
// package (no controller/ sources, only dist/) runs the compiled JavaScript.
import { existsSync } from 'node:fs';

const source = new URL('../controller/cli/main.ts', import.meta.url);
let entry;
if (existsSync(source)) {
  const { register } = await import('tsx/esm/api');
  register();
  entry = source.href;
} else {
  entry = new URL('../dist/controller/cli/main.js', import.meta.url).href;
}
const { main } = await import(entry);
process.exitCode = await main(process.argv.slice(2));
