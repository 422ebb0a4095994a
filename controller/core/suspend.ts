// spec.suspend, as Flux's suspend: the controller stops reconciling the object and keeps serving
// the version it last applied, which it records in status.suspended so that a restart keeps it too.

/** The parts of a cluster object suspension looks at. */
export interface Suspendable {
  metadata?: { generation?: number | undefined } | undefined;
  spec?: unknown;
  status?: unknown;
}

/** SuspendedVersion is status.suspended: the version kept while spec.suspend is true. */
export interface SuspendedVersion {
  generation: number;
  spec: Record<string, unknown>;
}

/** isSuspended tells whether an object asks not to be reconciled (spec.suspend: true). */
export function isSuspended(obj: Suspendable | undefined): boolean {
  return isRecord(obj?.spec) && obj.spec['suspend'] === true;
}

/** versionRecord is how a status records a version that serves (status.suspended, status.liveVersion): its generation and spec. */
export function versionRecord(live: { metadata: { generation?: number }; spec: object } | undefined): SuspendedVersion | undefined {
  return live === undefined ? undefined : { generation: live.metadata.generation ?? 1, spec: live.spec as Record<string, unknown> };
}

/**
 * heldVersion is the object as it was last applied, rebuilt from its status.suspended (after a
 * restart, when no version is in memory): the same metadata, that generation and that spec. An
 * object suspended while no controller ran has no record but a status (it was reconciled before):
 * the version found is held, suspend aside, rather than none. Undefined for an object created
 * suspended: it was never applied.
 */
export function heldVersion<T extends Suspendable>(obj: T): T | undefined {
  const recorded = recordedVersion(obj, 'suspended');
  if (recorded !== undefined) return recorded;
  if (!isRecord(obj.status) || typeof obj.status['observedGeneration'] !== 'number' || !isRecord(obj.spec)) return undefined;
  const { suspend: _suspend, ...spec } = obj.spec;
  return { ...obj, spec };
}

/**
 * servingVersion is the version an identity store's status.liveVersion records as serving while a
 * newer one did not (invalid, or naming what does not exist), rebuilt for a controller that starts
 * without it in memory. Only a version older than `newest` (the object, or the version held while
 * it is suspended) and from which the published bundle was made: a status is written after the
 * bundle, and one left behind by a later publication (a crash between the two, or a store
 * suspended meanwhile, whose status is left alone) names what no longer serves. The published
 * generation is asked for only when a version is recorded.
 */
export function servingVersion<T extends Suspendable>(obj: T, newest: Suspendable, publishedGeneration: () => number | undefined): T | undefined {
  const recorded = recordedVersion(obj, 'liveVersion');
  const generation = recorded?.metadata?.generation;
  if (generation === undefined || generation >= (newest.metadata?.generation ?? 1) || generation !== publishedGeneration()) return undefined;
  return recorded;
}

/** recordedVersion rebuilds the object from a version its status records: the same metadata, that generation and that spec. */
function recordedVersion<T extends Suspendable>(obj: T, field: string): T | undefined {
  const recorded = isRecord(obj.status) ? obj.status[field] : undefined;
  if (!isRecord(recorded) || typeof recorded['generation'] !== 'number' || !isRecord(recorded['spec'])) return undefined;
  return { ...obj, metadata: { ...obj.metadata, generation: recorded['generation'] }, spec: recorded['spec'] };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
