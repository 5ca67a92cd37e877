import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { kapok } from '../helpers/cli.js';
import { startV2x, type V2xApp } from './setup.js';

const DIR = new URL('../../src/v2x/sim/scenarios/', import.meta.url).pathname;

describe('kapok v2x simulate', () => {
  let k: V2xApp;
  before(async () => {
    k = await startV2x({});
  });
  after(async () => k.stop());

  it('drives MQTT traffic with the scripted scenarios and scores detection from the strategies', async () => {
    const r = await kapok([
      'v2x',
      'simulate',
      '--url',
      `mqtt://127.0.0.1:${k.mqttPort}`,
      '--vehicles',
      '100',
      '--rate',
      '10',
      '--duration',
      '7',
      '--scenario',
      DIR,
      '--json',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout);
    assert.ok(report.cycles >= 1, r.stdout);
    assert.equal(report.score.recall, 1, JSON.stringify(report.score));
    assert.equal(report.score.falseWarnings, 0, JSON.stringify(report.score));
    assert.ok(report.sent > 6000, `sent ${report.sent}`);
    assert.ok(report.endToEndMs.samples > 0);
    const stats = (await k.call('GET', '/api/v2x/stats')).body;
    assert.equal(stats.dropped.undecodable, 0);
    assert.ok(stats.messages.bsm > 6000);
  });

  it('without --scenario it runs the built-in scenarios and says what it measured in words', async () => {
    const r = await kapok([
      'v2x',
      'simulate',
      '--url',
      `mqtt://127.0.0.1:${k.mqttPort}`,
      '--vehicles',
      '20',
      '--duration',
      // Two cycles at least: the second cycle's vehicles must not meet the first's, still in
      // Kapok's state for vehicleTtlMs (they did, and raised false warnings, before the cycles
      // alternated their anchors).
      '16',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      /^ran [\d.]+ s: 20 background vehicles and 12 scripted scenarios, ([2-9]|\d\d+) complete cycle/m,
    );
    const m =
      /detection: (\d+) of (\d+) scripted conflicts warned \(recall (\d+)%\), (\d+) false of (\d+) warnings/.exec(
        r.stdout,
      );
    assert.ok(m, r.stdout);
    assert.ok(Number(m[2]) >= 5, 'the five warning scenarios are scored');
    assert.equal(m[1], m[2], r.stdout);
    assert.equal(m[4], '0', r.stdout);
    assert.match(r.stdout, /strategies received by the simulated vehicles: [1-9]/);
  });

  it('bad options exit 2 with a message naming the option', async () => {
    const a = await kapok(['v2x', 'simulate', '--rate', '0', '--url', 'mqtt://127.0.0.1:1']);
    assert.equal(a.code, 2);
    assert.match(a.stderr, /--rate/);
    const b = await kapok(['v2x', 'simulate', '--scenario', '/nonexistent', '--url', 'mqtt://127.0.0.1:1']);
    assert.equal(b.code, 2);
    assert.match(b.stderr, /--scenario/);
    const c = await kapok(['v2x', 'simulate', '--format', 'xml', '--url', 'mqtt://127.0.0.1:1']);
    assert.equal(c.code, 2);
  });
});
