import type { Zone } from './config.js';

/** A zone's rings in degrees as flat [lon, lat, lon, lat, …] arrays, outline first. */
interface Compiled {
  id: string;
  zone: Zone;
  rings: Float64Array[];
  minLon: number;
  minLat: number;
  maxLon: number;
  maxLat: number;
}

/** Grid cell of the zone index, in degrees (about 1 km). */
const CELL_DEG = 0.01;
const EPS = 1e-12;

/**
 * Geofences as GeoJSON polygons (holes allowed), with a uniform grid over bounding boxes as the
 * spatial index: a point is tested only against zones whose box overlaps its cell. A point on a
 * boundary (outline or hole) is inside the zone. No antimeridian crossing.
 */
export class Geofences {
  readonly #zones = new Map<string, Compiled>();
  readonly #grid = new Map<number, Compiled[]>();
  readonly #maxCells: number;

  constructor(opts: { maxCellsPerZone?: number } = {}) {
    this.#maxCells = opts.maxCellsPerZone ?? 250_000;
  }

  get size(): number {
    return this.#zones.size;
  }

  list(): Zone[] {
    return [...this.#zones.values()].map((c) => c.zone);
  }

  get(id: string): Zone | undefined {
    return this.#zones.get(id)?.zone;
  }

  /** First vertex of the first zone (an ENU origin when none is configured). */
  firstVertex(): { lat: number; lon: number } | null {
    for (const c of this.#zones.values()) {
      const r = c.rings[0] as Float64Array;
      return { lon: r[0] as number, lat: r[1] as number };
    }
    return null;
  }

  /** Adds or replaces a zone. Throws (message names the problem) on a degenerate polygon. */
  set(zone: Zone): void {
    const rings = zone.geometry.coordinates.map((ring, i) => {
      const first = ring[0] as [number, number];
      const last = ring[ring.length - 1] as [number, number];
      if (first[0] !== last[0] || first[1] !== last[1])
        throw new Error(`zone ${zone.id}: ring ${i} is not closed (first and last positions differ)`);
      const flat = new Float64Array((ring.length - 1) * 2);
      for (let k = 0; k < ring.length - 1; k++) {
        flat[2 * k] = (ring[k] as [number, number])[0];
        flat[2 * k + 1] = (ring[k] as [number, number])[1];
      }
      return flat;
    });
    const outer = rings[0] as Float64Array;
    let minLon = Infinity;
    let minLat = Infinity;
    let maxLon = -Infinity;
    let maxLat = -Infinity;
    for (let k = 0; k < outer.length; k += 2) {
      minLon = Math.min(minLon, outer[k] as number);
      maxLon = Math.max(maxLon, outer[k] as number);
      minLat = Math.min(minLat, outer[k + 1] as number);
      maxLat = Math.max(maxLat, outer[k + 1] as number);
    }
    if (!(maxLon > minLon && maxLat > minLat)) throw new Error(`zone ${zone.id}: the outline has no area`);
    const cells =
      (Math.floor(maxLon / CELL_DEG) - Math.floor(minLon / CELL_DEG) + 1) *
      (Math.floor(maxLat / CELL_DEG) - Math.floor(minLat / CELL_DEG) + 1);
    if (cells > this.#maxCells)
      throw new Error(`zone ${zone.id}: too large (${cells} index cells; at most ${this.#maxCells})`);
    this.delete(zone.id);
    const c: Compiled = { id: zone.id, zone, rings, minLon, minLat, maxLon, maxLat };
    this.#zones.set(zone.id, c);
    this.#eachCell(c, (key) => {
      const list = this.#grid.get(key);
      if (list) list.push(c);
      else this.#grid.set(key, [c]);
    });
  }

  delete(id: string): boolean {
    const c = this.#zones.get(id);
    if (!c) return false;
    this.#zones.delete(id);
    this.#eachCell(c, (key) => {
      const list = (this.#grid.get(key) ?? []).filter((z) => z !== c);
      if (list.length) this.#grid.set(key, list);
      else this.#grid.delete(key);
    });
    return true;
  }

  /** Ids of the zones containing the point, into `out` (cleared first); returns the count. */
  zonesAt(lon: number, lat: number, out: string[]): number {
    out.length = 0;
    const list = this.#grid.get(cellKey(Math.floor(lon / CELL_DEG), Math.floor(lat / CELL_DEG)));
    if (!list) return 0;
    for (const c of list) if (contains(c, lon, lat)) out.push(c.id);
    return out.length;
  }

  #eachCell(c: Compiled, f: (key: number) => void): void {
    for (let i = Math.floor(c.minLon / CELL_DEG); i <= Math.floor(c.maxLon / CELL_DEG); i++)
      for (let j = Math.floor(c.minLat / CELL_DEG); j <= Math.floor(c.maxLat / CELL_DEG); j++)
        f(cellKey(i, j));
  }
}

/** Below 2^30 (a small integer for V8): i in ±18,000 (lon / 0.01°), j in ±9,000. */
function cellKey(i: number, j: number): number {
  return (i + 18_000) * 18_001 + (j + 9_000);
}

function contains(c: Compiled, x: number, y: number): boolean {
  if (x < c.minLon || x > c.maxLon || y < c.minLat || y > c.maxLat) return false;
  const outer = c.rings[0] as Float64Array;
  const o = ringTest(outer, x, y);
  if (o === 0) return true;
  if (o < 0) return false;
  for (let h = 1; h < c.rings.length; h++) if (ringTest(c.rings[h] as Float64Array, x, y) > 0) return false;
  return true;
}

/** 1 strictly inside, 0 on the boundary, -1 outside (even-odd ray casting). */
export function ringTest(r: Float64Array, x: number, y: number): number {
  let inside = false;
  const n = r.length;
  for (let i = 0, j = n - 2; i < n; j = i, i += 2) {
    const xi = r[i] as number;
    const yi = r[i + 1] as number;
    const xj = r[j] as number;
    const yj = r[j + 1] as number;
    // On the segment: collinear (relative tolerance) and within its box.
    const cross = (xj - xi) * (y - yi) - (yj - yi) * (x - xi);
    const scale = Math.abs(xj - xi) + Math.abs(yj - yi);
    if (
      Math.abs(cross) <= EPS * scale &&
      x >= Math.min(xi, xj) - EPS &&
      x <= Math.max(xi, xj) + EPS &&
      y >= Math.min(yi, yj) - EPS &&
      y <= Math.max(yi, yj) + EPS
    )
      return 0;
    if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside ? 1 : -1;
}
