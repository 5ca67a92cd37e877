import { z } from 'zod';
import { secret } from '../core/config/secret.js';

/** The `gm` configuration section: national cryptography and device identity. */
export const gmSchema = z
  .strictObject({
    // On by default: it needs nothing outside this machine (docs/configuration.md, "Embedded defaults").
    enabled: z.boolean().default(true),
    /**
     * Key-encryption key for the KGC master keys in the store: 32 hex digits (16 bytes, SM4).
     * Prefer KAPOK_GM__KEK or kekFile over writing it in the file.
     */
    kek: secret(
      z.string().refine((v) => /^[0-9a-fA-F]{32}$/.test(v), 'expected 32 hex digits (a 16-byte SM4 key)'),
    )
      .nullable()
      .default(null),
    /**
     * File holding the KEK as 32 hex digits (read at start; used when kek is null). With neither set,
     * profile default generates `<dataDir>/gm.kek` (mode 0600) and warns; profile gov refuses.
     */
    kekFile: z.string().min(1).nullable().default(null),
    /** Bearer token for the admin endpoints (POST/DELETE /api/gm/devices); null: loopback clients only (profile default), no one (gov). */
    adminToken: secret(z.string().min(16)).nullable().default(null),
    /** Lifetime of device tokens. */
    tokenTtlSeconds: z.number().int().min(60).max(86_400).default(900),
    /** Largest difference allowed between a device's timestamp and ours when it authenticates. */
    authWindowSeconds: z.number().int().min(5).max(3600).default(120),
    /**
     * How a registered device's SM9 signing key is wrapped in the registration answer:
     * `kem` (SM9 key encapsulation to the serial's encryption identity, hid 0x03, then SM4-GCM) or
     * `pbkdf2` (SM4-GCM under PBKDF2-HMAC-SM3(factorySecret, serial)).
     */
    keyWrap: z.enum(['kem', 'pbkdf2']).default('kem'),
    /** Shared factory secret for keyWrap pbkdf2. */
    factorySecret: secret(z.string().min(16)).nullable().default(null),
    /** PBKDF2-HMAC-SM3 iterations for keyWrap pbkdf2. */
    pbkdf2Iterations: z.number().int().min(1000).max(10_000_000).default(100_000),
    /** How long a rotated-out KGC sign key still authenticates devices registered under it. */
    rotationOverlapSeconds: z.number().int().min(0).max(31_536_000).default(604_800),
    /** Device groups whose MQTT telemetry must be SM4-GCM sealed (see docs/gm.md); others send plaintext. */
    payloadProtection: z
      .strictObject({
        groups: z.array(z.string().regex(/^[A-Za-z0-9._:-]{1,64}$/, 'a device group name')).default([]),
      })
      .prefault({}),
    /**
     * How often each process re-reads the KGC keys from the Store: picks up rotations made by other
     * processes; a failed re-read makes /readyz report gm not ready until one succeeds.
     */
    keyReloadSeconds: z.number().int().min(1).max(3600).default(30),
    /**
     * The fallback for device revocations when the event bus is down (or memory, with several
     * processes): how often the Store is polled for revocations by other processes.
     */
    revocationPollMs: z.number().int().min(100).max(3_600_000).default(1000),
    /** Worker threads verifying device signatures; null: one per core; 0: on the main thread. */
    verifyWorkers: z.number().int().min(0).max(64).nullable().default(null),
  })
  .superRefine((c, ctx) => {
    if (!c.enabled) return;
    if (c.keyWrap === 'pbkdf2' && !c.factorySecret)
      ctx.addIssue({
        code: 'custom',
        path: ['factorySecret'],
        message: 'required when gm.keyWrap is pbkdf2',
      });
  });

export type GmConfig = z.infer<typeof gmSchema>;
