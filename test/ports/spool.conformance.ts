/**
 * The one conformance suite of the SpoolStore port (edge's durable spool storage), run against
 * every adapter. `make(key)` opens the storage named `key`: the same key again reopens the same
 * storage (as after a restart), so persistence is checked through the port alone.
 */
import assert from 'node:assert/strict';
import { after, afterEach, describe, it } from 'node:test';
import { isKapokError } from '../../src/core/errors.js';
import type { SpoolStore } from '../../src/ports/spool.js';

export interface SpoolHarness {
  make(key: string): SpoolStore;
  cleanup?: () => Promise<void>;
}

const spoolError = (err: unknown) => {
  assert.ok(isKapokError(err, 'KAPOK_EDGE_SPOOL'), `expected KAPOK_EDGE_SPOOL, got ${String(err)}`);
  return true;
};

export function spoolConformance(engine: string, h: SpoolHarness): void {
  describe(`SpoolStore conformance: ${engine}`, () => {
    let seq = 0;
    const opened: SpoolStore[] = [];
    const open = (key = `s${++seq}`) => {
      const s = h.make(key);
      opened.push(s);
      return { s, key };
    };
    const reopen = (key: string) => open(key).s;
    afterEach(() => {
      for (const s of opened.splice(0)) s.close();
    });
    after(async () => {
      await h.cleanup?.();
    });

    it('appends with growing ids and reads back topic, payload bytes and time, oldest first', () => {
      const { s } = open();
      const payloads = [
        Buffer.from('{"v":1}'),
        Buffer.alloc(0),
        Buffer.from([0, 255, 0, 10, 13]),
        Buffer.alloc(1 << 20, 7),
      ];
      const topics = ['telemetry/d/m', 'telemetry/温度/ü', 't/with space/#+', 'x'];
      const ids = payloads.map((p, i) => s.append(topics[i] as string, p, 1000 + i));
      assert.ok(
        ids.every((id, i) => i === 0 || id > (ids[i - 1] as number)),
        `ids grow: ${ids}`,
      );
      assert.equal(s.lastId(), ids.at(-1));
      const rows = s.read(0, 10);
      assert.deepEqual(
        rows.map((r) => [
          r.id,
          r.topic,
          Buffer.compare(r.payload, payloads[ids.indexOf(r.id)] as Buffer),
          r.receivedAt,
        ]),
        ids.map((id, i) => [id, topics[i], 0, 1000 + i]),
      );
      assert.deepEqual(
        s.read(ids[1] as number, 2).map((r) => r.id),
        ids.slice(2, 4),
      );
      assert.deepEqual(s.read(ids.at(-1) as number, 10), []);
    });

    it('readMeta answers the ids and receive times read answers, without payloads', () => {
      const { s } = open();
      const ids = [5, 6, 7].map((t) => s.append('t', Buffer.from(`p${t}`), 1000 + t));
      assert.deepEqual(
        s.readMeta(0, 10),
        ids.map((id, i) => ({ id, receivedAt: 1005 + i })),
      );
      assert.deepEqual(
        s.readMeta(ids[0] as number, 1),
        s.read(ids[0] as number, 1).map((r) => ({ id: r.id, receivedAt: r.receivedAt })),
      );
      assert.deepEqual(s.readMeta(ids.at(-1) as number, 10), []);
    });

    it('sizes messages as payload plus UTF-8 topic bytes; lists the oldest', () => {
      const { s } = open();
      const a = s.append('t/ü', Buffer.from('12345'), 1); // 't/ü' is 4 UTF-8 bytes
      const b = s.append('t', Buffer.alloc(10), 2);
      assert.deepEqual(s.sizeUpTo(a), { count: 1, bytes: 9 });
      assert.deepEqual(s.sizeUpTo(Number.MAX_SAFE_INTEGER), { count: 2, bytes: 20 });
      assert.deepEqual(s.sizeUpTo(a - 1), { count: 0, bytes: 0 });
      assert.deepEqual(s.oldest(1), [{ id: a, bytes: 9 }]);
      assert.deepEqual(s.oldest(5), [
        { id: a, bytes: 9 },
        { id: b, bytes: 11 },
      ]);
    });

    it('deletes up to an id; ids never go back, also once emptied and after a reopen', () => {
      const { s, key } = open();
      s.append('t', Buffer.from('a'), 1);
      const last = s.append('t', Buffer.from('b'), 2);
      s.deleteUpTo(last);
      assert.deepEqual(s.read(0, 10), []);
      assert.deepEqual(s.sizeUpTo(Number.MAX_SAFE_INTEGER), { count: 0, bytes: 0 });
      assert.equal(s.lastId(), last);
      s.close();
      const again = reopen(key);
      assert.equal(again.lastId(), last);
      assert.ok(again.append('t', Buffer.from('c'), 3) > last);
    });

    it('keeps cursors, messages and dead letters across close and reopen', () => {
      const { s, key } = open();
      const id = s.append('t', Buffer.from('kept'), 5);
      s.setCursor('embedded-0', id);
      s.setCursor('influx-1', 0);
      s.setCursor('embedded-0', id); // again: an update, not a second cursor
      const dead = s.addDeadLetter('bad/topic', Buffer.from([1, 2]), 'invalid JSON', 7);
      s.close();
      const r = reopen(key);
      assert.deepEqual([...r.cursors()].sort(), [
        ['embedded-0', id],
        ['influx-1', 0],
      ]);
      assert.deepEqual(
        r.read(0, 10).map((m) => m.payload.toString()),
        ['kept'],
      );
      assert.deepEqual(r.deadLetters(10, 0), [
        { id: dead, at: 7, topic: 'bad/topic', reason: 'invalid JSON', payload: Buffer.from([1, 2]) },
      ]);
    });

    it('a transaction keeps all its writes when it returns and none when it throws', () => {
      const { s } = open();
      const before = s.append('t', Buffer.from('0'), 0);
      const ids = s.transaction(() => [
        s.append('t', Buffer.from('1'), 1),
        s.append('t', Buffer.from('2'), 2),
      ]);
      assert.equal(ids.length, 2);
      const boom = new Error('not the spool');
      assert.throws(
        () =>
          s.transaction(() => {
            s.append('t', Buffer.from('3'), 3);
            s.setCursor('a', 99);
            s.addDeadLetter('t', Buffer.alloc(0), 'r', 1);
            throw boom;
          }),
        (err) => err === boom,
        "the callback's own error passes through as it is",
      );
      assert.deepEqual(
        s.read(0, 10).map((m) => m.payload.toString()),
        ['0', '1', '2'],
      );
      assert.equal(s.cursors().has('a'), false);
      assert.deepEqual(s.deadLetters(10, 0), []);
      assert.equal(s.lastId(), ids[1], 'the rolled-back id is not the last one');
      assert.ok(before < (ids[0] as number));
    });

    it('nests: an inner transaction that throws is undone, the outer one keeps the rest', () => {
      const { s } = open();
      s.transaction(() => {
        s.append('t', Buffer.from('outer'), 1);
        try {
          s.transaction(() => {
            s.append('t', Buffer.from('inner'), 2);
            throw new Error('inner fails');
          });
        } catch {}
        s.append('t', Buffer.from('outer again'), 3);
      });
      assert.deepEqual(
        s.read(0, 10).map((m) => m.payload.toString()),
        ['outer', 'outer again'],
      );
    });

    it('pages, deletes and trims dead letters', () => {
      const { s } = open();
      const ids = [0, 1, 2, 3, 4].map((i) => s.addDeadLetter('t', Buffer.from([i]), `r${i}`, i));
      assert.ok(ids.every((id, i) => i === 0 || id > (ids[i - 1] as number)));
      assert.deepEqual(
        s.deadLetters(2, ids[0] as number).map((d) => d.reason),
        ['r1', 'r2'],
      );
      s.deleteDeadLetter(ids[1] as number);
      s.trimDeadLetters(ids[2] as number);
      assert.deepEqual(
        s.deadLetters(10, 0).map((d) => d.reason),
        ['r3', 'r4'],
      );
    });

    it('two stores open on the same storage (a CLI beside a running Kapok) never hand out one id twice', () => {
      const { s: a, key } = open();
      const b = reopen(key);
      const ids = [];
      for (let i = 0; i < 10; i++)
        ids.push(a.append('t', Buffer.from('a'), i), b.append('t', Buffer.from('b'), i));
      assert.equal(new Set(ids).size, 20);
      assert.deepEqual(
        a.read(0, 100).map((m) => m.id),
        [...ids].sort((x, y) => x - y),
      );
    });

    it('throws KAPOK_EDGE_SPOOL once closed; close is idempotent', () => {
      const s = h.make(`closed${++seq}`);
      s.close();
      s.close();
      assert.throws(() => s.append('t', Buffer.alloc(1), 1), spoolError);
      assert.throws(() => s.read(0, 1), spoolError);
      assert.throws(() => s.transaction(() => 1), spoolError);
    });
  });
}
