import { contentHash } from './bundle.ts';

/**
 * Generations assigns metadata.generation to objects read from files, as the API server does:
 * 1 when first seen, +1 each time the spec changes, unchanged otherwise. Seeded from earlier
 * statuses (observedGeneration) it carries on across restarts.
 */
export class Generations {
  private readonly seen = new Map<string, { hash: string; generation: number }>();

  /** seed holds what an earlier run saw: each key's spec hash and generation. */
  constructor(seed: ReadonlyMap<string, { hash: string; generation: number }> = new Map()) {
    for (const [k, v] of seed) this.seen.set(k, { ...v });
  }

  /** generationOf returns the generation of an object's spec, bumping it when the spec changed since the last call. */
  generationOf(key: string, spec: unknown): number {
    const hash = contentHash(spec ?? null);
    const prev = this.seen.get(key);
    if (prev !== undefined && prev.hash === hash) return prev.generation;
    const generation = prev !== undefined ? prev.generation + 1 : 1;
    this.seen.set(key, { hash, generation });
    return generation;
  }

  /** entries returns what has been seen, to seed a later run. */
  entries(): Map<string, { hash: string; generation: number }> {
    return new Map([...this.seen].map(([k, v]) => [k, { ...v }]));
  }
}
