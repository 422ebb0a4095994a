import { canonicalDn, isWithin } from './dn.ts';

// How security roles name their members, compared the way each directory names them: shared by
// the policy decision and the directories that list a role's members.

/**
 * memberKey is how a group is compared: a DN (LDAP, Active Directory) as a name (RFC 4514: escapes,
 * case, spacing), anything else (an Entra object id, a Google group email) without case.
 */
export function memberKey(group: string): string {
  return canonicalDn(group) ?? group.trim().toLowerCase();
}

/** isInContainer tells whether a member's container (or own DN) is the role's container or below it: DNs by RFC 4514, org unit paths (/a/b) by segment. */
export function isInContainer(member: string, container: string): boolean {
  if (container.startsWith('/')) {
    const parent = container.replace(/\/+$/, '').toLowerCase();
    const path = member.toLowerCase();
    return parent === '' || path === parent || path.startsWith(`${parent}/`);
  }
  return isWithin(member, container);
}
