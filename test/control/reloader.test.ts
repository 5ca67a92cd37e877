import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { z } from 'zod';
import { Reloader } from '../../src/control/index.js';
import { KapokError } from '../../src/core/errors.js';
import { createLogger } from '../../src/core/log.js';
import type { Capability, ReconfigurePlan } from '../../src/ports/capability.js';
import type {
  ConfigLayer,
  ConfigSource,
  ConfigSourceListener,
  ConfigTree,
} from '../../src/ports/config-source.js';
import { captureLogs } from '../helpers/logs.js';

/**
 * The reload engine alone: a source this test drives (a real implementation of the port, kept in
 * memory) and capabilities that plan, apply or refuse. Atomicity: all apply, or none.
 */
function memorySource(): ConfigSource & { set(tree: ConfigTree): void } {
  let listener: ConfigSourceListener | undefined;
  let layer: ConfigLayer = { tree: {}, revision: 0 };
  return {
    kind: 'file',
    where: 'memory',
    read: async () => layer,
    watch: (l) => {
      listener = l;
    },
    refresh: async () => {},
    status: () => ({ connected: true, revision: layer.revision, resyncs: 0 }),
    close: async () => {},
    set(tree) {
      layer = { tree, revision: layer.revision + 1 };
      listener?.onChange(layer);
    },
  };
}

const section = z.strictObject({
  enabled: z.boolean().default(true),
  size: z.number().int().min(1).default(1),
  port: z.number().default(1),
});
const schema = z.strictObject({ a: section.prefault({}), b: section.prefault({}) });
type C = z.infer<typeof schema>;

function setup(plans: {
  a?: (n: unknown, p: unknown) => ReconfigurePlan;
  b?: (n: unknown, p: unknown) => ReconfigurePlan;
}) {
  const source = memorySource();
  const calls: string[] = [];
  const caps = new Map<string, Capability>();
  for (const name of ['a', 'b'] as const) {
    const plan = plans[name];
    caps.set(name, { name, ...(plan ? { reconfigure: plan } : {}) });
  }
  const logs = captureLogs();
  const r = new Reloader<C>({
    sources: [source],
    layers: [{}],
    running: schema.parse({}),
    compose: (layers) => {
      const parsed = schema.safeParse(layers[0]);
      if (!parsed.success)
        throw new KapokError(
          'KAPOK_CONFIG_INVALID',
          parsed.error.issues.map((i) => i.path.join('.')).join('; '),
        );
      return parsed.data;
    },
    capabilities: caps,
    logger: createLogger({ level: 'info', redact: [], base: {}, destination: logs }),
  });
  r.start();
  return { source, r, calls, logs };
}

describe('Reloader', () => {
  it('applies a change every capability accepts, keeping the keys it cannot apply live', async () => {
    const applied: unknown[] = [];
    const { source, r } = setup({
      a: (n, p) => ({
        restart: (n as C['a']).port !== (p as C['a']).port ? ['port'] : [],
        apply: () => {
          applied.push(n);
        },
      }),
    });
    source.set({ a: { size: 5, port: 9 } });
    await r.settled();
    assert.equal(applied.length, 1);
    assert.equal(r.config().a.size, 5);
    assert.equal(r.config().a.port, 1, 'port keeps its value until a restart');
    assert.deepEqual(r.status().pendingRestart, ['a.port']);
    assert.deepEqual(r.status().revisions, [1]);
  });

  it('applies nothing when one capability refuses: all or none, and says who and why', async () => {
    let aApplied = 0;
    const { source, r, logs } = setup({
      a: () => ({ restart: [], apply: () => void aApplied++ }),
      b: () => {
        throw new Error('size 7 exceeds the pool');
      },
    });
    source.set({ a: { size: 2 }, b: { size: 7 } });
    await r.settled();
    assert.equal(aApplied, 0, 'a planned but did not apply');
    assert.equal(r.config().a.size, 1);
    const s = r.status();
    assert.equal(s.rejected, 1);
    assert.equal(s.lastError?.code, 'KAPOK_CONTROL_RELOAD_REFUSED');
    assert.equal(s.lastError?.message, 'b: size 7 exceeds the pool');
    assert.deepEqual(s.lastError?.revisions, [1]);
    assert.deepEqual(s.revisions, [0], 'the revision in force is still the old one');
    assert.match(logs.text(), /configuration change rejected/);
  });

  it('a capability turned off, or one without reconfigure, waits for a restart', async () => {
    const { source, r } = setup({ a: () => ({ restart: [], apply: () => {} }) });
    source.set({ a: { enabled: false }, b: { size: 3 } });
    await r.settled();
    assert.deepEqual(r.status().pendingRestart.sort(), ['a.enabled', 'b.size']);
    assert.equal(r.config().b.size, 1);
  });

  it('takes changes that arrive during a reload together, ending on the newest', async () => {
    let slow: (() => void) | undefined;
    const sizes: number[] = [];
    const { source, r } = setup({
      a: (n) => ({
        restart: [],
        apply: () =>
          new Promise<void>((res) => {
            sizes.push((n as C['a']).size);
            slow = res;
            setTimeout(res, 20);
          }),
      }),
    });
    for (let i = 2; i <= 6; i++) source.set({ a: { size: i } });
    slow?.();
    await r.settled();
    assert.equal(r.config().a.size, 6);
    assert.ok(sizes.length <= 3, `coalesced: ${sizes.join(',')}`);
    assert.deepEqual(r.status().revisions, [5]);
  });
});
