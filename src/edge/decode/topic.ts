import { checkName, DecodeError } from './point.js';

/** What a topic says: the device and, when the pattern has {measurement}, the measurement. */
export interface TopicParts {
  device: string;
  measurement: string | null;
}

/**
 * Compiles `edge.topicPattern` (e.g. `telemetry/{device}/{measurement}`) into a matcher. Literal
 * levels must match exactly; `+` in the pattern matches any one level; a trailing `#` any rest.
 */
export function compileTopicPattern(pattern: string): (topic: string) => TopicParts {
  const levels = pattern.split('/');
  const device = levels.indexOf('{device}');
  const measurement = levels.indexOf('{measurement}');
  if (device < 0) throw new Error(`edge.topicPattern ${pattern}: needs a {device} level`);
  const rest = levels[levels.length - 1] === '#';
  const fixed = rest ? levels.length - 1 : levels.length;
  return (topic) => {
    const parts = topic.split('/');
    if (rest ? parts.length < fixed : parts.length !== fixed)
      throw new DecodeError(`topic ${clip(topic)} does not match ${pattern}`);
    for (let i = 0; i < fixed; i++) {
      const l = levels[i] as string;
      if (l === '+' || l === '{device}' || l === '{measurement}') continue;
      if (parts[i] !== l) throw new DecodeError(`topic ${clip(topic)} does not match ${pattern}`);
    }
    return {
      device: checkName('device (topic level)', parts[device] as string),
      measurement:
        measurement < 0 ? null : checkName('measurement (topic level)', parts[measurement] as string),
    };
  };
}

function clip(s: string): string {
  return s.length > 80 ? `${s.slice(0, 80)}…` : s;
}

/** MQTT topic filter match (`+` one level, `#` the rest); `$`-topics never match wildcards at level 0. */
export function topicMatches(filter: string, topic: string): boolean {
  if (filter === topic) return true;
  if (topic.startsWith('$') && (filter.startsWith('+') || filter.startsWith('#'))) return false;
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    const l = f[i];
    if (l === '#') return i === f.length - 1;
    if (i >= t.length) return false;
    if (l !== '+' && l !== t[i]) return false;
  }
  return f.length === t.length;
}

/** A valid MQTT subscription filter: `#` only last and alone in its level, `+` alone in its level. */
export function validFilter(filter: string): boolean {
  if (filter.length === 0 || filter.length > 1024) return false;
  const levels = filter.split('/');
  return levels.every(
    (l, i) => (l === '#' ? i === levels.length - 1 : !l.includes('#')) && (l === '+' || !l.includes('+')),
  );
}
