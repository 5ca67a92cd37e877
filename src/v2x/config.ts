import { z } from 'zod';
import { secret } from '../core/config/secret.js';
import { findCrossing } from './polygon-check.js';

/**
 * The `v2x` section of the one config schema (composed in src/config.ts). Defaults live
 * here; kapok.example.yaml and docs/v2x.md mirror them, with the source of each risk threshold.
 */

const ms = (min: number, max: number) => z.number().int().min(min).max(max);
const pos = (max: number) => z.number().positive().max(max);

/** A GeoJSON Polygon: rings of [lon, lat] positions, the first the outline, the rest holes. */
export const polygonSchema = z
  .strictObject({
    type: z.literal('Polygon'),
    coordinates: z
      .array(
        z
          .array(z.tuple([z.number().min(-180).max(180), z.number().min(-90).max(90)]))
          .min(4)
          .max(10_000),
      )
      .min(1)
      .max(100),
  })
  .superRefine((p, ctx) => {
    const crossing = findCrossing(p.coordinates);
    if (crossing) ctx.addIssue({ code: 'custom', path: ['coordinates'], message: crossing });
  });

export const zoneSchema = z.strictObject({
  id: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'letters, digits, _ . - (at most 64)'),
  geometry: polygonSchema,
});

const risk = z.strictObject({
  /** Neighbour search radius (m): pairs farther apart are never evaluated. */
  rangeM: pos(1000).default(150),
  /** Half-width of the lane band (m): lateral offsets up to this count as the same lane. */
  laneHalfWidthM: pos(10).default(1.75),
  /** Headings within this many degrees count as the same direction. */
  sameDirectionDeg: pos(90).default(30),
  /** Neighbour states older than this are not evaluated against (ms). */
  maxStateAgeMs: ms(50, 10_000).default(1000),
  /** The same warning (type and vehicles) is not raised again within this window (ms). */
  cooldownMs: ms(0, 60_000).default(1000),
  fcw: z
    .strictObject({
      /** Warn at time-to-collision at or below this (s). */
      ttcWarnS: pos(20).default(3.0),
      /** Critical (BRAKE_IMMEDIATE) at or below this (s). */
      ttcCriticalS: pos(20).default(1.5),
    })
    .prefault({}),
  icw: z
    .strictObject({
      /** Both vehicles reach the conflict point within this many seconds of each other. */
      timeGapS: pos(30).default(2.0),
      /** ...and the first of them within this many seconds. */
      horizonS: pos(60).default(6.0),
      /** Critical at or below this time to the conflict point (s). */
      criticalS: pos(30).default(3.0),
      /** Crossing: heading difference between this and 180 minus this (degrees). */
      minCrossingDeg: pos(90).default(45),
    })
    .prefault({}),
  ebw: z
    .strictObject({
      /** Hard braking: longitudinal deceleration at or above this (m/s²); SAE J2945/1 uses 0.4 g. */
      decelMs2: pos(20).default(3.92),
      /** Vehicles ahead up to this far (m, bumper to bumper) are watched; at most rangeM. */
      rangeM: pos(1000).default(150),
    })
    .prefault({}),
  rlvw: z
    .strictObject({
      /** Deceleration a driver can comfortably brake with (m/s²); AASHTO's stopping-sight-distance model uses 3.4 m/s². */
      comfortDecelMs2: pos(20).default(3.4),
      /** Approaches watched up to this far from the stop line (m). */
      rangeM: pos(2000).default(200),
      /** Lateral distance from an approach lane's centreline that still counts as on it (m). */
      laneHalfWidthM: pos(20).default(2.5),
    })
    .prefault({}),
  glosa: z
    .strictObject({
      /** Advise no speed below this (m/s). */
      minSpeedMs: pos(50).default(5),
      /** Advise only when the advice differs from the current speed by at least this (m/s). */
      minChangeMs: pos(50).default(1.5),
    })
    .prefault({}),
});

export const v2xSchema = z
  .strictObject({
    // On by default: it needs nothing outside this machine (docs/configuration.md, "Embedded defaults").
    enabled: z.boolean().default(true),
    /** Bearer token for /api/v2x/* and /ws/v2x; null: loopback clients only under profile default, no one under gov. */
    adminToken: secret(z.string().min(16)).nullable().default(null),
    /** MQTT filters taken from edge's intake; the last level tells the message (bsm, spat, map). */
    topics: z
      .array(z.string().min(1).max(256))
      .min(1)
      .max(32)
      .default(['v2x/+/bsm', 'v2x/+/spat', 'v2x/+/map']),
    /** Payload encoding: auto takes JSON when the payload starts with `{` or the topic ends /json. */
    format: z.enum(['auto', 'uper', 'json']).default('auto'),
    /** Messages older than this (by secMark / timeStamp against this clock) are dropped as stale. */
    maxAgeMs: ms(1, 60_000).default(300),
    /** The same vehicle id and msgCnt within this window is a duplicate. */
    dedupeWindowMs: ms(1, 60_000).default(1000),
    /** Vehicles tracked at most; new ones beyond it are dropped (counted as capacity). */
    maxVehicles: z.number().int().min(1).max(1_000_000).default(20_000),
    /** A vehicle silent this long is forgotten. */
    vehicleTtlMs: ms(100, 600_000).default(5000),
    /** Path history points kept per vehicle. */
    pathHistory: z.number().int().min(0).max(100).default(10),
    /** Local ENU origin (degrees); unset = the first zone's first vertex, else the first message. */
    origin: z
      .strictObject({
        lat: z.number().min(-85).max(85).nullable().default(null),
        lon: z.number().min(-180).max(180).nullable().default(null),
      })
      .prefault({}),
    /** Geofences; with none, no message is dropped as outside (see docs/v2x.md). */
    zones: z.array(zoneSchema).max(10_000).default([]),
    /** Warnings kept in memory for GET /api/v2x/warnings. */
    warningsKept: z.number().int().min(1).max(1_000_000).default(10_000),
    /** Messages per POST /api/v2x/messages at most. */
    maxBatch: z.number().int().min(1).max(100_000).default(1000),
    risk: risk.prefault({}),
    strategy: z
      .strictObject({
        /** A strategy not acknowledged within this is expired and never sent again. */
        ttlMs: ms(100, 600_000).default(3000),
        /** Unacknowledged strategies are published again this often. */
        retryMs: ms(10, 60_000).default(250),
        /** Encoding on `v2x/{vehicleId}/strategy` (CSAE 53 has no strategy message: JSON). */
        format: z.enum(['json']).default('json'),
        /** Application acks (external brokers hide the OBU's PUBACK): payload = strategy id. */
        ackTopic: z.string().min(1).max(256).default('v2x/+/strategy/ack'),
        /** Strategies waiting for an ack at most; beyond it the oldest are expired early. */
        maxPending: z.number().int().min(1).max(10_000_000).default(100_000),
      })
      .prefault({}),
    wal: z
      .strictObject({
        /** Write-ahead log of strategies, relative to dataDir unless absolute. */
        file: z.string().min(1).default('v2x-strategies.wal'),
        /** always: fsync before publishing; interval: every intervalMs; never: leave it to the OS. */
        fsync: z.enum(['always', 'interval', 'never']).default('interval'),
        intervalMs: ms(1, 60_000).default(50),
        /** Rewrite the log with live records only once it grows past this (bytes). */
        compactBytes: z
          .number()
          .int()
          .min(4096)
          .max(2 ** 40)
          .default(16 * 1024 * 1024),
      })
      .prefault({}),
    ws: z
      .strictObject({
        /** Vehicle positions are streamed at most this often (ms); warnings at once. */
        positionsEveryMs: ms(50, 60_000).default(500),
        /** Clients at most. */
        maxClients: z.number().int().min(1).max(10_000).default(100),
      })
      .prefault({}),
  })
  .superRefine((v, ctx) => {
    if (v.risk.fcw.ttcCriticalS > v.risk.fcw.ttcWarnS)
      ctx.addIssue({ code: 'custom', path: ['risk', 'fcw', 'ttcCriticalS'], message: 'must be ≤ ttcWarnS' });
    // The neighbour search stops at risk.rangeM: a larger ebw.rangeM would be silently cut to it.
    if (v.risk.ebw.rangeM > v.risk.rangeM)
      ctx.addIssue({
        code: 'custom',
        path: ['risk', 'ebw', 'rangeM'],
        message: 'must be ≤ risk.rangeM (vehicles farther apart than risk.rangeM are never paired)',
      });
    if ((v.origin.lat === null) !== (v.origin.lon === null))
      ctx.addIssue({ code: 'custom', path: ['origin'], message: 'set both lat and lon, or neither' });
    const ids = new Set<string>();
    v.zones.forEach((z, i) => {
      if (ids.has(z.id))
        ctx.addIssue({ code: 'custom', path: ['zones', i, 'id'], message: 'duplicate zone id' });
      ids.add(z.id);
    });
  });

export type V2xConfig = z.infer<typeof v2xSchema>;
export type RiskConfig = V2xConfig['risk'];
export type Zone = z.infer<typeof zoneSchema>;
