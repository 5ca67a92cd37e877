import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { configSchema } from '../../src/config.js';
import { redact } from '../../src/core/config/index.js';
import { kapok } from '../helpers/cli.js';
import { testConfig } from '../helpers/config.js';
import { tmpFile } from '../helpers/tmp.js';

describe('edge config', () => {
  it('defaults: embedded broker on 1883, /mqtt, one embedded sink, reject when full, no anonymous', () => {
    const e = testConfig({}).edge;
    assert.equal(e.mqtt.mode, 'embedded');
    assert.equal(e.mqtt.port, 1883);
    assert.equal(e.mqtt.wsPath, '/mqtt');
    assert.deepEqual(
      e.sinks.map((s) => s.type),
      ['embedded'],
    );
    assert.equal(e.spool.onFull, 'reject');
    assert.equal(e.auth.anonymous, false);
    assert.equal(e.mqtt.maxPacketBytes, 16_777_216);
    assert.equal(e.mqtt.topicAliasMaximum, 32);
    assert.equal(e.mqtt.sessionExpiryMaxS, 86_400);
    assert.equal(e.mqtt.maxPendingSessions, 10_000);
    assert.equal(e.mqtt.receiveMaximum, 1000);
  });

  it('refuses inconsistent sections naming the key', () => {
    const bad: [object, RegExp][] = [
      [{ mqtt: { mode: 'external' } }, /mqtt\.url/],
      [{ sinks: [{ type: 'postgres' }] }, /sinks\.0\.url/],
      [{ sinks: [{ type: 'embedded' }, { type: 'embedded', file: 'b.db' }] }, /at most one embedded/],
      [{ topicPattern: 'telemetry/{measurement}' }, /\{device\}/],
      [{ topicPattern: 'a/{device}x/{measurement}' }, /whole topic level/],
      [{ sinks: [] }, /sinks/],
      [{ spool: { onFull: 'block' } }, /onFull/],
      // MQTT 5 limits (issue 15): 0 would mean "no limit" to Aedes, so it is not accepted.
      [{ mqtt: { sessionExpiryMaxS: 0 } }, /mqtt\.sessionExpiryMaxS/],
      [{ mqtt: { maxPacketBytes: 100 } }, /mqtt\.maxPacketBytes/],
      [{ mqtt: { maxPacketBytes: 300_000_000 } }, /mqtt\.maxPacketBytes/],
      [{ mqtt: { topicAliasMaximum: 70_000 } }, /mqtt\.topicAliasMaximum/],
      [{ mqtt: { maxPendingSessions: 0 } }, /mqtt\.maxPendingSessions/],
      [{ mqtt: { receiveMaximum: 0 } }, /mqtt\.receiveMaximum/],
      [{ mqtt: { receiveMaximum: 65_536 } }, /mqtt\.receiveMaximum/],
    ];
    for (const [edge, re] of bad) {
      const r = configSchema.safeParse({ edge });
      assert.equal(r.success, false, JSON.stringify(edge));
      const said = (r.error?.issues ?? []).map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
      assert.match(said, re, JSON.stringify(edge));
    }
  });

  it('redacts the broker URL, user passwords and sink URLs', () => {
    const c = testConfig({
      edge: {
        mqtt: { mode: 'external', url: 'mqtt://u:brokerpw@h:1883' },
        auth: { users: [{ username: 'a', password: 'userpw-1' }] },
        sinks: [
          { type: 'postgres', url: 'postgres://u:pgpw@h/db' },
          { type: 'influx', url: 'http://h:8086', db: 'x', token: 'influxtok' },
        ],
      },
    });
    const text = JSON.stringify(redact(configSchema, c));
    for (const s of ['brokerpw', 'userpw-1', 'pgpw', 'influxtok'])
      assert.ok(!text.includes(s), `${s} leaked`);
  });

  it('kapok config check names the key for a bad edge value (exit 2)', async () => {
    const file = tmpFile('kapok.yaml', 'edge:\n  enabled: true\n  mqtt: { port: 70000 }\n');
    const r = await kapok(['config', 'check', '--config', file]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /edge\.mqtt\.port/);
  });
});
