import type { Logger } from 'pino';
import { errorFields } from '../core/error-fields.ts';
import type { EventRef } from '../adapters/kubernetes.ts';

/** EventSink is where Events go: the Events API (events.k8s.io/v1). */
export interface EventSink {
  create(ref: EventRef, type: 'Normal' | 'Warning', reason: string, note: string): Promise<string>;
  updateSeries(namespace: string, name: string, count: number, lastObservedMs: number): Promise<void>;
}

/** How long an Event stays the one that repeats of it are counted on (client-go's events/v1 recorder uses 6 minutes). */
const SERIES_WINDOW_MS = 6 * 60_000;

interface Series {
  namespace: string;
  name: string | undefined;
  count: number;
  lastObservedMs: number;
  /** The write in flight (create or series update); a repeat meanwhile is written after it. */
  writing: Promise<void> | undefined;
  dirty: boolean;
}

/**
 * EventRecorder records Events deduplicated as the Events API does: an Event isomorphic to one
 * recorded within SERIES_WINDOW_MS (same object, reason, type and reporter) is not created again;
 * the first one's series counts it (count, lastObservedTime), one write at a time.
 */
export class EventRecorder {
  private readonly series = new Map<string, Series>();
  private readonly sink: EventSink;
  private readonly now: () => number;
  private readonly log: Logger;

  constructor(sink: EventSink, now: () => number, log: Logger) {
    this.sink = sink;
    this.now = now;
    this.log = log;
  }

  record(ref: EventRef, type: 'Normal' | 'Warning', reason: string, note: string): void {
    const key = `${ref.kind}/${ref.namespace}/${ref.name}/${ref.uid ?? ''}/${type}/${reason}`;
    const now = this.now();
    const known = this.series.get(key);
    if (known !== undefined && now - known.lastObservedMs < SERIES_WINDOW_MS) {
      known.count += 1;
      known.lastObservedMs = now;
      known.dirty = true;
      this.flush(known);
      return;
    }
    this.forgetOld(now);
    const entry: Series = { namespace: ref.namespace, name: undefined, count: 1, lastObservedMs: now, writing: undefined, dirty: false };
    this.series.set(key, entry);
    entry.writing = this.sink.create(ref, type, reason, note).then(
      (name) => {
        entry.name = name;
        entry.writing = undefined;
        this.flush(entry);
      },
      (err: unknown) => {
        entry.writing = undefined;
        this.series.delete(key);
        this.log.warn({ err: errorFields(err) }, 'event not recorded');
      },
    );
  }

  /** flush writes a series' count once nothing is being written for it. */
  private flush(entry: Series): void {
    if (entry.writing !== undefined || !entry.dirty || entry.name === undefined || entry.name === '') return;
    entry.dirty = false;
    entry.writing = this.sink.updateSeries(entry.namespace, entry.name, entry.count, entry.lastObservedMs).then(
      () => {
        entry.writing = undefined;
        this.flush(entry);
      },
      (err: unknown) => {
        entry.writing = undefined;
        this.log.warn({ err: errorFields(err) }, 'event series not updated');
      },
    );
  }

  /** forgetOld drops series past their window, so that memory follows the Events of the last minutes. */
  private forgetOld(now: number): void {
    if (this.series.size < 1000) return;
    for (const [key, e] of this.series) if (now - e.lastObservedMs >= SERIES_WINDOW_MS && e.writing === undefined) this.series.delete(key);
  }
}
