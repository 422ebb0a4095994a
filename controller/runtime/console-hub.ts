import type { Bundle } from '../core/bundle.ts';
import { findCondition } from '../core/conditions.ts';
import type { ConditionType } from '../core/reasons.ts';
import { diagnosticLine } from '../core/diagnostics.ts';
import type { OutboxEntry } from '../gateways/console-gateway.ts';
import type { BundleRegistry } from '../verifier/bundle-registry.ts';
import type { ConsoleMessage, ConsoleObject, ConsoleStore, ObjectDetail, Snapshot as ConsoleSnapshot } from '../console/types.ts';
import type { ObjectSource, Report } from './local-run.ts';

// What the console page of `smsauth run` shows, kept up to date from the run's reports and the
// console gateway's messages, and told to the pages open (server-sent events) as it changes.

/** ConsoleEvent is a change told to the pages open. */
export type ConsoleEvent =
  | { type: 'objects'; revision: string; refused: string | null; problems: string[]; objects: ConsoleObject[]; stores: ConsoleStore[] }
  | { type: 'message'; message: ConsoleMessage };

const KIND_ORDER = ['SmsGatewayAccount', 'SmsTemplate', 'IdentityStore', 'SecurityRole'];

/** ConsoleHub holds the console's state and tells subscribers each change. */
export class ConsoleHub {
  private readonly registry: BundleRegistry;
  private readonly helpdesk: boolean;
  private readonly maxMessages: number;
  private last: Report | undefined;
  private objects: ConsoleObject[] = [];
  /** Where each object was last read (kept while a file cannot be parsed). */
  private readonly sources = new Map<string, ObjectSource>();
  private readonly messages: ConsoleMessage[] = [];
  private seq = 0;
  private readonly listeners = new Set<(e: ConsoleEvent) => void>();
  private readonly closers = new Set<() => void>();
  private isClosed = false;

  constructor(registry: BundleRegistry, options: { helpdesk: boolean; maxMessages?: number }) {
    this.registry = registry;
    this.helpdesk = options.helpdesk;
    this.maxMessages = options.maxMessages ?? 200;
  }

  /** report takes a reload's report: the objects and where they are declared. */
  report(report: Report): void {
    this.last = report;
    for (const s of report.sources) this.sources.set(keyOf(s.kind, s.namespace, s.name), s);
    this.objects = [...report.state.statuses.entries()]
      .map(([statusKey, e]) => {
        const c = (type: ConditionType) => findCondition(e.status.conditions, type);
        const ready = c('Ready');
        const source = this.sources.get(keyOf(e.ref.kind, e.ref.namespace, e.ref.name));
        // The version serving: the last valid one (a store's status says it too).
        const live = report.state.live.get(statusKey)?.metadata.generation ?? (e.status as { liveGeneration?: number }).liveGeneration;
        return {
          kind: e.ref.kind,
          namespace: e.ref.namespace,
          name: e.ref.name,
          ready: ready?.status ?? 'Unknown',
          reconciling: c('Reconciling')?.status ?? 'Unknown',
          stalled: c('Stalled')?.status ?? 'Unknown',
          reason: ready?.reason ?? '',
          message: ready?.message ?? '',
          observedGeneration: e.status.observedGeneration ?? null,
          liveGeneration: live ?? null,
          file: source?.file ?? null,
          line: source?.startLine ?? null,
        };
      })
      .sort((a, b) => KIND_ORDER.indexOf(a.kind) - KIND_ORDER.indexOf(b.kind) || a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name));
    const live = new Set(this.objects.map((o) => keyOf(o.kind, o.namespace, o.name)));
    for (const k of [...this.sources.keys()]) if (!live.has(k)) this.sources.delete(k);
    this.tell({ type: 'objects', ...this.head(), objects: this.objects, stores: this.stores() });
  }

  /** preload takes the messages an earlier run left in the outbox file (oldest first), so that a restart keeps the pane. */
  preload(entries: readonly OutboxEntry[]): void {
    for (const e of entries.slice(-this.maxMessages)) this.message(e);
  }

  /** message takes a message the console gateway "sent". */
  message(entry: OutboxEntry): void {
    const message: ConsoleMessage = {
      seq: ++this.seq,
      time: entry.time,
      namespace: entry.namespace,
      store: entry.store ?? null,
      gateway: entry.gateway,
      to: lastFour(entry.to),
      text: entry.text,
      code: /\b(\d{4,10})\b/.exec(entry.text)?.[1] ?? null,
      reference: entry.reference,
    };
    this.messages.unshift(message);
    this.messages.length = Math.min(this.messages.length, this.maxMessages);
    this.tell({ type: 'message', message });
  }

  snapshot(): ConsoleSnapshot {
    return { ...this.head(), objects: this.objects, messages: [...this.messages], stores: this.stores(), helpdesk: this.helpdesk };
  }

  /** detail is one object's page, or undefined when there is no such object. */
  detail(kind: string, namespace: string, name: string): ObjectDetail | undefined {
    const object = this.objects.find((o) => o.kind === kind && o.namespace === namespace && o.name === name);
    const entry = this.last?.state.statuses.get(keyOf(kind, namespace, name));
    if (object === undefined || entry === undefined) return undefined;
    const source = this.sources.get(keyOf(kind, namespace, name));
    const diagnostics = (this.last?.diagnostics ?? [])
      .filter(
        (d) =>
          (d.kind === kind && (d.namespace ?? 'default') === namespace && d.name === name) ||
          (d.kind === undefined && source !== undefined && d.file === source.file),
      )
      .map((d) => ({
        line: d.range?.start.line ?? 0,
        column: d.range?.start.column ?? 0,
        severity: d.severity,
        code: d.code,
        message: d.message,
        pointer: d.pointer ?? '',
      }));
    const conditions = (entry.status.conditions ?? []).map((c) => ({
      type: c.type,
      status: c.status,
      reason: c.reason,
      message: c.message,
      lastTransitionTime: c.lastTransitionTime,
    }));
    return { object, source: source === undefined ? null : { file: source.file, startLine: source.startLine, text: source.text }, diagnostics, conditions };
  }

  /** close ends every feed, so that the server stops at once. */
  close(): void {
    this.isClosed = true;
    for (const c of [...this.closers]) c();
  }

  /** onClose calls fn when the hub closes (at once if it has), until the returned function is called. */
  onClose(fn: () => void): () => void {
    if (this.isClosed) {
      fn();
      return () => undefined;
    }
    this.closers.add(fn);
    return () => this.closers.delete(fn);
  }

  /** subscribe calls listener with each change until the returned function is called. */
  subscribe(listener: (e: ConsoleEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private head(): { revision: string; refused: string | null; problems: string[] } {
    const r = this.last;
    return {
      revision: r?.revision ?? '',
      refused: r?.refused ?? null,
      problems: r === undefined ? [] : [...r.diagnostics.map(diagnosticLine), ...r.state.problems.map((p) => `error: ${p.message}`)],
    };
  }

  private stores(): ConsoleStore[] {
    return this.registry
      .storeKeys()
      .map((k) => this.registry.get(...(k.split('/') as [string, string]))?.bundle)
      .filter((b): b is Bundle => b !== undefined)
      .map((b) => ({
        namespace: b.namespace,
        name: b.identityStore,
        offered: b.sms.offered,
        lastDigitsChallenge: b.sms.lastDigitsChallenge,
        enrollmentEnabled: b.enrollmentEnabled,
        directory: b.directory?.kind ?? null,
        users: b.directory?.kind === 'static' ? b.directory.users.map((u) => u.name) : [],
      }));
  }

  private tell(e: ConsoleEvent): void {
    for (const l of this.listeners) l(e);
  }
}

function keyOf(kind: string, namespace: string, name: string): string {
  return `${kind}/${namespace}/${name}`;
}

/** lastFour masks a number but for its last four digits: the console's one concession to telling phones apart. */
export function lastFour(e164: string): string {
  const digits = e164.replace(/\D/g, '');
  return `${e164.startsWith('+') ? '+' : ''}${'•'.repeat(Math.max(0, digits.length - 4))}${digits.slice(-4)}`;
}
