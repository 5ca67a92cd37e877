import type { MqttHandler } from '../../ports/mqtt.js';
import { validFilter } from '../decode/topic.js';

interface Tap {
  levels: string[];
  handler: MqttHandler;
}

/**
 * Topic filters another capability subscribed through the MQTT port. A message on a tapped topic is
 * handed to the tap and does not enter the telemetry intake (spool, sinks): V2X traffic at tens of
 * thousands of messages a second must not go through SQLite. Matching walks the topic without
 * splitting it (no allocation per message).
 */
export class Taps {
  #taps: Tap[] = [];

  get size(): number {
    return this.#taps.length;
  }

  get filters(): string[] {
    return this.#taps.map((t) => t.levels.join('/'));
  }

  add(filters: readonly string[], handler: MqttHandler): () => void {
    const added: Tap[] = [];
    for (const f of filters) {
      if (!validFilter(f)) throw new Error(`mqtt subscribe: ${f.slice(0, 80)} is not a valid topic filter`);
      added.push({ levels: f.split('/'), handler });
    }
    this.#taps = [...this.#taps, ...added];
    return () => {
      this.#taps = this.#taps.filter((t) => !added.includes(t));
    };
  }

  /** The handler of the first tap matching `topic`, or null. */
  match(topic: string): MqttHandler | null {
    for (const t of this.#taps) if (matchLevels(t.levels, topic)) return t.handler;
    return null;
  }
}

/** MQTT filter match over pre-split filter levels; `$` topics never match a leading wildcard. */
export function matchLevels(levels: readonly string[], topic: string): boolean {
  let pos = 0;
  const n = levels.length;
  for (let i = 0; i < n; i++) {
    const l = levels[i] as string;
    if (l === '#') return !(i === 0 && topic.charCodeAt(0) === 36);
    if (pos > topic.length) return false;
    let end = topic.indexOf('/', pos);
    if (end < 0) end = topic.length;
    if (l === '+') {
      if (i === 0 && topic.charCodeAt(0) === 36) return false;
    } else if (end - pos !== l.length || !topic.startsWith(l, pos)) return false;
    pos = end + 1;
  }
  return pos === topic.length + 1;
}
