import { findCondition } from '../core/conditions.ts';
import { diagnosticLine } from '../core/diagnostics.ts';
import { KINDS } from '../core/kinds.ts';
import type { Report } from '../runtime/local-run.ts';
import type { PrintedMessage } from '../gateways/console-gateway.ts';
import type { ComplianceView } from '../verifier/verifier.ts';
import type { CliIo } from './cli-io.ts';
import { formatTable } from './table.ts';

/** StatusOutput shows what `smsauth run` applies: a table redrawn on a terminal, JSON lines on a pipe. */
export interface StatusOutput {
  /** report shows what a reload applied; `reason` is what started it (the files that changed). */
  report(r: Report, reason?: string): void;
  /** message shows a console-gateway message (the development inbox: the one place a code shows): one line on a pipe, its lines as sent on a terminal. */
  message(line: string, parts?: PrintedMessage): void;
  /** note shows a line about the process (listening, stopping). */
  note(line: string): void;
  /** compliance shows, for each role enforcing SMS, how many of its members have enrolled. */
  compliance(reports: readonly ComplianceView[]): void;
  /** idle says a reload and what followed it (its directory checks, the enrollment count) are done, with nothing else pending. */
  idle(revision: string): void;
}

/** complianceLines are a line per role enforcing SMS: its store, name and enrolled members. */
export function complianceLines(reports: readonly ComplianceView[]): string[] {
  return reports.flatMap((r) =>
    r.roles.map((role) => {
      const share = role.members === 0 ? '' : ` (${Math.floor((role.enrolled / role.members) * 100)}%)`;
      return `${r.namespace}/${r.store} role ${role.role}: ${role.enrolled} of ${role.members}${role.truncated ? '+' : ''} members enrolled SMS${share}${role.notEnrolled > 0 ? `; list them with smsauth report enrollment ${r.namespace}/${r.store}` : ''}`;
    }),
  );
}

/** createStatusOutput picks the table for a terminal and JSON lines otherwise. */
export function createStatusOutput(io: CliIo, header: () => string, now: () => number = Date.now): StatusOutput {
  return io.isTTY ? tableOutput(io, header, now) : jsonOutput(io);
}

function jsonOutput(io: CliIo): StatusOutput {
  const line = (o: unknown): void => io.stdout(JSON.stringify(o) + '\n');
  return {
    report(r, reason) {
      const changed = new Set([...r.delta.statuses, ...r.delta.removedStatuses]);
      line({
        time: new Date().toISOString(),
        event: r.refused !== undefined ? 'refused' : 'applied',
        ...(reason !== undefined ? { reason } : {}),
        revision: r.revision,
        ...(r.refused !== undefined ? { refused: r.refused } : {}),
        diagnostics: r.diagnostics.map(diagnosticLine),
        problems: r.state.problems.map((p) => p.message),
        swapped: r.swapped,
        objects: [...r.state.statuses.entries()]
          .filter(([k]) => changed.has(k))
          .map(([, e]) => {
            const ready = findCondition(e.status.conditions, 'Ready');
            return {
              kind: e.ref.kind,
              namespace: e.ref.namespace,
              name: e.ref.name,
              ready: ready?.status ?? 'Unknown',
              reason: ready?.reason ?? '',
              message: ready?.message ?? '',
              observedGeneration: e.status.observedGeneration,
            };
          }),
        removed: r.delta.removedStatuses,
      });
    },
    message(text) {
      io.stderr(text.endsWith('\n') ? text : `${text}\n`);
    },
    note(text) {
      line({ time: new Date().toISOString(), event: 'note', message: text });
    },
    compliance(reports) {
      for (const r of reports) line({ time: new Date().toISOString(), event: 'compliance', namespace: r.namespace, store: r.store, roles: r.roles });
    },
    idle(revision) {
      line({ time: new Date().toISOString(), event: 'idle', revision });
    },
  };
}

function tableOutput(io: CliIo, header: () => string, now: () => number): StatusOutput {
  let last: Report | undefined;
  let enrollment: string[] = [];
  const messages: string[] = [];
  const notes: string[] = [];
  const render = (): void => {
    const out: string[] = ['\x1b[H\x1b[2J', header(), ''];
    if (last !== undefined) {
      const order = (kind: string): number => KINDS.findIndex((k) => k.kind === kind);
      const rows = [...last.state.statuses.values()]
        .sort((a, b) => order(a.ref.kind) - order(b.ref.kind) || a.ref.namespace.localeCompare(b.ref.namespace) || a.ref.name.localeCompare(b.ref.name))
        .map((e) => {
          const ready = findCondition(e.status.conditions, 'Ready');
          return [
            e.ref.kind,
            `${e.ref.namespace}/${e.ref.name}`,
            ready?.status ?? 'Unknown',
            ready?.reason ?? '',
            age(ready?.lastTransitionTime, now()),
            ready?.message ?? '',
          ];
        });
      out.push(formatTable(['KIND', 'NAME', 'READY', 'REASON', 'AGE', 'MESSAGE'], rows));
      if (last.refused !== undefined) out.push(`REFUSED: ${last.refused}`, '');
      const problems = [...last.diagnostics.map(diagnosticLine), ...last.state.problems.map((p) => `error: ${p.message}`)];
      if (problems.length > 0) out.push('Problems:', ...problems.map((p) => `  ${p}`), '');
    }
    if (enrollment.length > 0) out.push('Enrollment (roles that enforce SMS):', ...enrollment.map((l) => `  ${l}`), '');
    if (messages.length > 0) out.push('Messages (console gateway, the development inbox):', ...messages.map((m) => `  ${m}`), '');
    if (notes.length > 0) out.push(...notes.slice(-3));
    io.stdout(out.join('\n') + '\n');
  };
  return {
    report(r) {
      last = r;
      render();
    },
    message(text, parts) {
      // On a terminal a text's own line breaks show as line breaks, indented under its heading.
      messages.push(
        parts === undefined
          ? text.trimEnd()
          : `${parts.heading}:\n${parts.text
              .trimEnd()
              .split(/\r?\n/)
              .map((l) => `    ${l}`)
              .join('\n')}`,
      );
      if (messages.length > 8) messages.shift();
      render();
    },
    note(text) {
      notes.push(text);
      render();
    },
    compliance(reports) {
      enrollment = complianceLines(reports);
      render();
    },
    // A terminal's table shows the state; being idle is nothing to show.
    idle() {},
  };
}

function age(since: string | undefined, now: number): string {
  if (since === undefined) return '';
  const s = Math.max(0, Math.floor((now - Date.parse(since)) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172_800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86_400)}d`;
}
