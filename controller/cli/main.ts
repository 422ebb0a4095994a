import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../adapters/files.ts';
import { processIo, UsageError, type CliIo } from './cli-io.ts';
import { CONTROLLER_USAGE, runController } from './controller-command.ts';
import { GATEWAY_USAGE, runGateway } from './gateway-command.ts';
import { PLAN_USAGE, runPlan } from './plan-command.ts';
import { RUN_USAGE, runRun } from './run-command.ts';
import { SIDECAR_USAGE, runSidecar } from './sidecar-command.ts';
import { runValidate, VALIDATE_USAGE } from './validate-command.ts';

const USAGE = `Usage: smsauth COMMAND [options]

SMS authentication for identity stores, managed as code.

Commands:
  run --dir DIR      serve the verification endpoint for a folder, following it (local mode)
  validate PATH...   lint resources in files and folders (CI)
  plan --dir DIR     reconcile a folder once: conditions and bundles
  gateway test NS/NAME --to NUMBER
                     send a test message through a gateway account
  controller         the cluster controller (custom resources in, status and bundles out)
  sidecar --bundle-dir DIR
                     the verification endpoint next to an application in a cluster
  version            print the version

Run 'smsauth COMMAND --help' for a command's options.
`;

type Command = (argv: string[], io: CliIo, version: string) => Promise<number>;

const COMMANDS: Record<string, { run: Command; usage: string }> = {
  validate: { run: runValidate, usage: VALIDATE_USAGE },
  plan: { run: runPlan, usage: PLAN_USAGE },
  run: { run: (argv, io) => runRun(argv, io), usage: RUN_USAGE },
  gateway: { run: (argv, io) => runGateway(argv, io), usage: GATEWAY_USAGE },
  sidecar: { run: (argv, io) => runSidecar(argv, io), usage: SIDECAR_USAGE },
  controller: { run: (argv, io) => runController(argv, io), usage: CONTROLLER_USAGE },
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
  const command = COMMANDS[name];
  if (command === undefined) {
    io.stderr(`smsauth: unknown command ${name}\n\n${USAGE}`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    io.stdout(command.usage);
    return 0;
  }
  try {
    return await command.run(rest, io, version);
  } catch (err) {
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      io.stderr(`smsauth ${name}: ${(err as Error).message}\n\n${command.usage}`);
      return 2;
    }
    io.stderr(`smsauth ${name}: ${describeFailure(err)}\n`);
    return 1;
  }
}

/**
 * describeFailure says what stopped a command. smsauth's own errors say it in their message;
 * anything else (a parser's error, say) is named by its class and code only, with where it was
 * thrown: messages of libraries can quote what they were reading, a key or a token.
 */
export function describeFailure(err: unknown): string {
  if (!(err instanceof Error)) return 'failed';
  const code = (err as { code?: unknown }).code;
  const own = err.constructor === Error && code === undefined && err.stack?.split('\n').find((l) => l.trimStart().startsWith('at '))?.includes('/controller/') === true;
  if (own) return err.message;
  const frames = (err.stack ?? '').split('\n').filter((l) => l.trimStart().startsWith('at ')).slice(0, 5).join('\n');
  return `failed: ${err.name}${typeof code === 'string' ? ` (${code})` : ''}${frames !== '' ? `\n${frames}` : ''}`;
}

function packageVersion(): string {
  return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
}
