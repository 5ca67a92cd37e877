import type { FastifyInstance, FastifyRequest } from 'fastify';
import { KapokError } from '../core/errors.js';
import type { AdminGuard, RouteRoles } from '../core/http/admin-auth.js';
import { toHex } from '../crypto/bytes.js';
import type { DeviceAuthenticator } from './auth.js';
import type { DeviceRegistry } from './devices.js';
import type { KeySource } from './keystore.js';
import type { DeviceClaims } from './tokens.js';

/** /api/gm: public keys, device registration (admin), authentication, and a token check. */

export interface GmRouteDeps {
  registry: DeviceRegistry;
  auth: DeviceAuthenticator;
  keys: KeySource;
  /** Device registration, revocation and reissue are operator acts (GM_ADMIN_ROLES). */
  admin: AdminGuard;
}

function bearer(req: FastifyRequest): string | null {
  const h = req.headers.authorization;
  if (typeof h !== 'string') return null;
  const m = /^Bearer\s+(\S+)$/i.exec(h);
  return m ? (m[1] as string) : null;
}

/** For other routes (and capabilities) that accept device tokens as HTTP bearer tokens. */
export async function requireDevice(req: FastifyRequest, auth: DeviceAuthenticator): Promise<DeviceClaims> {
  const token = bearer(req);
  if (!token) throw new KapokError('KAPOK_GM_TOKEN_INVALID', 'send Authorization: Bearer <device token>');
  return auth.verifyToken(token);
}

/**
 * The role each route needs (docs/configuration.md#admin-access): device lifecycle is operator's;
 * public keys and device authentication are open (devices prove themselves with SM9 or a token).
 */
export const GM_ADMIN_ROLES: RouteRoles = {
  'GET /master': 'public',
  'GET /devices': 'viewer',
  'POST /devices': 'operator',
  'DELETE /devices/:serial': 'operator',
  'POST /devices/:serial/reissue': 'operator',
  'POST /devices/auth': 'public',
  'GET /devices/me': 'public',
};

export async function gmRoutes(app: FastifyInstance, d: GmRouteDeps): Promise<void> {
  d.admin.hook(app, GM_ADMIN_ROLES);
  app.get('/master', async () => {
    const k = await d.keys.current();
    return {
      signMasterPublicKey: toHex(k.sign.publicKey.toBytes()),
      signKeyId: k.signId,
      encMasterPublicKey: toHex(k.enc.publicKey.toBytes()),
      tokenAlg: 'SM2SM3',
      tokenKeyId: k.tokenId,
      // Every token key that may still verify live tokens, by kid (the JWT header's).
      tokenKeys: Object.fromEntries([...k.tokenKeys.values()].map((e) => [e.id, toHex(e.key.publicKey)])),
    };
  });

  app.post('/devices', async (req, reply) => {
    const body = (req.body ?? {}) as { serial?: unknown; group?: unknown; vehicle?: unknown };
    if (typeof body !== 'object' || Array.isArray(body))
      throw new KapokError(
        'KAPOK_HTTP_BAD_REQUEST',
        'body: expected a JSON object {serial, group?, vehicle?}',
      );
    if (body.group !== undefined && typeof body.group !== 'string')
      throw new KapokError('KAPOK_GM_INVALID_INPUT', 'group: expected a string');
    if (body.vehicle !== undefined && typeof body.vehicle !== 'string')
      throw new KapokError('KAPOK_GM_INVALID_INPUT', 'vehicle: expected a string');
    const reg = await d.registry.register(
      body.serial as string,
      body.group as string | undefined,
      (body.vehicle as string | undefined) ?? (body.serial as string),
    );
    reply.code(201);
    return reg;
  });

  app.get('/devices', async (req) => {
    const q = req.query as { after?: string; limit?: string };
    const limit = q.limit === undefined ? 100 : Number(q.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000)
      throw new KapokError('KAPOK_HTTP_BAD_REQUEST', 'limit: an integer from 1 to 1000');
    return d.registry.list(q.after ?? null, limit);
  });

  app.delete<{ Params: { serial: string } }>('/devices/:serial', async (req) => {
    return d.registry.revoke(req.params.serial);
  });

  app.post<{ Params: { serial: string } }>('/devices/:serial/reissue', async (req) => {
    return d.registry.reissue(req.params.serial);
  });

  app.post('/devices/auth', async (req) => d.auth.authenticate(req.body));

  app.get('/devices/me', async (req) => {
    const c = await requireDevice(req, d.auth);
    return { serial: c.sub, group: c.grp, vehicle: c.veh ?? c.sub, expiresAt: c.exp };
  });
}
