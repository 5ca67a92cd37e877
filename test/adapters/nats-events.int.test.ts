import { join } from 'node:path';
import { createNatsEventBus } from '../../src/adapters/nats/events.js';
import { EVENTS_MIGRATIONS } from '../../src/adapters/nats/outbox.js';
import { createSqliteStore } from '../../src/adapters/sqlite/store.js';
import { deleteRunStreams, NATS_URL, natsAvailable, runPrefix } from '../helpers/nats.js';
import { tmpDir } from '../helpers/tmp.js';
import { eventsConformance } from '../ports/events.conformance.js';

const { skip } = await natsAvailable();
const prefix = runPrefix();
const dir = tmpDir();
let n = 0;
const stores: Array<{ close(): Promise<void> }> = [];

eventsConformance(
  'nats',
  {
    async make(o) {
      // Each bus its own SQLite outbox, as each instance has its own Store here.
      const store = await createSqliteStore({ file: join(dir, `outbox-${++n}.db`) });
      stores.push(store);
      await store.migrate(EVENTS_MIGRATIONS);
      const bus = await createNatsEventBus({
        url: NATS_URL,
        store,
        instanceId: `${prefix}-conf-${n}`,
        subjectPrefix: prefix,
        ...o,
      });
      await bus.ready();
      return bus;
    },
    async cleanup() {
      await deleteRunStreams(prefix);
      await Promise.allSettled(stores.map((s) => s.close()));
    },
  },
  { skip },
);
