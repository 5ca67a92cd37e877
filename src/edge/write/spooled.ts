import type { Decoder } from '../decode/index.js';
import { decodeLineProtocol, type Precision } from '../decode/line-protocol.js';
import { DecodeError, type Point } from '../decode/point.js';

/**
 * How an HTTP write sits in the spool: chunks of its line protocol under the topic
 * `$write/<precision>/<default device>`, so a sink runner that misses the decoded cache (after a
 * restart, or under load) decodes the same points again. MQTT clients cannot publish `$` topics,
 * and MQTT intake never uses this decoder, so the form cannot be forged from outside.
 */

export const WRITE_TOPIC_PREFIX = '$write/';
const PRECISIONS = new Set<Precision>(['ns', 'us', 'ms', 's']);
const utf8 = new TextDecoder('utf-8', { fatal: true });

export function writeTopic(precision: Precision, device: string): string {
  return `${WRITE_TOPIC_PREFIX}${precision}/${device}`;
}

export function decodeWriteChunk(topic: string, payload: Buffer, receivedAt: number): Point[] {
  const slash = topic.indexOf('/', WRITE_TOPIC_PREFIX.length);
  const precision = topic.slice(WRITE_TOPIC_PREFIX.length, slash) as Precision;
  if (slash < 0 || !PRECISIONS.has(precision)) throw new DecodeError(`bad write topic ${topic.slice(0, 80)}`);
  return decodeLineProtocol(utf8.decode(payload), topic.slice(slash + 1), receivedAt, precision);
}

/** The sink runners' decoder: HTTP writes by their topic, everything else by MQTT's decoder. */
export function withWriteChunks(decode: Decoder): Decoder {
  return (topic, payload, receivedAt) =>
    topic.startsWith(WRITE_TOPIC_PREFIX)
      ? decodeWriteChunk(topic, payload, receivedAt)
      : decode(topic, payload, receivedAt);
}

/** Points per spool chunk: a runner's batch (edge.batch.size chunks) stays a bounded number of points. */
export const CHUNK_POINTS = 500;

/**
 * Cuts a decoded body into chunks of at most CHUNK_POINTS points, on line boundaries (`ends` from
 * the decoder, as offsets in `text`). Pure ASCII bodies are cut without copying.
 */
export function chunk(
  body: Buffer,
  text: string,
  points: Point[],
  ends: number[],
): { payload: Buffer; points: Point[] }[] {
  const ascii = body.length === text.length;
  const out: { payload: Buffer; points: Point[] }[] = [];
  let from = 0;
  for (let i = 0; i < points.length; i += CHUNK_POINTS) {
    const last = Math.min(i + CHUNK_POINTS, points.length) - 1;
    // The last chunk takes the rest (trailing comments or blank lines included).
    const to = last === points.length - 1 ? text.length : (ends[last] as number);
    out.push({
      payload: ascii ? body.subarray(from, to) : Buffer.from(text.slice(from, to), 'utf8'),
      points: points.slice(i, last + 1),
    });
    from = to;
  }
  return out;
}
