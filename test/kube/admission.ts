import { randomUUID } from 'node:crypto';
import { request } from 'node:https';
import { isIP } from 'node:net';
import { getObject, getString, isObject, stringMap } from './json.ts';
import { matchesLabels, type LabelRequirement } from './selectors.ts';
import type { JsonObject } from './json.ts';
import type { ResourceType } from './resources.ts';
import { ApiError, badRequest, failure, internalError } from './status.ts';

// Validating admission webhooks as the API server calls them (k8s.io/apiserver, plugin/pkg/admission/
// webhook): each ValidatingWebhookConfiguration's webhooks whose rules match the request get an
// admission.k8s.io/v1 AdmissionReview over HTTPS, verified against caBundle; a denial is returned
// to the client with the webhook's status, its warnings as Warning headers; a call that fails
// follows failurePolicy. namespaceSelector is evaluated against the object's namespace's labels
// (matchLabels and matchExpressions); objectSelector is not (every object matches).

/** Where a service's webhook listens here: no cluster DNS, so tests map services to addresses. */
export type ServiceResolver = (namespace: string, name: string, port: number) => { host: string; port: number } | undefined;

/** One write offered to the webhooks. */
export interface AdmissionAttributes {
  rt: ResourceType;
  operation: 'CREATE' | 'UPDATE';
  namespace: string | undefined;
  /** The labels of the object's namespace; undefined for a cluster-scoped object. */
  namespaceLabels: Record<string, string> | undefined;
  name: string;
  object: JsonObject;
  oldObject: JsonObject | undefined;
  dryRun: boolean;
}

interface Webhook {
  name: string;
  clientConfig: JsonObject;
  rules: JsonObject[];
  failurePolicy: string;
  sideEffects: string;
  timeoutSeconds: number;
}

const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);
const matches = (list: string[], value: string): boolean => list.includes('*') || list.includes(value);

/** matchingWebhooks lists the webhooks of the configurations whose rules cover this write. */
export function matchingWebhooks(configurations: readonly JsonObject[], a: AdmissionAttributes): Webhook[] {
  const out: Webhook[] = [];
  for (const conf of configurations) {
    for (const w of Array.isArray(conf['webhooks']) ? conf['webhooks'].filter(isObject) : []) {
      const rules = (Array.isArray(w['rules']) ? w['rules'] : []).filter(isObject);
      const hit = rules.some((r) => {
        const scope = getString(r, 'scope') ?? '*';
        return (
          matches(strings(r['operations']), a.operation) &&
          matches(strings(r['apiGroups']), a.rt.group) &&
          matches(strings(r['apiVersions']), a.rt.version) &&
          matches(strings(r['resources']), a.rt.plural) &&
          (scope === '*' || scope === (a.rt.namespaced ? 'Namespaced' : 'Cluster'))
        );
      });
      if (!hit) continue;
      const selector = getObject(w, 'namespaceSelector');
      if (selector !== undefined && a.namespaceLabels !== undefined && !selects(selector, a.namespaceLabels)) continue;
      out.push({
        name: getString(w, 'name') ?? '',
        clientConfig: getObject(w, 'clientConfig') ?? {},
        rules,
        failurePolicy: getString(w, 'failurePolicy') ?? 'Fail',
        sideEffects: getString(w, 'sideEffects') ?? 'Unknown',
        timeoutSeconds: typeof w['timeoutSeconds'] === 'number' ? w['timeoutSeconds'] : 10,
      });
    }
  }
  return out;
}

/** selects evaluates a LabelSelector (matchLabels and matchExpressions, ANDed) against labels, as the list selectors are. */
function selects(selector: JsonObject, labels: Record<string, string>): boolean {
  const ops: Record<string, LabelRequirement['op']> = { In: 'in', NotIn: 'notin', Exists: 'exists', DoesNotExist: '!' };
  const expressions = (Array.isArray(selector['matchExpressions']) ? selector['matchExpressions'] : []).filter(isObject);
  if (expressions.some((e) => ops[getString(e, 'operator') ?? ''] === undefined)) return false;
  const requirements: LabelRequirement[] = [
    ...Object.entries(stringMap(getObject(selector, 'matchLabels'))).map(([key, v]) => ({ key, op: '=' as const, values: [v] })),
    ...expressions.map((e) => ({ key: getString(e, 'key') ?? '', op: ops[getString(e, 'operator') ?? '']!, values: strings(e['values']) })),
  ];
  return matchesLabels(requirements, labels);
}

/**
 * callWebhooks sends the write to each matching webhook and returns their warnings; it throws the
 * ApiError the API server answers with when one denies, or fails under failurePolicy Fail.
 */
export async function callWebhooks(hooks: readonly Webhook[], a: AdmissionAttributes, resolve: ServiceResolver | undefined): Promise<string[]> {
  const warnings: string[] = [];
  for (const hook of hooks) {
    if (a.dryRun && hook.sideEffects !== 'None' && hook.sideEffects !== 'NoneOnDryRun') {
      throw badRequest(`admission webhook "${hook.name}" does not support dry run`);
    }
    let response: JsonObject;
    try {
      response = await post(hook, review(a), resolve);
    } catch (err) {
      if (hook.failurePolicy === 'Ignore') continue;
      throw internalError(`failed calling webhook "${hook.name}": ${(err as Error).message}`);
    }
    warnings.push(...strings(response['warnings']));
    if (response['allowed'] === true) continue;
    const status = getObject(response, 'status') ?? {};
    const message = getString(status, 'message') ?? '';
    const code = typeof status['code'] === 'number' && status['code'] >= 400 ? status['code'] : 403;
    const denied = `admission webhook "${hook.name}" denied the request${message === '' ? ' without explanation' : `: ${message}`}`;
    const details = getObject(status, 'details');
    throw new ApiError(failure(code, getString(status, 'reason') ?? 'Forbidden', denied, details), warnings);
  }
  return warnings;
}

function review(a: AdmissionAttributes): JsonObject {
  const gvk = { group: a.rt.group, version: a.rt.version, kind: a.rt.kind };
  const gvr = { group: a.rt.group, version: a.rt.version, resource: a.rt.plural };
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: randomUUID(),
      kind: gvk,
      resource: gvr,
      requestKind: gvk,
      requestResource: gvr,
      name: a.name,
      ...(a.namespace !== undefined ? { namespace: a.namespace } : {}),
      operation: a.operation,
      userInfo: { username: 'test-user', groups: ['system:authenticated'] },
      object: a.object,
      oldObject: a.oldObject ?? null,
      dryRun: a.dryRun,
      options: { apiVersion: 'meta.k8s.io/v1', kind: a.operation === 'CREATE' ? 'CreateOptions' : 'UpdateOptions' },
    },
  };
}

function target(hook: Webhook, resolve: ServiceResolver | undefined): { host: string; port: number; path: string; servername: string } {
  const url = getString(hook.clientConfig, 'url');
  if (url !== undefined) {
    const u = new URL(url);
    return { host: u.hostname, port: Number(u.port || 443), path: u.pathname + u.search, servername: u.hostname };
  }
  const svc = getObject(hook.clientConfig, 'service') ?? {};
  const ns = getString(svc, 'namespace') ?? '';
  const name = getString(svc, 'name') ?? '';
  const port = typeof svc['port'] === 'number' ? svc['port'] : 443;
  const at = resolve?.(ns, name, port);
  if (at === undefined) throw new Error(`service "${name}" not found`);
  return { ...at, path: getString(svc, 'path') ?? '/', servername: `${name}.${ns}.svc` };
}

function post(hook: Webhook, body: JsonObject, resolve: ServiceResolver | undefined): Promise<JsonObject> {
  const t = target(hook, resolve);
  const caBundle = getString(hook.clientConfig, 'caBundle');
  const payload = JSON.stringify(body);
  return new Promise((resolvePromise, reject) => {
    const req = request(
      {
        host: t.host,
        port: t.port,
        path: t.path,
        method: 'POST',
        ...(isIP(t.servername) === 0 ? { servername: t.servername } : {}),
        ...(caBundle !== undefined ? { ca: Buffer.from(caBundle, 'base64').toString('utf8') } : {}),
        headers: { 'content-type': 'application/json', accept: 'application/json', 'content-length': Buffer.byteLength(payload) },
        timeout: hook.timeoutSeconds * 1000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          if (res.statusCode !== 200) return reject(new Error(`expected response code 200, got ${String(res.statusCode)}`));
          try {
            const reviewed = JSON.parse(Buffer.concat(chunks).toString('utf8')) as JsonObject;
            const response = getObject(reviewed, 'response');
            const uid = getString(getObject(body, 'request') ?? {}, 'uid');
            if (response === undefined || getString(response, 'uid') !== uid) return reject(new Error('expected response.uid to match the request'));
            resolvePromise(response);
          } catch {
            reject(new Error('the response is not an AdmissionReview'));
          }
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('context deadline exceeded')));
    req.on('error', (err) => reject(new Error(`failed to call webhook: Post "https://${t.servername}:${t.port}${t.path}": ${err.message}`)));
    req.end(payload);
  });
}
