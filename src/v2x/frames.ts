import { decodeUper, encodeUper, fromJson, type MessageFrame } from './codec/index.js';

/**
 * The one file that talks to the codec (src/v2x/codec/): decode a payload by format into a
 * MessageFrame, encode one for the wire (simulator, tests). Errors are the codec's
 * KAPOK_V2X_DECODE / KAPOK_V2X_ENCODE naming the field path.
 */

export type {
  BasicSafetyMessage,
  MapData,
  MessageFrame,
  PositionOffsetLLV,
  SPAT,
} from './codec/index.js';

export type Format = 'uper' | 'json';

/** Decodes one payload. Throws a KapokError (400) naming the field path on bad input. */
export function decodeFrame(payload: Uint8Array, format: Format): MessageFrame {
  if (format === 'uper') return decodeUper(payload);
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('utf8'));
  } catch {
    // Same code and shape as the codec's own JSON errors.
    return fromJson(undefined);
  }
  return fromJson(value);
}

/** Validates a JSON value already parsed (HTTP batches). */
export function frameFromJson(value: unknown): MessageFrame {
  return fromJson(value);
}

/** Encodes a frame for the wire. */
export function encodeFrame(frame: MessageFrame, format: Format): Buffer {
  if (format === 'uper') {
    const u = encodeUper(frame);
    return Buffer.from(u.buffer, u.byteOffset, u.byteLength);
  }
  return Buffer.from(JSON.stringify(frame));
}

/**
 * The payload format of an MQTT message: configured, or auto by MQTT 5 content type (…json →
 * JSON, anything else set → UPER), by topic suffix (/json, /uper), else by first byte (`{` cannot
 * start a UPER MessageFrame: its first bits are the extension bit 0 and a CHOICE index of 0..4).
 */
export function formatOf(
  topic: string,
  payload: Uint8Array,
  configured: 'auto' | Format,
  contentType?: string,
): Format {
  if (configured !== 'auto') return configured;
  if (contentType) return /json/i.test(contentType) ? 'json' : 'uper';
  if (topic.endsWith('/json')) return 'json';
  if (topic.endsWith('/uper')) return 'uper';
  return payload[0] === 0x7b ? 'json' : 'uper';
}
