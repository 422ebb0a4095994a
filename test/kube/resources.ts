import type { JsonObject } from './json.ts';
import type { PatchMeta } from './patch.ts';
import type { Schema } from './schema.ts';
import type { FieldError } from './status.ts';

/** One Table column after Name: its definition plus how to compute the cell from an object (in the served version). */
export interface Column {
  name: string;
  type: string;
  format: string;
  description: string;
  priority: number;
  cell: (obj: JsonObject, now: number) => unknown;
}

/** How a resource's metadata.name is validated. */
export type NameRule = 'subdomain' | 'label' | 'dns1035' | 'path-segment';

/** Per-kind behaviour of the generic registry, the counterpart of a Kubernetes REST strategy. */
export interface Strategy {
  /** Schema used to prune unknown fields and (for custom resources) validate; typed built-ins also type-check with it. */
  schema: Schema | undefined;
  /** Built-in types decode like Go structs: a wrong JSON type is a 400 decode error, not a 422. */
  typed: boolean;
  nameRule: NameRule;
  allowCreateOnUpdate: boolean;
  allowUnconditionalUpdate: boolean;
  returnDeletedObject: boolean;
  /** The part of the object whose changes bump metadata.generation; undefined when the kind has no generation. */
  generationSource: ((obj: JsonObject) => unknown) | undefined;
  /** Defaults and server-set fields on create (after decoding, before validation). */
  prepareForCreate: (obj: JsonObject) => void;
  /** Carries over fields the main resource may not change (e.g. status) on update. */
  prepareForUpdate: (obj: JsonObject, old: JsonObject) => void;
  /** Kind-specific validation (metadata rules are checked generically). */
  validate: (obj: JsonObject, old: JsonObject | undefined) => FieldError[];
  /** Extra field-selector labels beyond metadata.name and metadata.namespace. */
  fieldLabels: (obj: JsonObject) => Record<string, string>;
  /** Converts an object of this version to the storage form. */
  toStorage: (obj: JsonObject) => JsonObject;
  /** Converts a stored object to this version. */
  fromStorage: (obj: JsonObject) => JsonObject;
}

/** A served resource: group, version, names, scope, verbs, subresources, columns and strategy. */
export interface ResourceType {
  group: string;
  version: string;
  plural: string;
  singular: string;
  kind: string;
  listKind: string;
  namespaced: boolean;
  shortNames: string[];
  categories: string[];
  verbs: string[];
  statusSubresource: boolean;
  /** Identifies the storage shared by every version (and alias group) of one resource. */
  storageKey: string;
  columns: Column[];
  /** Present when the resource accepts strategic merge patches (built-ins only). */
  patchMeta: PatchMeta | undefined;
  strategy: Strategy;
  /** The CustomResourceDefinition that defines it, for custom resources. */
  crd: string | undefined;
  /** Whether this version is the one objects are stored in. */
  storage: boolean;
}

/** ALL_VERBS are the verbs a fully served resource lists in discovery. */
export const ALL_VERBS: readonly string[] = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

/** apiVersionOf renders `group/version`, or just `version` for the core group. */
export function apiVersionOf(group: string, version: string): string {
  return group === '' ? version : `${group}/${version}`;
}

/** groupResource names a resource type as errors do (`leases` in `coordination.k8s.io`). */
export function groupResource(rt: ResourceType): { group: string; name: string } {
  return { group: rt.group, name: rt.plural };
}

/** groupKind names a resource type's kind as validation errors do. */
export function groupKind(rt: ResourceType): { group: string; name: string } {
  return { group: rt.group, name: rt.kind };
}

const VERSION_RE = /^v(\d+)(?:(alpha|beta)(\d+))?$/;

/** compareVersions orders API versions by Kubernetes' priority (GA, then beta, then alpha, each by major then minor descending, then others alphabetically); negative when a comes first. */
export function compareVersions(a: string, b: string): number {
  const rank = (v: string): [number, number, number, string] => {
    const m = VERSION_RE.exec(v);
    if (m === null) return [0, 0, 0, v];
    const stability = m[2] === undefined ? 3 : m[2] === 'beta' ? 2 : 1;
    return [stability, Number(m[1]), Number(m[3] ?? 0), v];
  };
  const [sa, ma, na, va] = rank(a);
  const [sb, mb, nb, vb] = rank(b);
  if (sa === 0 && sb === 0) return va < vb ? -1 : va > vb ? 1 : 0;
  if (sa !== sb) return sb - sa;
  if (ma !== mb) return mb - ma;
  return nb - na;
}

/** ResourceRegistry holds the served resource types, built-in and CRD-defined, and answers lookups by path and name. */
export class ResourceRegistry {
  private types: ResourceType[] = [];

  /** add serves a resource type, replacing one with the same group, version and plural. */
  add(rt: ResourceType): void {
    this.types = this.types.filter((t) => !(t.group === rt.group && t.version === rt.version && t.plural === rt.plural));
    this.types.push(rt);
  }

  /** removeCrd stops serving every resource type the named CRD defined. */
  removeCrd(crdName: string): ResourceType[] {
    const removed = this.types.filter((t) => t.crd === crdName);
    this.types = this.types.filter((t) => t.crd !== crdName);
    return removed;
  }

  /** find returns the type served at /group/version/plural, or undefined. */
  find(group: string, version: string, plural: string): ResourceType | undefined {
    return this.types.find((t) => t.group === group && t.version === version && t.plural === plural);
  }

  /** findKind returns the type for an apiVersion and kind, or undefined. */
  findKind(apiVersion: string, kind: string): ResourceType | undefined {
    return this.types.find((t) => apiVersionOf(t.group, t.version) === apiVersion && t.kind === kind);
  }

  /** byStorage returns every served version of the resource stored under storageKey. */
  byStorage(storageKey: string): ResourceType[] {
    return this.types.filter((t) => t.storageKey === storageKey);
  }

  /** all returns every served resource type. */
  all(): ResourceType[] {
    return [...this.types];
  }

  /** groups returns each group with its versions sorted by priority (preferred first); the core group is "". */
  groups(): { group: string; versions: string[] }[] {
    const map = new Map<string, Set<string>>();
    for (const t of this.types) {
      const s = map.get(t.group) ?? new Set<string>();
      s.add(t.version);
      map.set(t.group, s);
    }
    return [...map.entries()].map(([group, versions]) => ({ group, versions: [...versions].sort(compareVersions) }));
  }

  /** inGroupVersion returns the types served under group/version. */
  inGroupVersion(group: string, version: string): ResourceType[] {
    return this.types.filter((t) => t.group === group && t.version === version);
  }
}
