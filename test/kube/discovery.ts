import type { JsonObject } from './json.ts';
import { apiVersionOf } from './resources.ts';
import type { ResourceRegistry, ResourceType } from './resources.ts';

/** The media type of aggregated discovery documents, as kubectl asks for them. */
export const AGGREGATED_DISCOVERY_V2 = 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList';
const AGGREGATED_DISCOVERY_V2BETA1 = 'application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList';

/** aggregatedDiscoveryVersion tells which aggregated discovery version an Accept header asks for first (v2, v2beta1), or undefined for legacy JSON. */
export function aggregatedDiscoveryVersion(accept: string): 'v2' | 'v2beta1' | undefined {
  for (const part of accept.split(',')) {
    const p = part.replace(/\s+/g, '');
    if (!p.includes('as=APIGroupDiscoveryList') || !p.includes('g=apidiscovery.k8s.io')) {
      if (p.startsWith('application/json') || p.startsWith('*/*')) return undefined;
      continue;
    }
    if (p.includes('v=v2beta1')) return 'v2beta1';
    if (p.includes('v=v2')) return 'v2';
  }
  return undefined;
}

/** aggregatedContentType is the Content-Type of an aggregated discovery answer of the given version. */
export function aggregatedContentType(version: 'v2' | 'v2beta1'): string {
  return version === 'v2' ? AGGREGATED_DISCOVERY_V2 : AGGREGATED_DISCOVERY_V2BETA1;
}

function served(registry: ResourceRegistry): ResourceType[] {
  return registry.all().filter((t) => t.verbs.length > 0);
}

/** apiVersions answers GET /api (APIVersions). */
export function apiVersions(serverAddress: string): JsonObject {
  return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }] };
}

function groupEntry(group: string, versions: string[]): JsonObject {
  const vs = versions.map((v) => ({ groupVersion: apiVersionOf(group, v), version: v }));
  return { name: group, versions: vs, preferredVersion: vs[0] ?? {} };
}

function nonCoreGroups(registry: ResourceRegistry): { group: string; versions: string[] }[] {
  const groups = registry.groups().filter((g) => g.group !== '');
  const builtinOrder = (g: string): number => (registry.all().some((t) => t.group === g && t.crd === undefined) ? 0 : 1);
  return groups.sort((a, b) => builtinOrder(a.group) - builtinOrder(b.group) || (a.group < b.group ? -1 : 1));
}

/** apiGroupList answers GET /apis (APIGroupList) with each group's versions, preferred first. */
export function apiGroupList(registry: ResourceRegistry): JsonObject {
  return { kind: 'APIGroupList', apiVersion: 'v1', groups: nonCoreGroups(registry).map((g) => groupEntry(g.group, g.versions)) };
}

/** apiGroup answers GET /apis/{group} (APIGroup), or undefined when the group is not served. */
export function apiGroup(registry: ResourceRegistry, group: string): JsonObject | undefined {
  const g = registry.groups().find((x) => x.group === group && group !== '');
  return g === undefined ? undefined : { kind: 'APIGroup', apiVersion: 'v1', ...groupEntry(g.group, g.versions) };
}

/** apiResourceList answers GET /api/v1 or /apis/{group}/{version} (APIResourceList), or undefined when not served. */
export function apiResourceList(registry: ResourceRegistry, group: string, version: string): JsonObject | undefined {
  const types = served(registry).filter((t) => t.group === group && t.version === version);
  if (types.length === 0) return undefined;
  const resources: JsonObject[] = [];
  for (const t of types.sort((a, b) => (a.plural < b.plural ? -1 : 1))) {
    const r: JsonObject = { name: t.plural, singularName: t.singular, namespaced: t.namespaced, kind: t.kind, verbs: t.verbs };
    if (t.shortNames.length > 0) r['shortNames'] = t.shortNames;
    if (t.categories.length > 0) r['categories'] = t.categories;
    resources.push(r);
    if (t.statusSubresource)
      resources.push({ name: `${t.plural}/status`, singularName: '', namespaced: t.namespaced, kind: t.kind, verbs: ['get', 'patch', 'update'] });
  }
  return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: apiVersionOf(group, version), resources };
}

function discoveryResource(t: ResourceType): JsonObject {
  const r: JsonObject = {
    resource: t.plural,
    responseKind: { group: t.group, version: t.version, kind: t.kind },
    scope: t.namespaced ? 'Namespaced' : 'Cluster',
    singularResource: t.singular,
    verbs: t.verbs,
  };
  if (t.shortNames.length > 0) r['shortNames'] = t.shortNames;
  if (t.categories.length > 0) r['categories'] = t.categories;
  if (t.statusSubresource) {
    r['subresources'] = [{ subresource: 'status', responseKind: { group: t.group, version: t.version, kind: t.kind }, verbs: ['get', 'patch', 'update'] }];
  }
  return r;
}

/** aggregatedDiscovery answers /api (core) or /apis (all other groups) as an APIGroupDiscoveryList of the given version. */
export function aggregatedDiscovery(registry: ResourceRegistry, core: boolean, version: 'v2' | 'v2beta1'): JsonObject {
  const groups = core ? registry.groups().filter((g) => g.group === '') : nonCoreGroups(registry);
  const items = groups.map((g) => ({
    metadata: { name: g.group, creationTimestamp: null },
    versions: g.versions.map((v) => ({
      version: v,
      resources: served(registry)
        .filter((t) => t.group === g.group && t.version === v)
        .sort((a, b) => (a.plural < b.plural ? -1 : 1))
        .map(discoveryResource),
      freshness: 'Current',
    })),
  }));
  return { kind: 'APIGroupDiscoveryList', apiVersion: `apidiscovery.k8s.io/${version}`, metadata: {}, items };
}
