import { Counter, Gauge, Histogram, exponentialBuckets, type Registry } from 'prom-client';
import type { LeaderElectionMetrics } from './leader-election.ts';
import type { WorkQueueMetrics } from './work-queue.ts';

/**
 * registerWorkQueueMetrics registers controller-runtime's work queue metrics (workqueue_depth,
 * workqueue_adds_total, workqueue_retries_total, workqueue_queue_duration_seconds,
 * workqueue_work_duration_seconds, each labelled by the queue's `name`) in registry, once, and returns
 * a function giving the WorkQueueMetrics hooks of one queue name.
 */
export function registerWorkQueueMetrics(registry: Registry): (name: string) => WorkQueueMetrics {
  const registers = [registry];
  const labelNames = ['name'] as const;
  // controller-runtime's buckets: 10 ns to 1000 s, ×10 each.
  const buckets = exponentialBuckets(10e-9, 10, 12);
  const depth = new Gauge({ name: 'workqueue_depth', help: 'Current depth of workqueue', labelNames, registers });
  const adds = new Counter({ name: 'workqueue_adds_total', help: 'Total number of adds handled by workqueue', labelNames, registers });
  const retries = new Counter({ name: 'workqueue_retries_total', help: 'Total number of retries handled by workqueue', labelNames, registers });
  const queueDuration = new Histogram({
    name: 'workqueue_queue_duration_seconds',
    help: 'How long in seconds an item stays in workqueue before being requested',
    labelNames,
    buckets,
    registers,
  });
  const workDuration = new Histogram({
    name: 'workqueue_work_duration_seconds',
    help: 'How long in seconds processing an item from workqueue takes.',
    labelNames,
    buckets,
    registers,
  });
  return (name) => {
    const labels = { name };
    depth.set(labels, 0);
    adds.inc(labels, 0);
    retries.inc(labels, 0);
    return {
      depth: (value) => depth.set(labels, value),
      added: () => adds.inc(labels),
      retried: () => retries.inc(labels),
      queueDuration: (seconds) => queueDuration.observe(labels, seconds),
      workDuration: (seconds) => workDuration.observe(labels, seconds),
    };
  };
}

/**
 * registerLeaderElectionMetrics registers client-go's leader_election_master_status{name} gauge in
 * registry, once, and returns a function giving the LeaderElectionMetrics hook of one Lease name.
 */
export function registerLeaderElectionMetrics(registry: Registry): (name: string) => LeaderElectionMetrics {
  const status = new Gauge({
    name: 'leader_election_master_status',
    help: "Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates master. 'name' is the string used to identify the lease. Please make sure to group by name.",
    labelNames: ['name'] as const,
    registers: [registry],
  });
  return (name) => {
    status.set({ name }, 0);
    return { setLeading: (leading) => status.set({ name }, leading ? 1 : 0) };
  };
}
