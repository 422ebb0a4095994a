import { contentHash } from './bundle.js';

/**
 * Generations assigns metadata.generation to objects read from files, as the API server does:
 * 1 when first seen, +1 each time the spec changes, unchanged otherwise. Seeded from earlier
 * statuses (observedGeneration) it carries on across restarts.
 */
export class Generations {
  private readonly seen = new Map<string, { hash: string; generation: number }>();

  constructor(private readonly seed: ReadonlyMap<string, number> = new Map()) {}

  /** generationOf returns the generation of an object's spec, bumping it when the spec changed since the last call. */
  generationOf(key: string, spec: unknown): number {
    const hash = contentHash(spec ?? null);
    const prev = this.seen.get(key);
    if (prev !== undefined && prev.hash === hash) return prev.generation;
    const generation = prev !== undefined ? prev.generation + 1 : (this.seed.get(key) ?? 0) + 1;
    this.seen.set(key, { hash, generation });
    return generation;
  }
}
