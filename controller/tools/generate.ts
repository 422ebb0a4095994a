// `npm run gen`: writes the TypeScript types, the CRDs and the field reference derived from schemas/.
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { packageRoot, readSchemaSet } from '../adapters/files.ts';
import { generatedFiles } from './generated-files.ts';

async function main(): Promise<void> {
  const root = packageRoot();
  const files = await generatedFiles(await readSchemaSet(join(root, 'schemas')));
  for (const [path, content] of files) {
    await mkdir(dirname(join(root, path)), { recursive: true });
    await writeFile(join(root, path), content);
    console.log(`wrote ${path}`);
  }
}

await main();
