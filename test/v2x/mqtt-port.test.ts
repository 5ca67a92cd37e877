import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { matchLevels, Taps } from '../../src/edge/intake/taps.js';

describe('edge MQTT port: taps', () => {
  const m = (f: string, t: string) => matchLevels(f.split('/'), t);

  it('matches filters like a broker, without splitting the topic', () => {
    assert.ok(m('v2x/+/bsm', 'v2x/rsu-1/bsm'));
    assert.ok(!m('v2x/+/bsm', 'v2x/rsu-1/bsm/extra'));
    assert.ok(!m('v2x/+/bsm', 'v2x/bsm'));
    assert.ok(!m('v2x/+/bsm', 'v2x/rsu-1/bsmx'));
    assert.ok(!m('v2x/+/bsm', 'v2xx/rsu-1/bsm'));
    assert.ok(m('v2x/#', 'v2x/a/b/c'));
    assert.ok(m('v2x/#', 'v2x'));
    assert.ok(m('#', 'anything/at/all'));
    assert.ok(!m('#', '$SYS/broker'));
    assert.ok(!m('+/x', '$SYS/x'));
    assert.ok(m('v2x/+/strategy/ack', 'v2x/00aa/strategy/ack'));
    assert.ok(m('v2x/+/bsm', 'v2x//bsm'), 'an empty level matches +');
    assert.ok(!m('a/b', 'a/b/'));
    assert.ok(!m('a/b', ''));
  });

  it('refuses invalid filters, hands a message to the first matching tap, unsubscribes', () => {
    const taps = new Taps();
    assert.throws(() => taps.add(['v2x/#/bsm'], () => {}), /not a valid topic filter/);
    assert.throws(() => taps.add(['v2x/a+'], () => {}), /not a valid topic filter/);
    assert.throws(() => taps.add([''], () => {}), /not a valid topic filter/);
    assert.equal(taps.size, 0);
    const seen: string[] = [];
    const off = taps.add(['v2x/+/bsm', 'v2x/+/spat'], (t) => seen.push(`a:${t}`));
    taps.add(['v2x/#'], (t) => seen.push(`b:${t}`));
    taps.match('v2x/r/bsm')?.('v2x/r/bsm', Buffer.alloc(0), undefined);
    taps.match('v2x/r/map')?.('v2x/r/map', Buffer.alloc(0), undefined);
    assert.equal(taps.match('telemetry/d/env'), null);
    off();
    taps.match('v2x/r/spat')?.('v2x/r/spat', Buffer.alloc(0), undefined);
    assert.deepEqual(seen, ['a:v2x/r/bsm', 'b:v2x/r/map', 'b:v2x/r/spat']);
    assert.deepEqual(taps.filters, ['v2x/#']);
  });
});

describe('v2x payload format detection', () => {
  it('configured format wins; auto goes by MQTT 5 content type, topic suffix, then first byte', async () => {
    const { formatOf } = await import('../../src/v2x/frames.js');
    const json = Buffer.from('{"bsmFrame":{}}');
    const uper = Buffer.from([0x00, 0x12]);
    assert.equal(formatOf('v2x/a/bsm', json, 'uper'), 'uper');
    assert.equal(formatOf('v2x/a/bsm', uper, 'json'), 'json');
    assert.equal(formatOf('v2x/a/bsm', json, 'auto'), 'json');
    assert.equal(formatOf('v2x/a/bsm', uper, 'auto'), 'uper');
    assert.equal(formatOf('v2x/a/bsm/json', uper, 'auto'), 'json');
    assert.equal(formatOf('v2x/a/bsm/uper', json, 'auto'), 'uper');
    assert.equal(formatOf('v2x/a/bsm', uper, 'auto', 'application/json'), 'json');
    assert.equal(formatOf('v2x/a/bsm', json, 'auto', 'application/octet-stream'), 'uper');
    assert.equal(formatOf('v2x/a/bsm', Buffer.alloc(0), 'auto'), 'uper');
  });
});
