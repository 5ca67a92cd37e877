import type { DestinationStream } from 'pino';

/** A pino destination that keeps parsed JSON lines in memory, for asserting on logs. */
export function captureLogs(): DestinationStream & { lines: Record<string, unknown>[]; text: () => string } {
  const lines: Record<string, unknown>[] = [];
  const raw: string[] = [];
  return {
    lines,
    text: () => raw.join(''),
    write(s: string) {
      raw.push(s);
      for (const l of s.split('\n')) if (l.trim()) lines.push(JSON.parse(l));
    },
  };
}
