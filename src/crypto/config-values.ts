import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { KapokError } from '../core/errors.js';
import { SM4_GCM_TAG_BYTES, SM4_KEY_BYTES, sm4GcmDecrypt, sm4GcmEncrypt } from './sm4.js';

/**
 * Encrypted config values: `enc:sm4gcm:v1:<keyId>:<base64 of nonce(12) ‖ ciphertext ‖ tag(16)>`.
 * The AAD is the value's key path (`gateway.providers.0.apiKey`), so a ciphertext copied to another
 * key fails its tag instead of quietly becoming, say, an admin token. Errors name the path and key
 * id, never a value (plain or sealed).
 */
export const ENC_PREFIX = 'enc:sm4gcm:v1:';
const NONCE_BYTES = 12;
const KEY_ID = /^[A-Za-z0-9_-]{1,64}$/;
const B64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** Keys by id; the first one listed is the current one (what `kapok config encrypt` uses). */
export type ConfigKeys = Map<string, Uint8Array>;

export const isSealed = (v: unknown): v is string => typeof v === 'string' && v.startsWith(ENC_PREFIX);

/** `k1=<32 hex>` entries, one per line or comma-separated; `#` starts a comment. */
export function parseConfigKeys(text: string, where: string): ConfigKeys {
  const keys: ConfigKeys = new Map();
  const entries = text
    .split(/[\n,]/)
    .map((l) => l.replace(/#.*$/, '').trim())
    .filter(Boolean);
  entries.forEach((entry, i) => {
    const eq = entry.indexOf('=');
    const id = eq < 0 ? '' : entry.slice(0, eq).trim();
    const hex = eq < 0 ? '' : entry.slice(eq + 1).trim();
    const bad = (why: string) =>
      new KapokError('KAPOK_CONFIG_KEYS', `${where}, entry ${i + 1}: ${why}; expected keyId=<32 hex digits>`);
    if (!KEY_ID.test(id)) throw bad('the key id must be 1-64 letters, digits, "_" or "-"');
    if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw bad(`key "${id}" must be exactly 32 hex digits`);
    if (keys.has(id)) throw bad(`key "${id}" is listed twice`);
    keys.set(id, Uint8Array.from(Buffer.from(hex, 'hex')));
  });
  if (keys.size === 0)
    throw new KapokError('KAPOK_CONFIG_KEYS', `${where} holds no key; expected keyId=<32 hex digits>`);
  return keys;
}

/** Keys from `KAPOK_CONFIG_KEYS`, else the file `KAPOK_CONFIG_KEYS_FILE`; null when neither is set. */
export function configKeysFromEnv(env: NodeJS.ProcessEnv): ConfigKeys | null {
  if (env.KAPOK_CONFIG_KEYS) return parseConfigKeys(env.KAPOK_CONFIG_KEYS, 'KAPOK_CONFIG_KEYS');
  const file = env.KAPOK_CONFIG_KEYS_FILE;
  if (!file) return null;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new KapokError(
      'KAPOK_CONFIG_KEYS',
      `KAPOK_CONFIG_KEYS_FILE ${file} cannot be read: check the path and permissions`,
      { cause: err },
    );
  }
  return parseConfigKeys(text, `KAPOK_CONFIG_KEYS_FILE ${file}`);
}

function keyFor(keys: ConfigKeys | null, keyId: string, path: string): Uint8Array {
  const key = keys?.get(keyId);
  if (key) return key;
  throw new KapokError(
    'KAPOK_CONFIG_KEY_UNKNOWN',
    keys
      ? `${path}: encrypted under key "${keyId}", which is not among the configured keys (${[...keys.keys()].join(', ')}); add it to KAPOK_CONFIG_KEYS or the key file`
      : `${path}: encrypted under key "${keyId}" but no keys are configured; set KAPOK_CONFIG_KEYS=${keyId}=<32 hex digits> or KAPOK_CONFIG_KEYS_FILE`,
  );
}

export function encryptConfigValue(keys: ConfigKeys, keyId: string, path: string, plain: string): string {
  const key = keyFor(keys, keyId, path);
  const nonce = randomBytes(NONCE_BYTES);
  const { ciphertext, tag } = sm4GcmEncrypt(
    key,
    nonce,
    Buffer.from(plain, 'utf8'),
    Buffer.from(path, 'utf8'),
  );
  return `${ENC_PREFIX}${keyId}:${Buffer.concat([nonce, ciphertext, tag]).toString('base64')}`;
}

/** The id of the key a sealed value names (no decryption). */
export function sealedKeyId(value: string): string {
  return value.slice(ENC_PREFIX.length).split(':', 1)[0] ?? '';
}

export function decryptConfigValue(keys: ConfigKeys | null, path: string, value: string): string {
  const rest = value.slice(ENC_PREFIX.length);
  const colon = rest.indexOf(':');
  const keyId = colon < 0 ? '' : rest.slice(0, colon);
  const body = colon < 0 ? '' : rest.slice(colon + 1);
  const broken = (why: string) =>
    new KapokError(
      'KAPOK_CONFIG_DECRYPT',
      `${path}: the encrypted value cannot be decrypted (${why}); encrypt it again for this path with \`kapok config encrypt --path ${path}\``,
    );
  if (!KEY_ID.test(keyId)) throw broken(`expected ${ENC_PREFIX}<keyId>:<base64>`);
  if (!B64.test(body) || body.length % 4 !== 0) throw broken('not base64, or truncated');
  const key = keyFor(keys, keyId, path);
  const raw = Buffer.from(body, 'base64');
  if (raw.length < NONCE_BYTES + SM4_GCM_TAG_BYTES) throw broken('too short: truncated');
  const nonce = raw.subarray(0, NONCE_BYTES);
  const ciphertext = raw.subarray(NONCE_BYTES, raw.length - SM4_GCM_TAG_BYTES);
  const tag = raw.subarray(raw.length - SM4_GCM_TAG_BYTES);
  let plain: Uint8Array;
  try {
    plain = sm4GcmDecrypt(key, nonce, ciphertext, tag, Buffer.from(path, 'utf8'));
  } catch {
    throw broken(
      `authentication failed under key "${keyId}": altered, truncated, moved from another key path, or sealed under another key with this id`,
    );
  }
  const text = Buffer.from(plain).toString('utf8');
  if (Buffer.from(text, 'utf8').length !== plain.length) throw broken('the plaintext is not UTF-8');
  return text;
}

/**
 * Replaces every sealed string in a raw config tree (in place) with its plaintext; returns the key
 * paths decrypted, so callers can keep those values out of output. Keys are read only when needed.
 */
export function decryptConfigTree(tree: Record<string, unknown>, keys: () => ConfigKeys | null): string[] {
  const paths: string[] = [];
  let loaded: ConfigKeys | null | undefined;
  const walk = (node: unknown, path: string[]): void => {
    if (Array.isArray(node) || (typeof node === 'object' && node !== null)) {
      const obj = node as Record<string, unknown>;
      for (const k of Object.keys(obj)) {
        const child = obj[k];
        const at = [...path, k];
        if (isSealed(child)) {
          if (loaded === undefined) loaded = keys();
          obj[k] = decryptConfigValue(loaded, at.join('.'), child);
          paths.push(at.join('.'));
        } else walk(child, at);
      }
    }
  };
  walk(tree, []);
  return paths;
}

export const CONFIG_KEY_BYTES = SM4_KEY_BYTES;
