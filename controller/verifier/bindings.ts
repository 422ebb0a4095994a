import { RecentMap } from '../core/recent-map.ts';
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
 * a verification swept from the store is still answered not found by the store itself. Bounded
 * (a RecentMap): a forgotten binding is read again.
 */
export class Bindings {
  private readonly recent: RecentMap<Binding>;

  /** capacity 0 remembers nothing. */
  constructor(capacity: number) {
    this.recent = new RecentMap(capacity);
  }

  get(ns: string, store: string, id: string): Binding | undefined {
    return this.recent.get(`${ns}/${store}/${id}`);
  }

  remember(r: VerificationRecord): void {
    const key = `${r.namespace}/${r.store}/${r.id}`;
    if (this.recent.get(key) === undefined) this.recent.set(key, bindingOf(r));
  }
}
