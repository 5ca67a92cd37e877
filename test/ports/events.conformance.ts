/**
 * The one conformance suite of the EventBus port, run against every adapter. `make` returns a new
 * bus each call (a new instance id); buses of one run may share a backend (NATS runs use a unique
 * subject prefix and delete their streams in `cleanup`). Waits poll status() or a handler's
 * promise, never a fixed sleep.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { type ErrorCode, isKapokError } from '../../src/core/errors.js';
import { EVENT_TYPES, type EventBus, type EventEnvelope } from '../../src/ports/events.js';

export interface EventsHarness {
  make(opts?: { maxPayloadBytes?: number }): Promise<EventBus>;
  cleanup?(): Promise<void>;
}

async function rejectsWith(p: Promise<unknown> | (() => unknown), code: ErrorCode): Promise<void> {
  const run = typeof p === 'function' ? async () => p() : () => p;
  await assert.rejects(run, (err: unknown) => {
    assert.ok(
      isKapokError(err, code),
      `expected ${code}, got ${err instanceof Error ? err.stack : String(err)}`,
    );
    return true;
  });
}

/** Resolves with the first n events a handler receives. */
function collect(bus: EventBus, types: Parameters<EventBus['subscribe']>[0], n: number) {
  const got: EventEnvelope[] = [];
  let done!: (v: EventEnvelope[]) => void;
  const all = new Promise<EventEnvelope[]>((r) => {
    done = r;
  });
  const off = bus.subscribe(types, (e) => {
    got.push(e);
    if (got.length === n) done(got);
  });
  return { got, all, off };
}

export async function until(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export function eventsConformance(
  name: string,
  h: EventsHarness,
  opts: { skip?: string | false } = {},
): void {
  describe(`EventBus conformance: ${name}`, { skip: opts.skip ?? false }, () => {
    const open: EventBus[] = [];
    const make = async (o?: { maxPayloadBytes?: number }) => {
      const bus = await h.make(o);
      open.push(bus);
      return bus;
    };
    after(async () => {
      await Promise.allSettled(open.map((b) => b.close()));
      await h.cleanup?.();
    });

    it('delivers the envelope (id, type, at, origin, data) to a subscriber of the type', async () => {
      const bus = await make();
      const c = collect(bus, ['gateway.key.revoked'], 1);
      const before = Date.now();
      const sent = await bus.publish('gateway.key.revoked', { id: 'k1' });
      const [got] = await c.all;
      assert.deepEqual(got, sent);
      assert.equal(got?.origin, bus.instanceId);
      assert.ok(got && got.at >= before - 1 && got.at <= Date.now());
      assert.match(String(got?.id), /^[0-9a-f-]{36}$/);
      await until('handled counted', () => bus.status().handled >= 1);
    });

    it('gives each event a unique id and keeps the publish order of a type', async () => {
      const bus = await make();
      const c = collect(bus, ['gm.device.revoked'], 20);
      const sent = [];
      for (let i = 0; i < 20; i++) sent.push(await bus.publish('gm.device.revoked', { serial: `d${i}` }));
      const got = await c.all;
      assert.deepEqual(
        got.map((e) => e.data.serial),
        sent.map((e) => e.data.serial),
      );
      assert.equal(new Set(got.map((e) => e.id)).size, 20);
    });

    it('delivers only subscribed types, to every subscriber, and stops after unsubscribe', async () => {
      const bus = await make();
      const a = collect(bus, ['v2x.zone.changed', 'inference.model.changed'], 2);
      const b = collect(bus, ['v2x.zone.changed'], 1);
      const other: EventEnvelope[] = [];
      const offOther = bus.subscribe(['control.config.applied'], (e) => {
        other.push(e);
      });
      await bus.publish('v2x.zone.changed', { zone: 'z1' });
      await bus.publish('inference.model.changed', { model: 'm', action: 'load' });
      const got = await a.all;
      assert.deepEqual(got.map((e) => e.type).sort(), ['inference.model.changed', 'v2x.zone.changed']);
      assert.equal((await b.all)[0]?.data.zone, 'z1');
      assert.equal(other.length, 0);
      // After unsubscribing a, only b hears the next zone event.
      a.off();
      offOther();
      const b2 = collect(bus, ['v2x.zone.changed'], 1);
      await bus.publish('v2x.zone.changed', { zone: 'z2' });
      await b2.all;
      assert.equal(a.got.length, 2);
    });

    it('acks after an async handler resolves; a throwing handler is counted, never thrown into publish', async () => {
      const bus = await make();
      let release!: () => void;
      const gate = new Promise<void>((r) => {
        release = r;
      });
      const base = bus.status().handled;
      bus.subscribe(['gm.token_key.rotated'], async () => {
        await gate;
      });
      await bus.publish('gm.token_key.rotated', { kind: 'token', id: 'token-2' });
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(bus.status().handled, base, 'not handled while the handler is pending');
      release();
      await until('handled after release', () => bus.status().handled === base + 1);

      const errors = bus.status().handlerErrors;
      const off = bus.subscribe(['control.config.applied'], () => {
        throw new Error('boom');
      });
      await bus.publish('control.config.applied', { version: 1 }); // resolves: the failure is the consumer's
      await until('handler error counted', () => bus.status().handlerErrors > errors);
      off();
      // The bus keeps delivering afterwards.
      const c = collect(bus, ['control.config.applied'], 1);
      await bus.publish('control.config.applied', { version: 2 });
      assert.equal((await c.all)[0]?.data.version, 2);
    });

    it('refuses an unknown type, non-object data and an oversized event at publish', async () => {
      const bus = await make({ maxPayloadBytes: 2048 });
      await rejectsWith(bus.publish('gateway.key.created' as never, {}), 'KAPOK_EVENTS_UNKNOWN_TYPE');
      await rejectsWith(bus.publish('gateway.key.revoked', [] as never), 'KAPOK_EVENTS_INVALID');
      await rejectsWith(
        bus.publish('gateway.key.revoked', { big: 'x'.repeat(3000) }),
        'KAPOK_EVENTS_TOO_LARGE',
      );
      await rejectsWith(() => bus.subscribe(['nope' as never], () => {}), 'KAPOK_EVENTS_UNKNOWN_TYPE');
      await rejectsWith(() => bus.subscribe(['gateway.key.revoked'], 'x' as never), 'KAPOK_EVENTS_INVALID');
      // Just under the limit passes.
      const c = collect(bus, ['gateway.key.revoked'], 1);
      await bus.publish('gateway.key.revoked', { big: 'x'.repeat(1800) });
      assert.equal(String((await c.all)[0]?.data.big).length, 1800);
    });

    it('lists the stable types', () => {
      assert.deepEqual(
        [...EVENT_TYPES],
        [
          'gateway.key.revoked',
          'gm.device.revoked',
          'gm.token_key.rotated',
          'inference.model.changed',
          'control.config.applied',
          'v2x.zone.changed',
          'jobs.job.submitted',
          'jobs.job.cancelled',
          'jobs.job.finished',
          'jobs.task.failed',
          'saga.dlq.added',
        ],
      );
    });

    it('fails publish and subscribe after close with KAPOK_EVENTS_CLOSED; close is idempotent', async () => {
      const bus = await make();
      await bus.close();
      await bus.close();
      await rejectsWith(bus.publish('gateway.key.revoked', { id: 'x' }), 'KAPOK_EVENTS_CLOSED');
      await rejectsWith(() => bus.subscribe(['gateway.key.revoked'], () => {}), 'KAPOK_EVENTS_CLOSED');
    });
  });
}
