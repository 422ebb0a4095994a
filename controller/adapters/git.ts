import { execFile } from 'node:child_process';

/** gitRevision returns the commit checked out in dir (with a -dirty mark when files differ), or undefined when dir is not in a git checkout. */
export function gitRevision(dir: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile('git', ['-C', dir, 'rev-parse', 'HEAD'], { timeout: 5000 }, (err, stdout) => {
      if (err !== null) return resolve(undefined);
      const commit = stdout.trim();
      execFile('git', ['-C', dir, 'status', '--porcelain', '--', '.'], { timeout: 5000 }, (err2, status) => {
        resolve(err2 === null && status.trim() !== '' ? `${commit}-dirty` : commit);
      });
    });
  });
}
