import type { Point } from '../decode/index.js';

/**
 * Points decoded at intake, kept by spool id so sink runners need not decode the same payload
 * again. Bounded by a point count: past it the oldest entries go, and a runner that misses
 * decodes from the spooled bytes (the spool, not this cache, is the durable copy).
 */
export class DecodedCache {
  readonly #map = new Map<number, Point[]>();
  #points = 0;

  constructor(readonly maxPoints: number) {
    if (!(maxPoints >= 0)) throw new Error('DecodedCache: maxPoints must be ≥ 0');
  }

  set(id: number, points: Point[]): void {
    if (points.length > this.maxPoints) return;
    this.#map.set(id, points);
    this.#points += points.length;
    while (this.#points > this.maxPoints) this.#evictFirst();
  }

  get(id: number): Point[] | undefined {
    return this.#map.get(id);
  }

  /** Forgets every id ≤ upTo (all sinks confirmed them). Ids arrive in ascending order. */
  trim(upTo: number): void {
    for (const id of this.#map.keys()) {
      if (id > upTo) break;
      this.#evictFirst();
    }
  }

  get size(): number {
    return this.#map.size;
  }

  #evictFirst(): void {
    const first = this.#map.entries().next();
    if (first.done) return;
    this.#map.delete(first.value[0]);
    this.#points -= first.value[1].length;
  }
}
