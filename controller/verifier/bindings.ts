import type { Actor, Purpose, VerificationRecord } from './types.ts';

/** Binding is what never changes in a verification once created: what its code is bound to, whose it is, who started it and under which role. */
export interface Binding {
  purpose: Purpose;
  to: string;
  user: string;
  actor: Actor;
  role: string | null;
  /** The helpdesk's reason, for a verification it started. */
  reason?: string;
}

/** bindingOf is a verification's binding. */
export function bindingOf(r: VerificationRecord): Binding {
  return {
    purpose: r.purpose,
    to: r.to,
    user: r.user,
    actor: r.actor ?? 'user',
    role: r.role ?? null,
    ...(r.reason !== undefined ? { reason: r.reason } : {}),
  };
}

/**
 * Bindings remembers the bindings of recent verifications (those this replica started or read),
 * so that a check can sign its candidates without reading the verification first. Being
 * immutable, a remembered binding is never stale, whichever replica changes the verification;
 * a verification swept from the store is still answered not found by the store itself. Bounded:
 * two generations of at most capacity/2 each; when the newer fills, the older is forgotten (a
 * forgotten binding is read again). Constant time, unlike evicting a Map's oldest key one by one.
 */
export class Bindings {
  private current = new Map<string, Binding>();
  private previous = new Map<string, Binding>();

  /** capacity 0 remembers nothing. */
  private readonly capacity: number;

  constructor(capacity: number) {
    this.capacity = capacity;
  }

  get(ns: string, store: string, id: string): Binding | undefined {
    const key = `${ns}/${store}/${id}`;
    return this.current.get(key) ?? this.previous.get(key);
  }

  remember(r: VerificationRecord): void {
    if (this.capacity <= 0) return;
    const key = `${r.namespace}/${r.store}/${r.id}`;
    if (this.current.has(key) || this.previous.has(key)) return;
    if (this.current.size >= Math.max(1, Math.floor(this.capacity / 2))) {
      this.previous = this.current;
      this.current = new Map();
    }
    this.current.set(key, bindingOf(r));
  }
}
