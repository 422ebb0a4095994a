import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { packageRoot, readSchemaSet, readYamlTree } from '../adapters/files.ts';
import { countBySeverity, type Diagnostic } from '../core/diagnostics.ts';
import { DEFAULT_LIMITS } from '../load/yaml-documents.ts';
import { createSchemaValidator } from '../validate/schema-validator.ts';
import { validateFiles, type ValidationResult } from '../validate/validate-files.ts';
import { UsageError, type CliIo } from './cli-io.ts';
import { FORMATS, formatDiagnostics, type Format } from './output-formats.ts';

/** VALIDATE_USAGE is the help text of `smsauth validate`. */
export const VALIDATE_USAGE = `Usage: smsauth validate [options] PATH...

Checks smsauth resources in files and folders (.yaml, .yml; folders recursively) against the
JSON Schemas and the semantic rules, as a CI lint. Other kinds are skipped with a note. A PATH of
- reads standard input (helm template … | smsauth validate -).

Options:
  -o, --output FORMAT     text (default), json, sarif or github (workflow annotations);
                          --format is the same option
      --strict            treat warnings as errors
  -q, --quiet             do not print notes (skipped documents)
      --max-file-size N   largest file read, in bytes (default ${DEFAULT_LIMITS.maxFileBytes})

Exit status: 0 valid, 1 errors found (or warnings with --strict), 2 usage or I/O error.
`;

/** LoadedTree is what loadTree found: the validation result, the I/O errors and how many files were read. */
export interface LoadedTree {
  result: ValidationResult;
  ioErrors: Diagnostic[];
  files: number;
}

/** loadTree reads and validates paths with the package's schemas: the shared first step of validate, plan and run. */
export async function loadTree(paths: readonly string[], maxFileBytes = DEFAULT_LIMITS.maxFileBytes): Promise<LoadedTree> {
  const validator = createSchemaValidator(await readSchemaSet(join(packageRoot(), 'schemas')));
  const tree = await readYamlTree(paths, maxFileBytes);
  const result = validateFiles(tree.files, validator, { ...DEFAULT_LIMITS, maxFileBytes });
  result.diagnostics = [...tree.diagnostics, ...result.diagnostics];
  return { result, ioErrors: tree.ioErrors, files: tree.files.length };
}

/** outputOption reads -o/--output and its other name --format (plan and validate take both); giving both with different values is a mistake. */
export function outputOption(output: string | undefined, format: string | undefined, fallback: string): string {
  if (output !== undefined && format !== undefined && output !== format)
    throw new UsageError(`--output ${output} and --format ${format} are the same option; give one`);
  return output ?? format ?? fallback;
}

/** runValidate is `smsauth validate`; it returns the exit status. */
export async function runValidate(argv: string[], io: CliIo, version: string): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      output: { type: 'string', short: 'o' },
      format: { type: 'string' },
      strict: { type: 'boolean', default: false },
      quiet: { type: 'boolean', short: 'q', default: false },
      'max-file-size': { type: 'string' },
    },
  });
  const output = outputOption(values.output, values.format, 'text');
  if (!(FORMATS as readonly string[]).includes(output)) throw new UsageError(`unknown output format ${output}; use one of ${FORMATS.join(', ')}`);
  if (positionals.length === 0) throw new UsageError('name at least one file or folder to validate');
  // Standard input can be read once: a second - would wait for ever for what the first took.
  if (positionals.filter((p) => p === '-').length > 1) throw new UsageError('- (standard input) is named more than once; name it once');
  const maxFileBytes = values['max-file-size'] === undefined ? DEFAULT_LIMITS.maxFileBytes : Number(values['max-file-size']);
  if (!/^\d+$/.test(values['max-file-size'] ?? '1') || !Number.isSafeInteger(maxFileBytes) || maxFileBytes <= 0)
    throw new UsageError('--max-file-size takes a positive number of bytes, in digits');

  const { result, ioErrors, files } = await loadTree(positionals, maxFileBytes);
  let diagnostics = [...ioErrors, ...result.diagnostics];
  if (values.strict) diagnostics = diagnostics.map((d) => (d.severity === 'warning' ? { ...d, severity: 'error' } : d));
  if (values.quiet) diagnostics = diagnostics.filter((d) => d.severity !== 'info');
  const summary = { files, objects: result.valid.length + result.rejected.length, secrets: result.secrets.length };
  io.stdout(formatDiagnostics(output as Format, diagnostics, summary, version));
  if (ioErrors.length > 0) return 2;
  return countBySeverity(diagnostics).error > 0 ? 1 : 0;
}
