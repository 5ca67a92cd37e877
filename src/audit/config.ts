import { z } from 'zod';
import { secret } from '../core/config/secret.js';

const hex32 = () =>
  secret(z.string().refine((v) => /^[0-9a-fA-F]{32}$/.test(v), 'expected 32 hex digits (a 16-byte SM4 key)'))
    .nullable()
    .default(null);

/** The `audit` configuration section: the tamper-evident audit trail (docs/audit.md). */
export const auditSchema = z
  .strictObject({
    /** Record every administrative act in a hash chain in the Store. Profile gov requires it. */
    enabled: z.boolean().default(false),
    /**
     * Key-encryption key sealing the checkpoint signing key (SM2) in the Store: 32 hex digits (SM4).
     * Prefer KAPOK_AUDIT__KEK or kekFile over writing it in the file.
     */
    kek: hex32(),
    /** File holding the KEK as 32 hex digits (read at start; used when kek is null). */
    kekFile: z.string().min(1).nullable().default(null),
    /** Admin token for GET /api/audit (role admin for audit alone); null: admin.tokens or loopback only. */
    adminToken: secret(z.string().min(16)).nullable().default(null),
    /** Sign a checkpoint after this many new entries... */
    checkpointEvery: z.number().int().min(1).max(1_000_000).default(1000),
    /** ...or this long after the last one when entries were added since. */
    checkpointIntervalMs: z.number().int().min(100).max(86_400_000).default(60_000),
    /** Most entries written in one transaction (group commit). */
    batchMax: z.number().int().min(1).max(5000).default(500),
    /** Largest page of GET /api/audit and `kapok audit tail`. */
    queryMaxLimit: z.number().int().min(1).max(10_000).default(1000),
    /** Widest time range (to - from) of one GET /api/audit query. */
    queryMaxRangeDays: z.number().int().min(1).max(3660).default(31),
    /** Ship sealed batches to an external audit centre (null url: off). See docs/audit.md#shipping. */
    ship: z
      .strictObject({
        /** The audit centre's HTTP(S) endpoint receiving POSTed envelopes; null: no shipping. */
        url: z
          .url({ protocol: /^https?$/ })
          .nullable()
          .default(null),
        /** The key's name, sent in each envelope so the receiver picks the key. */
        keyId: z.string().min(1).max(64).default('kapok-audit-1'),
        /** SM4 key sealing the batches: 32 hex digits. Prefer KAPOK_AUDIT__SHIP__KEY or keyFile. */
        key: hex32(),
        /** File holding the shipping key as 32 hex digits (used when key is null). */
        keyFile: z.string().min(1).nullable().default(null),
        /** Most entries per envelope. */
        batch: z.number().int().min(1).max(10_000).default(500),
        /** How often to look for new entries when none are waiting. */
        intervalMs: z.number().int().min(10).max(3_600_000).default(5000),
        /** Longest wait between retries after a failed POST (backoff doubles from intervalMs). */
        maxBackoffMs: z.number().int().min(10).max(3_600_000).default(60_000),
        /** One POST's time limit. */
        timeoutMs: z.number().int().min(100).max(300_000).default(10_000),
      })
      .prefault({}),
  })
  .superRefine((c, ctx) => {
    if (!c.enabled) return;
    if (!c.kek && !c.kekFile)
      ctx.addIssue({
        code: 'custom',
        path: ['kek'],
        message:
          'required when audit.enabled (or set audit.kekFile); e.g. KAPOK_AUDIT__KEK=$(openssl rand -hex 16)',
      });
    if (c.ship.url && !c.ship.key && !c.ship.keyFile)
      ctx.addIssue({
        code: 'custom',
        path: ['ship', 'key'],
        message:
          'required when audit.ship.url is set (or set audit.ship.keyFile): the SM4 key the audit centre holds',
      });
  });

export type AuditConfig = z.infer<typeof auditSchema>;
