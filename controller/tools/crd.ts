import { CATEGORY, GROUP, VERSION, type KindInfo } from '../core/kinds.ts';
import { ADMISSION_RULES, crdValidations, type RuleTable } from './admission-rules.ts';
import { inlineRefs, type JsonSchema, type SchemaSet } from '../core/schema-tree.ts';

// Keywords a CRD's openAPIV3Schema does not take, or that only make sense in JSON Schema files.
const DROPPED = new Set(['$schema', '$id', 'title', 'definitions', 'examples', 'propertyNames', 'const']);

/** buildCrd generates the CustomResourceDefinition of a kind from its JSON Schema: structural, with the status subresource, printer columns, short name and category. */
export function buildCrd(info: KindInfo, schemas: SchemaSet): JsonSchema {
  const root = inlineRefs(schemas, info.schemaFile, schemas[info.schemaFile]) as JsonSchema;
  const props = root.properties as Record<string, JsonSchema>;
  const openAPIV3Schema: JsonSchema = {
    description: root.description,
    type: 'object',
    required: ['spec'],
    properties: {
      apiVersion: { type: 'string', description: 'APIVersion defines the versioned schema of this representation of an object.' },
      kind: { type: 'string', description: 'Kind is a string value representing the REST resource this object represents.' },
      metadata: { type: 'object' },
      spec: toStructural(props.spec!),
      status: toStructural(props.status!),
    },
  };
  attachRules(openAPIV3Schema, ADMISSION_RULES[info.kind]);
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: `${info.plural}.${GROUP}`,
      labels: { 'app.kubernetes.io/name': 'smsauth', 'app.kubernetes.io/part-of': 'smsauth' },
    },
    spec: {
      group: GROUP,
      names: {
        kind: info.kind,
        listKind: `${info.kind}List`,
        plural: info.plural,
        singular: info.singular,
        shortNames: [info.shortName],
        categories: [CATEGORY],
      },
      scope: 'Namespaced',
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: [
            ...info.columns,
            { name: 'Ready', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].status', description: 'Whether the object is ready.' },
            { name: 'Reason', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].reason', description: 'Why, when not ready.' },
            {
              name: 'Stalled',
              type: 'string',
              jsonPath: '.status.conditions[?(@.type=="Stalled")].status',
              description: 'True when only a change can fix it.',
            },
            { name: 'Suspended', type: 'boolean', jsonPath: '.spec.suspend', description: 'True while the controller holds the version it last applied.' },
            {
              name: 'Deleting',
              type: 'date',
              jsonPath: '.metadata.deletionTimestamp',
              description: 'Since when a deletion waits (a finalizer holds it while stores link the account).',
            },
            { name: 'Message', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].message', description: 'Details.', priority: 1 },
            { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp', description: 'Time since creation.' },
          ],
          schema: { openAPIV3Schema },
        },
      ],
    },
  };
}

/** attachRules puts each rule on the schema node its path names (`spec.sms`, `spec.locales.*`). */
function attachRules(root: JsonSchema, table: RuleTable): void {
  for (const [path, rules] of Object.entries(table)) {
    let node: JsonSchema | undefined = root;
    for (const step of path === '' ? [] : path.split('.')) {
      if (step === '*') node = (node?.additionalProperties ?? node?.items) as JsonSchema | undefined;
      else node = (node?.properties as Record<string, JsonSchema> | undefined)?.[step];
    }
    if (node === undefined) throw new Error(`admission rule on ${path}: no such schema node`);
    node['x-kubernetes-validations'] = [...((node['x-kubernetes-validations'] as unknown[] | undefined) ?? []), ...crdValidations(rules)];
  }
}

function toStructural(schema: JsonSchema): JsonSchema {
  const out: JsonSchema = {};
  for (const [k, v] of Object.entries(schema)) {
    if (DROPPED.has(k)) continue;
    if (k === 'additionalProperties' && typeof v === 'boolean') continue; // pruning does this job in a cluster
    if (k === 'uniqueItems') continue; // not allowed in CRDs; list-type set below says it
    if (k === 'properties') {
      out.properties = Object.fromEntries(Object.entries(v as Record<string, JsonSchema>).map(([p, s]) => [p, toStructural(s)]));
    } else if ((k === 'items' || k === 'additionalProperties') && typeof v === 'object' && v !== null) {
      out[k] = toStructural(v as JsonSchema);
    } else {
      out[k] = v;
    }
  }
  if (typeof schema.const === 'string') out.enum = [schema.const];
  if (schema.uniqueItems === true && out['x-kubernetes-list-type'] === undefined) out['x-kubernetes-list-type'] = 'set';
  if (Array.isArray(out.type)) throw new Error('a CRD schema node needs a single type');
  return out;
}

/**
 * structuralViolations lists where a CRD schema breaks the structural-schema rules of
 * apiextensions.k8s.io/v1: every node typed, no $ref, no additionalProperties beside properties,
 * metadata restricted to nothing but its type, no unsupported keywords.
 */
export function structuralViolations(openAPIV3Schema: JsonSchema): string[] {
  const problems: string[] = [];
  const allowed = new Set([
    'type',
    'description',
    'properties',
    'items',
    'additionalProperties',
    'required',
    'enum',
    'default',
    'format',
    'pattern',
    'minimum',
    'maximum',
    'exclusiveMinimum',
    'exclusiveMaximum',
    'minLength',
    'maxLength',
    'minItems',
    'maxItems',
    'minProperties',
    'maxProperties',
    'multipleOf',
    'nullable',
    'example',
    'x-kubernetes-list-type',
    'x-kubernetes-list-map-keys',
    'x-kubernetes-map-type',
    'x-kubernetes-preserve-unknown-fields',
    'x-kubernetes-int-or-string',
    'x-kubernetes-embedded-resource',
    'x-kubernetes-validations',
    'allOf',
    'anyOf',
    'oneOf',
    'not',
  ]);
  const visit = (node: JsonSchema, path: string): void => {
    for (const k of Object.keys(node)) if (!allowed.has(k)) problems.push(`${path}: keyword ${k} is not allowed in a CRD schema`);
    if (typeof node.type !== 'string' && node['x-kubernetes-int-or-string'] !== true && node['x-kubernetes-preserve-unknown-fields'] !== true) {
      problems.push(`${path}: no type`);
    }
    if (node.properties !== undefined && node.additionalProperties !== undefined) problems.push(`${path}: additionalProperties beside properties`);
    if (node.type === 'array' && node.items === undefined) problems.push(`${path}: array without items`);
    if (node.type === 'array' && node['x-kubernetes-list-type'] === 'map') {
      const keys = node['x-kubernetes-list-map-keys'];
      const item = node.items as JsonSchema | undefined;
      for (const key of Array.isArray(keys) ? (keys as string[]) : []) {
        if (!((item?.required as string[] | undefined) ?? []).includes(key)) problems.push(`${path}: list-map key ${key} must be required in items`);
      }
    }
    for (const [p, s] of Object.entries((node.properties as Record<string, JsonSchema> | undefined) ?? {})) visit(s, `${path}.${p}`);
    if (typeof node.items === 'object' && node.items !== null) visit(node.items as JsonSchema, `${path}[*]`);
    if (typeof node.additionalProperties === 'object' && node.additionalProperties !== null) visit(node.additionalProperties as JsonSchema, `${path}{*}`);
  };
  if (openAPIV3Schema.type !== 'object') problems.push('root: type must be object');
  visit(openAPIV3Schema, 'root');
  const metadata = (openAPIV3Schema.properties as Record<string, JsonSchema> | undefined)?.metadata;
  if (metadata !== undefined && Object.keys(metadata).some((k) => k !== 'type')) problems.push('root.metadata: must be only {type: object}');
  return problems;
}
