import type { Logger } from 'pino';
import { admissionMessage, decideAdmission, nameOf, needsReview, type DanglingReferences, type SchemaCheck } from '../core/admission.ts';
import { errorBody, probeRoutes, UP, type HttpResponse, type Route } from '../core/http-route.ts';
import { GROUP, KINDS } from '../core/kinds.ts';

/** What the webhook reads of the cluster: the namespace's objects of the four kinds, fresh. */
type NamespaceReader = (namespace: string) => Promise<unknown[]>;

/** WebhookDeps wire the admission routes. */
export interface WebhookDeps {
  schema: SchemaCheck;
  readNamespace: NamespaceReader;
  dangling: DanglingReferences;
  log: Logger;
}

interface AdmissionRequestBody {
  uid?: unknown;
  kind?: { group?: unknown; kind?: unknown };
  operation?: unknown;
  namespace?: unknown;
  object?: unknown;
  oldObject?: unknown;
  dryRun?: unknown;
}

/** The path the ValidatingWebhookConfiguration calls. */
const VALIDATE_PATH = '/validate';

/**
 * webhookRoutes answers admission.k8s.io/v1 AdmissionReviews for the smsauth kinds on POST
 * /validate, with /healthz and /readyz for the kubelet. A refusal is a 422 Invalid status naming
 * each field; a namespace that cannot be read is a 503 the API server turns into its failurePolicy.
 */
export function webhookRoutes(deps: WebhookDeps): Route[] {
  return [
    ...probeRoutes(() => Promise.resolve(UP)),
    {
      method: 'POST',
      pattern: VALIDATE_PATH,
      name: 'validate',
      auth: false,
      json: true,
      maxBodyBytes: 4 * 1024 * 1024,
      handler: async (req) => {
        let review: { apiVersion?: unknown; request?: AdmissionRequestBody };
        try {
          review = JSON.parse(req.body.toString('utf8')) as typeof review;
        } catch {
          return { status: 400, body: errorBody('invalid_json', 'the body is not an AdmissionReview') };
        }
        const request = review.request;
        if (review.apiVersion !== 'admission.k8s.io/v1' || request === undefined || typeof request.uid !== 'string') {
          return { status: 400, body: errorBody('invalid_review', 'expected an admission.k8s.io/v1 AdmissionReview with request.uid') };
        }
        return reviewRequest(request, request.uid, deps);
      },
    },
  ];
}

async function reviewRequest(request: AdmissionRequestBody, uid: string, deps: WebhookDeps): Promise<HttpResponse> {
  const answer = (response: Record<string, unknown>): HttpResponse => ({
    status: 200,
    body: { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid, ...response } },
  });
  const kind = KINDS.find((k) => k.kind === request.kind?.kind)?.kind;
  if (request.kind?.group !== GROUP || kind === undefined || (request.operation !== 'CREATE' && request.operation !== 'UPDATE')) {
    return answer({ allowed: true });
  }
  if (!needsReview(request.operation, request.object, request.oldObject)) return answer({ allowed: true });
  const namespace = typeof request.namespace === 'string' ? request.namespace : 'default';
  let namespaceObjects: unknown[];
  try {
    namespaceObjects = await deps.readNamespace(namespace);
  } catch (err) {
    deps.log.warn({ namespace, err: (err as Error).message }, 'cannot read the namespace to decide an admission');
    return { status: 503, headers: { 'retry-after': '1' }, body: errorBody('unavailable', 'the namespace could not be read') };
  }
  const verdict = decideAdmission({ kind: kind, object: request.object, namespaceObjects }, deps.schema, deps.dangling);
  const name = nameOf(request.object);
  deps.log.info({ kind, namespace, name, allowed: verdict.allowed, dryRun: request.dryRun === true, causes: verdict.causes.length }, 'admission reviewed');
  const warnings = verdict.warnings.length > 0 ? { warnings: verdict.warnings } : {};
  if (verdict.allowed) return answer({ allowed: true, ...warnings });
  return answer({
    allowed: false,
    ...warnings,
    status: {
      status: 'Failure',
      code: 422,
      reason: 'Invalid',
      message: admissionMessage(verdict.causes),
      details: { group: GROUP, kind, name, causes: verdict.causes.map((c) => ({ reason: 'FieldValueInvalid', field: c.field, message: c.message })) },
    },
  });
}
