import type { SpoolStore } from '../ports/spool.js';
import type { EdgeConfig } from './config.js';
import { sinkName } from './config.js';
import { createDecoder } from './decode/index.js';
import { Spool } from './spool/spool.js';

/**
 * Dead letters that decode under the current configuration (a fixed topicPattern or format) go
 * back into the spool for every sink and leave the dead-letter table; the rest stay. Safe while
 * `kapok up` runs (SQLite locking; spool ids never repeat); a running Kapok counts the replayed
 * bytes against spool.maxBytes from its next start. Closes `store` when done.
 */
export function replayDeadLetters(
  cfg: EdgeConfig,
  store: SpoolStore,
): { replayed: number; stillFailing: number; reasons: Record<string, number> } {
  let spool: Spool;
  try {
    spool = new Spool({
      store,
      maxBytes: cfg.spool.maxBytes,
      onFull: 'reject',
      sinks: cfg.sinks.map(sinkName),
      deadLetterMax: cfg.deadLetters.max,
    });
  } catch (err) {
    store.close();
    throw err;
  }
  const decode = createDecoder({ topicPattern: cfg.topicPattern, format: cfg.format });
  let replayed = 0;
  let stillFailing = 0;
  const reasons: Record<string, number> = {};
  try {
    let after = 0;
    for (;;) {
      const batch = spool.deadLetters(500, after);
      if (batch.length === 0) break;
      after = (batch[batch.length - 1] as { id: number }).id;
      spool.transaction(() => {
        for (const d of batch) {
          try {
            decode(d.topic, d.payload, d.at);
          } catch (err) {
            stillFailing++;
            const r = (err as Error).message.replace(/^line \d+: /, '').slice(0, 60);
            reasons[r] = (reasons[r] ?? 0) + 1;
            continue;
          }
          const [res] = spool.append([{ topic: d.topic, payload: d.payload, receivedAt: d.at }]);
          if (typeof res !== 'number') throw res;
          spool.deleteDeadLetter(d.id);
          replayed++;
        }
      });
    }
  } finally {
    spool.close();
  }
  return { replayed, stillFailing, reasons };
}
