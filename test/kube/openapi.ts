import { createHash } from 'node:crypto';
import { deepClone } from './json.ts';
import type { JsonObject } from './json.ts';
import type { ResourceRegistry, ResourceType } from './resources.ts';

function gvPath(group: string, version: string): string {
  return group === '' ? `api/${version}` : `apis/${group}/${version}`;
}

function schemaName(rt: ResourceType): string {
  const g = rt.group === '' ? 'io.k8s.api.core' : rt.group.split('.').reverse().join('.');
  return `${g}.${rt.version}.${rt.kind}`;
}

/** openApiV3GroupVersion renders the OpenAPI v3 document of one group/version: per-resource paths whose PATCH operations carry x-kubernetes-group-version-kind and the fieldValidation parameter (what kubectl's validation checks), and the kinds' schemas. */
export function openApiV3GroupVersion(registry: ResourceRegistry, group: string, version: string): JsonObject | undefined {
  const types = registry.inGroupVersion(group, version).filter((t) => t.verbs.length > 0);
  if (types.length === 0) return undefined;
  const paths: JsonObject = {};
  const schemas: JsonObject = {};
  const queryParam = (name: string): JsonObject => ({ name, in: 'query', schema: { type: 'string', uniqueItems: true } });
  for (const rt of types) {
    const gvk = { group: rt.group, version: rt.version, kind: rt.kind };
    const ref = { $ref: `#/components/schemas/${schemaName(rt)}` };
    const patchTypes = ['application/json-patch+json', 'application/merge-patch+json', 'application/apply-patch+yaml'];
    const base = `/${gvPath(rt.group, rt.version)}${rt.namespaced ? '/namespaces/{namespace}' : ''}/${rt.plural}`;
    const op = (verb: string, withBody: boolean, contentTypes: string[]): JsonObject => {
      const o: JsonObject = {
        operationId: `${verb}${rt.kind}`,
        parameters: [queryParam('dryRun'), queryParam('fieldManager'), queryParam('fieldValidation')],
        responses: { '200': { description: 'OK', content: { 'application/json': { schema: ref } } } },
        'x-kubernetes-action': verb,
        'x-kubernetes-group-version-kind': gvk,
      };
      if (withBody) o['requestBody'] = { content: Object.fromEntries(contentTypes.map((c) => [c, { schema: ref }])) };
      return o;
    };
    paths[base] = { post: op('post', true, ['*/*']), get: { ...op('list', false, []), parameters: [] } };
    paths[`${base}/{name}`] = {
      get: { ...op('get', false, []), parameters: [] },
      put: op('put', true, ['*/*']),
      patch: op('patch', true, patchTypes),
      delete: { ...op('delete', false, []), parameters: [queryParam('dryRun')] },
    };
    if (rt.statusSubresource)
      paths[`${base}/{name}/status`] = {
        get: { ...op('get', false, []), parameters: [] },
        put: op('put', true, ['*/*']),
        patch: op('patch', true, patchTypes),
      };
    const schema = deepClone((rt.strategy.schema ?? { type: 'object' }) as JsonObject);
    const props = (schema['properties'] ?? {}) as JsonObject;
    props['apiVersion'] = { type: 'string' };
    props['kind'] = { type: 'string' };
    props['metadata'] = { type: 'object' };
    schema['properties'] = props;
    schema['x-kubernetes-group-version-kind'] = [gvk];
    schemas[schemaName(rt)] = schema;
  }
  return { openapi: '3.0.0', info: { title: 'Kubernetes', version: 'v1.32.0' }, paths, components: { schemas } };
}

/** openApiV3Root renders /openapi/v3: the served group/versions, each with the URL (and content hash) of its document. */
export function openApiV3Root(registry: ResourceRegistry): JsonObject {
  const paths: JsonObject = {};
  for (const g of registry.groups()) {
    for (const v of g.versions) {
      const doc = openApiV3GroupVersion(registry, g.group, v);
      if (doc === undefined) continue;
      const hash = createHash('sha512').update(JSON.stringify(doc)).digest('hex').slice(0, 64).toUpperCase();
      paths[gvPath(g.group, v)] = { serverRelativeURL: `/openapi/v3/${gvPath(g.group, v)}?hash=${hash}` };
    }
  }
  return { paths };
}
