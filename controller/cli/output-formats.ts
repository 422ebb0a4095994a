import { isAbsolute } from 'node:path';
import { pathToFileURL } from 'node:url';
import { CODE_DESCRIPTIONS } from '../core/diagnostic-descriptions.ts';
import { countBySeverity, type Diagnostic } from '../core/diagnostics.ts';

/** The output formats of `smsauth validate`. */
export const FORMATS = ['text', 'json', 'sarif', 'github'] as const;
/** An output format. */
export type Format = (typeof FORMATS)[number];

/** RunSummary counts what a validation looked at. */
export interface RunSummary {
  files: number;
  objects: number;
  secrets: number;
}

/** formatDiagnostics renders diagnostics in one of the output formats, ending with a newline. */
export function formatDiagnostics(format: Format, diagnostics: readonly Diagnostic[], summary: RunSummary, version: string): string {
  switch (format) {
    case 'text':
      return formatText(diagnostics, summary);
    case 'json':
      return (
        JSON.stringify(
          { valid: countBySeverity(diagnostics).error === 0, summary: { ...summary, ...countBySeverity(diagnostics) }, diagnostics: diagnostics.map(flatten) },
          null,
          2,
        ) + '\n'
      );
    case 'sarif':
      return JSON.stringify(sarif(diagnostics, version), null, 2) + '\n';
    case 'github':
      return diagnostics.map(githubCommand).join('');
  }
}

function location(d: Diagnostic): string {
  if (d.file === undefined) return 'smsauth';
  return d.range === undefined ? d.file : `${d.file}:${d.range.start.line}:${d.range.start.column}`;
}

function formatText(diagnostics: readonly Diagnostic[], summary: RunSummary): string {
  const lines = diagnostics.map((d) => `${location(d)}: ${d.severity} ${d.code} ${d.message}${subject(d)}`);
  const c = countBySeverity(diagnostics);
  lines.push(
    `${summary.objects} object${summary.objects === 1 ? '' : 's'} and ${summary.secrets} secret${summary.secrets === 1 ? '' : 's'} in ${summary.files} file${summary.files === 1 ? '' : 's'}: ` +
      `${c.error} error${c.error === 1 ? '' : 's'}, ${c.warning} warning${c.warning === 1 ? '' : 's'}`,
  );
  return lines.join('\n') + '\n';
}

function subject(d: Diagnostic): string {
  return d.kind !== undefined && d.name !== undefined ? ` [${d.kind} ${d.namespace ?? 'default'}/${d.name}]` : '';
}

function flatten(d: Diagnostic): Record<string, unknown> {
  return {
    file: d.file ?? null,
    line: d.range?.start.line ?? null,
    column: d.range?.start.column ?? null,
    endLine: d.range?.end.line ?? null,
    endColumn: d.range?.end.column ?? null,
    severity: d.severity,
    code: d.code,
    message: d.message,
    kind: d.kind ?? null,
    namespace: d.namespace ?? null,
    name: d.name ?? null,
    pointer: d.pointer,
  };
}

function sarif(diagnostics: readonly Diagnostic[], version: string): Record<string, unknown> {
  const codes = [...new Set(diagnostics.map((d) => d.code))].sort();
  return {
    $schema: 'https://json.schemastore.org/sarif-2.1.0.json',
    version: '2.1.0',
    runs: [
      {
        tool: {
          driver: {
            name: 'smsauth',
            version,
            informationUri: 'https://smsauth.io/docs/diagnostics',
            rules: codes.map((code) => ({
              id: code,
              name: code,
              shortDescription: { text: CODE_DESCRIPTIONS[code] },
              helpUri: `https://smsauth.io/docs/diagnostics#${code}`,
            })),
          },
        },
        columnKind: 'utf16CodeUnits',
        results: diagnostics.map((d) => ({
          ruleId: d.code,
          ruleIndex: codes.indexOf(d.code),
          level: d.severity === 'info' ? 'note' : d.severity,
          message: { text: d.message },
          locations:
            d.file === undefined
              ? []
              : [
                  {
                    physicalLocation: {
                      artifactLocation: { uri: sarifUri(d.file) },
                      ...(d.range !== undefined
                        ? {
                            region: {
                              startLine: d.range.start.line,
                              startColumn: d.range.start.column,
                              endLine: d.range.end.line,
                              endColumn: Math.max(d.range.end.column, d.range.start.column),
                            },
                          }
                        : {}),
                    },
                    ...(d.kind !== undefined && d.name !== undefined
                      ? { logicalLocations: [{ fullyQualifiedName: `${d.kind}/${d.namespace ?? 'default'}/${d.name}${d.pointer}`, kind: 'object' }] }
                      : {}),
                  },
                ],
          properties: { pointer: d.pointer },
        })),
      },
    ],
  };
}

function githubCommand(d: Diagnostic): string {
  const command = d.severity === 'info' ? 'notice' : d.severity;
  const props: string[] = [];
  if (d.file !== undefined) props.push(`file=${escapeProperty(d.file)}`);
  if (d.range !== undefined) {
    props.push(`line=${d.range.start.line}`, `col=${d.range.start.column}`, `endLine=${d.range.end.line}`);
    if (d.range.end.line === d.range.start.line) props.push(`endColumn=${Math.max(d.range.end.column, d.range.start.column)}`);
  }
  props.push(`title=${escapeProperty(`smsauth ${d.code}`)}`);
  return `::${command} ${props.join(',')}::${escapeData(d.message + subject(d))}\n`;
}

// Workflow command escaping, as @actions/core does it.
function escapeData(s: string): string {
  return s.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}

function escapeProperty(s: string): string {
  return escapeData(s).replace(/:/g, '%3A').replace(/,/g, '%2C');
}

/**
 * sarifUri is a file's path as a SARIF artifact URI: relative paths segment by segment (a # or a
 * colon in a name stays part of it), absolute ones as file: URLs.
 */
function sarifUri(file: string): string {
  if (isAbsolute(file)) return pathToFileURL(file).href;
  return file
    .split(/[\\/]/)
    .map((segment) => encodeURIComponent(segment))
    .join('/');
}
