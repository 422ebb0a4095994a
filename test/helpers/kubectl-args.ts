/** mergePatch is the arguments of `kubectl patch KIND NAME -n NS --type merge -p PATCH`. */
export function mergePatch(kind: string, name: string, namespace: string, patch: object): string[] {
  return ['patch', kind, name, '-n', namespace, '--type', 'merge', '-p', JSON.stringify(patch)];
}

/**
 * BREAK_TEMPLATE breaks the examples' template in a way the CRD's CEL rules admit and smsauth does
 * not ([Company] is no placeholder): what the controller must then report, keeping the last good one.
 */
export const BREAK_TEMPLATE = mergePatch('smstpl', 'sign-in-code', 'identity', { spec: { text: 'Your code is [Code] at [Company]' } });
