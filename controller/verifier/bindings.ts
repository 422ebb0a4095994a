import type { Purpose, VerificationRecord } from './types.js';

/** Binding is what never changes in a verification once created: what its code is bound to, and whose it is. */
export interface Binding {
  purpose: Purpose;
  to: string;
  user: string;
}

/**
 * Bindings remembers the bindings of recent verifications (those this replica started or read),
 * so that a check can sign its candidates without reading the verification first. Being
 * immutable, a remembered binding is never stale, whichever replica changes the verification;
 * a verification swept from the store is still answered not found by the store itself. Bounded:
 * past `capacity`, the oldest are forgotten (a forgotten one is read again).
 */
export class Bindings {
  private readonly map = new Map<string, Binding>();

  constructor(private readonly capacity = 50_000) {}

  get(ns: string, store: string, id: string): Binding | undefined {
    return this.map.get(`${ns}/${store}/${id}`);
  }

  remember(r: VerificationRecord): void {
    const key = `${r.namespace}/${r.store}/${r.id}`;
    if (this.map.has(key)) return;
    if (this.map.size >= this.capacity) this.map.delete(this.map.keys().next().value!);
    this.map.set(key, { purpose: r.purpose, to: r.to, user: r.user });
  }
}
