// Builds the console page of `smsauth run` (controller/console/) into one script and one style
// sheet with esbuild: minified, no source map, no external resource. `npm run gen` writes them to
// controller/generated/console/; a test checks that they match the sources.
import { gzipSync } from 'node:zlib';
import { join } from 'node:path';
import { build } from 'esbuild';

/** ConsoleBuild is the built page: its script and style, and the script's size compressed. */
export interface ConsoleBuild {
  js: string;
  css: string;
  gzipBytes: number;
}

/** buildConsole bundles controller/console/main.tsx (Preact) and app.css. */
export async function buildConsole(root: string): Promise<ConsoleBuild> {
  const dir = join(root, 'controller', 'console');
  const common = { bundle: true, minify: true, write: false, legalComments: 'none', logLevel: 'silent', absWorkingDir: root } as const;
  const script = await build({
    ...common,
    entryPoints: [join(dir, 'main.tsx')],
    format: 'esm',
    target: ['chrome120', 'firefox120', 'safari17'],
    jsx: 'automatic',
    jsxImportSource: 'preact',
    tsconfig: join(dir, 'tsconfig.json'),
  });
  const style = await build({ ...common, entryPoints: [join(dir, 'app.css')] });
  const js = script.outputFiles[0]!.text;
  return { js, css: style.outputFiles[0]!.text, gzipBytes: gzipSync(js, { level: 9 }).length };
}
