// `npm run gen`: writes the TypeScript types, the CRDs and the field reference derived from schemas/,
// and builds the console page of `smsauth run`.
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { packageRoot, readSchemaSet } from '../adapters/files.ts';
import { buildConsole } from './build-console.ts';
import { generatedFiles } from './generated-files.ts';

async function main(): Promise<void> {
  const root = packageRoot();
  const files = await generatedFiles(await readSchemaSet(join(root, 'schemas')));
  for (const [path, content] of files) {
    await mkdir(dirname(join(root, path)), { recursive: true });
    await writeFile(join(root, path), content);
    console.log(`wrote ${path}`);
  }
  const page = await buildConsole(root);
  const out = join(root, 'controller', 'generated', 'console');
  await mkdir(out, { recursive: true });
  await writeFile(join(out, 'app.js'), page.js);
  await writeFile(join(out, 'app.css'), page.css);
  console.log(
    `wrote controller/generated/console/app.js (${(page.js.length / 1024).toFixed(1)} KB, ${(page.gzipBytes / 1024).toFixed(1)} KB compressed) and app.css`,
  );
}

await main();
