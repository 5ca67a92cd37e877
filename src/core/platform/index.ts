import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { type CpuInfo, parseCpuinfo } from './cpuinfo.js';
import { type NumaNode, readNumaNodes } from './numa.js';

export { type CpuInfo, parseCpuinfo } from './cpuinfo.js';
export { type NumaNode, parseCpuList, readNumaNodes } from './numa.js';

/** What Kapok knows of the machine at start: printed once, handed to capabilities (shared.platform). */
export interface PlatformInfo {
  cpu: CpuInfo;
  /** NUMA nodes with at least one CPU; [] when the kernel shows none. */
  numaNodes: NumaNode[];
  /** CPUs this process may run on (sched affinity: numactl --cpunodebind, systemd CPUAffinity=). */
  usableCpus: number;
  /**
   * Default ONNX Runtime intra-op threads: one NUMA node's CPUs, so a session's threads share one
   * memory controller, bounded by the usable CPUs and by 64 (inference.defaults.intraOpThreads).
   */
  intraOpThreads: number;
}

export interface DetectOptions {
  cpuinfo?: string;
  nodeRoot?: string;
  usableCpus?: number;
}

export function detectPlatform(opts: DetectOptions = {}): PlatformInfo {
  let text = '';
  try {
    text = opts.cpuinfo ?? readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    // not Linux, or /proc hidden: the CPU stays unknown
  }
  const cpu = parseCpuinfo(text);
  if (cpu.arch === 'unknown' && opts.cpuinfo === undefined) {
    cpu.arch = process.arch === 'arm64' ? 'arm64' : process.arch === 'x64' ? 'x64' : 'unknown';
  }
  const numaNodes = readNumaNodes(opts.nodeRoot).filter((n) => n.cpus.length > 0);
  const usableCpus = Math.max(1, opts.usableCpus ?? availableParallelism());
  const perNode = numaNodes[0]?.cpus.length ?? usableCpus;
  return { cpu, numaNodes, usableCpus, intraOpThreads: Math.max(1, Math.min(perNode, usableCpus, 64)) };
}

/** One line for the start log: "Kunpeng 920 (HiSilicon, arm64), 4 NUMA nodes × 24 CPUs, 96 usable". */
export function describePlatform(p: PlatformInfo): string {
  const name = p.cpu.model ?? p.cpu.vendor ?? 'unknown CPU';
  const vendor =
    p.cpu.vendor && p.cpu.model && !p.cpu.model.includes(p.cpu.vendor) ? `${p.cpu.vendor}, ` : '';
  const sizes = [...new Set(p.numaNodes.map((n) => n.cpus.length))];
  const numa =
    p.numaNodes.length === 0
      ? 'no NUMA information'
      : `${p.numaNodes.length} NUMA node${p.numaNodes.length === 1 ? '' : 's'} × ${sizes.join('/')} CPUs`;
  return `${name} (${vendor}${p.cpu.arch}), ${numa}, ${p.usableCpus} usable; ONNX intra-op threads default ${p.intraOpThreads}`;
}
