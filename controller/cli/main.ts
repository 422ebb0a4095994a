import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../adapters/files.ts';
import { processIo, StartupError, UsageError, type CliIo } from './cli-io.ts';

const USAGE = `Usage: smsauth COMMAND [options]

SMS authentication for identity stores, managed as code.

Commands:
  run --dir DIR      serve the verification endpoint for a folder, following it (local mode)
  validate PATH...   lint resources in files and folders (CI)
  plan --dir DIR     reconcile a folder once: conditions and bundles
  gateway test NS/NAME --to NUMBER
                     send a test message through a gateway account
  directory test NS/STORE [--user NAME]
                     connect to an identity store's directory and look a user up
  report enrollment NS/STORE
                     list the members of roles enforcing SMS who have not enrolled
  controller         the cluster controller (custom resources in, status and bundles out)
  webhook            the validating admission webhook (HTTPS, for the API server)
  sidecar --bundle-dir DIR
                     the verification endpoint next to an application in a cluster
  events replay NS/STORE --since TIME
                     send a store's events again, from its history
  version            print the version

Run 'smsauth COMMAND --help' for a command's options.
`;

type Command = (argv: string[], io: CliIo, version: string) => Promise<number>;

// Each command's module (and the libraries it needs) loads only when that command runs: the
// controller's Kubernetes client costs `smsauth validate` nothing, and a failure to start is told
// within a second.
const COMMANDS: Record<string, () => Promise<{ run: Command; usage: string }>> = {
  validate: async () => {
    const m = await import('./validate-command.ts');
    return { run: m.runValidate, usage: m.VALIDATE_USAGE };
  },
  plan: async () => {
    const m = await import('./plan-command.ts');
    return { run: m.runPlan, usage: m.PLAN_USAGE };
  },
  run: async () => {
    const m = await import('./run-command.ts');
    return { run: (argv, io) => m.runRun(argv, io), usage: m.RUN_USAGE };
  },
  gateway: async () => {
    const m = await import('./gateway-command.ts');
    return { run: (argv, io) => m.runGateway(argv, io), usage: m.GATEWAY_USAGE };
  },
  directory: async () => {
    const m = await import('./directory-command.ts');
    return { run: (argv, io) => m.runDirectory(argv, io), usage: m.DIRECTORY_USAGE };
  },
  report: async () => {
    const m = await import('./report-command.ts');
    return { run: (argv, io) => m.runReport(argv, io), usage: m.REPORT_USAGE };
  },
  sidecar: async () => {
    const m = await import('./sidecar-command.ts');
    return { run: (argv, io) => m.runSidecar(argv, io), usage: m.SIDECAR_USAGE };
  },
  webhook: async () => {
    const m = await import('./webhook-command.ts');
    return { run: (argv, io) => m.runWebhook(argv, io), usage: m.WEBHOOK_USAGE };
  },
  events: async () => {
    const m = await import('./events-command.ts');
    return { run: (argv, io) => m.runEvents(argv, io), usage: m.EVENTS_USAGE };
  },
  controller: async () => {
    const m = await import('./controller-command.ts');
    return { run: (argv, io) => m.runController(argv, io), usage: m.CONTROLLER_USAGE };
  },
};

/** main runs the smsauth command line and returns the exit status; it never calls process.exit. */
export async function main(argv: string[], io: CliIo = processIo()): Promise<number> {
  const [name, ...rest] = argv;
  const version = packageVersion();
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.stdout(USAGE);
    return name === undefined ? 2 : 0;
  }
  if (name === 'version' || name === '--version') {
    io.stdout(`smsauth ${version}\n`);
    return 0;
  }
  const load = COMMANDS[name];
  if (load === undefined) {
    const guess = closest(name, Object.keys(COMMANDS));
    io.stderr(`smsauth: unknown command ${name}${guess !== undefined ? `; did you mean ${guess}?` : ''} (smsauth --help lists them)\n`);
    return 2;
  }
  const command = await load();
  if (rest.includes('--help') || rest.includes('-h')) {
    io.stdout(command.usage);
    return 0;
  }
  try {
    return await command.run(rest, io, version);
  } catch (err) {
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      io.stderr(`smsauth ${name}: ${usageMessage(err as Error, command.usage)}; see smsauth ${name} --help\n`);
      return 2;
    }
    if (err instanceof StartupError) {
      io.stderr(`smsauth ${name}: ${err.message}\n`);
      return 1;
    }
    const debug = isDebug(rest);
    const said = describeFailure(err, { stack: debug });
    const hint = !debug && said.startsWith('failed:') && command.usage.includes('--log-level') ? '; run with --log-level debug for where' : '';
    io.stderr(`smsauth ${name}: ${said}${hint}\n`);
    return 1;
  }
}

/** usageMessage says what is wrong on the command line in a line of its own words (Node's parser's are long), with a guess for a misspelt option. */
function usageMessage(err: Error, usage: string): string {
  const code = (err as { code?: string }).code;
  const option = /'(-{1,2}[^'\s]+)'/.exec(err.message)?.[1];
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && option !== undefined) {
    const bare = option.split('=')[0]!;
    const guess = closest(bare, [...new Set(usage.match(/--[a-z][a-z-]*/g) ?? [])]);
    return `unknown option ${bare}${guess !== undefined ? ` (did you mean ${guess}?)` : ''}`;
  }
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && option !== undefined) {
    const flag = option.split(/[ ,]/)[0]!;
    // A switch given a value (--allow-empty=yes) is told so, not the other way round.
    return /does not take an argument/.test(err.message) ? `${flag} is a switch and takes no value (give ${flag} alone)` : `${flag} takes a value`;
  }
  if (code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') return `unexpected argument ${/'([^']*)'/.exec(err.message)?.[1] ?? ''}`.trimEnd();
  return err.message.split('\n')[0]!;
}

/** closest is the candidate nearest to a misspelt word (at most two edits, and fewer than half its letters), if any. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: { candidate: string; distance: number } | undefined;
  for (const candidate of candidates) {
    const distance = editDistance(word, candidate);
    if (distance <= 2 && distance < word.replace(/^-+/, '').length / 2 && (best === undefined || distance < best.distance)) best = { candidate, distance };
  }
  return best?.candidate;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const swap = i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1] ? previous[j - 2]! : Infinity;
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1), swap);
    }
    previous = current;
  }
  return previous[b.length]!;
}

function isDebug(argv: readonly string[]): boolean {
  return argv.includes('--log-level=debug') || argv.some((a, i) => a === '--log-level' && argv[i + 1] === 'debug');
}

/**
 * describeFailure says what stopped a command, in one line unless stack is set. smsauth's own errors
 * say it in their message; anything else (a parser's error, say) is named by its class and code
 * only, with where it was thrown when asked for: messages of libraries can quote what they were
 * reading, a key or a token.
 */
export function describeFailure(err: unknown, options: { stack?: boolean } = {}): string {
  if (!(err instanceof Error)) return 'failed';
  const code = (err as { code?: unknown }).code;
  const own =
    err.constructor === Error &&
    code === undefined &&
    err.stack
      ?.split('\n')
      .find((l) => l.trimStart().startsWith('at '))
      ?.includes('/controller/') === true;
  if (own) return err.message;
  const frames =
    options.stack === true
      ? (err.stack ?? '')
          .split('\n')
          .filter((l) => l.trimStart().startsWith('at '))
          .slice(0, 5)
          .join('\n')
      : '';
  return `failed: ${err.name}${typeof code === 'string' ? ` (${code})` : ''}${frames !== '' ? `\n${frames}` : ''}`;
}

function packageVersion(): string {
  return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
}
