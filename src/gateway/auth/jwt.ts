import { createHash, createPublicKey } from 'node:crypto';
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  type JWK,
  type JWTPayload,
  type JWTVerifyGetKey,
  errors as joseErrors,
  jwtVerify,
} from 'jose';
import { isKapokError, KapokError } from '../../core/errors.js';
import type { GatewayConfig } from '../config.js';

type JwtConfig = GatewayConfig['auth']['jwt'];
const MAX_CACHED = 10_000;
/** Longest a verified token is trusted without re-verification (never past its exp). */
const CACHE_MS = 60_000;

/**
 * How gateway.auth.jwt.jwksUrl is fetched (jose's createRemoteJWKSet): the set is fetched on first
 * use and kept `cacheMaxAgeMs`; a token whose kid is not in it triggers a refetch, at most once per
 * `cooldownMs` (so a flood of unknown kids cannot flood the identity provider); a fetch gives up
 * after `timeoutMs`. Tests shorten them; the config has no keys for them.
 */
export const JWKS_TIMINGS = { timeoutMs: 5000, cooldownMs: 30_000, cacheMaxAgeMs: 600_000 };
export type JwksTimings = typeof JWKS_TIMINGS;

export interface JwtClaims {
  sub: string;
  iss: string | undefined;
  models: string[] | null;
  /** exp in ms. */
  expMs: number;
}

/**
 * JWT bearer verification with jose: only asymmetric algorithms (EdDSA, ES256, RS256) from config,
 * so `alg: none` and HMAC-signed-with-the-public-key tokens fail; exp and sub are required; iss/aud
 * checked when configured. Verified tokens are cached by SHA-256 of the token, never past exp.
 */
export class JwtVerifier {
  readonly #keys: JWTVerifyGetKey;
  readonly #cfg: JwtConfig;
  readonly #cache = new Map<string, JwtClaims>();
  readonly #now: () => number;

  constructor(cfg: JwtConfig, opts: { now?: () => number; jwks?: Partial<JwksTimings> } = {}) {
    this.#cfg = cfg;
    this.#now = opts.now ?? Date.now;
    const local = cfg.publicKeys.length ? createLocalJWKSet({ keys: cfg.publicKeys.map(toJwk) }) : null;
    const t = { ...JWKS_TIMINGS, ...opts.jwks };
    const jwks = cfg.jwksUrl
      ? createRemoteJWKSet(new URL(cfg.jwksUrl), {
          timeoutDuration: t.timeoutMs,
          cooldownDuration: t.cooldownMs,
          cacheMaxAge: t.cacheMaxAgeMs,
        })
      : null;
    // The endpoint failing is Kapok's problem, not the caller's: a 502 the client may retry, never
    // a 401 that reads as "your token is bad".
    const remote: JWTVerifyGetKey | null = jwks
      ? async (header, token) => {
          try {
            return await jwks(header, token);
          } catch (err) {
            throw jwksUnavailable(err) ?? err;
          }
        }
      : null;
    this.#keys = async (header, token) => {
      if (local) {
        try {
          return await local(header, token);
        } catch (err) {
          if (!remote || !(err instanceof joseErrors.JWKSNoMatchingKey)) throw err;
        }
      }
      if (remote) return remote(header, token);
      throw new joseErrors.JWKSNoMatchingKey();
    };
  }

  static configured(cfg: JwtConfig): boolean {
    return cfg.publicKeys.length > 0 || cfg.jwksUrl !== null;
  }

  async verify(token: string): Promise<JwtClaims> {
    const id = createHash('sha256').update(token).digest('base64url');
    const now = this.#now();
    const hit = this.#cache.get(id);
    if (hit && hit.expMs > now) return hit;
    if (hit) this.#cache.delete(id);
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.#keys, {
        algorithms: this.#cfg.algorithms,
        clockTolerance: this.#cfg.clockToleranceSec,
        requiredClaims: ['exp', 'sub'],
        currentDate: new Date(now),
        ...(this.#cfg.issuer ? { issuer: this.#cfg.issuer } : {}),
        ...(this.#cfg.audience ? { audience: this.#cfg.audience } : {}),
      }));
    } catch (err) {
      if (isKapokError(err)) throw err;
      throw new KapokError('KAPOK_GATEWAY_AUTH_INVALID', `bearer token rejected: ${reason(err)}`, {
        cause: err,
      });
    }
    // jose checks that sub is present, not its type; a models claim of the wrong shape must never
    // read as "no restriction" (a string would otherwise grant every model).
    const { sub, models } = payload as { sub?: unknown; models?: unknown };
    if (typeof sub !== 'string' || sub.length === 0 || sub.length > 256)
      throw new KapokError(
        'KAPOK_GATEWAY_AUTH_INVALID',
        'bearer token rejected: claim sub must be a string of 1 to 256 characters',
      );
    if (models !== undefined && !(Array.isArray(models) && models.every((m) => typeof m === 'string')))
      throw new KapokError(
        'KAPOK_GATEWAY_AUTH_INVALID',
        'bearer token rejected: claim models must be an array of model names',
      );
    const expMs = (payload.exp as number) * 1000;
    const claims: JwtClaims = { sub, iss: payload.iss, models: models ?? null, expMs };
    // Cached until the earlier of exp and CACHE_MS from now.
    const entry = { ...claims, expMs: Math.min(expMs, now + CACHE_MS) };
    if (this.#cache.size >= MAX_CACHED) this.#cache.delete(this.#cache.keys().next().value as string);
    this.#cache.set(id, entry);
    return claims;
  }
}

/** Reasons safe to show a caller (no key material, no token contents). */
function reason(err: unknown): string {
  if (err instanceof joseErrors.JWTExpired) return 'token expired';
  if (err instanceof joseErrors.JWTClaimValidationFailed) return `claim ${err.claim} invalid (${err.reason})`;
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return 'algorithm not allowed (use EdDSA, ES256 or RS256)';
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return 'signature does not verify';
  if (err instanceof joseErrors.JWKSNoMatchingKey) return 'no configured key matches the token';
  if (err instanceof joseErrors.JWTInvalid || err instanceof joseErrors.JWSInvalid) return 'malformed token';
  return 'verification failed';
}

/**
 * A failure of the JWKS fetch itself (no connection, timeout, a status other than 200, a body that
 * is no key set) as a 502; null for anything about the token (no matching key, bad alg ...).
 */
function jwksUnavailable(err: unknown): KapokError | null {
  let why: string;
  if (err instanceof joseErrors.JWKSTimeout) why = 'timed out';
  else if (err instanceof joseErrors.JWKSInvalid) why = 'answered something that is not a key set';
  else if (err instanceof joseErrors.JOSEError && err.code === 'ERR_JOSE_GENERIC')
    why = 'answered an error or no JSON'; // fetchJwks: not 200 OK, or unparsable
  else if (err instanceof TypeError)
    why = 'could not be reached'; // fetch() failed to connect
  else return null;
  return new KapokError(
    'KAPOK_UPSTREAM_UNAVAILABLE',
    `cannot verify the bearer token now: the JWKS endpoint (gateway.auth.jwt.jwksUrl) ${why}; retry later`,
    { cause: err },
  );
}

/** A configured key (PEM SPKI or JWK JSON) as a public JWK. Private keys are refused. */
export function toJwk(text: string, index: number): JWK {
  const t = text.trim();
  try {
    const src = t.startsWith('{') ? (JSON.parse(t) as JWK) : null;
    if (t.includes('PRIVATE KEY') || (src && 'd' in src)) {
      throw new Error('a private key was given: configure the public key only');
    }
    const key = src
      ? createPublicKey({ key: src, format: 'jwk' })
      : createPublicKey({ key: t, format: 'pem' });
    const jwk = key.export({ format: 'jwk' }) as JWK;
    if (src?.kid) jwk.kid = src.kid;
    if (src?.alg) jwk.alg = src.alg;
    return jwk;
  } catch (err) {
    throw new KapokError(
      'KAPOK_CONFIG_INVALID',
      `gateway.auth.jwt.publicKeys[${index}]: not a usable public key (${(err as Error).message.slice(0, 120)})`,
    );
  }
}
