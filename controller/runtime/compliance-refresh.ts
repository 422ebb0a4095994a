import type { Logger } from 'pino';
import { errorKind } from '../core/error-fields.ts';
import type { BundleRegistry } from '../verifier/bundle-registry.ts';
import type { ComplianceView, Verifier } from '../verifier/verifier.ts';

/** COMPLIANCE_REFRESH_MS is how often run and sidecar recount their roles' enrollment (the gauges and the status view). */
export const COMPLIANCE_REFRESH_MS = 10 * 60_000;

/**
 * complianceOfAll recounts enrollment compliance for every served store that has a directory and a
 * role enforcing SMS, one store after the other (each lists its directory in pages); a store whose
 * directory cannot answer (`answers`: its last check, where one is kept) is left out this time, and
 * one that fails does not stop the others. The gauges of stores no longer counted go.
 */
export async function complianceOfAll(
  verifier: Verifier,
  registry: BundleRegistry,
  log: Logger,
  answers: (namespace: string, store: string) => boolean = () => true,
): Promise<ComplianceView[]> {
  const out: ComplianceView[] = [];
  const counted = new Set<string>();
  for (const key of registry.storeKeys()) {
    const [namespace, store] = key.split('/') as [string, string];
    const resolved = registry.get(namespace, store);
    if (resolved?.directory === undefined || !resolved.bundle.roles.some((r) => r.enforced.includes('SMS'))) continue;
    // A store whose directory is down keeps its last gauges until it answers again.
    counted.add(key);
    if (!answers(namespace, store)) continue;
    try {
      const report = await verifier.compliance(namespace, store, { fresh: true });
      if (report.ok) out.push(report.value);
    } catch (err) {
      log.error({ namespace, store, err: errorKind(err) }, 'enrollment count failed');
    }
  }
  // Stores no longer counted (removed, no directory, no role enforcing SMS) lose their gauges.
  verifier.forgetCompliance(counted);
  return out;
}
