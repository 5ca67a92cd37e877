/**
 * The other process of `npm run bench -- events`: a Kapok NATS event bus that answers every
 * handled event with a core NATS message `<prefix>.bench.ack` carrying its id (what the publisher
 * times), and, for the baseline, a bare JetStream consumer and a core request/reply responder.
 * Env: NATS_URL, PREFIX, DIR (for its SQLite outbox). Prints "ready" on stdout.
 */
import { join } from 'node:path';
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { createNatsEventBus } from '../src/adapters/nats/events.js';
import { EVENTS_MIGRATIONS } from '../src/adapters/nats/outbox.js';
import { createSqliteStore } from '../src/adapters/sqlite/store.js';

const url = process.env.NATS_URL as string;
const prefix = process.env.PREFIX as string;
const store = await createSqliteStore({ file: join(process.env.DIR as string, 'peer.db') });
await store.migrate(EVENTS_MIGRATIONS);
const nc = await connect({ servers: url });
const bus = await createNatsEventBus({ url, store, instanceId: `${prefix}-peer`, subjectPrefix: prefix });
await bus.ready();
bus.subscribe(['control.config.applied'], (e) => {
  nc.publish(`${prefix}.bench.ack`, String(e.data.n));
});

// Baseline 1: core request/reply (the client alone, no JetStream, no Kapok).
nc.subscribe(`${prefix}.bench.echo`, {
  callback: (_err, m) => {
    m.respond(m.data);
  },
});

// Baseline 2: a bare JetStream stream and consumer, acked at once, answered the same way.
const jsm = await jetstreamManager(nc);
const stream = `${prefix.toUpperCase()}_BENCHRAW`;
await jsm.streams.add({ name: stream, subjects: [`${prefix}.raw.>`] });
await jsm.consumers.add(stream, {
  durable_name: 'peer',
  ack_policy: AckPolicy.Explicit,
  deliver_policy: DeliverPolicy.New,
});
const raw = await jetstream(nc).consumers.get(stream, 'peer');
const msgs = await raw.consume({ max_messages: 64 });
process.stdout.write('ready\n');
for await (const m of msgs) {
  m.ack();
  nc.publish(`${prefix}.bench.rawack`, m.data);
}
