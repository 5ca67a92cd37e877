import assert from 'node:assert/strict';
import { appendFileSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import type { MqttPort } from '../../src/ports/mqtt.js';
import { Dispatcher, strategiesFor } from '../../src/v2x/dispatch.js';
import { type Strategy, StrategyWal } from '../../src/v2x/wal.js';
import type { Warning } from '../../src/v2x/warning.js';
import { tmpDir } from '../helpers/tmp.js';

const strategy = (id: string, expiresAt: number): Strategy => ({
  id,
  vehicleId: '00000000000000aa',
  action: 'SLOW_DOWN',
  warningId: `w-${id}`,
  warningType: 'FCW',
  severity: 'warning',
  vehicles: ['00000000000000aa', '00000000000000bb'],
  trigger: { vehicle: '00000000000000aa', msgCnt: 1, secMark: 0 },
  createdAt: 0,
  expiresAt,
});

const wal = (file: string, compactBytes = 1 << 20) =>
  new StrategyWal({ file, fsync: 'always', intervalMs: 50, compactBytes });

describe('v2x strategy WAL', () => {
  it('replays added strategies minus acknowledged and expired ones', () => {
    const file = join(tmpDir(), 'a.wal');
    const w = wal(file);
    assert.deepEqual(w.open(), []);
    w.add(strategy('s1', 10));
    w.add(strategy('s2', 20));
    w.add(strategy('s3', 30));
    w.ack('s1');
    w.expire('s3');
    w.close();
    const again = wal(file);
    assert.deepEqual(
      again.open().map((s) => s.id),
      ['s2'],
    );
    assert.equal(again.corrupt, 0);
    again.close();
  });

  it('a torn or corrupt tail stops replay at the last good record and is cut off', () => {
    const file = join(tmpDir(), 'b.wal');
    const w = wal(file);
    w.open();
    w.add(strategy('s1', 10));
    w.add(strategy('s2', 20));
    w.close();
    const whole = readFileSync(file);
    writeFileSync(file, whole.subarray(0, whole.length - 3)); // torn last record
    const t = wal(file);
    assert.deepEqual(
      t.open().map((s) => s.id),
      ['s1'],
    );
    assert.equal(t.corrupt, 1);
    t.add(strategy('s3', 30));
    t.close();
    // Flipped byte inside a record body: the CRC refuses it.
    const buf = readFileSync(file);
    buf[buf.length - 5] = (buf[buf.length - 5] as number) ^ 0xff;
    writeFileSync(file, buf);
    const c = wal(file);
    assert.deepEqual(
      c.open().map((s) => s.id),
      ['s1'],
    );
    c.close();
    // A hostile length field (4 GiB) is not trusted.
    appendFileSync(file, Buffer.from([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 1]));
    const h = wal(file);
    assert.deepEqual(
      h.open().map((s) => s.id),
      ['s1'],
    );
    h.close();
  });

  it('compaction keeps the file bounded while strategies come and go', () => {
    const file = join(tmpDir(), 'c.wal');
    const w = wal(file, 8192);
    w.open();
    for (let i = 0; i < 2000; i++) {
      w.add(strategy(`s${i}`, i));
      if (i >= 3) w.ack(`s${i - 3}`);
    }
    assert.ok(w.compactions > 10, `compactions ${w.compactions}`);
    assert.ok(statSync(file).size < 3 * 8192, `size ${statSync(file).size}`);
    w.close();
    const r = wal(file);
    assert.deepEqual(
      r.open().map((s) => s.id),
      ['s1997', 's1998', 's1999'],
    );
    r.close();
  });
});

/** An MQTT port double: acks what `acking` allows, records every publish. */
function fakeMqtt(acking: () => boolean) {
  const sent: Array<{ topic: string; s: Strategy; at: number }> = [];
  const port: MqttPort = {
    mode: 'embedded',
    connected: true,
    subscribe: () => () => {},
    publish(topic, payload, opts) {
      sent.push({ topic, s: JSON.parse(payload.toString()), at: Date.now() });
      return acking()
        ? Promise.resolve()
        : new Promise((_r, reject) => setTimeout(() => reject(new Error('no ack')), opts.timeoutMs ?? 10));
    },
  };
  return { port, sent };
}

const warning = (over: Partial<Warning> = {}): Warning => ({
  id: 'w1',
  type: 'FCW',
  severity: 'critical',
  vehicles: ['00000000000000aa', '00000000000000bb'],
  ttcS: 1,
  timeGapS: null,
  distanceM: 10,
  at: 0,
  trigger: { type: 'bsm', vehicle: '00000000000000aa', msgCnt: 1, secMark: 0 },
  ...over,
});

describe('v2x strategy dispatch', () => {
  const logger = pino({ level: 'silent' });

  it('maps warnings to strategies per vehicle', () => {
    assert.deepEqual(
      strategiesFor(warning()).map((s) => s.action),
      ['BRAKE_IMMEDIATE'],
    );
    assert.deepEqual(
      strategiesFor(warning({ type: 'ICW', severity: 'warning' })).map((s) => `${s.vehicleId}:${s.action}`),
      ['00000000000000aa:SLOW_DOWN', '00000000000000bb:CAUTION'],
    );
    assert.deepEqual(strategiesFor(warning({ type: 'GLOSA', vehicles: ['x'], advisedSpeedMs: 9 })), [
      { vehicleId: 'x', action: 'SPEED_ADVICE', speedMs: 9 },
    ]);
    assert.equal(strategiesFor(warning({ type: 'RLVW', vehicles: ['x'] }))[0]?.action, 'STOP_AT_LINE');
  });

  it('logs before publishing, retries until acknowledged, never publishes after expiry', async () => {
    const file = join(tmpDir(), 'd.wal');
    const w = wal(file);
    w.open();
    let ackNow = false;
    const { port, sent } = fakeMqtt(() => ackNow);
    const d = new Dispatcher({ wal: w, mqtt: port, ttlMs: 400, retryMs: 20, maxPending: 10, logger });
    d.start();
    d.onWarning({ warning: warning(), intakeAt: performance.now() });
    assert.equal(w.live.size, 1, 'in the WAL before the first publish settles');
    const id = sent[0]?.s.id as string;
    await new Promise((r) => setTimeout(r, 120));
    assert.ok(sent.length >= 2, `retried (${sent.length} publishes)`);
    ackNow = true;
    await new Promise((r) => setTimeout(r, 80));
    assert.equal(d.pending, 0);
    assert.equal(d.acked, 1);
    assert.equal(w.live.has(id), false);
    // A strategy nobody acknowledges expires and is not published after expiresAt.
    ackNow = false;
    d.onWarning({ warning: warning({ id: 'w2' }), intakeAt: performance.now() });
    const s2 = sent.at(-1)?.s as Strategy;
    await new Promise((r) => setTimeout(r, 600));
    assert.equal(d.expired, 1);
    assert.equal(d.pending, 0);
    const after = sent.filter((x) => x.s.id === s2.id);
    assert.ok(after.length >= 2);
    assert.ok(
      after.every((x) => x.at < s2.expiresAt),
      'no publish after expiry',
    );
    d.stop();
    w.close();
    assert.deepEqual(wal(file).open(), [], 'acked and expired are not replayed');
  });

  it('application acks settle a strategy; restore resends the live ones and logs the expired', () => {
    const file = join(tmpDir(), 'e.wal');
    const w = wal(file);
    w.open();
    const now = Date.now();
    w.add(strategy('old', now - 1));
    w.add(strategy('live', now + 60_000));
    const { port, sent } = fakeMqtt(() => false);
    const d = new Dispatcher({ wal: w, mqtt: port, ttlMs: 3000, retryMs: 1000, maxPending: 10, logger });
    assert.deepEqual(d.restore([...w.live.values()]), { resent: 1, expired: 1 });
    d.start();
    assert.deepEqual(
      sent.map((s) => s.s.id),
      ['live'],
    );
    assert.equal(d.ack('nope', 'v1'), false);
    const vehicle = w.live.get('live')?.vehicleId as string;
    // Only the strategy's own vehicle settles it (issue 13: acknowledgement hijack).
    assert.equal(d.ack('live', `${vehicle}x`), false);
    assert.equal(d.ack('live', null), false);
    assert.equal(d.ignoredAcks, 2);
    assert.equal(d.pending, 1);
    assert.equal(d.ack('live', vehicle), true);
    assert.equal(d.pending, 0);
    d.stop();
    w.close();
  });

  it('maxPending bounds memory: the oldest pending strategy is expired early', () => {
    const w = wal(join(tmpDir(), 'f.wal'));
    w.open();
    const { port } = fakeMqtt(() => false);
    const d = new Dispatcher({ wal: w, mqtt: port, ttlMs: 60_000, retryMs: 1000, maxPending: 2, logger });
    for (let i = 0; i < 5; i++) d.onWarning({ warning: warning({ id: `w${i}` }), intakeAt: 0 });
    assert.equal(d.pending, 2);
    assert.equal(d.expired, 3);
    w.close();
  });
});
