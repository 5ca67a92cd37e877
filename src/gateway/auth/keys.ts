import { KapokError } from '../../core/errors.js';
import { generateKey, keyId, keyMatches } from './key-format.js';
import type { KeyInfo, KeyRecord, KeyStore } from './key-store.js';

const KEY_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const MAX_CACHED = 10_000;

export interface CreateKeyInput {
  name: string;
  rpm?: number | null | undefined;
  tpm?: number | null | undefined;
  models?: string[] | null | undefined;
}

export interface KeyServiceOptions {
  store: KeyStore;
  /** Client-facing model names; --models must name these. Empty: not checked (CLI without gateway config). */
  knownModels: ReadonlySet<string>;
  cacheMs: number;
  now?: () => number;
  /**
   * Told the id of each key this service revoked, after the Store has it: the capability and the
   * CLI publish gateway.key.revoked so every instance drops it from its cache at once.
   */
  onRevoked?: (id: string) => Promise<void>;
}

/** Creates, lists and revokes API keys, and authenticates presented keys through a short cache. */
export class KeyService {
  readonly #o: Required<KeyServiceOptions>;
  readonly #cache = new Map<string, { rec: KeyRecord | null; until: number }>();

  constructor(opts: KeyServiceOptions) {
    this.#o = { now: Date.now, onRevoked: async () => {}, ...opts };
  }

  async create(input: CreateKeyInput): Promise<{ key: string; info: KeyInfo }> {
    const name = String(input.name ?? '');
    if (!KEY_NAME.test(name) || /^[0-9a-f]{16}$/.test(name)) {
      throw new KapokError(
        'KAPOK_HTTP_BAD_REQUEST',
        'name: 1-64 letters, digits, . _ - (and not 16 hex digits, which look like a key id)',
      );
    }
    const rpm = limitOf(input.rpm, 'rpm');
    const tpm = limitOf(input.tpm, 'tpm');
    let models: string[] | null = null;
    if (input.models != null) {
      if (
        !Array.isArray(input.models) ||
        !input.models.length ||
        !input.models.every((m) => typeof m === 'string' && m)
      ) {
        throw new KapokError(
          'KAPOK_HTTP_BAD_REQUEST',
          'models: a non-empty list of model names (leave it out for all models)',
        );
      }
      const unknown = input.models.filter((m) => this.#o.knownModels.size && !this.#o.knownModels.has(m));
      if (unknown.length) {
        throw new KapokError(
          'KAPOK_HTTP_BAD_REQUEST',
          `models: ${unknown.map((m) => JSON.stringify(m.slice(0, 64))).join(', ')} not in gateway.models (${[...this.#o.knownModels].join(', ')})`,
        );
      }
      models = [...new Set(input.models)];
    }
    const k = generateKey();
    const rec = {
      id: k.id,
      name,
      hash: k.hash,
      rpm,
      tpm,
      models,
      createdAt: new Date(this.#o.now()).toISOString(),
    };
    await this.#o.store.insert(rec);
    const { hash: _hash, ...info } = { ...rec, revokedAt: null };
    return { key: k.key, info };
  }

  list(includeRevoked = false): Promise<KeyInfo[]> {
    return this.#o.store.list(includeRevoked);
  }

  async revoke(idOrName: string): Promise<string> {
    const id = await this.#o.store.revoke(idOrName);
    if (!id)
      throw new KapokError(
        'KAPOK_GATEWAY_KEY_NOT_FOUND',
        'no active key has that id or name: see `kapok keys list`',
      );
    this.#cache.delete(id); // this process stops accepting it at once; others on the event
    await this.#o.onRevoked(id);
    return id;
  }

  /** Drops a key from the cache (gateway.key.revoked from any instance): its next use reads the Store. */
  forget(id: string): void {
    this.#cache.delete(id);
  }

  /** The active record for a presented key, or null (unknown, malformed, revoked, wrong secret). */
  async authenticate(presented: string): Promise<KeyRecord | null> {
    const id = keyId(presented);
    if (!id) return null;
    const now = this.#o.now();
    let entry = this.#cache.get(id);
    if (!entry || entry.until <= now) {
      const rec = await this.#o.store.byId(id);
      entry = { rec, until: now + this.#o.cacheMs };
      if (this.#o.cacheMs > 0) {
        this.#cache.delete(id);
        if (this.#cache.size >= MAX_CACHED) this.#cache.delete(this.#cache.keys().next().value as string);
        this.#cache.set(id, entry);
      }
    }
    const rec = entry.rec;
    if (!rec || rec.revokedAt !== null) return null;
    return keyMatches(presented, rec.hash) ? rec : null;
  }
}

function limitOf(v: unknown, what: string): number | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 1_000_000_000) {
    throw new KapokError(
      'KAPOK_HTTP_BAD_REQUEST',
      `${what}: a whole number from 1 to 1000000000 (leave it out for the default)`,
    );
  }
  return v;
}
