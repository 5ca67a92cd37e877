import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { buildLayer } from '../../src/adapters/etcd/layer.js';
import { planPush, viewsOf } from '../../src/cli/config-push.js';
import { isKapokError } from '../../src/core/errors.js';
import { diffKeys, parseSelector, TOMBSTONE } from '../../src/ports/config-overlay.js';
import { tmpDir } from '../helpers/tmp.js';

// What `kapok config push` turns into keys, and how an instance composes fleet keys and overlays.
const P = '/kapok/t/';
const layer = (keys: Map<string, string>, labels: Record<string, string> = {}) =>
  buildLayer(
    P,
    [...keys].map(([k, v]) => [P + k, v] as [string, string]),
    labels,
  );
const push = (current: Record<string, string>, input: Parameters<typeof planPush>[1]) =>
  Object.fromEntries(planPush(new Map(Object.entries(current)), input).next);

describe('kapok config push: keys from inputs', () => {
  it('--set writes one key per path; finer keys under it go; --unset edits a coarser key', () => {
    assert.deepEqual(push({ 'log/level/x': 'a' }, { sets: ['log.level=debug'], unsets: [] }), {
      'log/level': 'debug',
    });
    const out = push(
      { gateway: 'limits: { default: { rpm: 5 } }\nretry: { attempts: 2 }\n' },
      {
        sets: [],
        unsets: ['gateway.retry'],
      },
    );
    assert.deepEqual(layer(new Map(Object.entries(out))), { gateway: { limits: { default: { rpm: 5 } } } });
  });

  it('a file replaces the fleet keys (overlays untouched); with a selector, missing sections get tombstones', () => {
    const dir = tmpDir();
    const file = join(dir, 'c.yaml');
    writeFileSync(file, 'log: { level: warn }\n');
    const current = { log: 'level: info', gateway: 'retry: {}', '@zone%3Da/log/level': 'debug' };
    assert.deepEqual(push(current, { file, sets: [], unsets: [] }), {
      log: 'level: warn\n',
      '@zone%3Da/log/level': 'debug',
    });
    assert.deepEqual(push(current, { file, sets: [], unsets: [], selector: 'zone=b' }), {
      ...current,
      '@zone%3Db/log': 'level: warn\n',
      '@zone%3Db/gateway': TOMBSTONE,
    });
  });

  it('a staged deletion is a tombstone for the matching instances only; --clear drops the overlay', () => {
    const keys = new Map(
      Object.entries(push({ 'log/level': 'debug' }, { sets: [], unsets: ['log.level'], selector: 'zone=a' })),
    );
    assert.deepEqual(layer(keys, { zone: 'a' }), { log: {} });
    assert.deepEqual(layer(keys, { zone: 'b' }), { log: { level: 'debug' } });
    assert.deepEqual(viewsOf(keys), [{}, { zone: 'a' }]);
    const cleared = push(Object.fromEntries(keys), { sets: [], unsets: [], selector: 'zone=a', clear: true });
    assert.deepEqual(cleared, { 'log/level': 'debug' });
    assert.deepEqual(diffKeys(keys, new Map(Object.entries(cleared))), [
      { key: '@zone%3Da/log/level', op: 'delete' },
    ]);
  });

  it('overlays apply over the fleet, finer keys over coarser, lists walked by index', () => {
    const keys = new Map([
      ['gateway', 'providers: [{ name: a, apiKey: x }]'],
      ['@tier%3Dcanary/gateway/providers/0/apiKey', 'y'],
    ]);
    assert.deepEqual(layer(keys, { tier: 'canary', zone: 'q' }), {
      gateway: { providers: [{ name: 'a', apiKey: 'y' }] },
    });
    assert.deepEqual(layer(keys, {}), { gateway: { providers: [{ name: 'a', apiKey: 'x' }] } });
  });

  it('bad input: a clear error naming what to fix', () => {
    const bad: Array<[Parameters<typeof planPush>[1], string, RegExp]> = [
      [{ sets: ['log.level'], unsets: [] }, 'KAPOK_CONFIG_INVALID', /expected path=value/],
      [{ sets: ['a..b=1'], unsets: [] }, 'KAPOK_CONTROL_BAD_KEY', /empty path segment/],
      [{ sets: [], unsets: ['gateway.__proto__'] }, 'KAPOK_CONTROL_BAD_KEY', /not allowed/],
      [{ sets: ['log.level=[oops'], unsets: [] }, 'KAPOK_CONFIG_PARSE', /not valid YAML/],
      [{ sets: [], unsets: [], clear: true }, 'KAPOK_CONFIG_INVALID', /--clear needs --selector/],
      [{ sets: [], unsets: [] }, 'KAPOK_CONFIG_INVALID', /nothing to push/],
      [{ sets: ['a=1'], unsets: [], selector: 'zone' }, 'KAPOK_CONTROL_SELECTOR', /expected key=value/],
      [{ sets: ['a=1'], unsets: [], selector: 'zone=a,zone=b' }, 'KAPOK_CONTROL_SELECTOR', /named twice/],
      [{ sets: ['a=1'], unsets: [], selector: 'zone=a b' }, 'KAPOK_CONTROL_SELECTOR', /1-63 of/],
    ];
    for (const [input, code, msg] of bad)
      assert.throws(
        () => planPush(new Map(), input),
        (e: unknown) => isKapokError(e, code as never) && msg.test((e as Error).message),
        JSON.stringify(input),
      );
    assert.deepEqual(parseSelector('tier=canary, zone=a'), { tier: 'canary', zone: 'a' });
  });

  it('a key that is no selector or has nothing after it is refused by name', () => {
    assert.throws(() => layer(new Map([['@zone=a', 'x']])), /an overlay key needs a config path/);
    assert.throws(() => layer(new Map([['@%zz/log', 'x']])), /is not a label selector/);
  });
});
