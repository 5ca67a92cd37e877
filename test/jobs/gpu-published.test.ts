import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { type Capacity, fit } from '../../src/jobs/core.js';
import { parseNvidiaSmi } from '../../src/jobs/gpus.js';

/** The parser and GPU fit on nvidia-smi output published for real cards (sources in the fixture). */
interface Host {
  card: string;
  source: string;
  form: 'query' | 'table';
  quote: string[];
  lines: string;
}
const published = JSON.parse(
  readFileSync(new URL('../fixtures/jobs/nvidia-smi-published.json', import.meta.url), 'utf8'),
) as { hosts: Host[]; malformed: Array<{ why: string; source: string; text: string }> };
const host = (card: string) => published.hosts.find((h) => h.card.startsWith(card)) as Host;
const capOf = (h: Host): Capacity => ({
  gpus: parseNvidiaSmi(h.lines).map((g) => ({ index: g.index, freeMiB: g.totalMiB - g.usedMiB })),
  cpu: 64,
  memoryMiB: 0,
  slots: 8,
});
const task = (gpus: number, gpuMemoryMiB: number) => ({ gpus, gpuMemoryMiB, cpu: 1, memoryMiB: 0 });

describe('nvidia-smi output published for real cards', () => {
  it('every host parses to its quoted figures (lines agree with the quote, one GPU per line)', () => {
    for (const h of published.hosts) {
      assert.match(h.source, /^https:\/\/github\.com\/[^/]+\/[^/]+\/(issues|pull)\/\d+$/, h.card);
      const gpus = parseNvidiaSmi(h.lines);
      assert.equal(gpus.length, h.lines.trim().split('\n').length, h.card);
      if (h.form !== 'table') continue;
      // The table quote says "used MiB / total MiB" per GPU, in index order.
      const quoted = h.quote.map((q) => /(\d+)MiB \/\s+(\d+)MiB/.exec(q)?.slice(1, 3).map(Number));
      assert.deepEqual(
        gpus.map((g) => [g.usedMiB, g.totalMiB]),
        quoted,
        h.card,
      );
    }
  });

  it('fits by free memory on real totals: 5090 + 3090 host, 2×3090 host, A100 40GB', () => {
    // 5090 (32607 total, 18 used) and a nearly full 3090 (1224 MiB free).
    const mixed = capOf(host('RTX 5090 + RTX 3090'));
    assert.deepEqual(fit(task(1, 1000), mixed), [1]); // best fit: the 3090's 1224 MiB suffice
    assert.deepEqual(fit(task(1, 2000), mixed), [0]);
    assert.equal(fit(task(2, 2000), mixed), null);
    // 2×3090 with 2633 and 1743 MiB free.
    const duo = capOf(host('2x NVIDIA GeForce RTX 3090'));
    assert.deepEqual(fit(task(2, 1700), duo), [1, 0]);
    assert.deepEqual(fit(task(1, 2000), duo), [0]);
    assert.equal(fit(task(1, 3000), duo), null);
    // A100 40GB reports 40536 MiB total (ECC on), not 40960: 35396 free.
    const a100 = capOf(host('NVIDIA A100-SXM 40GB'));
    assert.deepEqual(fit(task(1, 35_396), a100), [0]);
    assert.equal(fit(task(1, 35_397), a100), null);
  });

  it('GB10 (unified memory) reports [N/A]: listed, 0 MiB free, only memory-less GPU tasks fit', () => {
    const h = host('NVIDIA GB10');
    assert.deepEqual(parseNvidiaSmi(h.lines), [{ index: 0, totalMiB: 0, usedMiB: 0 }]);
    assert.deepEqual(fit(task(1, 0), capOf(h)), [0]);
    assert.equal(fit(task(1, 1), capOf(h)), null);
  });

  it('refuses the published malformed shapes, naming the line', () => {
    for (const m of published.malformed)
      assert.throws(
        () => parseNvidiaSmi(m.text),
        (e: Error & { code?: string }) =>
          e.code === 'KAPOK_CONFIG_INVALID' &&
          /output line \d+ is not "index, memory.total, memory.used"/.test(e.message),
        m.why,
      );
  });

  it('other shapes: units, header, CRLF and trailing spaces, [Not Supported]; garbage refused', () => {
    const withUnits = 'index, memory.total [MiB], memory.used [MiB]\r\n0, 16384 MiB, 5 MiB  \r\n';
    assert.deepEqual(parseNvidiaSmi(withUnits), [{ index: 0, totalMiB: 16384, usedMiB: 5 }]);
    assert.deepEqual(parseNvidiaSmi('1, [Not Supported], [Not Supported]\n'), [
      { index: 1, totalMiB: 0, usedMiB: 0 },
    ]);
    // Known total, unknown used: counted as full (never over-promise).
    assert.deepEqual(parseNvidiaSmi('0, 81559, [N/A]'), [{ index: 0, totalMiB: 81559, usedMiB: 81559 }]);
    assert.throws(() => parseNvidiaSmi('0, 81559, 12.5'), /memory "12.5"/);
    assert.throws(() => parseNvidiaSmi('0, 1, 0\n0, 1, 0'), /GPU 0 twice/);
    assert.throws(() => parseNvidiaSmi('GPU 0: NVIDIA H100'), /1 fields/);
  });
});
