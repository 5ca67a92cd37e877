/**
 * The NATS event bus beyond the port's conformance suite, against a real nats-server with JetStream:
 * poison messages, handler failures, NATS going away (through a TCP proxy this test cuts), NATS
 * absent at start, the outbox bound, and a restart resuming the instance's durable consumer.
 * Each run uses its own subject prefix and deletes its streams after.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { createNatsEventBus, type NatsEventBusOptions, streamName } from '../../src/adapters/nats/events.js';
import { EVENTS_MIGRATIONS, OUTBOX_TABLE } from '../../src/adapters/nats/outbox.js';
import { createSqliteStore } from '../../src/adapters/sqlite/store.js';
import { isKapokError } from '../../src/core/errors.js';
import type { EventBus, EventEnvelope } from '../../src/ports/events.js';
import type { Store } from '../../src/ports/store.js';
import { deleteRunStreams, NATS_URL, natsAvailable, runPrefix, withNats } from '../helpers/nats.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';
import { tmpDir } from '../helpers/tmp.js';
import { until } from '../ports/events.conformance.js';

const { skip } = await natsAvailable();
const prefix = runPrefix();
const dir = tmpDir();
let n = 0;
const opened: Array<{ close(): Promise<void> }> = [];

async function store(): Promise<Store> {
  const s = await createSqliteStore({ file: join(dir, `s-${++n}.db`) });
  await s.migrate(EVENTS_MIGRATIONS);
  opened.push(s);
  return s;
}

async function bus(
  o: Partial<NatsEventBusOptions> = {},
): Promise<EventBus & { ready(ms?: number): Promise<void> }> {
  const b = await createNatsEventBus({
    url: NATS_URL,
    store: o.store ?? (await store()),
    instanceId: `${prefix}-i${++n}`,
    subjectPrefix: prefix,
    ...o,
  });
  opened.unshift(b); // buses close before their stores
  return b;
}

describe('NATS event bus', { skip }, () => {
  after(async () => {
    for (const o of opened) await o.close().catch(() => undefined);
    await deleteRunStreams(prefix);
  });

  it('dead-letters a poison message (not JSON, unknown type, wrong subject, too large), counts it and keeps consuming', async () => {
    const b = await bus({ maxPayloadBytes: 4096 });
    await b.ready();
    const got: EventEnvelope[] = [];
    b.subscribe(['gateway.key.revoked'], (e) => {
      got.push(e);
    });
    const good = (id: string) =>
      JSON.stringify({ id, type: 'gateway.key.revoked', at: Date.now(), origin: 'x', data: { id } });
    await withNats(async (nc) => {
      const js = jetstream(nc);
      const subject = `${prefix}.gateway.key.revoked`;
      await js.publish(subject, 'not json {');
      await js.publish(
        subject,
        JSON.stringify({ id: 'u', type: 'gateway.key.made', at: 1, origin: 'x', data: {} }),
      );
      await js.publish(`${prefix}.gateway.other`, good('wrong-subject'));
      await js.publish(subject, good(`big-${'x'.repeat(5000)}`));
      await js.publish(subject, good('fine'));
    });
    await until('the good event', () => got.length === 1);
    assert.equal(got[0]?.data.id, 'fine');
    await until('four dead letters', () => b.status().deadLettered === 4);
    // Kept for an operator on <prefix>.dead with the reason and the original bytes.
    const reasons = await withNats(async (nc) => {
      const jsm = await jetstreamManager(nc);
      const out: string[] = [];
      const info = await jsm.streams.info(streamName(prefix, 'dead'));
      for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
        const m = await jsm.streams.getMessage(streamName(prefix, 'dead'), { seq });
        if (m) out.push((m.json() as { reason: string }).reason);
      }
      return out.sort();
    });
    assert.deepEqual(reasons, ['not_json', 'subject_mismatch', 'too_large', 'unknown_type']);
  });

  it('redelivers an event whose handler failed, and dead-letters it after maxDeliver attempts', async () => {
    const b = await bus({ maxDeliver: 3, ackWaitMs: 5000 });
    await b.ready();
    const attempts = new Map<string, number>();
    b.subscribe(['gm.device.revoked'], (e) => {
      const serial = String(e.data.serial);
      const k = (attempts.get(serial) ?? 0) + 1;
      attempts.set(serial, k);
      if (serial === 'flaky' && k < 2) throw new Error('transient');
      if (serial === 'broken') throw new Error('always');
    });
    await b.publish('gm.device.revoked', { serial: 'flaky' });
    await until('flaky handled on its second delivery', () => b.status().handled === 1);
    assert.equal(attempts.get('flaky'), 2);
    await b.publish('gm.device.revoked', { serial: 'broken' });
    await until('broken dead-lettered', () => b.status().deadLettered === 1, 20_000);
    assert.equal(attempts.get('broken'), 3);
    assert.equal(b.status().handlerErrors, 4);
  });

  it('keeps events published while NATS is cut off in the outbox and delivers every one, in order, when it returns', async () => {
    const url = new URL(NATS_URL);
    const proxy = await TcpProxy.start(url.hostname, Number(url.port || 4222));
    opened.push(proxy);
    const viaProxy = `nats://127.0.0.1:${proxy.port}`;
    const pub = await bus({ url: viaProxy });
    const sub = await bus();
    await Promise.all([pub.ready(), sub.ready()]);
    const seen: string[] = [];
    sub.subscribe(['control.config.applied'], (e) => {
      seen.push(String(e.data.n));
    });
    await pub.publish('control.config.applied', { n: 0 });
    await until('the first event', () => seen.length === 1);

    proxy.cut();
    await until('publisher sees the cut', () => !pub.status().connected);
    for (let i = 1; i <= 20; i++) await pub.publish('control.config.applied', { n: i });
    assert.equal(pub.status().pending, 20, 'all twenty wait in the outbox');
    proxy.restore();
    await until('all delivered', () => new Set(seen).size === 21, 30_000);
    await until('outbox drained', () => pub.status().pending === 0);
    // At least once: a resend after a lost ack is dropped by JetStream's duplicate window (the
    // event id is the Nats-Msg-Id), so the handler saw each event exactly once here.
    assert.deepEqual(
      seen,
      Array.from({ length: 21 }, (_, i) => String(i)),
    );
  });

  it('starts without NATS, reports not connected, keeps publishes in the outbox up to outboxMax, then refuses', async () => {
    const proxy = await TcpProxy.start('127.0.0.1', Number(new URL(NATS_URL).port || 4222));
    opened.push(proxy);
    proxy.cut(); // NATS "down" from the start
    const s = await store();
    const b = await bus({ url: `nats://127.0.0.1:${proxy.port}`, store: s, outboxMax: 3, closeWaitMs: 100 });
    assert.equal(b.status().connected, false);
    for (let i = 0; i < 3; i++) await b.publish('v2x.zone.changed', { id: `z${i}`, zone: null });
    await assert.rejects(b.publish('v2x.zone.changed', { id: 'z3', zone: null }), (err: unknown) =>
      isKapokError(err, 'KAPOK_EVENTS_OUTBOX_FULL'),
    );
    const rows = await s.query<{ n: number }>(`SELECT count(*) AS n FROM ${OUTBOX_TABLE}`);
    assert.equal(Number(rows[0]?.n), 3);
    // NATS comes up: the outbox drains and publishing works again.
    proxy.restore();
    await b.ready(15_000);
    await until('outbox drained', () => b.status().pending === 0, 15_000);
    await b.publish('v2x.zone.changed', { id: 'z3', zone: null });
  });

  it('resumes its durable consumer after a restart with the same instance id: nothing published meanwhile is lost', async () => {
    const s = await store();
    const id = `${prefix}-restart`;
    const first = await bus({ instanceId: id, store: s });
    await first.ready();
    first.subscribe(['inference.model.changed'], () => {});
    await first.close();
    const other = await bus();
    await other.ready();
    await other.publish('inference.model.changed', { model: 'm', action: 'load' });
    await until('relayed', () => other.status().pending === 0);
    const again = await bus({ instanceId: id, store: s });
    const got: EventEnvelope[] = [];
    again.subscribe(['inference.model.changed'], (e) => {
      got.push(e);
    });
    await until('delivered after the restart', () => got.length === 1);
    assert.equal(got[0]?.data.model, 'm');
  });
});
