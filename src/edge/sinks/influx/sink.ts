import { promisify } from 'node:util';
import { gzip as gzipCb } from 'node:zlib';
import { Pool } from 'undici';
import { KapokError, messageOf } from '../../../core/errors.js';
import type { Point } from '../../decode/index.js';
import type { Sink } from '../sink.js';

const gzip = promisify(gzipCb);

export interface InfluxSinkOptions {
  name: string;
  url: string;
  version: 1 | 2;
  /** v1 database, v2 bucket. */
  db: string;
  org: string | null;
  token: string | null;
  /** Told about batches InfluxDB refused as bad data (400): they are not retried. */
  onRejected?: (points: number, reason: string) => void;
}

/**
 * InfluxDB sink: line protocol over HTTP, gzip, millisecond precision. v1 `POST /write?db=` or v2
 * `POST /api/v2/write?org=&bucket=`. 204 confirms; 429, 5xx, 401/403/404 and network errors are
 * retried by the runner; 400 (bad data: InfluxDB already wrote the valid points of the batch) is
 * reported and confirmed, since resending the same bytes would fail forever.
 */
export class InfluxSink implements Sink {
  readonly name: string;
  readonly #pool: Pool;
  readonly #path: string;
  readonly #headers: Record<string, string>;
  readonly #o: InfluxSinkOptions;

  constructor(o: InfluxSinkOptions) {
    const u = new URL(o.url);
    if (u.protocol !== 'http:' && u.protocol !== 'https:')
      throw new Error('edge.sinks[].url must be http(s) for influx');
    if (o.version === 2 && !o.org) throw new Error('edge.sinks[].org is required for influx version 2');
    this.name = o.name;
    this.#o = o;
    this.#pool = new Pool(u.origin, { connections: 2 });
    const base = u.pathname.replace(/\/$/, '');
    const q = new URLSearchParams(
      o.version === 1
        ? { db: o.db, precision: 'ms' }
        : { org: o.org as string, bucket: o.db, precision: 'ms' },
    );
    if (o.version === 1 && u.username) {
      q.set('u', decodeURIComponent(u.username));
      q.set('p', decodeURIComponent(u.password));
    }
    this.#path = `${base}${o.version === 1 ? '/write' : '/api/v2/write'}?${q}`;
    this.#headers = {
      'content-type': 'text/plain; charset=utf-8',
      'content-encoding': 'gzip',
      ...(o.token ? { authorization: `Token ${o.token}` } : {}),
    };
  }

  async write(points: readonly Point[]): Promise<void> {
    const body = await gzip(Buffer.from(toLineProtocol(points)));
    let res: Awaited<ReturnType<Pool['request']>>;
    try {
      res = await this.#pool.request({
        method: 'POST',
        path: this.#path,
        headers: this.#headers,
        body,
        headersTimeout: 30_000,
        bodyTimeout: 30_000,
      });
    } catch (err) {
      throw new KapokError('KAPOK_EDGE_SINK', `edge sink ${this.name} (influx): ${messageOf(err)}`, {
        cause: err,
      });
    }
    const text = (await res.body.text()).slice(0, 300);
    if (res.statusCode === 204 || res.statusCode === 200) return;
    if (res.statusCode === 400) {
      this.#o.onRejected?.(points.length, text);
      return;
    }
    throw new KapokError(
      'KAPOK_EDGE_SINK',
      `edge sink ${this.name} (influx): HTTP ${res.statusCode} ${text}`,
    );
  }

  async ping(): Promise<void> {
    const res = await this.#pool.request({
      method: 'GET',
      path: this.#o.version === 1 ? '/ping' : '/health',
    });
    await res.body.dump();
    if (res.statusCode >= 300) throw new Error(`influx ping: HTTP ${res.statusCode}`);
  }

  async close(): Promise<void> {
    await this.#pool.close();
  }
}

const esc = (s: string, re: RegExp) => s.replace(re, '\\$&');
const MEAS = /[, \\]/g;
const KEY = /[,= \\]/g;

/**
 * Points → line protocol, ms timestamps. Numbers go as floats: a point does not say int or float,
 * and InfluxDB refuses a field whose type changes, so one type for every number is the safe choice.
 */
export function toLineProtocol(points: readonly Point[]): string {
  let out = '';
  for (const p of points) {
    out += esc(p.measurement, MEAS);
    out += `,device=${esc(p.device, KEY)}`;
    for (const k of Object.keys(p.tags).sort())
      if (k !== 'device') out += `,${esc(k, KEY)}=${esc(p.tags[k] as string, KEY)}`;
    let first = true;
    for (const k in p.fields) {
      const v = p.fields[k];
      out += `${first ? ' ' : ','}${esc(k, KEY)}=`;
      first = false;
      if (typeof v === 'string') out += `"${v.replace(/["\\]/g, '\\$&')}"`;
      else if (typeof v === 'boolean') out += v ? 'true' : 'false';
      else out += String(v);
    }
    out += ` ${p.ts}\n`;
  }
  return out;
}
