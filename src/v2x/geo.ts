/**
 * Local east-north-up metres around a reference point (equirectangular: within a few kilometres
 * of the origin the error is far below GNSS noise). x grows east, y north; headings are compass
 * angles (0 = north, clockwise) as in the BSM.
 */

const EARTH_RADIUS_M = 6_371_008.8;
const DEG = Math.PI / 180;

export class Enu {
  readonly lat0: number;
  readonly lon0: number;
  readonly #kx: number;
  readonly #ky: number;

  constructor(lat0: number, lon0: number) {
    if (!(Math.abs(lat0) <= 85) || !(Math.abs(lon0) <= 180))
      throw new Error(`v2x.origin: lat ${lat0} / lon ${lon0} out of range (|lat| ≤ 85, |lon| ≤ 180)`);
    this.lat0 = lat0;
    this.lon0 = lon0;
    this.#ky = EARTH_RADIUS_M * DEG;
    this.#kx = this.#ky * Math.cos(lat0 * DEG);
  }

  x(lon: number): number {
    return (lon - this.lon0) * this.#kx;
  }

  y(lat: number): number {
    return (lat - this.lat0) * this.#ky;
  }

  lon(x: number): number {
    return this.lon0 + x / this.#kx;
  }

  lat(y: number): number {
    return this.lat0 + y / this.#ky;
  }
}

/** Smallest absolute difference between two compass angles in degrees (0..180). */
export function angleDiffDeg(a: number, b: number): number {
  const d = Math.abs(a - b) % 360;
  return d > 180 ? 360 - d : d;
}
