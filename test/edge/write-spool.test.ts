import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createSqliteSpoolStore } from '../../src/adapters/sqlite/spool.js';
import { createSqliteTimeSeries } from '../../src/adapters/sqlite/timeseries.js';
import { isKapokError } from '../../src/core/errors.js';
import { createLogger } from '../../src/core/log.js';
import { createDecoder } from '../../src/edge/decode/index.js';
import { decodeLineProtocol } from '../../src/edge/decode/line-protocol.js';
import { SinkRunner } from '../../src/edge/spool/runner.js';
import { Spool } from '../../src/edge/spool/spool.js';
import { topicBuilder } from '../../src/edge/write/routes.js';
import {
  CHUNK_POINTS,
  chunk,
  decodeWriteChunk,
  withWriteChunks,
  writeTopic,
} from '../../src/edge/write/spooled.js';
import { captureLogs } from '../helpers/logs.js';
import { tmpDir } from '../helpers/tmp.js';
import { until } from './setup.js';

/** How HTTP writes sit in the spool, and that a runner without the decoded cache stores them right. */

const body = (n: number, extra = '') =>
  Buffer.from(
    `# head\n${Array.from({ length: n }, (_, i) => `m,site=s${extra} v=${i} ${1_700_000_000 + i}`).join('\n\n')}\n# tail\n`,
  );

describe('HTTP writes in the spool', () => {
  it('chunks on line boundaries; each chunk decodes to its own points (ASCII and UTF-8 bodies)', () => {
    for (const b of [body(1200), body(1200, '°C')]) {
      const text = b.toString('utf8');
      const ends: number[] = [];
      const points = decodeLineProtocol(text, 'dev-1', 5, 's', ends);
      const chunks = chunk(b, text, points, ends);
      assert.equal(chunks.length, Math.ceil(1200 / CHUNK_POINTS));
      assert.equal(Buffer.concat(chunks.map((c) => c.payload)).toString(), text, 'nothing lost or repeated');
      const topic = writeTopic('s', 'dev-1');
      for (const c of chunks) assert.deepEqual(decodeWriteChunk(topic, c.payload, 5), c.points);
    }
  });

  it('the runners decoder tells write chunks from MQTT topics; a bad write topic is a DecodeError', () => {
    const mqtt = createDecoder({ topicPattern: 'telemetry/{device}/{measurement}', format: 'auto' });
    const d = withWriteChunks(mqtt);
    assert.equal(d(writeTopic('ms', 'a/b'), Buffer.from('m v=1 7'), 0)[0]?.device, 'a/b');
    assert.equal(d(writeTopic('ms', 'x'), Buffer.from('m v=1 7'), 0)[0]?.ts, 7);
    assert.equal(d('telemetry/dev/m', Buffer.from('{"v":1}'), 3)[0]?.device, 'dev');
    assert.throws(() => d('$write/h/x', Buffer.from('m v=1'), 0), /bad write topic/);
    assert.throws(() => mqtt('$write/ms/x', Buffer.from('m v=1'), 0), /does not match/);
  });

  it('a runner with no decoded cache (after a restart) stores the spooled write exactly', async () => {
    const dir = tmpDir();
    const spool = new Spool({
      store: createSqliteSpoolStore({ file: join(dir, 's.db'), fsync: 'normal' }),
      maxBytes: 1 << 24,
      onFull: 'reject',
      sinks: ['embedded-0'],
      deadLetterMax: 0,
    });
    const b = body(1100);
    const text = b.toString();
    const ends: number[] = [];
    const points = decodeLineProtocol(text, 'dev-9', 1, 's', ends);
    const ids = spool.appendAll(
      chunk(b, text, points, ends).map((c) => ({
        topic: writeTopic('s', 'dev-9'),
        payload: c.payload,
        receivedAt: 1,
      })),
    );
    assert.ok(!isKapokError(ids));
    const sink = createSqliteTimeSeries({ name: 'embedded-0', file: join(dir, 'p.db') });
    const runner = new SinkRunner({
      spool,
      sink,
      decode: withWriteChunks(
        createDecoder({ topicPattern: 'telemetry/{device}/{measurement}', format: 'auto' }),
      ),
      batchSize: 200,
      intervalMs: 5,
      retryMinMs: 5,
      retryMaxMs: 10,
      logger: createLogger({ level: 'warn', destination: captureLogs() }),
    });
    runner.start();
    const got = await until(async () => {
      const r = await sink.query?.range({
        measurement: 'm',
        field: 'v',
        device: 'dev-9',
        from: 0,
        to: 2e12,
        agg: 'avg',
        limit: 5000,
      });
      return r && r.points.length === 1100 ? r.points : null;
    });
    assert.deepEqual(got[1099], { ts: 1_700_001_099_000, value: 1099 });
    await runner.stop();
    await sink.close();
    spool.close();
  });

  it('appendAll keeps all or nothing: a batch over the free room is refused whole', () => {
    const spool = new Spool({
      store: createSqliteSpoolStore({ file: join(tmpDir(), 's.db'), fsync: 'normal' }),
      maxBytes: 4096,
      onFull: 'reject',
      sinks: ['a'],
      deadLetterMax: 0,
    });
    const m = { topic: 't', payload: Buffer.alloc(1000), receivedAt: 0 };
    assert.equal((spool.appendAll([m, m]) as number[]).length, 2);
    const full = spool.appendAll([m, m]);
    assert.ok(isKapokError(full, 'KAPOK_EDGE_SPOOL_FULL'));
    assert.equal(spool.lastId, 2, 'nothing of the refused batch appended');
    spool.close();
  });

  it('telemetry topics for the ACL: {device}, {measurement}, + as "http", a trailing # dropped', () => {
    assert.equal(topicBuilder('telemetry/{device}/{measurement}')('d', 'm'), 'telemetry/d/m');
    assert.equal(topicBuilder('site/+/{device}/#')('d', 'm'), 'site/http/d');
  });
});
