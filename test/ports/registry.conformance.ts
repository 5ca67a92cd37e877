/**
 * The one conformance suite of the Registry port (src/ports/registry.ts), run against every adapter:
 * memory (test/adapters/memory-registry.test.ts) and etcd on a real etcd
 * (test/adapters/etcd-registry.int.test.ts). Registries from one harness share one backend (one hub,
 * one etcd prefix): they are instances of one fleet. Waits are bounded; no timing is asserted.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import type { InstanceInfo, Registry } from '../../src/ports/registry.js';
import { until } from './events.conformance.js';

export interface RegistryHarness {
  /** A fresh registry on the harness's current backend. */
  make(): Promise<Registry>;
  /** A new, empty backend for the next test (a new hub, a new prefix). */
  reset(): void;
}

export function instance(id: string, over: Partial<InstanceInfo> = {}): InstanceInfo {
  return {
    id,
    region: 'guangzhou',
    labels: { zone: 'a' },
    version: '0.1.0',
    capabilities: ['gateway', 'control'],
    http: 'http://127.0.0.1:8080',
    grpc: null,
    mqtt: 'mqtt://127.0.0.1:1883',
    startedAt: '2026-12-01T21:00:00.000Z',
    ...over,
  };
}

export function registryConformance(
  name: string,
  h: RegistryHarness,
  opts: { skip?: string | false } = {},
): void {
  describe(`Registry conformance: ${name}`, { skip: opts.skip ?? false }, () => {
    const open: Registry[] = [];
    const make = async () => {
      const r = await h.make();
      open.push(r);
      return r;
    };
    afterEach(async () => {
      for (const r of open.splice(0)) await r.close();
      h.reset();
    });
    const ids = (r: Registry) => r.list().map((i) => i.id);

    it('lists itself once registered, every field as given', async () => {
      const r = await make();
      assert.deepEqual(r.list(), []);
      await r.register(instance('a'));
      assert.deepEqual(r.list(), [instance('a')]);
      assert.equal(r.status().connected, true);
    });

    it('instances see each other, sorted by id', async () => {
      const a = await make();
      const b = await make();
      await b.register(instance('b'));
      await a.register(instance('a'));
      await until('both see both', () => ids(a).join() === 'a,b' && ids(b).join() === 'a,b');
      assert.deepEqual(
        a.list().find((i) => i.id === 'b'),
        instance('b'),
      );
    });

    it('a deregistered instance leaves every list; it still sees the others', async () => {
      const a = await make();
      const b = await make();
      await a.register(instance('a'));
      await b.register(instance('b'));
      await until('both', () => ids(a).length === 2);
      await b.deregister();
      await until('b gone', () => ids(a).join() === 'a');
      assert.equal(b.status().connected, false);
      assert.deepEqual(ids(b), ['a']);
    });

    it('close withdraws the instance', async () => {
      const a = await make();
      const b = await make();
      await a.register(instance('a'));
      await b.register(instance('b'));
      await until('both', () => ids(a).length === 2);
      await b.close();
      await until('b gone', () => ids(a).join() === 'a');
    });

    it('registering again replaces the record', async () => {
      const a = await make();
      const b = await make();
      await a.register(instance('a'));
      await b.register(instance('b'));
      await b.register(instance('b', { labels: { zone: 'c' } }));
      await until('new labels', () => a.list().find((i) => i.id === 'b')?.labels.zone === 'c');
      assert.equal(ids(a).join(), 'a,b');
    });

    it('list hands out copies', async () => {
      const a = await make();
      await a.register(instance('a'));
      const first = a.list()[0] as InstanceInfo;
      first.labels.zone = 'changed';
      first.capabilities.push('x');
      assert.deepEqual(a.list(), [instance('a')]);
    });
  });
}
