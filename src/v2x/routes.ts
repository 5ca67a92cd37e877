import type { FastifyInstance } from 'fastify';
import { KapokError } from '../core/errors.js';
import type { RouteRoles } from '../core/http/admin-auth.js';
import { type Zone, zoneSchema } from './config.js';
import type { Dispatcher } from './dispatch.js';
import type { DropReason, Engine } from './engine.js';
import { decodeFrame, frameFromJson } from './frames.js';
import { quantile, type V2xMetrics } from './metrics.js';
import { pathOf } from './state.js';
import type { Warning } from './warning.js';

type Q = Record<string, string | undefined>;

function bad(msg: string): KapokError {
  return new KapokError('KAPOK_HTTP_BAD_REQUEST', msg);
}

function parseSince(v: string | undefined): number {
  if (v === undefined || v === '') return 0;
  const n = /^\d{1,16}$/.test(v) ? Number(v) : Date.parse(v);
  if (!Number.isFinite(n))
    throw bad(`since=${v.slice(0, 40)}: give milliseconds since the epoch or an RFC 3339 time`);
  return n;
}

function limitOf(v: string | undefined, dflt: number, max: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw bad(`limit=${v.slice(0, 20)}: give a positive integer`);
  return Math.min(n, max);
}

export interface V2xRouteDeps {
  engine: Engine;
  dispatcher: Dispatcher;
  warnings: () => readonly Warning[];
  metrics: V2xMetrics;
  maxBatch: number;
  /** After a zone was put (zone) or deleted (zone null) here: saves the zones and tells the fleet. */
  onZonesChanged: (id: string, zone: Zone | null) => void;
}

/**
 * The role each route needs (docs/configuration.md#admin-access): reads are viewer's; injecting
 * messages and editing zones change what vehicles are warned of, operator's.
 */
export const V2X_ADMIN_ROLES: RouteRoles = {
  'POST /messages': 'operator',
  'GET /vehicles': 'viewer',
  'GET /warnings': 'viewer',
  'GET /zones': 'viewer',
  'PUT /zones/:id': 'operator',
  'DELETE /zones/:id': 'operator',
  'GET /strategies': 'viewer',
  'GET /stats': 'viewer',
};

/** /api/v2x: batches of messages, vehicles, warnings, zones, strategies, stats. */
export async function v2xRoutes(app: FastifyInstance, d: V2xRouteDeps): Promise<void> {
  /**
   * Body: { "messages": [MessageFrame JSON, …] } and/or { "uper": ["<base64 UPER>", …] }. Each is
   * processed as if received over MQTT now; the answer counts accepted and dropped by reason, and
   * lists the warnings raised by this batch.
   */
  app.post('/messages', async (req) => {
    const body = req.body as { messages?: unknown; uper?: unknown } | null;
    if (typeof body !== 'object' || body === null || Array.isArray(body))
      throw bad('body must be an object { "messages": [...] } and/or { "uper": ["<base64>", ...] }');
    for (const k of Object.keys(body))
      if (k !== 'messages' && k !== 'uper') throw bad(`unknown key ${k.slice(0, 40)}: use messages or uper`);
    const messages = body.messages ?? [];
    const uper = body.uper ?? [];
    if (!Array.isArray(messages) || !Array.isArray(uper)) throw bad('messages and uper must be arrays');
    if (messages.length + uper.length > d.maxBatch)
      throw bad(
        `${messages.length + uper.length} messages in one batch: at most v2x.maxBatch (${d.maxBatch})`,
      );
    const dropped: Partial<Record<DropReason, number>> = {};
    const errors: Array<{ index: number; error: string }> = [];
    let accepted = 0;
    const before = d.warnings().length ? (d.warnings().at(-1) as Warning).id : null;
    const count = (r: DropReason | null) => {
      if (r === null) accepted++;
      else dropped[r] = (dropped[r] ?? 0) + 1;
    };
    const failed = (index: number, err: unknown) => {
      d.engine.drops.undecodable++;
      errors.push({ index, error: (err as Error).message });
      count('undecodable');
    };
    for (let i = 0; i < messages.length; i++) {
      try {
        count(d.engine.handleFrame(frameFromJson(messages[i]), performance.now()));
      } catch (err) {
        failed(i, err);
      }
    }
    for (let i = 0; i < uper.length; i++) {
      const u = uper[i];
      try {
        if (typeof u !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(u)) throw bad(`uper[${i}]: not base64`);
        count(d.engine.handleFrame(decodeFrame(Buffer.from(u, 'base64'), 'uper'), performance.now()));
      } catch (err) {
        failed(messages.length + i, err);
      }
    }
    const list = d.warnings();
    let start = list.length;
    if (before === null) start = 0;
    else
      for (let i = list.length - 1; i >= 0; i--)
        if ((list[i] as Warning).id === before) {
          start = i + 1;
          break;
        }
    return { accepted, dropped, errors: errors.slice(0, 100), warnings: list.slice(start) };
  });

  app.get('/vehicles', async (req) => {
    const q = req.query as Q;
    const limit = limitOf(q.limit, 1000, 100_000);
    const out = [];
    for (const v of d.engine.vehicles.values()) {
      if (out.length >= limit) break;
      out.push({
        id: v.id,
        at: v.t,
        lat: v.lat,
        lon: v.lon,
        x: v.x,
        y: v.y,
        speedMs: v.speed,
        headingDeg: v.headingDeg,
        accelMs2: Number.isNaN(v.accel) ? null : v.accel,
        brakePedal: v.brakePedal,
        hardBraking: v.hardBraking,
        size: { lengthM: v.lengthM, widthM: v.widthM },
        zones: v.zones,
        ...(q.path === '1' ? { path: pathOf(v) } : {}),
      });
    }
    return { count: d.engine.vehicles.size, vehicles: out };
  });

  app.get('/warnings', async (req) => {
    const q = req.query as Q;
    const since = parseSince(q.since);
    const limit = limitOf(q.limit, 1000, 100_000);
    const out = d.warnings().filter((w) => w.at > since);
    return { warnings: out.slice(-limit) };
  });

  app.get('/zones', async () => ({ zones: d.engine.geofences.list() }));

  app.put('/zones/:id', async (req, reply) => {
    const id = (req.params as { id: string }).id;
    const body = req.body as Record<string, unknown> | null;
    // A GeoJSON Polygon, a Feature with one, or { geometry }.
    const geometry =
      body && body.type === 'Polygon' ? body : body && typeof body === 'object' ? body.geometry : undefined;
    const parsed = zoneSchema.safeParse({ id, geometry });
    if (!parsed.success) {
      const i = parsed.error.issues[0];
      throw bad(`zone ${id.slice(0, 64)}: ${i?.path.join('.') || 'body'}: ${i?.message ?? 'invalid'}`);
    }
    const existed = d.engine.geofences.get(id) !== undefined;
    try {
      d.engine.geofences.set(parsed.data);
    } catch (err) {
      throw bad((err as Error).message);
    }
    d.onZonesChanged(id, parsed.data);
    reply.code(existed ? 200 : 201);
    return parsed.data;
  });

  app.delete('/zones/:id', async (req, reply) => {
    const id = (req.params as { id: string }).id;
    if (!d.engine.geofences.delete(id))
      throw new KapokError('KAPOK_HTTP_NOT_FOUND', `no zone ${id.slice(0, 64)}`);
    d.onZonesChanged(id, null);
    reply.code(204);
  });

  app.get('/strategies', async (req) => {
    const limit = limitOf((req.query as Q).limit, 1000, 100_000);
    return { pending: d.dispatcher.pending, strategies: d.dispatcher.list().slice(0, limit) };
  });

  app.get('/stats', async () => ({
    messages: d.engine.intake,
    dropped: d.engine.drops,
    warnings: d.engine.warningsByType,
    vehicles: d.engine.vehicles.size,
    strategies: {
      created: d.dispatcher.created,
      published: d.dispatcher.published,
      acked: d.dispatcher.acked,
      expired: d.dispatcher.expired,
      pending: d.dispatcher.pending,
    },
    decisionMs: {
      p50: quantile(d.metrics, 0.5),
      p99: quantile(d.metrics, 0.99),
      samples: d.metrics.recentCount,
    },
  }));
}
