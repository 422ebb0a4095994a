/** JsonSchema is a JSON Schema node as read from schemas/. */
export type JsonSchema = { [keyword: string]: unknown };

/** SchemaSet maps a schema file name (common.schema.json, ...) to its parsed content. */
export type SchemaSet = Readonly<Record<string, JsonSchema>>;

/**
 * resolveRef returns the schema a $ref names, relative to the file it appears in
 * ('common.schema.json#/definitions/x' or '#/definitions/x'), or throws for a dangling reference.
 */
export function resolveRef(schemas: SchemaSet, fromFile: string, ref: string): { file: string; schema: JsonSchema } {
  const [filePart, fragment = ''] = ref.split('#');
  const file = filePart === '' || filePart === undefined ? fromFile : filePart;
  let node: unknown = schemas[file];
  for (const seg of fragment.split('/').filter((s) => s !== '')) {
    node = (node as JsonSchema | undefined)?.[seg.replace(/~1/g, '/').replace(/~0/g, '~')];
  }
  if (node === undefined || typeof node !== 'object' || node === null) throw new Error(`dangling $ref ${ref} in ${fromFile}`);
  return { file, schema: node as JsonSchema };
}

/**
 * inlineRefs returns a copy of schema with every $ref replaced by the schema it names; keywords
 * beside a $ref (description, default) override the referenced ones.
 */
export function inlineRefs(schemas: SchemaSet, file: string, schema: unknown, depth = 0): unknown {
  if (depth > 50) throw new Error(`$ref cycle in ${file}`);
  if (Array.isArray(schema)) return schema.map((s) => inlineRefs(schemas, file, s, depth));
  if (schema === null || typeof schema !== 'object') return schema;
  const node = schema as JsonSchema;
  if (typeof node.$ref === 'string') {
    const target = resolveRef(schemas, file, node.$ref);
    const { $ref: _ref, ...siblings } = node;
    const base = inlineRefs(schemas, target.file, target.schema, depth + 1) as JsonSchema;
    return { ...base, ...(inlineRefs(schemas, file, siblings, depth) as JsonSchema) };
  }
  const out: JsonSchema = {};
  for (const [k, v] of Object.entries(node)) {
    // Literal data, not schemas: leave untouched.
    out[k] =
      k === 'enum' || k === 'const' || k === 'default' || k === 'required' || k === 'x-kubernetes-list-map-keys' ? v : inlineRefs(schemas, file, v, depth);
  }
  return out;
}
