import { z } from 'zod';
import { secret } from '../core/config/secret.js';

/** A label key or value: what a label selector can name (no spaces, commas or `=`). */
const labelPart = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$/, 'expected 1-63 of A-Z a-z 0-9 . _ / -');

/** The `control` configuration section: config sources and hot reload (docs/control.md). */
export const controlSchema = z.strictObject({
  /**
   * Watch the configuration and apply changes live (the file on change and SIGHUP, or etcd). Off:
   * the configuration is read once at start, as before the control plane.
   */
  enabled: z.boolean().default(true),
  /** Where the configuration comes from besides the environment: the file only, or the file then etcd. */
  source: z.enum(['file', 'etcd']).default('file'),
  /** Admin token for /api/control (role admin for control alone); null: admin.tokens or loopback only. */
  adminToken: secret(z.string().min(16)).nullable().default(null),
  /** This instance's labels, for a push limited to a label selector (staged rollout). */
  labels: z.record(labelPart, labelPart).default({}),
  etcd: z
    .strictObject({
      /** etcd client endpoints (host:port or http://host:port). */
      endpoints: z.array(z.string().min(1)).min(1).default(['127.0.0.1:2379']),
      /** Key prefix of this instance's configuration; null: `/kapok/<region>/`. */
      prefix: z
        .string()
        .regex(
          /^\/([^/]+\/)+$/,
          'expected a key prefix like /kapok/guangzhou/ (starts and ends with "/", no empty segment)',
        )
        .nullable()
        .default(null),
      /** Deadline of each etcd request. */
      callTimeoutMs: z.number().int().min(100).max(60_000).default(5000),
      /** Every so often the whole prefix is read and compared, catching anything a watch missed. */
      probeIntervalMs: z.number().int().min(1000).max(3_600_000).default(60_000),
    })
    .prefault({}),
  /** The service registry: each instance announces itself (etcd with source etcd, else this process only). */
  registry: z
    .strictObject({
      enabled: z.boolean().default(true),
      /** Lease TTL in etcd: a killed instance leaves the list this long after its last keepalive. */
      ttlSeconds: z.number().int().min(2).max(300).default(10),
      /** etcd key prefix of the instances (every region's: each record names its region). */
      prefix: z
        .string()
        .regex(
          /^\/([^/]+\/)+$/,
          'expected a key prefix like /kapok-registry/ (starts and ends with "/", no empty segment)',
        )
        .default('/kapok-registry/'),
    })
    .prefault({}),
  /** A file change is read after this much quiet (editors write in steps). */
  fileDebounceMs: z.number().int().min(0).max(10_000).default(100),
});

export type ControlConfig = z.infer<typeof controlSchema>;

/** The etcd prefix of a region's configuration (control.etcd.prefix, else `/kapok/<region>/`). */
export function etcdPrefix(c: ControlConfig, region: string): string {
  return c.etcd.prefix ?? `/kapok/${region}/`;
}
