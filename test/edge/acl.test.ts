import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { edgeSchema } from '../../src/edge/config.js';
import { Acl, canPublish, canSubscribe, covers } from '../../src/edge/intake/acl.js';

// The authorization model's rules (docs/edge.md, "Authorization") without a broker; the broker
// paths are in test/v2x/device-acl.test.ts (device tokens) and test/edge/interop.int.test.ts.
describe('edge.acl: the authorization model', () => {
  const cfg = edgeSchema.parse({
    auth: { users: [{ username: 'dash', password: 'x' }] },
    acl: {
      grants: [
        { who: 'user:dash', subscribe: ['telemetry/#', '$SYS/#'] },
        { who: 'group:rsu', publish: ['v2x/{vehicle}/spat'] },
        { who: 'anonymous', publish: ['open/+'] },
      ],
    },
  });
  const acl = new Acl(cfg.acl, cfg.topicPattern);
  const dev = acl.rightsOf({ kind: 'device', device: 'd1', vehicle: 'v1', group: 'rsu' });

  it('a device: its telemetry, its BSM and ack topics, its group grant; nothing of others', () => {
    for (const t of [
      'telemetry/d1/env',
      'v2x/v1/bsm',
      'v2x/v1/bsm/json',
      'v2x/v1/strategy/ack',
      'v2x/v1/spat',
    ])
      assert.equal(canPublish(dev, t), true, t);
    for (const t of [
      'telemetry/d2/env',
      'telemetry/d1',
      'v2x/v2/bsm',
      'v2x/v1/strategy',
      'cmd/d1/x',
      '$SYS/x',
      'open/x',
    ])
      assert.equal(canPublish(dev, t), false, t);
    for (const f of ['cmd/d1/#', 'cmd/d1/reboot', 'v2x/v1/strategy'])
      assert.equal(canSubscribe(dev, f), true, f);
    for (const f of ['#', 'cmd/#', 'cmd/+/reboot', 'v2x/+/strategy', 'telemetry/d1/env', '$SYS/#'])
      assert.equal(canSubscribe(dev, f), false, f);
  });

  it('users and anonymous: exactly their grants; unknown users nothing', () => {
    const dash = acl.rightsOf({ kind: 'user', user: 'dash' });
    assert.equal(canSubscribe(dash, 'telemetry/+/env'), true);
    assert.equal(canSubscribe(dash, '$SYS/broker/clients'), true);
    assert.equal(canSubscribe(dash, '#'), false);
    assert.equal(canPublish(dash, 'telemetry/d1/env'), false);
    const other = acl.rightsOf({ kind: 'user', user: 'nobody' });
    assert.equal(canSubscribe(other, 'telemetry/#'), false);
    const anon = acl.rightsOf({ kind: 'anonymous' });
    assert.equal(canPublish(anon, 'open/x'), true);
    assert.equal(canPublish(anon, 'open/x/y'), false);
    assert.equal(canSubscribe(anon, 'open/x'), false);
  });

  it('strategy and $ topics are never published by clients, even with a # grant', () => {
    const all = new Acl(
      edgeSchema.parse({ acl: { grants: [{ who: 'anonymous', publish: ['#'], subscribe: ['#'] }] } }).acl,
      'telemetry/{device}/{measurement}',
    ).rightsOf({ kind: 'anonymous' });
    assert.equal(canPublish(all, 'v2x/x/strategy'), false);
    assert.equal(canPublish(all, '$SYS/x'), false);
    assert.equal(canPublish(all, 'v2x/x/strategy/ack'), true);
    assert.equal(canSubscribe(all, '$SYS/#'), false, '# does not reach $ topics');
  });

  it('covers: a requested filter only as wide as the grant', () => {
    assert.equal(covers(['a', '#'], 'a'), true);
    assert.equal(covers(['a', '+'], 'a/#'), false);
    assert.equal(covers(['a', '+'], 'a/+'), true);
    assert.equal(covers(['+', 'b'], '$SYS/b'), false);
  });

  it('config refuses grants that make no sense, naming the key', () => {
    const bad = (acl: unknown, users: unknown[] = []) => {
      const r = edgeSchema.safeParse({ auth: { users }, acl });
      assert.equal(r.success, false, JSON.stringify(acl));
      return r.error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ') ?? '';
    };
    assert.match(
      bad({ grants: [{ who: 'user:ghost', subscribe: ['x'] }] }),
      /acl\.grants\.0\.who.*not in edge\.auth\.users/,
    );
    assert.match(bad({ grants: [{ who: 'anonymous', subscribe: ['$SYS/#'] }] }), /\$SYS only for user/);
    assert.match(
      bad({ grants: [{ who: 'anonymous', publish: ['x/{device}'] }] }),
      /only in device and group/,
    );
    assert.match(bad({ grants: [{ who: 'group:g', publish: ['a/#/b'] }] }), /not a valid MQTT topic filter/);
    assert.match(
      bad({ grants: [{ who: 'someone', publish: ['a'] }] }),
      /user:<name>, group:<device group> or anonymous/,
    );
    assert.match(bad({ devices: { publish: ['x/{serial}'] } }), /only \{device\} and \{vehicle\}/);
  });
});
