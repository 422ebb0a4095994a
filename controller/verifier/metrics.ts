import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** VerifierMetrics are the verifier's Prometheus metrics, in a registry of their own (no global state). */
export interface VerifierMetrics {
  registry: Registry;
  started: Counter<'namespace' | 'store' | 'purpose'>;
  sends: Counter<'namespace' | 'store' | 'account' | 'result'>;
  checks: Counter<'namespace' | 'store' | 'result'>;
  rateLimited: Counter<'scope'>;
  fraudGuard: Counter<'namespace' | 'store' | 'action'>;
  callbacks: Counter<'result'>;
  /** Outbound events (spec.events), by type and result. */
  events: Counter<'namespace' | 'store' | 'type' | 'result'>;
  gatewayLatency: Histogram<'account'>;
  bundles: Gauge;
  requests: Counter<'route' | 'status'>;
  /** Enrollment compliance of the roles that enforce SMS (see compliance.ts). */
  roleMembers: Gauge<'namespace' | 'store' | 'role'>;
  roleEnrolled: Gauge<'namespace' | 'store' | 'role'>;
}

/** createVerifierMetrics registers the metrics (and, optionally, Node's process metrics) in a new registry. */
export function createVerifierMetrics(options: { processMetrics?: boolean } = {}): VerifierMetrics {
  const registry = new Registry();
  if (options.processMetrics === true) collectDefaultMetrics({ register: registry });
  const registers = [registry];
  return {
    registry,
    started: new Counter({
      name: 'smsauth_verifications_started_total',
      help: 'Verifications started, by purpose.',
      labelNames: ['namespace', 'store', 'purpose'],
      registers,
    }),
    sends: new Counter({
      name: 'smsauth_sends_total',
      help: 'SMS sends, by account and result (sent, or the gateway error code).',
      labelNames: ['namespace', 'store', 'account', 'result'],
      registers,
    }),
    checks: new Counter({
      name: 'smsauth_checks_total',
      help: 'Code checks, by result (approved, wrong_code, refused).',
      labelNames: ['namespace', 'store', 'result'],
      registers,
    }),
    rateLimited: new Counter({
      name: 'smsauth_rate_limited_total',
      help: 'Sends refused by a rate limit, by scope (number, user, prefix, global, account).',
      labelNames: ['scope'],
      registers,
    }),
    fraudGuard: new Counter({
      name: 'smsauth_fraud_guard_total',
      help: 'What the fraud guard did: blocked (a start refused, Enforce), monitored (one it would refuse, Monitor), kill_switch (a start to a blocked prefix refused), prefix_blocked (a prefix or country newly blocked).',
      labelNames: ['namespace', 'store', 'action'],
      registers,
    }),
    callbacks: new Counter({
      name: 'smsauth_delivery_callbacks_total',
      help: 'Delivery-receipt callbacks, by result (accepted, bad_signature).',
      labelNames: ['result'],
      registers,
    }),
    events: new Counter({
      name: 'smsauth_events_total',
      help: 'Outbound events (spec.events), by type and result: delivered (the receiver answered 2xx), failed (an attempt that will be retried), dropped (given up after a day of retries).',
      labelNames: ['namespace', 'store', 'type', 'result'],
      registers,
    }),
    gatewayLatency: new Histogram({
      name: 'smsauth_gateway_send_seconds',
      help: 'Time to send through the gateway chain, retries included.',
      labelNames: ['account'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 15],
      registers,
    }),
    bundles: new Gauge({ name: 'smsauth_bundles_loaded', help: 'Identity stores served.', registers }),
    requests: new Counter({ name: 'smsauth_http_requests_total', help: 'HTTP requests, by route and status.', labelNames: ['route', 'status'], registers }),
    roleMembers: new Gauge({
      name: 'smsauth_role_members',
      help: 'Directory users a role that enforces SMS decides for.',
      labelNames: ['namespace', 'store', 'role'],
      registers,
    }),
    roleEnrolled: new Gauge({
      name: 'smsauth_role_members_enrolled',
      help: 'Of those, the users with an SMS enrollment.',
      labelNames: ['namespace', 'store', 'role'],
      registers,
    }),
  };
}
