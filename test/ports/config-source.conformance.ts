/**
 * The one conformance suite of the ConfigSource port (src/ports/config-source.ts), run against
 * every adapter: the file source (test/adapters/file-config-source.test.ts) and the etcd source on a
 * real etcd (test/adapters/etcd-config-source.int.test.ts). `make` returns a fresh source over an
 * empty backend; `write` replaces the backend's whole content with a tree, `writeRaw` with text
 * that is not a valid layer. Waits are bounded; no timing is asserted.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { isDeepStrictEqual as same } from 'node:util';
import type { KapokError } from '../../src/core/errors.js';
import type { ConfigLayer, ConfigSource, ConfigTree } from '../../src/ports/config-source.js';
import { until } from './events.conformance.js';

export interface ConfigSourceHarness {
  make(): Promise<ConfigSource>;
  write(tree: ConfigTree): Promise<void>;
  /** Content the source cannot read (YAML that does not parse). */
  writeBroken(): Promise<void>;
}

export function configSourceConformance(
  name: string,
  h: ConfigSourceHarness,
  opts: { skip?: string | false } = {},
): void {
  describe(`ConfigSource conformance: ${name}`, { skip: opts.skip ?? false }, () => {
    const open: ConfigSource[] = [];
    afterEach(async () => {
      for (const s of open.splice(0)) await s.close();
    });
    async function watched() {
      const s = await h.make();
      open.push(s);
      const changes: ConfigLayer[] = [];
      const problems: KapokError[] = [];
      const first = await s.read();
      s.watch({ onChange: (l) => changes.push(l), onProblem: (e) => problems.push(e) });
      return { s, first, changes, problems, last: () => changes[changes.length - 1] };
    }

    it('reads an empty source as an empty tree', async () => {
      const { first } = await watched();
      assert.deepEqual(first.tree, {});
    });

    it('delivers a change with a higher revision, and the content written', async () => {
      const w = await watched();
      const tree = {
        log: { level: 'debug' },
        gateway: { limits: { maxBodyBytes: 2048 }, providers: [{ name: 'a' }] },
      };
      await h.write(tree);
      await until('a change', () => w.changes.length > 0 && same(w.last()?.tree, tree));
      assert.ok((w.last() as ConfigLayer).revision > w.first.revision);
      assert.deepEqual((await w.s.read()).tree, tree);
    });

    it('ends on the last content after quick successive writes (changes may be coalesced)', async () => {
      const w = await watched();
      for (let i = 1; i <= 5; i++) await h.write({ log: { level: i % 2 ? 'warn' : 'info' }, n: { i } });
      await until('the last write', () => (w.last()?.tree as { n?: { i: number } } | undefined)?.n?.i === 5);
      const revs = w.changes.map((c) => c.revision);
      assert.deepEqual(
        revs,
        [...revs].sort((a, b) => a - b),
        'revisions only increase',
      );
    });

    it('delivers a removed section as gone', async () => {
      const w = await watched();
      await h.write({ a: { x: 1 }, b: { y: 2 } });
      await until('a and b', () => same(w.last()?.tree, { a: { x: 1 }, b: { y: 2 } }));
      await h.write({ b: { y: 2 } });
      await until('a gone', () => same(w.last()?.tree, { b: { y: 2 } }));
    });

    it('reports unreadable content as a problem and delivers the next good content', async () => {
      const w = await watched();
      await h.write({ a: { x: 1 } });
      await until('good', () => w.changes.length > 0);
      const before = w.changes.length;
      await h.writeBroken();
      await until('a problem', () => w.problems.length > 0);
      assert.equal(w.problems[0]?.code, 'KAPOK_CONFIG_PARSE');
      assert.equal(w.changes.length, before, 'nothing delivered for broken content');
      await h.write({ a: { x: 2 } });
      await until('good again', () => same(w.last()?.tree, { a: { x: 2 } }));
    });

    it('refresh() without a change delivers nothing', async () => {
      const w = await watched();
      await h.write({ a: { x: 1 } });
      await until('change', () => w.changes.length > 0);
      const n = w.changes.length;
      await w.s.refresh();
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(w.changes.length, n);
      assert.equal(w.s.status().connected, true);
    });

    it('delivers nothing after close()', async () => {
      const w = await watched();
      await w.s.close();
      await h.write({ late: { x: 1 } });
      await new Promise((r) => setTimeout(r, 400));
      assert.equal(w.changes.length, 0);
    });
  });
}
