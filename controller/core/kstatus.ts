import type { ConditionInput } from './conditions.ts';
import { Reason } from './reasons.ts';

/**
 * STALLING_REASONS are the reasons of a Ready that is not True which no retry can change: the
 * spec, a reference or a credential must change first (a person's work). The other reasons are
 * transient (a directory not checked yet or unreachable, a dependency not ready yet): the
 * controller retries, or follows the dependency.
 */
const STALLING_REASONS: ReadonlySet<string> = new Set<Reason>([
  Reason.InvalidSpec,
  Reason.SecretNotFound,
  Reason.SecretKeyNotFound,
  Reason.CredentialsRejected,
  Reason.FallbackNotFound,
  Reason.FallbackCycle,
  Reason.DefaultConflict,
  Reason.NoGatewayAccount,
  Reason.GatewayAccountNotFound,
  Reason.TemplateNotFound,
  Reason.DirectorySecretNotFound,
  Reason.DirectoryCredentialsRejected,
  Reason.DirectoryCertificateUntrusted,
  Reason.IdentityStoreNotFound,
  Reason.AuthTypeNotEnabled,
  Reason.ChosenByEndUserTooMany,
  Reason.PriorityConflict,
  Reason.MemberInvalid,
]);

/**
 * progressConditions derives Reconciling and Stalled from Ready, as kstatus (Flux's health checks,
 * cli-utils, Argo CD's generic health) reads them: Reconciling True while the controller still
 * works or retries (InProgress), Stalled True when it cannot get further without a change to the
 * spec or what it references (Failed), both False once Ready is True (Current). Each carries the
 * reason and message of the Ready it explains.
 */
export function progressConditions(ready: ConditionInput): ConditionInput[] {
  if (ready.status === 'True') {
    return [
      { type: 'Reconciling', status: 'False', reason: ready.reason, message: 'reconciled: nothing left to do' },
      { type: 'Stalled', status: 'False', reason: ready.reason, message: 'not stalled' },
    ];
  }
  if (STALLING_REASONS.has(ready.reason)) {
    return [
      { type: 'Reconciling', status: 'False', reason: ready.reason, message: 'nothing to retry until the spec or what it references changes' },
      { type: 'Stalled', status: 'True', reason: ready.reason, message: ready.message },
    ];
  }
  return [
    { type: 'Reconciling', status: 'True', reason: ready.reason, message: ready.message },
    { type: 'Stalled', status: 'False', reason: ready.reason, message: 'not stalled: the controller retries, or waits for what it depends on' },
  ];
}

/** withProgress adds to conditions the Reconciling and Stalled their Ready implies (none without a Ready). */
export function withProgress(conditions: readonly ConditionInput[]): ConditionInput[] {
  const ready = conditions.find((c) => c.type === 'Ready');
  return ready === undefined ? [...conditions] : [...conditions, ...progressConditions(ready)];
}

/** Condition types whose False is a problem (the others: Ready summarises, InUse and MultiSegment inform, Reconciling and Stalled derive from Ready). */
const HEALTH_CONDITIONS: ReadonlySet<string> = new Set([
  'CredentialsResolved',
  'GatewayLinked',
  'TemplateValid',
  'DirectoryConnected',
  'EventsConfigured',
  'TwilioCompatConfigured',
]);

/** eventTypeOf says which Event a changed condition deserves: Normal for Ready turning True, Warning for a problem, none otherwise. */
export function eventTypeOf(c: { type: string; status: string; reason: string }): 'Normal' | 'Warning' | undefined {
  if (c.type === 'Ready') return c.status === 'True' && c.reason !== Reason.DeletionBlocked ? 'Normal' : 'Warning';
  if (c.reason === Reason.DeletionBlocked || c.reason === Reason.TextExceedsOneSegment) return 'Warning';
  if (HEALTH_CONDITIONS.has(c.type) && c.status !== 'True') return 'Warning';
  return undefined;
}
