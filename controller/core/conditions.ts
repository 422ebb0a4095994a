import type { Condition } from '../generated/kinds.ts';
import type { ConditionType, Reason } from './reasons.ts';

/** ConditionInput is a condition as a rule decides it, before times and generations are added. */
export interface ConditionInput {
  type: ConditionType;
  status: 'True' | 'False' | 'Unknown';
  reason: Reason;
  message: string;
}

/**
 * setConditions builds the new condition list, in the order given. A condition keeps its
 * lastTransitionTime while its status is unchanged (as apimachinery's SetStatusCondition does);
 * a changed status takes `now`.
 */
export function setConditions(previous: readonly Condition[] | undefined, next: readonly ConditionInput[], generation: number, now: string): Condition[] {
  return next.map((c) => {
    const old = previous?.find((p) => p.type === c.type);
    return {
      type: c.type,
      status: c.status,
      reason: c.reason,
      message: c.message,
      observedGeneration: generation,
      lastTransitionTime: old !== undefined && old.status === c.status ? old.lastTransitionTime : now,
    };
  });
}

/** findCondition returns the condition of that type, or undefined. */
export function findCondition(conditions: readonly Condition[] | undefined, type: ConditionType): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

/** isReady tells whether the Ready condition is True. */
export function isReady(conditions: readonly Condition[] | undefined): boolean {
  return findCondition(conditions, 'Ready')?.status === 'True';
}
