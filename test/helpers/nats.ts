import { randomBytes } from 'node:crypto';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { serviceAvailable } from './services.js';

export const NATS_URL = process.env.KAPOK_TEST_NATS_URL ?? 'nats://127.0.0.1:4222';

/** Skips (or fails under KAPOK_REQUIRE_SERVICES=1) when NATS with JetStream does not answer. */
export async function natsAvailable(): Promise<{ skip: string | false }> {
  return serviceAvailable('nats', async () => {
    const nc = await connect({ servers: NATS_URL, timeout: 2000, maxReconnectAttempts: 0 });
    try {
      await (await jetstreamManager(nc)).getAccountInfo();
    } finally {
      await nc.close();
    }
  });
}

/** A subject prefix of its own for one test run, so parallel runs never share a stream. */
export function runPrefix(): string {
  return `kt${randomBytes(4).toString('hex')}`;
}

export async function withNats<T>(fn: (nc: NatsConnection) => Promise<T>): Promise<T> {
  const nc = await connect({ servers: NATS_URL, timeout: 2000, maxReconnectAttempts: 0 });
  try {
    return await fn(nc);
  } finally {
    await nc.close();
  }
}

/** Deletes every stream of a run (named <PREFIX>_...). */
export async function deleteRunStreams(prefix: string): Promise<void> {
  await withNats(async (nc) => {
    const jsm = await jetstreamManager(nc);
    for await (const name of jsm.streams.names()) {
      if (name.startsWith(`${prefix.toUpperCase()}_`)) await jsm.streams.delete(name);
    }
  });
}
