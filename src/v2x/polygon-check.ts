/**
 * Finds a self-intersection in a polygon's rings (GeoJSON [lon, lat] positions): two edges that are
 * not neighbours on the same ring and share a point. A crossing outline makes "inside" meaningless
 * (the ray test answers by parity), so zones are refused with the two edges named. Sort and sweep
 * on longitude keeps usual outlines near n log n; `maxTests` bounds hostile ones (combs).
 */
export type Position = readonly [number, number];

interface Edge {
  ring: number;
  k: number;
  /** Edges in the ring: the last one is adjacent to the first. */
  n: number;
  ax: number;
  ay: number;
  bx: number;
  by: number;
  minX: number;
  maxX: number;
  minY: number;
  maxY: number;
}

export function findCrossing(rings: readonly (readonly Position[])[], maxTests = 20_000_000): string | null {
  const edges: Edge[] = [];
  rings.forEach((ring, r) => {
    const n = ring.length - 1;
    for (let k = 0; k < n; k++) {
      const [ax, ay] = ring[k] as Position;
      const [bx, by] = ring[k + 1] as Position;
      edges.push({
        ring: r,
        k,
        n,
        ax,
        ay,
        bx,
        by,
        minX: Math.min(ax, bx),
        maxX: Math.max(ax, bx),
        minY: Math.min(ay, by),
        maxY: Math.max(ay, by),
      });
    }
  });
  edges.sort((p, q) => p.minX - q.minX);
  let tests = 0;
  for (let i = 0; i < edges.length; i++) {
    const e = edges[i] as Edge;
    for (let j = i + 1; j < edges.length; j++) {
      const f = edges[j] as Edge;
      if (f.minX > e.maxX) break;
      if (++tests > maxTests)
        return `too complex to check for crossing edges (over ${maxTests} edge pairs): simplify the outline`;
      if (f.minY > e.maxY || f.maxY < e.minY || adjacent(e, f)) continue;
      if (intersects(e, f)) {
        const [p, q] = e.ring < f.ring || (e.ring === f.ring && e.k < f.k) ? [e, f] : [f, e];
        return `${name(p)} crosses ${name(q)}`;
      }
    }
  }
  return null;
}

const name = (e: Edge) => `ring ${e.ring} edge ${e.k} (positions ${e.k}→${e.k + 1})`;

function adjacent(e: Edge, f: Edge): boolean {
  if (e.ring !== f.ring) return false;
  const d = Math.abs(e.k - f.k);
  return d <= 1 || d === e.n - 1;
}

const orient = (ax: number, ay: number, bx: number, by: number, cx: number, cy: number) =>
  Math.sign((bx - ax) * (cy - ay) - (by - ay) * (cx - ax));

/** Collinear c lies within the bounding box of a-b. */
const onSegment = (ax: number, ay: number, bx: number, by: number, cx: number, cy: number) =>
  Math.min(ax, bx) <= cx && cx <= Math.max(ax, bx) && Math.min(ay, by) <= cy && cy <= Math.max(ay, by);

function intersects(e: Edge, f: Edge): boolean {
  const o1 = orient(e.ax, e.ay, e.bx, e.by, f.ax, f.ay);
  const o2 = orient(e.ax, e.ay, e.bx, e.by, f.bx, f.by);
  const o3 = orient(f.ax, f.ay, f.bx, f.by, e.ax, e.ay);
  const o4 = orient(f.ax, f.ay, f.bx, f.by, e.bx, e.by);
  if (o1 !== o2 && o3 !== o4) return true;
  return (
    (o1 === 0 && onSegment(e.ax, e.ay, e.bx, e.by, f.ax, f.ay)) ||
    (o2 === 0 && onSegment(e.ax, e.ay, e.bx, e.by, f.bx, f.by)) ||
    (o3 === 0 && onSegment(f.ax, f.ay, f.bx, f.by, e.ax, e.ay)) ||
    (o4 === 0 && onSegment(f.ax, f.ay, f.bx, f.by, e.bx, e.by))
  );
}
