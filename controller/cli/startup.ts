import type { OpenedStore } from '../runtime/open-state-store.ts';
import { readFile, realpath, stat } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { isLoopback, listenHttp, ListenError, type HttpListener } from '../adapters/http-server.ts';
import { displayPath } from '../adapters/files.ts';
import { parseDuration } from '../core/duration.ts';
import { clusterDisplay, parseRedisTarget } from '../core/redis-target.ts';
import { TrustedProxies } from '../verifier/client-address.ts';
import { StartupError, UsageError } from './cli-io.ts';

/** MIN_TOKEN_LENGTH is the shortest bearer token accepted for a listener off loopback. */
export const MIN_TOKEN_LENGTH = 16;

/** requireFolder refuses a folder named on the command line that does not exist or is not a folder. */
export async function requireFolder(flag: string, path: string): Promise<void> {
  if (!(await statNamed(`${flag} ${displayPath(path)}`, path)).isDirectory()) throw new UsageError(`${flag} ${displayPath(path)} is a file, not a folder`);
}

/** requireOutputFolder refuses a file to write whose folder does not exist or is not a folder: every write would fail. */
async function requireOutputFolder(flag: string, file: string): Promise<void> {
  const dir = dirname(resolve(file));
  if (!(await statNamed(`${flag} ${displayPath(file)}: its folder ${displayPath(dir)}`, dir)).isDirectory())
    throw new UsageError(`${flag} ${displayPath(file)}: ${displayPath(dir)} is not a folder`);
}

/**
 * requireOutputFile refuses a file to write that is something else (a folder, a device, a pipe),
 * or whose folder does not exist; it returns the path to write: a symbolic link's target, so that
 * writing it anew (a rename) keeps the link, and never replaces what the link is.
 */
export async function requireOutputFile(flag: string, file: string): Promise<string> {
  let target = resolve(file);
  try {
    target = await realpath(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new UsageError(`${flag} ${displayPath(file)}: ${fileProblem(err)}`);
  }
  const found = await stat(target).catch(() => undefined);
  if (found !== undefined && !found.isFile())
    throw new UsageError(`${flag} ${displayPath(file)} is ${found.isDirectory() ? 'a folder' : 'not a regular file'}; name a file to write`);
  await requireOutputFolder(flag, target);
  return target;
}

/** requireFile refuses a file named on the command line that does not exist or is not a file. */
export async function requireFile(flag: string, path: string): Promise<void> {
  if (!(await statNamed(`${flag} ${displayPath(path)}`, path)).isFile()) throw new UsageError(`${flag} ${displayPath(path)} is not a file`);
}

/** statNamed is a path's stat, or the usage error that names it (as `named`) and says why it cannot be had. */
async function statNamed(named: string, path: string): Promise<Stats> {
  try {
    return await stat(path);
  } catch (err) {
    throw new UsageError(`${named}: ${fileProblem(err)}`);
  }
}

/** readToken reads the bearer token from --token-file (or the flag named), or else the environment variable; an empty one is no token. */
export async function readToken(file: string | undefined, env: string | undefined, flag = '--token-file'): Promise<string | undefined> {
  if (file === undefined) return env === undefined || env === '' ? undefined : env;
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new UsageError(`${flag} ${displayPath(file)}: ${fileProblem(err)}`);
  }
  const token = text.trim();
  if (token === '') throw new UsageError(`${flag} ${displayPath(file)} is empty; put the bearer token in it`);
  return token;
}

/** AuditOptions are the verifier's access and audit settings, shared by run and sidecar. */
export interface AuditOptions {
  helpdeskToken?: string;
  trustedProxies: TrustedProxies;
  historyRetentionMs: number;
}

/** AUDIT_FLAGS are the parseArgs options of AuditOptions. */
export const AUDIT_FLAGS = {
  'helpdesk-token-file': { type: 'string' },
  'trusted-proxies': { type: 'string' },
  'history-retention': { type: 'string', default: '400d' },
} as const;

/** AUDIT_USAGE documents AUDIT_FLAGS in a command's help. */
export const AUDIT_USAGE = `      --helpdesk-token-file FILE
                           the helpdesk's bearer token (or SMSAUTH_HELPDESK_TOKEN): serves
                           the helpdesk routes, to it alone
      --trusted-proxies LIST
                           addresses and CIDR ranges whose X-Forwarded-For names the end
                           user's address in history (comma-separated)
      --history-retention D  how long history is kept (default 400d; 30d, 2160h…)`;

/**
 * readAuditOptions checks the access and audit flags: the helpdesk token (of the same strength as
 * the application's, and a different one), the trusted proxies and the history's retention.
 */
export async function readAuditOptions(
  values: { 'helpdesk-token-file'?: string; 'trusted-proxies'?: string; 'history-retention'?: string },
  applicationToken: string | undefined,
): Promise<AuditOptions> {
  const helpdeskToken = await readToken(values['helpdesk-token-file'], process.env.SMSAUTH_HELPDESK_TOKEN, '--helpdesk-token-file');
  if (helpdeskToken !== undefined && helpdeskToken.length < MIN_TOKEN_LENGTH)
    throw new UsageError(
      `the helpdesk token is ${helpdeskToken.length} characters; it needs at least ${MIN_TOKEN_LENGTH} (make one with: openssl rand -hex 32)`,
    );
  if (helpdeskToken !== undefined && helpdeskToken === applicationToken)
    throw new UsageError("the helpdesk token is the application's token; give the helpdesk a token of its own");
  let trustedProxies: TrustedProxies;
  try {
    trustedProxies = new TrustedProxies((values['trusted-proxies'] ?? '').split(',').filter((e) => e.trim() !== ''));
  } catch (err) {
    throw new UsageError(`--trusted-proxies: ${(err as Error).message}`);
  }
  const raw = values['history-retention'] ?? '400d';
  const days = /^(\d+)d$/.exec(raw);
  const historyRetentionMs = days !== null ? Number(days[1]) * 24 * 3_600_000 : parseDuration(raw);
  if (historyRetentionMs === undefined || historyRetentionMs < 3_600_000)
    throw new UsageError(`--history-retention ${raw} is not a duration of an hour or more (400d, 720h)`);
  return { ...(helpdeskToken !== undefined ? { helpdeskToken } : {}), trustedProxies, historyRetentionMs };
}

/** requireTokenOffLoopback refuses to listen beyond this machine without a bearer token long enough to guard the API. */
export function requireTokenOffLoopback(host: string, token: string | undefined): void {
  if (isLoopback(host)) return;
  if (token === undefined)
    throw new UsageError(
      `--host ${host} needs a bearer token of at least ${MIN_TOKEN_LENGTH} characters (--token-file FILE or SMSAUTH_TOKEN); only loopback may go without`,
    );
  if (token.length < MIN_TOKEN_LENGTH)
    throw new UsageError(
      `the bearer token is ${token.length} characters; --host ${host} needs at least ${MIN_TOKEN_LENGTH} (make one with: openssl rand -hex 32)`,
    );
}

/**
 * checkRedisUrl refuses what is not a Redis URL (redis://, rediss://, a socket path, or a Redis
 * Cluster's redis+cluster://host:port,host:port…) before anything connects.
 */
export function checkRedisUrl(flag: string, url: string): void {
  const target = parseRedisTarget(url);
  if ('error' in target) {
    throw new UsageError(
      `${flag} takes a URL such as redis://127.0.0.1:6379 (rediss:// for TLS), a socket path, or redis+cluster://host:port,host:port for a Redis Cluster (${target.error})`,
    );
  }
}

/**
 * redisDisplay is a Redis URL as it may be printed: without its user name and password, and without
 * its query, where ioredis also takes a password (?password=…, for a socket path too).
 */
export function redisDisplay(url: string): string {
  if (url.startsWith('/')) return url.replace(/[?#].*$/s, '');
  const cluster = clusterDisplay(url);
  if (cluster !== undefined) return cluster;
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    u.search = '';
    u.hash = '';
    return u.toString().replace(/\/$/, '');
  } catch {
    return 'the Redis URL';
  }
}

/** listenFailure turns a listener that could not start into the one line that says what to do about it. */
export function listenFailure(err: unknown, portFlag: string, hostFlag: string): unknown {
  if (!(err instanceof ListenError)) return err;
  if (err.reason === 'EADDRINUSE') return new StartupError(`${err.message}: stop what holds it, or choose another port with ${portFlag}`);
  if (err.reason === 'EACCES') return new StartupError(`${err.message}: choose another port with ${portFlag}`);
  return new StartupError(`${err.message}: fix ${hostFlag}`);
}

/** fileProblem says in a few words why a path could not be used. */
export function fileProblem(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'no such file or folder';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'EISDIR') return 'is a folder, not a file';
  if (code === 'ENOTDIR') return 'a part of the path is not a folder';
  return `cannot be read (${code ?? 'error'})`;
}

/**
 * Cleanup closes what a command opened, last opened first: on a failure to start (so that nothing
 * keeps the process alive serving nothing) and on a normal stop alike.
 */
export class Cleanup {
  private readonly steps: (() => unknown)[] = [];

  /** add registers how to close one thing just opened. */
  add(step: () => unknown): void {
    this.steps.push(step);
  }

  /** run closes everything registered, in reverse order; a step that fails does not stop the others. */
  async run(): Promise<void> {
    while (this.steps.length > 0) {
      const step = this.steps.pop()!;
      try {
        await step();
      } catch {
        // closing what could not be closed: nothing more to do
      }
    }
  }
}

/**
 * withListener binds host:port first (a port in use is told at once, before anything else loads),
 * runs serve with the listener, and closes everything opened on the way out, on a failure to
 * start and on a normal stop alike.
 */
export async function withListener(host: string, port: number, serve: (listener: HttpListener, cleanup: Cleanup) => Promise<number>): Promise<number> {
  const cleanup = new Cleanup();
  try {
    const listener = await listenHttp({ host, port }).catch((err: unknown) => {
      throw listenFailure(err, '--port', '--host');
    });
    cleanup.add(() => listener.close(10_000));
    return await serve(listener, cleanup);
  } finally {
    await cleanup.run();
  }
}

/** parseBind reads a bind address flag: ":8080" listens on every interface, "127.0.0.1:0" on a free loopback port, "0" not at all (undefined). */
export function parseBind(flag: string, address: string): { host: string; port: number } | undefined {
  if (address === '0') return undefined;
  const i = address.lastIndexOf(':');
  const host = i <= 0 ? '0.0.0.0' : address.slice(0, i);
  const port = portNumber(address.slice(i + 1));
  if (port === undefined) throw new UsageError(`${flag} ${address} is not an address; use :8080, 127.0.0.1:8080 or 0`);
  return { host, port };
}

/** parsePort reads a port flag: 0 to 65535 (0: any free port), written in digits; nothing else. */
function parsePort(flag: string, value: string): number {
  const port = portNumber(value);
  if (port === undefined) throw new UsageError(`${flag} takes a port number from 0 to 65535, not "${value}"`);
  return port;
}

function portNumber(text: string): number | undefined {
  if (!/^\d{1,5}$/.test(text)) return undefined;
  const port = Number(text);
  return port <= 65535 ? port : undefined;
}

/** listenAddress reads --host and --port, the API's listener. */
export function listenAddress(host: string, port: string): { host: string; port: number } {
  requireHost(host);
  return { host, port: parsePort('--port', port) };
}

/** apiToken reads the API's bearer token (--token-file, else the environment's) and refuses a listener beyond loopback without one. */
export async function apiToken(host: string, tokenFile: string | undefined, fromEnv: string | undefined): Promise<string | undefined> {
  const token = await readToken(tokenFile, fromEnv);
  requireTokenOffLoopback(host, token);
  return token;
}

/** requireHost refuses an empty --host before anything listens. */
function requireHost(host: string): void {
  if (host.trim() === '') throw new UsageError('--host takes an address, such as 127.0.0.1 (loopback) or 0.0.0.0 (every interface)');
}

/**
 * requireCredentialsAccepted waits (at most a second) for Redis' first answer and stops the start
 * when Redis refused the credentials of --redis (WRONGPASS, NOAUTH), which no wait would mend: a
 * Redis down or late is waited for while serving 503 (watchRedis), a wrong password is not.
 */
export async function requireCredentialsAccepted(opened: OpenedStore, redisUrl: string | undefined): Promise<void> {
  if (redisUrl === undefined) return;
  const refused = await opened.refusal(1000);
  if (refused !== undefined) throw credentialsRefused(redisUrl, refused);
}

/**
 * requireStoreAnswers waits for the state store to answer (SQLite: at once), at most timeoutMs,
 * and stops the command otherwise, saying whether Redis refused the credentials or does not answer.
 */
export async function requireStoreAnswers(opened: OpenedStore, redisUrl: string | undefined, timeoutMs = 5000): Promise<void> {
  if (await opened.reachable(timeoutMs)) return;
  // A refusal of the credentials ends the wait at once, and is told as such.
  const refused = await opened.refusal(0);
  if (refused !== undefined && redisUrl !== undefined) throw credentialsRefused(redisUrl, refused);
  throw new StartupError(`Redis${redisUrl !== undefined ? ` at ${redisDisplay(redisUrl)}` : ''} does not answer: start it, or fix --redis`);
}

function credentialsRefused(redisUrl: string, reply: string): StartupError {
  return new StartupError(`Redis at ${redisDisplay(redisUrl)} refused the credentials of --redis (${reply}): fix the user name and password in the URL`);
}

/**
 * requireReachableCluster stops a command whose Kubernetes API server cannot be reached at start: a
 * kubeconfig or a cluster to fix, told at once (as controller-runtime's manager does).
 */
export async function requireReachableCluster(
  cluster: { server: string; reachable(timeoutMs: number): Promise<string | undefined> },
  requestTimeoutMs: number,
): Promise<void> {
  const unreachable = await cluster.reachable(Math.min(requestTimeoutMs, 10_000));
  if (unreachable !== undefined) {
    throw new StartupError(
      `cannot reach the Kubernetes API server at ${cluster.server} (${unreachable}): check --kubeconfig (or the in-cluster service account) and that the cluster is up`,
    );
  }
}

/**
 * watchRedis says once when Redis does not answer at start-up (the API answers 503 meanwhile), and
 * again when it does. A Redis that comes up refusing the credentials (checked at start-up only when
 * it answered then) is said too, and the watch goes on until the credentials are mended.
 */
export function watchRedis(opened: OpenedStore, down: () => void, up: () => void, refused: (reply: string) => void): void {
  void opened.reachable(1000).then(async (reachable) => {
    if (reachable) return;
    down();
    if (await opened.reachable(Infinity)) return up();
    const reply = await opened.refusal(0);
    if (reply !== undefined) refused(reply);
    await opened.answered();
    up();
  });
}

/**
 * untilSignalled resolves at the first SIGINT or SIGTERM, after calling onFirst (say so at once);
 * a second one (Ctrl-C again, or a signal forwarded twice, as npm does) ends the process there and
 * then (130 or 143). Call it before the line that says the process serves: whoever reads that
 * line may stop it at once.
 */
export function untilSignalled(onFirst: (signal: 'SIGINT' | 'SIGTERM') => void = () => undefined): Promise<'SIGINT' | 'SIGTERM'> {
  return new Promise((done) => {
    let stopping = false;
    const stop = (signal: 'SIGINT' | 'SIGTERM'): void => {
      if (stopping) process.exit(signal === 'SIGINT' ? 130 : 143);
      stopping = true;
      onFirst(signal);
      done(signal);
    };
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
  });
}
