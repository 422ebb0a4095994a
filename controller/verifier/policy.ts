import type { AuthenticationType } from '../generated/kinds.ts';
import type { Bundle, RoleBundle } from '../core/bundle.ts';
import { isInContainer, memberKey } from '../core/membership.ts';

/** Membership is what the caller knows of a user: every group (nested ones included) and the containers (or the user's own DN). */
export interface Membership {
  groups: readonly string[];
  containers: readonly string[];
}

/** PolicyDecision is what a user must do under the store's roles. */
export interface PolicyDecision {
  role: { name: string; priority: number } | null;
  enforced: AuthenticationType[];
  chosenByEndUser: number;
  /** The store's other enabled types a user may choose from. */
  choices: AuthenticationType[];
  secondFactor: boolean;
  /** Enforced types not enrolled yet, and how many more types the user still has to choose. */
  missing: { enforced: AuthenticationType[]; toChoose: number };
  lockout: { failedAttemptsThreshold: number; durationMs: number };
}

/** DEFAULT_LOCKOUT applies when no role decides. */
export const DEFAULT_LOCKOUT = { failedAttemptsThreshold: 5, durationMs: 15 * 60_000 };

/**
 * decideRole returns the role that decides for a member: the highest-priority (lowest number)
 * enabled role naming one of the member's groups, or a container the member is in or below
 * (compared as DNs, or as org unit paths for Google Workspace).
 */
export function decideRole(roles: readonly RoleBundle[], member: Membership): RoleBundle | undefined {
  const groups = new Set(member.groups.map(memberKey));
  for (const role of roles) {
    if (role.groups.some((g) => groups.has(memberKey(g)))) return role;
    if (role.containers.some((c) => member.containers.some((m) => isInContainer(m, c)))) return role;
  }
  return undefined;
}

/** lockoutFor returns the lockout that applies: the deciding role's, or without membership the strictest of the store's roles. */
export function lockoutFor(bundle: Bundle, member: Membership | undefined): { failedAttemptsThreshold: number; durationMs: number } {
  if (member !== undefined) return decideRole(bundle.roles, member)?.lockout ?? DEFAULT_LOCKOUT;
  if (bundle.roles.length === 0) return DEFAULT_LOCKOUT;
  return {
    failedAttemptsThreshold: Math.min(...bundle.roles.map((r) => r.lockout.failedAttemptsThreshold)),
    durationMs: Math.max(...bundle.roles.map((r) => r.lockout.durationMs)),
  };
}

/** decidePolicy tells a member's role, what it enforces and what the member has still to enroll. */
export function decidePolicy(bundle: Bundle, member: Membership, enrolled: ReadonlySet<AuthenticationType>): PolicyDecision {
  const role = decideRole(bundle.roles, member);
  const enforced = role?.enforced ?? [];
  const choices = bundle.authenticationTypes.filter((t) => !enforced.includes(t));
  const chosen = choices.filter((t) => enrolled.has(t)).length;
  const chosenByEndUser = role?.chosenByEndUser ?? 0;
  return {
    role: role === undefined ? null : { name: role.name, priority: role.priority },
    enforced: [...enforced],
    chosenByEndUser,
    choices,
    secondFactor: role?.secondFactor ?? false,
    missing: { enforced: enforced.filter((t) => !enrolled.has(t)), toChoose: Math.max(0, chosenByEndUser - chosen) },
    lockout: role?.lockout ?? DEFAULT_LOCKOUT,
  };
}
