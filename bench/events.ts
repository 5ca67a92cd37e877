import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { createNatsEventBus } from '../src/adapters/nats/events.js';
import { EVENTS_MIGRATIONS } from '../src/adapters/nats/outbox.js';
import { createSqliteStore } from '../src/adapters/sqlite/store.js';
import { root, stats, tempDir } from './lib.js';

/**
 * `npm run bench -- events`: Kapok event publish (Store outbox, relay, JetStream, durable consumer)
 * to handled in another process, timed from publish() to the peer's ack over core NATS. Baselines
 * in the same run with the NATS client alone: a core request/reply round trip, and a bare
 * JetStream publish → consume round trip (answered the same way). Target: Kapok p99 ≤ 10 ms.
 * Needs NATS with JetStream at KAPOK_BENCH_NATS_URL (default nats://127.0.0.1:4222).
 */
const N = Number(process.env.KAPOK_BENCH_EVENTS ?? 500);
const WARMUP = 50;

function percentiles(xs: number[]) {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) =>
    Math.round((s[Math.min(s.length - 1, Math.floor(p * s.length))] as number) * 100) / 100;
  return { ...stats(xs), p50: q(0.5), p99: q(0.99) };
}

/** Times n round trips; `send(i)` starts one, the answer on `ackSubject` (payload i) ends it. */
async function rounds(
  nc: NatsConnection,
  ackSubject: string,
  send: (i: number) => Promise<unknown>,
  n: number,
) {
  const waiting = new Map<string, () => void>();
  const sub = nc.subscribe(ackSubject, { callback: (_e, m) => waiting.get(m.string())?.() });
  const times: number[] = [];
  for (let i = 0; i < n + WARMUP; i++) {
    const done = new Promise<void>((r) => waiting.set(String(i), r));
    const t0 = performance.now();
    await send(i);
    await done;
    if (i >= WARMUP) times.push(performance.now() - t0);
    waiting.delete(String(i));
  }
  sub.unsubscribe();
  return percentiles(times);
}

export async function events(): Promise<unknown> {
  const url = process.env.KAPOK_BENCH_NATS_URL ?? 'nats://127.0.0.1:4222';
  const prefix = `kb${randomBytes(4).toString('hex')}`;
  const tmp = tempDir();
  const peer = spawn(process.execPath, ['--import', 'tsx', join(root, 'bench/events-peer.ts')], {
    env: { ...process.env, NATS_URL: url, PREFIX: prefix, DIR: tmp.dir },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const nc = await connect({ servers: url });
  const store = await createSqliteStore({ file: join(tmp.dir, 'pub.db') });
  try {
    await new Promise<void>((resolve, reject) => {
      peer.stdout?.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
      peer.once('exit', (code) => reject(new Error(`bench peer exited (${code})`)));
    });
    await store.migrate(EVENTS_MIGRATIONS);
    const bus = await createNatsEventBus({ url, store, instanceId: `${prefix}-pub`, subjectPrefix: prefix });
    await bus.ready();
    const js = jetstream(nc);
    const core = await rounds(
      nc,
      `${prefix}.bench.ack-core`,
      async (i) => {
        const m = await nc.request(`${prefix}.bench.echo`, String(i));
        nc.publish(`${prefix}.bench.ack-core`, m.data);
      },
      N,
    );
    const raw = await rounds(
      nc,
      `${prefix}.bench.rawack`,
      (i) => js.publish(`${prefix}.raw.x`, String(i)),
      N,
    );
    const kapok = await rounds(
      nc,
      `${prefix}.bench.ack`,
      (i) => bus.publish('control.config.applied', { n: i }),
      N,
    );
    await bus.close();
    return {
      events: N,
      unit: 'ms, publish → handled in another process → ack seen',
      kapok,
      baselineJetStream: raw,
      baselineCoreRequest: core,
      p99VsJetStream: Math.round((kapok.p99 / raw.p99) * 10) / 10,
      targetP99Ms: 10,
    };
  } finally {
    peer.kill('SIGTERM');
    await store.close();
    const jsm = await jetstreamManager(nc);
    for await (const name of jsm.streams.names())
      if (name.startsWith(`${prefix.toUpperCase()}_`)) await jsm.streams.delete(name);
    await nc.close();
    tmp.remove();
  }
}
