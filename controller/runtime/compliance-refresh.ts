import type { BundleRegistry } from '../verifier/bundle-registry.ts';
import type { ComplianceView, Verifier } from '../verifier/verifier.ts';

/** COMPLIANCE_REFRESH_MS is how often run and sidecar recount their roles' enrollment (the gauges and the status view). */
export const COMPLIANCE_REFRESH_MS = 10 * 60_000;

/**
 * complianceOfAll recounts enrollment compliance for every served store that has a directory and a
 * role enforcing SMS, one store after the other (each lists its directory in pages); a store whose
 * directory cannot answer (`answers`: its last check, where one is kept) is left out this time.
 */
export async function complianceOfAll(verifier: Verifier, registry: BundleRegistry, answers: (namespace: string, store: string) => boolean = () => true): Promise<ComplianceView[]> {
  const out: ComplianceView[] = [];
  for (const key of registry.storeKeys()) {
    const [namespace, store] = key.split('/') as [string, string];
    const resolved = registry.get(namespace, store);
    if (resolved?.directory === undefined || !resolved.bundle.roles.some((r) => r.enforced.includes('SMS')) || !answers(namespace, store)) continue;
    const report = await verifier.compliance(namespace, store, { fresh: true });
    if (report.ok) out.push(report.value);
  }
  return out;
}
