/**
 * Per-vehicle kinematics in local ENU metres, with a uniform grid (cell = neighbour radius) for
 * neighbour search: a query looks at the 3 × 3 cells around a point. Records are reused in place
 * per message (no allocation on the hot path once a vehicle is known).
 */

export interface Vehicle {
  readonly id: string;
  /** Time of the state (ms since the epoch): the message's secMark mapped onto this clock. */
  t: number;
  /** performance.now() when the message carrying this state was taken in (decision latency). */
  intakeAt: number;
  msgCnt: number;
  secMark: number;
  lat: number;
  lon: number;
  x: number;
  y: number;
  /** m/s. */
  speed: number;
  /** Compass degrees (0 = north, clockwise). */
  headingDeg: number;
  /** The BSM's raw heading the unit vector was computed from (sin/cos only when it changes). */
  headingRaw: number;
  /** Unit heading vector (east, north). */
  hx: number;
  hy: number;
  /** Longitudinal acceleration (m/s², negative = braking); NaN when unavailable. */
  accel: number;
  /** Hard-braking event flag or brake pedal on with deceleration. */
  hardBraking: boolean;
  brakePedal: boolean;
  lengthM: number;
  widthM: number;
  cell: number;
  /** Zones the vehicle is in (ids). */
  zones: string[];
  /** Last msgCnt values seen with their times (dedupe). */
  readonly seenCnt: Int16Array;
  readonly seenAt: Float64Array;
  seenPos: number;
  /** Path history ring: x, y, t per point. */
  readonly path: Float64Array;
  pathLen: number;
  pathPos: number;
}

export function newVehicle(id: string, pathPoints: number): Vehicle {
  return {
    id,
    t: 0,
    intakeAt: 0,
    msgCnt: -1,
    secMark: 0,
    lat: 0,
    lon: 0,
    x: 0,
    y: 0,
    speed: 0,
    headingDeg: 0,
    headingRaw: -1,
    hx: 0,
    hy: 1,
    accel: 0,
    hardBraking: false,
    brakePedal: false,
    lengthM: 4.5,
    widthM: 1.8,
    cell: Number.NaN,
    zones: [],
    seenCnt: new Int16Array(8).fill(-1),
    seenAt: new Float64Array(8),
    seenPos: 0,
    path: new Float64Array(pathPoints * 3),
    pathLen: 0,
    pathPos: 0,
  };
}

/** Whether this msgCnt was seen within windowMs (and records it when not). */
export function isDuplicate(v: Vehicle, msgCnt: number, now: number, windowMs: number): boolean {
  for (let i = 0; i < 8; i++)
    if (v.seenCnt[i] === msgCnt && now - (v.seenAt[i] as number) <= windowMs) return true;
  v.seenCnt[v.seenPos] = msgCnt;
  v.seenAt[v.seenPos] = now;
  v.seenPos = (v.seenPos + 1) & 7;
  return false;
}

export function pushPath(v: Vehicle): void {
  const n = v.path.length / 3;
  if (n === 0) return;
  const i = v.pathPos * 3;
  v.path[i] = v.x;
  v.path[i + 1] = v.y;
  v.path[i + 2] = v.t;
  v.pathPos = (v.pathPos + 1) % n;
  if (v.pathLen < n) v.pathLen++;
}

/** Path history newest first as [x, y, t] triples. */
export function pathOf(v: Vehicle): Array<[number, number, number]> {
  const n = v.path.length / 3;
  const out: Array<[number, number, number]> = [];
  for (let k = 1; k <= v.pathLen; k++) {
    const i = ((v.pathPos - k + n) % n) * 3;
    out.push([v.path[i] as number, v.path[i + 1] as number, v.path[i + 2] as number]);
  }
  return out;
}

export class VehicleTable {
  readonly #byId = new Map<string, Vehicle>();
  readonly #grid = new Map<number, Vehicle[]>();
  readonly #cellM: number;
  readonly max: number;

  constructor(opts: { cellM: number; maxVehicles: number }) {
    if (!(opts.cellM > 0)) throw new Error('VehicleTable: cellM must be > 0');
    this.#cellM = opts.cellM;
    this.max = opts.maxVehicles;
  }

  get size(): number {
    return this.#byId.size;
  }

  get(id: string): Vehicle | undefined {
    return this.#byId.get(id);
  }

  values(): IterableIterator<Vehicle> {
    return this.#byId.values();
  }

  /** Adds a new vehicle unless full (then returns null). */
  add(id: string, pathPoints: number): Vehicle | null {
    if (this.#byId.size >= this.max) return null;
    const v = newVehicle(id, pathPoints);
    this.#byId.set(id, v);
    return v;
  }

  /** Files the vehicle under the grid cell of its current x, y. */
  place(v: Vehicle): void {
    const c = this.cellOf(v.x, v.y);
    if (c === v.cell) return;
    if (!Number.isNaN(v.cell)) this.#unlink(v);
    v.cell = c;
    const list = this.#grid.get(c);
    if (list) list.push(v);
    else this.#grid.set(c, [v]);
  }

  remove(v: Vehicle): void {
    this.#byId.delete(v.id);
    if (!Number.isNaN(v.cell)) this.#unlink(v);
  }

  /** Calls f for every vehicle in the 3 × 3 cells around (x, y) except `self`. */
  forNeighbours(x: number, y: number, self: Vehicle, f: (o: Vehicle) => void): void {
    const cx = Math.floor(x / this.#cellM);
    const cy = Math.floor(y / this.#cellM);
    for (let i = -1; i <= 1; i++)
      for (let j = -1; j <= 1; j++) {
        const list = this.#grid.get(key(cx + i, cy + j));
        if (!list) continue;
        for (let k = 0; k < list.length; k++) {
          const o = list[k] as Vehicle;
          if (o !== self) f(o);
        }
      }
  }

  /** Removes vehicles whose state is older than `before`; returns how many. */
  expire(before: number): number {
    let n = 0;
    for (const v of this.#byId.values())
      if (v.t < before) {
        this.remove(v);
        n++;
      }
    return n;
  }

  cellOf(x: number, y: number): number {
    return key(Math.floor(x / this.#cellM), Math.floor(y / this.#cellM));
  }

  #unlink(v: Vehicle): void {
    const list = this.#grid.get(v.cell);
    if (!list) return;
    const i = list.indexOf(v);
    if (i >= 0) {
      list[i] = list[list.length - 1] as Vehicle;
      list.pop();
    }
    if (list.length === 0) this.#grid.delete(v.cell);
  }
}

/**
 * Cell key kept below 2^30 so V8 stores it as a small integer (fast Map lookups): cells within
 * ±16,383 of the origin (±2,400 km at 150 m cells); beyond, keys may collide, which only adds
 * candidates that the distance check drops.
 */
function key(i: number, j: number): number {
  return ((i + 16_384) & 32_767) * 32_768 + ((j + 16_384) & 32_767);
}
