import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { WorkOutcome } from './work-queue.ts';
import { parseWorkKey } from './work-key.ts';

/**
 * controllerOf names the controller a work key belongs to, as controller-runtime labels its
 * metrics (one controller per kind): identitystore, smsgatewayaccount, smstemplate, securityrole,
 * and secret, bundle, directorycheck, credentialcheck for the other work.
 */
function controllerOf(key: string): string {
  const work = parseWorkKey(key);
  switch (work?.type) {
    case 'object':
      return work.kind.toLowerCase();
    case 'secret':
      return 'secret';
    case 'bundle':
      return 'bundle';
    case 'directory':
      return 'directorycheck';
    case 'credentials':
      return 'credentialcheck';
    default:
      return 'unknown';
  }
}

const CONTROLLERS = ['identitystore', 'smsgatewayaccount', 'smstemplate', 'securityrole', 'secret', 'bundle', 'directorycheck', 'credentialcheck'];

/** A JavaScript error that means a bug (as a Go panic does), not a failure of the world outside. */
const BUG_ERRORS = new Set(['TypeError', 'RangeError', 'ReferenceError', 'SyntaxError']);

/** ControllerMetrics are controller-runtime's reconcile metrics and smsauth's per-object readiness. */
export interface ControllerMetrics {
  /** outcome counts a finished reconcile. */
  outcome(o: WorkOutcome): void;
  /** working counts a reconcile started (active workers) and returns the function that ends it. */
  working(key: string): () => void;
  /** ready sets smsauth_resource_ready for an object; undefined removes its series (the object is gone). */
  ready(kind: string, namespace: string, name: string, ready: boolean | undefined): void;
}

/**
 * registerControllerMetrics registers, in registry: controller_runtime_reconcile_total{controller,result},
 * controller_runtime_reconcile_errors_total{controller}, controller_runtime_reconcile_panics_total{controller},
 * controller_runtime_reconcile_time_seconds{controller}, controller_runtime_active_workers{controller},
 * workqueue_unfinished_work_seconds{name} and workqueue_longest_running_processor_seconds{name} (read
 * from the queue at each scrape), and smsauth_resource_ready{kind,namespace,name} (1 when Ready is True).
 */
export function registerControllerMetrics(
  registry: Registry,
  queueName: string,
  unfinished: () => { totalSeconds: number; longestSeconds: number },
): ControllerMetrics {
  const registers = [registry];
  const total = new Counter({
    name: 'controller_runtime_reconcile_total',
    help: 'Total number of reconciliations per controller',
    labelNames: ['controller', 'result'],
    registers,
  });
  const errors = new Counter({
    name: 'controller_runtime_reconcile_errors_total',
    help: 'Total number of reconciliation errors per controller',
    labelNames: ['controller'],
    registers,
  });
  const panics = new Counter({
    name: 'controller_runtime_reconcile_panics_total',
    help: 'Total number of reconciliation panics per controller (a JavaScript TypeError, RangeError, ReferenceError or SyntaxError: a bug)',
    labelNames: ['controller'],
    registers,
  });
  const time = new Histogram({
    name: 'controller_runtime_reconcile_time_seconds',
    help: 'Length of time per reconciliation per controller',
    labelNames: ['controller'],
    registers,
  });
  const active = new Gauge({
    name: 'controller_runtime_active_workers',
    help: 'Number of currently used workers per controller',
    labelNames: ['controller'],
    registers,
  });
  registerUnfinishedWork(registers, queueName, unfinished);
  const resourceReady = new Gauge({
    name: 'smsauth_resource_ready',
    help: 'Whether an smsauth object is Ready (1) or not (0), as its Ready condition says',
    labelNames: ['kind', 'namespace', 'name'],
    registers,
  });
  for (const controller of CONTROLLERS) {
    for (const result of ['success', 'error', 'requeue_after', 'terminal_error']) total.inc({ controller, result }, 0);
    errors.inc({ controller }, 0);
    panics.inc({ controller }, 0);
    active.set({ controller }, 0);
  }
  return {
    outcome(o) {
      const controller = controllerOf(o.key);
      total.inc({ controller, result: o.result });
      time.observe({ controller }, o.durationMs / 1000);
      if (o.result === 'error' || o.result === 'terminal_error') errors.inc({ controller });
      if (o.error instanceof Error && BUG_ERRORS.has(o.error.name)) panics.inc({ controller });
    },
    working(key) {
      const controller = controllerOf(key);
      active.inc({ controller });
      return () => active.dec({ controller });
    },
    ready(kind, namespace, name, ready) {
      if (ready === undefined) resourceReady.remove({ kind, namespace, name });
      else resourceReady.set({ kind, namespace, name }, ready ? 1 : 0);
    },
  };
}

/** registerUnfinishedWork registers the work queue's gauges of work in progress, read from the queue at each scrape. */
function registerUnfinishedWork(registers: Registry[], queueName: string, unfinished: () => { totalSeconds: number; longestSeconds: number }): void {
  new Gauge({
    name: 'workqueue_unfinished_work_seconds',
    help: "How many seconds of work has been done that is in progress and hasn't been observed by work_duration",
    labelNames: ['name'],
    registers,
    collect() {
      this.set({ name: queueName }, unfinished().totalSeconds);
    },
  });
  new Gauge({
    name: 'workqueue_longest_running_processor_seconds',
    help: 'How many seconds has the longest running processor for workqueue been running',
    labelNames: ['name'],
    registers,
    collect() {
      this.set({ name: queueName }, unfinished().longestSeconds);
    },
  });
}
