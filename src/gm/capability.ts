import { availableParallelism } from 'node:os';
import { Counter } from 'prom-client';
import { isKapokError, KapokError } from '../core/errors.js';
import { createSm9VerifyPool } from '../crypto/sm9/pool.js';
import type { CapabilityFactory } from '../ports/capability.js';
import { DeviceAuthenticator } from './auth.js';
import type { GmConfig } from './config.js';
import { DeviceRegistry } from './devices.js';
import { Keyring, readKek } from './keystore.js';
import { GM_MIGRATIONS } from './migrations.js';
import { openPayload, payloadKey } from './payload.js';
import { RevocationPoll } from './revocations.js';
import { gmRoutes } from './routes.js';

/**
 * Verification is most of an authentication's CPU, so it gets worker threads: one per core but the
 * event loop's, which parses, checks and answers every request (2 cores, npm run bench -- gm, three
 * pairs: one worker 370–428 authentications/s against 272–330 with two, the loop then waiting for a core).
 */
export function defaultVerifyWorkers(cores: number): number {
  return Math.max(1, cores - 1);
}

/**
 * The gm capability: KGC master keys (created on first start, SM4-GCM under the KEK in the Store),
 * device registry, device authentication with SM9 and SM2SM3 device tokens, under /api/gm.
 * Device tokens are offered to later capabilities as the `deviceTokens` port: the edge MQTT intake
 * accepts them as passwords.
 */
export const createGm: CapabilityFactory<GmConfig> = async (ctx) => {
  const cfg = ctx.config;
  const kek = readKek(cfg, { dataDir: ctx.dataDir, logger: ctx.logger });
  await ctx.store.migrate(GM_MIGRATIONS);
  const keyring = await Keyring.open(ctx.store, kek, ctx.logger, cfg.keyReloadSeconds * 1000);
  const workers = cfg.verifyWorkers ?? defaultVerifyWorkers(availableParallelism());
  const pool = workers > 0 ? createSm9VerifyPool({ size: workers }) : null;
  const authTotal = new Counter({
    name: 'kapok_gm_device_auth_total',
    help: 'Device authentications by result: ok, or the KAPOK_GM_* / KAPOK_HTTP_* code that refused them.',
    labelNames: ['result'] as const,
    registers: [ctx.metrics.registry],
  });
  const registry = new DeviceRegistry(ctx.store, keyring, cfg);
  const admin = ctx.adminGuard({
    token: cfg.adminToken,
    key: 'gm.adminToken',
    what: 'the gm admin API',
  });
  const auth = new DeviceAuthenticator({
    registry,
    kv: ctx.kv,
    keys: keyring,
    tokenTtlSeconds: cfg.tokenTtlSeconds,
    authWindowSeconds: cfg.authWindowSeconds,
    rotationOverlapSeconds: cfg.rotationOverlapSeconds,
    ...(pool ? { verify: (job) => pool.verify(job) } : {}),
    onResult: (result) => authTotal.inc({ result }),
  });
  // Payload keys derive from each device's SM9 key, which the KGC extracts again (~1 ms): cache them.
  const protectedGroups = new Set(cfg.payloadProtection.groups);
  const payloadKeys = new Map<string, Uint8Array>();
  const payloadKeyOf = async (serial: string): Promise<Uint8Array> => {
    const hit = payloadKeys.get(serial);
    if (hit) return hit;
    const d = await registry.get(serial);
    if (!d) throw new KapokError('KAPOK_GM_DECRYPT_FAILED', `device ${serial} is not registered`);
    let entry = (await keyring.current()).signKeys.get(d.signKeyId);
    if (!entry) entry = (await keyring.current(true)).signKeys.get(d.signKeyId);
    if (!entry)
      throw new KapokError('KAPOK_GM_DECRYPT_FAILED', `device ${serial}: its KGC key is gone; reissue it`);
    const key = payloadKey(entry.key.extract(serial).toBytes());
    if (payloadKeys.size >= 10_000) payloadKeys.delete(payloadKeys.keys().next().value as string);
    payloadKeys.set(serial, key);
    return key;
  };
  const payloadRejected = new Counter({
    name: 'kapok_gm_payload_rejected_total',
    help: 'Telemetry payloads of protected device groups refused: tampered, moved to another topic, or not sealed.',
    registers: [ctx.metrics.registry],
  });
  const revocations = new RevocationPoll(registry, ctx.logger, cfg.revocationPollMs);
  // Fleet events (docs/events.md). A revocation made here is announced to every instance; the
  // Store poll above stays as the fallback for when the bus is down. Both may report a serial
  // twice (here and from the bus): listeners are idempotent.
  const announce = (type: 'gm.device.revoked', data: Record<string, unknown>) =>
    ctx.events
      .publish(type, data)
      .catch((err: unknown) =>
        ctx.logger.error(
          { type, code: (err as { code?: string }).code, reason: (err as Error).message },
          'gm: event not published; other instances learn of it by their Store poll',
        ),
      );
  const offLocal = registry.onRevoked((serial) => void announce('gm.device.revoked', { serial }));
  const busListeners = new Set<(serial: string) => void>();
  const offBus = ctx.events.subscribe(['gm.device.revoked', 'gm.token_key.rotated'], async (e) => {
    if (e.type === 'gm.token_key.rotated') {
      // Another process rotated a KGC key: reload now rather than within keyReloadSeconds.
      const k = await keyring.current(true);
      ctx.logger.info(
        { kind: e.data.kind, id: e.data.id, token: k.tokenId },
        'gm: KGC keys reloaded on rotation',
      );
      return;
    }
    if (typeof e.data.serial !== 'string') return;
    payloadKeys.delete(e.data.serial);
    for (const l of busListeners) l(e.data.serial);
  });
  ctx.health.register({
    name: 'gm',
    kind: 'capability',
    // Not ready when the KGC keys cannot be read: the keyring reloads from the Store when stale
    // (every 30 s) and a failed reload (Store down, keys sealed under another KEK) is retried on
    // each call, so this is exactly what a device authentication would meet now.
    check: async () => {
      const detail = { verifyWorkers: pool?.size ?? 0, pendingVerifications: pool?.pending ?? 0 };
      try {
        const k = await keyring.current();
        return {
          ready: true,
          detail: { ...detail, keys: { sign: k.signId, enc: k.encId, token: k.tokenId } },
        };
      } catch (err) {
        // Catalogue messages are secret-free; a foreign error's may not be, so only its class is shown.
        const [code, error] = isKapokError(err)
          ? [err.code, err.message]
          : ['KAPOK_INTERNAL', 'the KGC keys could not be loaded (see the log)'];
        return { ready: false, detail: { ...detail, keys: 'unreadable', code, error } };
      }
    },
  });
  let warming = true;
  return {
    name: 'gm',
    prefix: '/api/gm',
    provides: {
      deviceTokens: {
        verify: async (token) => {
          const c = await auth.verifyToken(token);
          return { device: c.sub, group: c.grp, vehicle: c.veh ?? c.sub, expiresAt: c.exp * 1000 };
        },
        active: async (device) => (await registry.get(device))?.status === 'active',
        openPayload: async (device, group, topic, payload) => {
          // Plain groups never touch the store; protected ones look the device up once (key cache).
          if (!protectedGroups.has(group)) return payload;
          try {
            return Buffer.from(openPayload(await payloadKeyOf(device), topic, payload));
          } catch (err) {
            payloadRejected.inc();
            throw err;
          }
        },
        onRevoked: (listener) => {
          const off = registry.onRevoked((serial) => {
            payloadKeys.delete(serial);
            listener(serial);
          });
          const offPoll = revocations.add((serial) => {
            payloadKeys.delete(serial);
            listener(serial);
          });
          busListeners.add(listener);
          return () => {
            off();
            offPoll();
            busListeners.delete(listener);
          };
        },
      },
    },
    routes: (app) => gmRoutes(app, { registry, auth, keys: keyring, admin }),
    // The g table (~0.1 s of CPU natively, ~1 s under qemu-user) is built after the port opens, one row
    // per turn of the event loop, rather than before /healthz answers or on the first device's
    // request (which finishes whatever is left).
    ready: () => {
      const pk = keyring.loaded.sign.publicKey;
      const step = () => {
        if (!warming || pk.warmStep()) return;
        setImmediate(step).unref();
      };
      setImmediate(step).unref();
    },
    stop: async () => {
      warming = false;
      offBus();
      offLocal();
      revocations.close();
      await pool?.close();
    },
  };
};
