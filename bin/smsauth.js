#!/usr/bin/env node
// The smsauth command. In a source checkout Node.js runs the TypeScript sources itself (type
// stripping); an installed package (no controller/ sources, only dist/) runs the compiled JavaScript.
import { existsSync } from 'node:fs';

const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  process.stderr.write(
    `smsauth: needs Node.js 24 or newer, and this is Node.js ${process.version}; in a checkout, run it through npm (npm start, npm exec smsauth), which uses the Node.js that npm ci puts in node_modules/.bin\n`,
  );
  process.exit(1);
}
const source = new URL('../controller/cli/main.ts', import.meta.url);
const entry = existsSync(source) ? source.href : new URL('../dist/controller/cli/main.js', import.meta.url).href;
const { main } = await import(entry);
process.exitCode = await main(process.argv.slice(2));
// A command closes what it opened before it returns; should anything stay open regardless, it does
// not keep a finished command alive.
setTimeout(() => process.exit(), 1000).unref();
