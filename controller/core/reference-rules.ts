import type { IdentityStore, SecurityRole, SmsGatewayAccount, SmsObject } from '../generated/kinds.ts';
import { parseDn } from './dn.ts';
import { DiagnosticCode, type Finding } from './diagnostics.ts';
import { namespaceOf, objectKey } from './object-key.ts';
import type { ResourceIndex } from './resource-index.ts';

/**
 * InvalidObjects are the objects that are there but invalid on their own, by object key: where their
 * first error is, and whether they say default: true. A reference to one is not "not found": its own
 * errors are the cause, and the reference resolves once they are fixed.
 */
export type InvalidObjects = ReadonlyMap<string, { where: string; isDefault: boolean }>;

const NONE: InvalidObjects = new Map();

/**
 * referenceFindings applies the rules that need other objects: references resolve in the same
 * namespace, one default account per namespace, roles agree with their store, priorities are unique.
 */
export function referenceFindings(obj: SmsObject, index: ResourceIndex, invalid: InvalidObjects = NONE): Finding[] {
  switch (obj.kind) {
    case 'SmsGatewayAccount':
      return gatewayFindings(obj, index, invalid);
    case 'IdentityStore':
      return storeFindings(obj, index, invalid);
    case 'SecurityRole':
      return roleFindings(obj, index, invalid);
    case 'SmsTemplate':
      return [];
  }
}

/** gatewayFindings checks an account's fallback chain and the namespace's single default. */
export function gatewayFindings(gw: SmsGatewayAccount, index: ResourceIndex, invalid: InvalidObjects = NONE): Finding[] {
  const out: Finding[] = [];
  const ns = namespaceOf(gw);
  const fallback = gw.spec.fallbackGatewayAccountRef?.name;
  if (fallback !== undefined && fallback !== gw.metadata.name) {
    if (index.gateway(ns, fallback) === undefined) {
      out.push(notFound('/spec/fallbackGatewayAccountRef/name', 'SmsGatewayAccount', fallback, ns, index.namesOf('SmsGatewayAccount', ns), invalid));
    } else {
      const chain = [gw.metadata.name];
      let next: string | undefined = fallback;
      while (next !== undefined && !chain.includes(next)) {
        chain.push(next);
        next = index.gateway(ns, next)?.spec.fallbackGatewayAccountRef?.name;
      }
      if (next === gw.metadata.name) {
        out.push({
          code: DiagnosticCode.FallbackCycle,
          severity: 'error',
          pointer: '/spec/fallbackGatewayAccountRef/name',
          message: `fallback accounts form a cycle (${[...chain, next].join(' → ')}); end the chain at an account without fallbackGatewayAccountRef`,
        });
      }
    }
  }
  if (gw.spec.default) {
    const defaults = index.defaultGateways(ns);
    if (defaults.length > 1) {
      out.push({
        code: DiagnosticCode.DefaultGatewayConflict,
        severity: 'error',
        pointer: '/spec/default',
        message: `several SmsGatewayAccounts in namespace ${ns} are marked default (${defaults.map((d) => d.metadata.name).join(', ')}); keep default: true on one`,
      });
    }
  }
  return out;
}

/** storeFindings checks that the store's gateway account and template exist, and that some account can be linked. */
export function storeFindings(store: IdentityStore, index: ResourceIndex, invalid: InvalidObjects = NONE): Finding[] {
  const out: Finding[] = [];
  const ns = namespaceOf(store);
  const sms = store.spec.sms;
  if (sms?.gatewayAccountRef !== undefined && index.gateway(ns, sms.gatewayAccountRef.name) === undefined) {
    out.push(
      notFound('/spec/sms/gatewayAccountRef/name', 'SmsGatewayAccount', sms.gatewayAccountRef.name, ns, index.namesOf('SmsGatewayAccount', ns), invalid),
    );
  }
  if (sms?.templateRef !== undefined && index.template(ns, sms.templateRef.name) === undefined) {
    out.push(notFound('/spec/sms/templateRef/name', 'SmsTemplate', sms.templateRef.name, ns, index.namesOf('SmsTemplate', ns), invalid));
  }
  const serviceSid = store.spec.twilioCompat?.serviceSid;
  if (serviceSid !== undefined) {
    const same = index.storesWithServiceSid(ns, serviceSid);
    if (same.length > 1) {
      out.push({
        code: DiagnosticCode.TwilioServiceConflict,
        severity: 'error',
        pointer: '/spec/twilioCompat/serviceSid',
        message: `IdentityStores ${same.join(', ')} of namespace ${ns} name service ${serviceSid}; a Twilio client names one store: give each its own`,
      });
    }
  }
  if (store.spec.authenticationTypes.includes('SMS') && sms !== undefined && sms.gatewayAccountRef === undefined && index.defaultGateways(ns).length === 0) {
    out.push(
      invalidDefaultFinding(ns, invalid) ?? {
        code: DiagnosticCode.NoGateway,
        severity: 'warning',
        pointer: '/spec/sms',
        message: `SMS is enabled but no gateway account is named and namespace ${ns} has no default account; set spec.sms.gatewayAccountRef or mark an SmsGatewayAccount default: true (a default links only stores first seen after it)`,
      },
    );
  }
  return out;
}

// A default account that is there but invalid is the cause, not a missing default.
function invalidDefaultFinding(ns: string, invalid: InvalidObjects): Finding | undefined {
  const prefix = objectKey('SmsGatewayAccount', ns, '');
  const found = [...invalid].find(([key, o]) => o.isDefault && key.startsWith(prefix));
  if (found === undefined) return undefined;
  return {
    code: DiagnosticCode.ReferenceInvalid,
    severity: 'info',
    pointer: '/spec/sms',
    message: `the namespace's default SmsGatewayAccount ${found[0].slice(prefix.length)} is invalid (its errors start at ${found[1].where}); this store links it once it is fixed`,
  };
}

/** roleFindings checks a role against its identity store and the store's other roles. */
export function roleFindings(role: SecurityRole, index: ResourceIndex, invalid: InvalidObjects = NONE): Finding[] {
  const out: Finding[] = [];
  const ns = namespaceOf(role);
  const storeName = role.spec.identityStoreRef.name;
  const store = index.store(ns, storeName);
  if (store === undefined) return [notFound('/spec/identityStoreRef/name', 'IdentityStore', storeName, ns, index.namesOf('IdentityStore', ns), invalid)];
  out.push(...memberFindings(role, store));
  const enabled = store.spec.authenticationTypes;
  const policy = role.spec.authenticationPolicy;
  policy.enforced.forEach((type, i) => {
    if (!enabled.includes(type)) {
      out.push({
        code: DiagnosticCode.AuthTypeNotEnabled,
        severity: 'error',
        pointer: `/spec/authenticationPolicy/enforced/${i}`,
        message: `${type} is enforced but not enabled on IdentityStore ${storeName} (enabled: ${enabled.join(', ') || 'none'}); enable it there or remove it here`,
      });
    }
  });
  const others = enabled.filter((t) => !policy.enforced.includes(t));
  if (policy.chosenByEndUser > others.length) {
    out.push({
      code: DiagnosticCode.ChosenByEndUserTooMany,
      severity: 'error',
      pointer: '/spec/authenticationPolicy/chosenByEndUser',
      message: `chosenByEndUser is ${policy.chosenByEndUser} but IdentityStore ${storeName} enables only ${others.length} other type${others.length === 1 ? '' : 's'} (${others.join(', ') || 'none'}); lower it to at most ${others.length}`,
    });
  }
  const clash = index.rolesOf(ns, storeName).filter((r) => r.spec.priority === role.spec.priority && r.metadata.name !== role.metadata.name);
  if (clash.length > 0) {
    out.push({
      code: DiagnosticCode.PriorityConflict,
      severity: 'error',
      pointer: '/spec/priority',
      message: `priority ${role.spec.priority} is also used by SecurityRole ${clash.map((r) => r.metadata.name).join(', ')} of IdentityStore ${storeName}; priorities must be unique per store`,
    });
  }
  const needsEnrollment = policy.enforced.length > 0 || policy.chosenByEndUser > 0 || policy.secondFactor;
  if (needsEnrollment && !store.spec.enrollment.enabled) {
    out.push({
      code: DiagnosticCode.EnrollmentDisabled,
      severity: 'error',
      pointer: '/spec/authenticationPolicy',
      message: `the policy needs enrollment but IdentityStore ${storeName} has enrollment.enabled: false; enable enrollment there`,
    });
  }
  return out;
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const EMAIL = /^[^@\s]+@[^@\s]+$/;

// A store with a directory matches roles against what its directory returns: a member written in
// another form (a DN on an Entra store, a group name on an LDAP one) would never match.
function memberFindings(role: SecurityRole, store: IdentityStore): Finding[] {
  const dir = store.spec.directory;
  const kind = dir?.ldap !== undefined ? 'ldap' : dir?.entra !== undefined ? 'entra' : dir?.google !== undefined ? 'google' : undefined;
  if (kind === undefined) return [];
  const out: Finding[] = [];
  const bad = (pointer: string, message: string): void => void out.push({ code: DiagnosticCode.MemberInvalid, severity: 'error', pointer, message });
  const storeName = store.metadata.name;
  role.spec.members.groups.forEach((g, i) => {
    const pointer = `/spec/members/groups/${i}`;
    if (kind === 'ldap' && !isDn(g))
      bad(
        pointer,
        `${JSON.stringify(g)} is not a DN; IdentityStore ${storeName}'s LDAP directory names groups by DN, such as CN=Admins,OU=Groups,DC=example,DC=com`,
      );
    if (kind === 'entra' && !GUID.test(g))
      bad(
        pointer,
        `${JSON.stringify(g)} is not an object id; IdentityStore ${storeName}'s Entra directory names groups by object id, such as 0b6c6a3e-2f0e-4a8e-9d3c-8f7c0a1b2c3d`,
      );
    if (kind === 'google' && !EMAIL.test(g))
      bad(
        pointer,
        `${JSON.stringify(g)} is not a group email; IdentityStore ${storeName}'s Google directory names groups by email, such as admins@example.com`,
      );
  });
  role.spec.members.containers.forEach((c, i) => {
    const pointer = `/spec/members/containers/${i}`;
    if (kind === 'ldap' && !isDn(c))
      bad(pointer, `${JSON.stringify(c)} is not a DN; IdentityStore ${storeName}'s LDAP directory names containers by DN, such as OU=Staff,DC=example,DC=com`);
    if (kind === 'entra') bad(pointer, `Entra ID has no containers (IdentityStore ${storeName}); name the members by group object id in spec.members.groups`);
    if (kind === 'google' && !c.startsWith('/'))
      bad(pointer, `${JSON.stringify(c)} is not an org unit path; IdentityStore ${storeName}'s Google directory names containers by path, such as /Staff/Lyon`);
  });
  return out;
}

function isDn(text: string): boolean {
  return (parseDn(text)?.length ?? 0) > 0;
}

function notFound(pointer: string, kind: string, name: string, ns: string, known: string[], invalid: InvalidObjects): Finding {
  const there = invalid.get(objectKey(kind, ns, name));
  if (there !== undefined) {
    return {
      code: DiagnosticCode.ReferenceInvalid,
      severity: 'info',
      pointer,
      message: `${kind} ${name} exists but is invalid (its errors start at ${there.where}); this reference resolves once it is fixed`,
    };
  }
  return {
    code: DiagnosticCode.ReferenceNotFound,
    severity: 'error',
    pointer,
    message: `${kind} ${name} not found in namespace ${ns}${known.length > 0 ? ` (there: ${known.join(', ')})` : ''}; references resolve only within the namespace`,
    refersTo: objectKey(kind, ns, name),
  };
}
