import type { Logger } from 'pino';
import { readDirectoryFiles } from '../adapters/files.ts';
import { TlsPairError, type HttpListener, type TlsPair } from '../adapters/http-server.ts';
import { errorFields } from '../core/error-fields.ts';
import { watchTrees } from '../adapters/watcher.ts';
import { StartupError } from './cli-io.ts';
import { listenFailure, type Cleanup } from './startup.ts';

/** readTlsPair reads tls.crt and tls.key from a folder (a mounted kubernetes.io/tls Secret). */
export async function readTlsPair(dir: string, flag: string): Promise<TlsPair> {
  const read = await readDirectoryFiles(dir);
  const cert = read.files.get('tls.crt');
  const key = read.files.get('tls.key');
  if (read.error !== undefined || cert === undefined || key === undefined) {
    throw new StartupError(
      `${flag} ${dir} has no tls.crt and tls.key${read.error !== undefined ? ` (${read.error})` : ''}: mount the serving certificate's kubernetes.io/tls Secret there`,
    );
  }
  return { cert, key };
}

/**
 * servingFailure is the one line a listener that could not start with its certificate prints: a
 * pair that is not one names the folder and the Secret to check; other errors are listenFailure's.
 */
export function servingFailure(err: unknown, flag: string, certFlag: string, dir: string, secret: string): unknown {
  if (err instanceof TlsPairError)
    return new StartupError(`${certFlag} ${dir}: tls.crt and tls.key are not a PEM certificate and its private key; check the ${secret}`);
  return listenFailure(err, flag, flag);
}

/**
 * reloadServingCertificate watches a certificate folder and serves a rotated pair (cert-manager
 * renews before expiry) on new connections at once; a pair that does not match (one file written,
 * not yet the other) is a warning and the previous one keeps serving.
 */
export async function reloadServingCertificate(
  dir: string,
  flag: string,
  listener: HttpListener,
  first: TlsPair,
  log: Logger,
  cleanup: Cleanup,
): Promise<void> {
  let serving = first;
  const reload = (): void =>
    void readTlsPair(dir, flag)
      .then((pair) => {
        if (pair.cert === serving.cert && pair.key === serving.key) return;
        listener.setTls(pair);
        serving = pair;
        log.info({ certDir: dir }, 'serving certificate reloaded');
      })
      .catch((err: unknown) => log.warn({ certDir: dir, err: errorFields(err) }, 'serving certificate not reloaded; the previous one serves'));
  const certs = watchTrees([dir], reload);
  cleanup.add(() => certs.close());
  await certs.ready;
  reload(); // watched from here on: a rotation between the first read and the watch is not missed
}
