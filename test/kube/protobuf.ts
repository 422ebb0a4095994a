import { text } from './json.ts';
import type { JsonObject } from './json.ts';

type Scalar = 'string' | 'bytes' | 'int' | 'bool' | 'time';
interface Field {
  name: string;
  type: Scalar | Message | { map: 'string' | 'bytes' };
  repeated?: boolean;
}
interface Message {
  fields: Record<number, Field>;
}

const msg = (fields: Record<number, Field>): Message => ({ fields });
const f = (name: string, type: Field['type'], repeated = false): Field => ({ name, type, repeated });

const OWNER_REFERENCE = msg({
  1: f('kind', 'string'),
  3: f('name', 'string'),
  4: f('uid', 'string'),
  5: f('apiVersion', 'string'),
  6: f('controller', 'bool'),
  7: f('blockOwnerDeletion', 'bool'),
});
const OBJECT_META = msg({
  1: f('name', 'string'),
  2: f('generateName', 'string'),
  3: f('namespace', 'string'),
  5: f('uid', 'string'),
  6: f('resourceVersion', 'string'),
  7: f('generation', 'int'),
  8: f('creationTimestamp', 'time'),
  9: f('deletionTimestamp', 'time'),
  10: f('deletionGracePeriodSeconds', 'int'),
  11: f('labels', { map: 'string' }),
  12: f('annotations', { map: 'string' }),
  13: f('ownerReferences', OWNER_REFERENCE, true),
  14: f('finalizers', 'string', true),
});
const OBJECT_REFERENCE = msg({
  1: f('kind', 'string'),
  2: f('namespace', 'string'),
  3: f('name', 'string'),
  4: f('uid', 'string'),
  5: f('apiVersion', 'string'),
  6: f('resourceVersion', 'string'),
  7: f('fieldPath', 'string'),
});

/** The built-in kinds (apiVersion/kind) whose protobuf encoding the fake API server can read, as kubectl create sends them. */
const KINDS: Record<string, Message> = {
  'v1/Namespace': msg({
    1: f('metadata', OBJECT_META),
    2: f('spec', msg({ 1: f('finalizers', 'string', true) })),
    3: f('status', msg({ 1: f('phase', 'string') })),
  }),
  'v1/Secret': msg({
    1: f('metadata', OBJECT_META),
    2: f('data', { map: 'bytes' }),
    3: f('type', 'string'),
    4: f('stringData', { map: 'string' }),
    5: f('immutable', 'bool'),
  }),
  'v1/ConfigMap': msg({ 1: f('metadata', OBJECT_META), 2: f('data', { map: 'string' }), 3: f('binaryData', { map: 'bytes' }), 4: f('immutable', 'bool') }),
  'v1/ServiceAccount': msg({
    1: f('metadata', OBJECT_META),
    2: f('secrets', OBJECT_REFERENCE, true),
    3: f('imagePullSecrets', msg({ 1: f('name', 'string') }), true),
    4: f('automountServiceAccountToken', 'bool'),
  }),
};

/** ProtobufError reports a body that is not a protobuf-encoded object of a kind the fake can read. */
export class ProtobufError extends Error {
  readonly code = 'ERR_PROTOBUF';
}

class Reader {
  pos = 0;
  readonly buf: Buffer;

  constructor(buf: Buffer) {
    this.buf = buf;
  }
  done(): boolean {
    return this.pos >= this.buf.length;
  }
  varint(): bigint {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (this.pos >= this.buf.length) throw new ProtobufError('truncated varint');
      const b = this.buf[this.pos++] ?? 0;
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
      shift += 7n;
    }
  }
  bytes(): Buffer {
    const n = Number(this.varint());
    if (this.pos + n > this.buf.length) throw new ProtobufError('truncated field');
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.pos += 8;
    else if (wire === 2) this.bytes();
    else if (wire === 5) this.pos += 4;
    else throw new ProtobufError(`unsupported wire type ${wire}`);
  }
}

function decodeTime(buf: Buffer): string {
  const r = new Reader(buf);
  let seconds = 0n;
  while (!r.done()) {
    const key = Number(r.varint());
    if (key >> 3 === 1 && (key & 7) === 0) seconds = r.varint();
    else r.skip(key & 7);
  }
  return new Date(Number(seconds) * 1000).toISOString().replace('.000Z', 'Z');
}

function decodeMessage(buf: Buffer, m: Message): JsonObject {
  const r = new Reader(buf);
  const out: JsonObject = {};
  while (!r.done()) {
    const key = Number(r.varint());
    const field = m.fields[key >> 3];
    const wire = key & 7;
    if (field === undefined) {
      r.skip(wire);
      continue;
    }
    let value: unknown;
    const t = field.type;
    if (t === 'int') value = Number(BigInt.asIntN(64, r.varint()));
    else if (t === 'bool') value = r.varint() !== 0n;
    else if (t === 'string') value = r.bytes().toString('utf8');
    else if (t === 'bytes') value = r.bytes().toString('base64');
    else if (t === 'time') value = decodeTime(r.bytes());
    else if ('map' in t) {
      const entry = decodeMessage(r.bytes(), msg({ 1: f('key', 'string'), 2: f('value', t.map) }));
      const map = (out[field.name] ?? {}) as JsonObject;
      map[text(entry['key'])] = entry['value'] ?? '';
      out[field.name] = map;
      continue;
    } else value = decodeMessage(r.bytes(), t);
    if (field.repeated) out[field.name] = [...((out[field.name] as unknown[] | undefined) ?? []), value];
    else out[field.name] = value;
  }
  return out;
}

const MAGIC = Buffer.from([0x6b, 0x38, 0x73, 0x00]);

/** decodeProtobufObject reads a `k8s\0`-framed runtime.Unknown holding one of the supported built-in kinds and returns it as JSON, throwing ProtobufError otherwise. */
export function decodeProtobufObject(body: Buffer): JsonObject {
  if (body.length < 4 || !body.subarray(0, 4).equals(MAGIC)) throw new ProtobufError('missing the k8s protobuf prefix');
  const unknown = decodeMessage(
    body.subarray(4),
    msg({ 1: f('typeMeta', msg({ 1: f('apiVersion', 'string'), 2: f('kind', 'string') })), 2: f('raw', 'bytes') }),
  );
  const typeMeta = (unknown['typeMeta'] ?? {}) as JsonObject;
  const apiVersion = text(typeMeta['apiVersion']);
  const kind = text(typeMeta['kind']);
  const m = KINDS[`${apiVersion}/${kind}`];
  if (m === undefined) throw new ProtobufError(`protobuf decoding of ${apiVersion}/${kind} is not supported by the fake API server`);
  const raw = Buffer.from(text(unknown['raw']), 'base64');
  return { apiVersion, kind, ...decodeMessage(raw, m) };
}
