import type { StreamTranslator } from '../../providers/types.js';

/** A Responses stream translator: `out` holds whole SSE frames (`event:` + `data:`). */
export interface ResponsesStream extends StreamTranslator {
  /** The `error` event that ends a stream broken off after data went out. */
  cut(why: string): string;
}

export const frame = (type: string, data: string): string => `event: ${type}\ndata: ${data}\n\n`;

/** Responses' own error event, ending a stream cut off after data went out (never response.completed). */
export function errorEvent(why: string, seq: number): string {
  const data = {
    type: 'error',
    code: 'KAPOK_GATEWAY_STREAM_INTERRUPTED',
    message: why,
    param: null,
    sequence_number: seq,
  };
  return frame('error', JSON.stringify(data));
}
