// CPU and NUMA detection (src/core/platform) on /proc/cpuinfo and /sys/devices/system/node files
// written in the kernel's format for Kunpeng 920, Phytium FT-2000+/64 and D2000, Xeon and Hygon
// machines (test/fixtures/platform), and on garbage, which must give "unknown", never a throw.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import {
  describePlatform,
  detectPlatform,
  parseCpuinfo,
  parseCpuList,
  readNumaNodes,
} from '../../src/core/platform/index.js';

const fx = (name: string) => new URL(`../fixtures/platform/${name}`, import.meta.url).pathname;
const cpuinfo = (name: string) => readFileSync(fx(name), 'utf8');

describe('parseCpuinfo', () => {
  it('recognises Kunpeng 920 by implementer 0x48 part 0xd01', () => {
    assert.deepEqual(parseCpuinfo(cpuinfo('kunpeng920.cpuinfo')), {
      arch: 'arm64',
      vendor: 'HiSilicon',
      model: 'Kunpeng 920',
      domestic: true,
      logicalCpus: 96,
    });
  });

  it('recognises Phytium FT-2000+/64 (0x662) and D2000 (0x663)', () => {
    const ft = parseCpuinfo(cpuinfo('phytium-ft2000plus.cpuinfo'));
    assert.equal(ft.vendor, 'Phytium');
    assert.match(ft.model ?? '', /FT-2000\+\/64/);
    assert.equal(ft.logicalCpus, 64);
    assert.equal(ft.domestic, true);
    const d = parseCpuinfo(cpuinfo('phytium-d2000.cpuinfo'));
    assert.match(d.model ?? '', /D2000/);
    assert.equal(d.logicalCpus, 8);
    const s2500 = parseCpuinfo('processor : 0\nCPU implementer : 0x70\nCPU part : 0x862\n');
    assert.match(s2500.model ?? '', /FTC862/);
  });

  it('names an unknown ARM part by its numbers rather than guessing', () => {
    const c = parseCpuinfo('processor\t: 0\nCPU implementer\t: 0x41\nCPU part\t: 0xd0c\n');
    assert.deepEqual([c.vendor, c.model, c.domestic], ['ARM', 'ARM part 0xd0c', false]);
  });

  it('reads x86 vendor and model name; Hygon counts as domestic', () => {
    const x = parseCpuinfo(cpuinfo('xeon-gold.cpuinfo'));
    assert.deepEqual(
      [x.arch, x.vendor, x.model, x.domestic, x.logicalCpus],
      ['x64', 'Intel', 'Intel(R) Xeon(R) Gold 6248R CPU @ 3.00GHz', false, 4],
    );
    const h = parseCpuinfo(cpuinfo('hygon-c86.cpuinfo'));
    assert.deepEqual([h.vendor, h.domestic, h.logicalCpus], ['Hygon', true, 2]);
  });

  it('gives unknown, never throws, on garbage', () => {
    const unknown = { arch: 'unknown', vendor: null, model: null, domestic: false, logicalCpus: 0 };
    assert.deepEqual(parseCpuinfo(''), unknown);
    assert.deepEqual(parseCpuinfo('\u0000\u0001:::\n: :\nprocessor: x\n'), unknown);
    assert.deepEqual(parseCpuinfo('CPU implementer : banana\nCPU part : 0xd01\n'), unknown);
    assert.deepEqual(parseCpuinfo('vendor_id : \u0007\u0008bad\n'), unknown);
    // A truncated Kunpeng file (cut inside the first entry) still names the CPU it saw.
    const cut = cpuinfo('kunpeng920.cpuinfo').slice(0, 260);
    assert.equal(parseCpuinfo(cut).model, 'Kunpeng 920');
    for (let i = 0; i < 50; i++) {
      const c = parseCpuinfo(randomBytes(512).toString('latin1'));
      assert.equal(typeof c.logicalCpus, 'number');
    }
  });
});

describe('NUMA', () => {
  it('parses kernel CPU lists and refuses malformed ones', () => {
    assert.deepEqual(parseCpuList('0-3,8,10-11\n'), [0, 1, 2, 3, 8, 10, 11]);
    assert.deepEqual(parseCpuList(''), []);
    for (const bad of ['3-1', 'a-b', '0-99999', '1,,2', '-1', '0-3;4'])
      assert.equal(parseCpuList(bad), null, bad);
  });

  it('reads a Kunpeng 920 two-socket layout: 4 nodes of 24 CPUs', () => {
    const nodes = readNumaNodes(fx('kunpeng920-2s-node'));
    assert.deepEqual(
      nodes.map((n) => [n.id, n.cpus.length, n.cpus[0]]),
      [
        [0, 24, 0],
        [1, 24, 24],
        [2, 24, 48],
        [3, 24, 72],
      ],
    );
  });

  it('keeps a memory-only node, drops a garbled one, and treats a missing tree as none', () => {
    const nodes = readNumaNodes(fx('mixed-node'));
    assert.deepEqual(
      nodes.map((n) => [n.id, n.cpus.length]),
      [
        [0, 8],
        [1, 8],
        [2, 0],
      ],
    );
    assert.deepEqual(readNumaNodes(fx('no-such-dir')), []);
  });
});

describe('detectPlatform', () => {
  it('defaults intra-op threads to one NUMA node, bounded by the usable CPUs', () => {
    const kunpeng = { cpuinfo: cpuinfo('kunpeng920.cpuinfo'), nodeRoot: fx('kunpeng920-2s-node') };
    const all = detectPlatform({ ...kunpeng, usableCpus: 96 });
    assert.equal(all.intraOpThreads, 24);
    assert.equal(
      describePlatform(all),
      'Kunpeng 920 (HiSilicon, arm64), 4 NUMA nodes × 24 CPUs, 96 usable; ONNX intra-op threads default 24',
    );
    // Pinned with numactl --physcpubind to 8 CPUs: 8 threads, not 24.
    assert.equal(detectPlatform({ ...kunpeng, usableCpus: 8 }).intraOpThreads, 8);
    // The memory-only node is not a place to run threads.
    const mixed = detectPlatform({ cpuinfo: '', nodeRoot: fx('mixed-node'), usableCpus: 16 });
    assert.equal(mixed.numaNodes.length, 2);
    assert.equal(mixed.intraOpThreads, 8);
    // No NUMA tree: all usable CPUs, at most 64 (the schema's bound).
    const flat = detectPlatform({ cpuinfo: '', nodeRoot: fx('no-such-dir'), usableCpus: 128 });
    assert.equal(flat.intraOpThreads, 64);
    assert.match(describePlatform(flat), /unknown CPU \(unknown\), no NUMA information/);
  });

  it('reads this machine without throwing', () => {
    const p = detectPlatform();
    assert.ok(p.intraOpThreads >= 1 && p.intraOpThreads <= 64);
    assert.notEqual(p.cpu.arch, 'unknown');
  });
});
