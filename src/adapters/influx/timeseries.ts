/**
 * InfluxDB time-series sink: line protocol over HTTP, gzip, millisecond precision. v1
 * `POST /write?db=` or v2 `POST /api/v2/write?org=&bucket=`. 204 confirms; 429, 5xx, 401/403/404
 * and network errors reject (the caller retries); 400 (bad data: InfluxDB already wrote the valid
 * points of the batch) resolves as rejected, since resending the same bytes would fail forever.
 */
import { promisify } from 'node:util';
import { gzip as gzipCb } from 'node:zlib';
import { Pool } from 'undici';
import { KapokError, messageOf } from '../../core/errors.js';
import type { Point, TimeSeriesSink, WriteResult } from '../../ports/timeseries.js';
import { toLineProtocol } from './line-protocol.js';

const gzip = promisify(gzipCb);

export interface InfluxTimeSeriesOptions {
  /** Names the sink in errors (and, for edge, its spool cursor and metrics). */
  name: string;
  /** Base URL, e.g. http://127.0.0.1:8086; v1 credentials in the URL become `u`/`p`. */
  url: string;
  version: 1 | 2;
  /** v1 database, v2 bucket. */
  db: string;
  /** v2 organisation (required there). */
  org?: string | null;
  /** v2 `Authorization: Token`, v1 with InfluxDB 1.8+ auth. */
  token?: string | null;
}

export function createInfluxTimeSeries(options: InfluxTimeSeriesOptions): TimeSeriesSink {
  const fail = (option: string, expected: string, got: string): never => {
    throw new KapokError(
      'KAPOK_CONFIG_INVALID',
      `influx time-series option ${option} must be ${expected} (got ${got})`,
      { details: { option } },
    );
  };
  if (typeof options !== 'object' || options === null) fail('options', 'an object', String(options));
  const { name, url, version, db, org = null, token = null } = options;
  if (typeof name !== 'string' || name === '') fail('name', 'a non-empty string', JSON.stringify(name));
  let u: URL | undefined;
  try {
    u = new URL(url);
  } catch {
    fail('url', 'an http(s) URL', typeof url === 'string' ? 'not a URL' : typeof url);
  }
  if (u?.protocol !== 'http:' && u?.protocol !== 'https:') fail('url', 'an http(s) URL', `${u?.protocol}`);
  if (version !== 1 && version !== 2) fail('version', '1 or 2', JSON.stringify(version));
  if (typeof db !== 'string' || db === '')
    fail('db', `the ${version === 2 ? 'bucket' : 'database'} name`, JSON.stringify(db));
  if (version === 2 && (typeof org !== 'string' || org === ''))
    fail('org', 'the organisation (required for version 2)', JSON.stringify(org));
  if (token !== null && (typeof token !== 'string' || token === ''))
    fail('token', 'a string or null', typeof token);
  return new InfluxTimeSeries({ name, url: u as URL, version, db, org, token });
}

class InfluxTimeSeries implements TimeSeriesSink {
  readonly name: string;
  readonly #pool: Pool;
  readonly #path: string;
  readonly #pingPath: string;
  readonly #headers: Record<string, string>;
  #closed = false;

  constructor(o: {
    name: string;
    url: URL;
    version: 1 | 2;
    db: string;
    org: string | null;
    token: string | null;
  }) {
    const u = o.url;
    this.name = o.name;
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
    this.#pingPath = o.version === 1 ? '/ping' : '/health';
    this.#headers = {
      'content-type': 'text/plain; charset=utf-8',
      'content-encoding': 'gzip',
      ...(o.token ? { authorization: `Token ${o.token}` } : {}),
    };
  }

  #error(detail: string, cause?: unknown): KapokError {
    return new KapokError('KAPOK_EDGE_SINK', `edge sink ${this.name} (influx): ${detail}`, { cause });
  }

  async write(points: readonly Point[]): Promise<WriteResult | undefined> {
    if (this.#closed) throw this.#error('closed');
    if (points.length === 0) return;
    const skipped = { n: 0 };
    const lines = toLineProtocol(points, skipped);
    const unsafe = skipped.n
      ? {
          rejected: skipped.n,
          reason: 'a name holds a newline, or a backslash before a space, comma, = or " or at its end',
        }
      : undefined;
    if (lines === '') return unsafe;
    const body = await gzip(Buffer.from(lines));
    let status: number;
    let text: string;
    try {
      const res = await this.#pool.request({
        method: 'POST',
        path: this.#path,
        headers: this.#headers,
        body,
        headersTimeout: 30_000,
        bodyTimeout: 30_000,
      });
      status = res.statusCode;
      text = await res.body.text();
    } catch (err) {
      throw this.#error(messageOf(err), err);
    }
    if (status === 204 || status === 200) return unsafe;
    if (status === 400) {
      const rejected = refused(text, points.length - skipped.n) + skipped.n;
      return { rejected, reason: text.slice(0, 300) };
    }
    throw this.#error(`HTTP ${status} ${text.slice(0, 300)}`);
  }

  async ping(): Promise<void> {
    if (this.#closed) throw this.#error('closed');
    let status: number;
    try {
      const res = await this.#pool.request({ method: 'GET', path: this.#pingPath, headersTimeout: 10_000 });
      status = res.statusCode;
      await res.body.dump();
    } catch (err) {
      throw this.#error(`ping: ${messageOf(err)}`, err);
    }
    if (status >= 300) throw this.#error(`ping: HTTP ${status}`);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#pool.close();
  }
}

/**
 * Points of a 400 answer InfluxDB did not keep (it keeps the others): `dropped=N` of a partial
 * write, else one per line it could not parse, else (an answer it does not explain) all of them.
 */
function refused(text: string, sent: number): number {
  const dropped = /dropped=(\d+)/.exec(text);
  if (dropped) return Math.min(Number(dropped[1]), sent);
  let n = 0;
  for (let i = text.indexOf('unable to parse'); i !== -1; i = text.indexOf('unable to parse', i + 1)) n++;
  return n > 0 ? Math.min(n, sent) : sent;
}
