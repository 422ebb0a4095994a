import type { RoleBundle } from '../core/bundle.ts';
import type { Directory } from '../directories/directory.ts';
import type { StateStore } from './state-store.ts';

/** MAX_ROLE_MEMBERS bounds how many users one role's listing reads from the directory. */
export const MAX_ROLE_MEMBERS = 200_000;

/** How many users are assigned to roles between two yields to the event loop. */
const ASSIGN_SLICE = 5000;

/** RoleCompliance is how far an enforcing role's members have enrolled SMS. */
export interface RoleCompliance {
  role: string;
  priority: number;
  /** Users the role decides for (a member of a higher-priority role counts there). */
  members: number;
  enrolled: number;
  /** The directory listed more users than the limit for this role or one above it: the counts are incomplete. */
  truncated: boolean;
  /** Names of the members who have not enrolled, sorted, when asked for. */
  unenrolled?: string[];
}

/** ComplianceReport is the enrollment compliance of a store's roles that enforce SMS. */
export interface ComplianceReport {
  namespace: string;
  store: string;
  generatedAt: number;
  roles: RoleCompliance[];
}

/**
 * enrollmentCompliance counts, for each role of a store that enforces SMS, the directory users it
 * decides for and how many of them have an SMS enrollment. A user is counted under the role that
 * decides for them, as decideRole picks it: the roles are listed in priority order and each user
 * is assigned to the first one that lists them (a role lists the users in its groups, nested ones
 * included, or in and below its containers). Listings are paged and bounded by the directory,
 * enrollments are read in chunks, and assigning yields to the event loop between slices: a role of
 * 50,000 members costs a few hundred directory pages and store reads, none holding the event loop.
 */
export async function enrollmentCompliance(
  target: { namespace: string; store: string; roles: readonly RoleBundle[]; directory: Directory; state: StateStore },
  options: { now: number; unenrolled?: boolean; limit?: number },
): Promise<ComplianceReport> {
  const enforcing = target.roles.filter((r) => r.enforced.includes('SMS'));
  const last = enforcing.at(-1);
  const report: ComplianceReport = { namespace: target.namespace, store: target.store, generatedAt: options.now, roles: [] };
  if (last === undefined) return report;
  const assigned = new Set<string>();
  let truncatedAbove = false;
  // Every role up to the last enforcing one is listed: a higher-priority role takes its members.
  for (const role of target.roles.slice(0, target.roles.indexOf(last) + 1)) {
    const listed = await target.directory.members({ groups: role.groups, containers: role.containers }, { limit: options.limit ?? MAX_ROLE_MEMBERS });
    const mine: string[] = [];
    for (let i = 0; i < listed.users.length; i++) {
      const user = listed.users[i]!;
      if (!assigned.has(user)) {
        assigned.add(user);
        mine.push(user);
      }
      if (i % ASSIGN_SLICE === ASSIGN_SLICE - 1) await new Promise<void>((resolve) => setImmediate(resolve));
    }
    if (role.enforced.includes('SMS')) {
      const enrolled = new Set(await target.state.enrolledAmong(target.namespace, target.store, mine));
      report.roles.push({
        role: role.name,
        priority: role.priority,
        members: mine.length,
        enrolled: enrolled.size,
        truncated: truncatedAbove || listed.truncated,
        ...(options.unenrolled === true ? { unenrolled: mine.filter((u) => !enrolled.has(u)).sort() } : {}),
      });
    }
    truncatedAbove ||= listed.truncated;
  }
  return report;
}
