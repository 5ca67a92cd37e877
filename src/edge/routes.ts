import type { FastifyInstance } from 'fastify';
import { KapokError } from '../core/errors.js';
import type { RouteRoles } from '../core/http/admin-auth.js';
import { AGGS, type Agg, type TimeSeriesQuery } from '../ports/timeseries.js';
import type { Spool } from './spool/spool.js';

const DURATION = /^(\d{1,9})(ms|s|m|h|d)$/;
const UNIT: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

function bad(msg: string): KapokError {
  return new KapokError('KAPOK_EDGE_BAD_QUERY', msg);
}

/** A time parameter: ms since the epoch, or an RFC 3339 / ISO 8601 string. */
export function parseTime(name: string, v: string | undefined, dflt: number): number {
  if (v === undefined || v === '') return dflt;
  const n = /^-?\d{1,16}$/.test(v) ? Number(v) : Date.parse(v);
  if (!Number.isFinite(n))
    throw bad(`${name}=${v.slice(0, 40)}: give milliseconds since the epoch or an RFC 3339 time`);
  return n;
}

export function parseEvery(v: string | undefined): number | undefined {
  if (v === undefined || v === '') return undefined;
  const m = DURATION.exec(v);
  if (!m) throw bad(`every=${v.slice(0, 40)}: give a duration like 500ms, 10s, 1m, 1h or 1d`);
  const ms = Number(m[1]) * (UNIT[m[2] as string] as number);
  if (ms < 1) throw bad('every must be at least 1ms');
  return ms;
}

type Q = Record<string, string | undefined>;

/** The role each route needs (docs/configuration.md#admin-access): all reads, viewer's. */
export const EDGE_ADMIN_ROLES: RouteRoles = {
  'GET /query': 'viewer',
  'GET /devices': 'viewer',
  'GET /dead-letters': 'viewer',
};

/**
 * /api/edge: range queries and devices (from the sink that answers queries, the embedded one), dead
 * letters. An answer is bounded by maxPoints: a query that could exceed it is a 400 before it runs
 * (windows) or once one point too many was read (raw).
 */
export async function edgeRoutes(
  app: FastifyInstance,
  d: { query: TimeSeriesQuery | null; maxPoints: number; spool: Spool },
): Promise<void> {
  const needQuery = () => {
    if (!d.query)
      throw new KapokError(
        'KAPOK_EDGE_BAD_QUERY',
        'queries need an embedded sink: add { type: embedded } to edge.sinks',
      );
    return d.query;
  };

  app.get('/query', async (req) => {
    const q = req.query as Q;
    const measurement = q.measurement;
    const field = q.field;
    if (!measurement) throw bad('measurement is required');
    if (!field) throw bad('field is required');
    const now = Date.now();
    const to = parseTime('to', q.to, now);
    const from = parseTime('from', q.from, to - 3_600_000);
    if (!(from < to)) throw bad(`from (${from}) must be before to (${to})`);
    const agg = (q.agg ?? 'avg') as Agg;
    if (!AGGS.includes(agg)) throw bad(`agg=${String(q.agg).slice(0, 20)}: use one of ${AGGS.join(', ')}`);
    const everyMs = parseEvery(q.every);
    const source = needQuery();
    const max = d.maxPoints;
    if (everyMs !== undefined) {
      const windows = Math.ceil((to - from) / everyMs);
      if (windows > max)
        throw new KapokError(
          'KAPOK_EDGE_TOO_MANY_POINTS',
          `${windows} windows of ${everyMs} ms exceed edge.query.maxPoints (${max}): widen every or narrow from/to`,
        );
    }
    const r = await source.range({
      measurement,
      field,
      ...(q.device ? { device: q.device } : {}),
      from,
      to,
      agg,
      limit: max,
      ...(everyMs === undefined ? {} : { everyMs }),
    });
    if (r.more)
      throw new KapokError(
        'KAPOK_EDGE_TOO_MANY_POINTS',
        `more than edge.query.maxPoints (${max}) raw points in range: narrow from/to or add every=`,
      );
    return {
      measurement,
      field,
      device: q.device ?? null,
      from,
      to,
      every: everyMs ?? null,
      agg: everyMs ? agg : null,
      points: r.points,
    };
  });

  app.get('/devices', async (req) => {
    const limit = Math.min(Number((req.query as Q).limit ?? 1000) || 1000, 10_000);
    const devices = await needQuery().devices(limit);
    return {
      devices: devices.map((x) => ({ ...x, lastSeen: new Date(x.lastSeen).toISOString() })),
    };
  });

  app.get('/dead-letters', async (req) => {
    const q = req.query as Q;
    const limit = Math.min(Number(q.limit ?? 100) || 100, 1000);
    const after = Number(q.after ?? 0) || 0;
    return {
      deadLetters: d.spool.deadLetters(limit, after).map((r) => ({
        id: r.id,
        at: new Date(r.at).toISOString(),
        topic: r.topic,
        reason: r.reason,
        payloadBase64: r.payload.toString('base64'),
      })),
    };
  });
}
