import type { SseEvent } from '../providers/types.js';

/** Longest single event accepted from an upstream; a bigger one means a broken or hostile stream. */
export const MAX_EVENT_BYTES = 4 * 1024 * 1024;

/**
 * Incremental server-sent-events parser (WHATWG EventSource rules for `event:` and `data:` lines;
 * `id:`, `retry:` and comments ignored). Bytes in, whole events out; UTF-8 split across chunks is
 * handled by the streaming decoder.
 */
export class SseParser {
  #decoder = new TextDecoder('utf-8');
  #buf = '';
  #event: string | undefined;
  #data: string[] = [];

  /** Events completed by this chunk. Throws when one event exceeds MAX_EVENT_BYTES. */
  push(chunk: Uint8Array): SseEvent[] {
    this.#buf += this.#decoder.decode(chunk, { stream: true });
    const out: SseEvent[] = [];
    let start = 0;
    for (;;) {
      const nl = this.#buf.indexOf('\n', start);
      if (nl === -1) break;
      let line = this.#buf.slice(start, nl);
      start = nl + 1;
      if (line.endsWith('\r')) line = line.slice(0, -1);
      this.#line(line, out);
    }
    this.#buf = this.#buf.slice(start);
    if (this.#buf.length + this.#pending() > MAX_EVENT_BYTES) {
      throw new Error(`upstream sent an event larger than ${MAX_EVENT_BYTES} bytes`);
    }
    return out;
  }

  /** An event still open when the stream ended (no blank line after it). */
  get hasPartial(): boolean {
    return this.#buf.length > 0 || this.#data.length > 0;
  }

  #pending(): number {
    let n = 0;
    for (const d of this.#data) n += d.length;
    return n;
  }

  #line(line: string, out: SseEvent[]): void {
    if (line === '') {
      if (this.#data.length) out.push({ event: this.#event, data: this.#data.join('\n') });
      this.#event = undefined;
      this.#data = [];
      return;
    }
    if (line.charCodeAt(0) === 58 /* ':' comment */) return;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    if (field === 'data') this.#data.push(value);
    else if (field === 'event') this.#event = value;
  }
}
