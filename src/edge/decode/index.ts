import { decodeJson } from './json.js';
import { decodeLineProtocol, type Precision } from './line-protocol.js';
import { DecodeError, type Point } from './point.js';
import { compileTopicPattern } from './topic.js';

export type { FieldValue, Point } from './point.js';
export { DecodeError } from './point.js';

export interface DecoderOptions {
  topicPattern: string;
  format: 'auto' | 'json' | 'line';
  precision?: Precision;
}

export type Decoder = (topic: string, payload: Buffer, receivedAt: number) => Point[];

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** topic + payload → points, or a DecodeError saying why not. Pure and synchronous. */
export function createDecoder(opts: DecoderOptions): Decoder {
  const topicParts = compileTopicPattern(opts.topicPattern);
  return (topic, payload, receivedAt) => {
    const parts = topicParts(topic);
    let text: string;
    try {
      text = utf8.decode(payload);
    } catch {
      throw new DecodeError('payload is not valid UTF-8');
    }
    let format = opts.format;
    if (format === 'auto') {
      const first = text.trimStart().charCodeAt(0);
      format = first === 123 /* { */ || first === 91 /* [ */ ? 'json' : 'line';
    }
    if (format === 'json') return decodeJson(text, parts, receivedAt);
    const points = decodeLineProtocol(text, parts.device, receivedAt, opts.precision ?? 'ns');
    return points;
  };
}
