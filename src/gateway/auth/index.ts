import { createHash } from 'node:crypto';
import { KapokError } from '../../core/errors.js';
import type { GatewayConfig } from '../config.js';
import { JwtVerifier } from './jwt.js';
import { looksLikeKapokKey } from './key-format.js';
import type { KeyRecord } from './key-store.js';
import type { KeyService } from './keys.js';

/** Who is calling, as quotas, routing and usage see it. */
export interface Principal {
  kind: 'key' | 'jwt' | 'anonymous';
  /** Quota bucket and usage `key` column: `key:<id>`, `jwt:<hash of iss+sub>`, `anon:<ip>`. */
  subject: string;
  /** Client-facing models allowed; null = all. */
  models: ReadonlySet<string> | null;
  rpm: number | null;
  tpm: number | null;
}

const BEARER = /^Bearer[ \t]+(\S{1,8192})[ \t]*$/i;

export class Authenticator {
  readonly #jwt: JwtVerifier | null;
  /**
   * One frozen principal per key record: a record object stays in the key cache until it expires or
   * is dropped, and every request with that key in the meantime shares its principal instead of
   * building one (with its subject string and model set) again.
   */
  readonly #principals = new WeakMap<KeyRecord, Principal>();

  constructor(
    private readonly cfg: GatewayConfig,
    private readonly keys: KeyService | null,
  ) {
    this.#jwt = JwtVerifier.configured(cfg.auth.jwt) ? new JwtVerifier(cfg.auth.jwt) : null;
  }

  async authenticate(authorization: string | undefined, ip: string): Promise<Principal> {
    const { rpm, tpm } = this.cfg.limits.default;
    if (authorization === undefined || authorization === '') {
      if (this.cfg.auth.anonymous)
        return { kind: 'anonymous', subject: `anon:${ip}`, models: null, rpm, tpm };
      throw new KapokError(
        'KAPOK_GATEWAY_AUTH_MISSING',
        'send an API key or JWT as "Authorization: Bearer <token>"',
      );
    }
    const m = BEARER.exec(authorization);
    if (!m)
      throw new KapokError('KAPOK_GATEWAY_AUTH_INVALID', 'the Authorization header must be "Bearer <token>"');
    const token = m[1] as string;
    if (looksLikeKapokKey(token)) {
      if (!this.keys)
        throw new KapokError('KAPOK_GATEWAY_AUTH_INVALID', 'API keys are disabled (gateway.auth.apiKeys)');
      const rec = await this.keys.authenticate(token);
      if (!rec) throw new KapokError('KAPOK_GATEWAY_AUTH_INVALID', 'API key is unknown or revoked');
      let p = this.#principals.get(rec);
      if (!p) {
        p = Object.freeze({
          kind: 'key',
          subject: `key:${rec.id}`,
          models: rec.models ? new Set(rec.models) : null,
          rpm: rec.rpm ?? rpm,
          tpm: rec.tpm ?? tpm,
        });
        this.#principals.set(rec, p);
      }
      return p;
    }
    if (this.#jwt && token.split('.').length === 3) {
      const c = await this.#jwt.verify(token);
      const id = createHash('sha256')
        .update(`${c.iss ?? ''}\n${c.sub}`)
        .digest('base64url')
        .slice(0, 22);
      return { kind: 'jwt', subject: `jwt:${id}`, models: c.models ? new Set(c.models) : null, rpm, tpm };
    }
    throw new KapokError(
      'KAPOK_GATEWAY_AUTH_INVALID',
      this.#jwt
        ? 'token is neither a Kapok API key nor a JWT'
        : 'token is not a Kapok API key (JWT auth is not configured)',
    );
  }
}
