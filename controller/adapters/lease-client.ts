/** LeaseRecord is a coordination.k8s.io/v1 Lease's spec as leader election reads and writes it; times in epoch milliseconds. */
export interface LeaseRecord {
  holderIdentity: string | null;
  leaseDurationSeconds: number;
  acquireTime: number | null;
  renewTime: number | null;
  leaseTransitions: number;
  /** The object's resourceVersion, for optimistic concurrency (empty when not stored yet). */
  resourceVersion: string;
}

/** LeaseConflictError says another writer changed (or created) the Lease first: re-read and decide again. */
export class LeaseConflictError extends Error {
  override readonly name = 'LeaseConflictError';
  readonly code = 'ERR_LEASE_CONFLICT';
}

/**
 * LeaseClient is the port leader election uses on one Lease (its namespace and name fixed by the
 * adapter). The adapter writes times as MicroTime (RFC 3339 with exactly six fractional digits),
 * as the API server requires; create and update answer LeaseConflictError on a lost race.
 */
export interface LeaseClient {
  get(): Promise<LeaseRecord | undefined>;
  create(record: Omit<LeaseRecord, 'resourceVersion'>): Promise<LeaseRecord>;
  update(record: LeaseRecord): Promise<LeaseRecord>;
}
