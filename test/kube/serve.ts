import { parseArgs } from 'node:util';
import { startApiServer } from './api-server.ts';
import type { ApiServerOptions } from './api-server.ts';

/** main starts the fake API server (HTTPS unless --plain-http, since kubectl sends tokens only over TLS) from command-line flags, writes the kubeconfig, prints the URL and serves until SIGINT/SIGTERM. */
export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: 'string', default: '0' },
      kubeconfig: { type: 'string' },
      namespace: { type: 'string', default: 'default' },
      token: { type: 'string' },
      'no-auth': { type: 'boolean', default: false },
      'plain-http': { type: 'boolean', default: false },
      crd: { type: 'string', multiple: true },
      'bookmark-interval-ms': { type: 'string' },
    },
  });
  const options: ApiServerOptions = { port: Number(values.port), tls: values['plain-http'] !== true };
  if (values['no-auth'] === true) options.token = false;
  else if (values.token !== undefined) options.token = values.token;
  if (values.crd !== undefined) options.crds = values.crd;
  if (values['bookmark-interval-ms'] !== undefined) options.bookmarkIntervalMs = Number(values['bookmark-interval-ms']);
  const server = await startApiServer(options);
  if (values.kubeconfig !== undefined) await server.writeKubeconfig(values.kubeconfig, values.namespace);
  process.stdout.write(`${server.url}\n`);
  if (values.kubeconfig !== undefined) process.stdout.write(`kubeconfig written to ${values.kubeconfig}\n`);
  await new Promise<void>((resolve) => {
    const stop = (): void => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await server.close();
}

if (import.meta.url === `file://${process.argv[1] ?? ''}`) {
  main(process.argv.slice(2)).catch((e: unknown) => {
    process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exitCode = 1;
  });
}
