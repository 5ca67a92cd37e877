import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** One NUMA node and the logical CPUs the kernel lists for it. */
export interface NumaNode {
  id: number;
  cpus: number[];
}

const MAX_CPU = 65_535;

/**
 * Parses a kernel CPU list ("0-23,48-71", "5", ""); null when malformed, so a garbled file is
 * treated as absent rather than as a wrong count.
 */
export function parseCpuList(text: string): number[] | null {
  const s = String(text).trim();
  if (s === '') return [];
  const out: number[] = [];
  for (const part of s.split(',')) {
    const m = /^([0-9]{1,5})(?:-([0-9]{1,5}))?$/.exec(part.trim());
    if (!m) return null;
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (hi < lo || hi > MAX_CPU) return null;
    for (let c = lo; c <= hi; c++) out.push(c);
  }
  return out;
}

/**
 * NUMA nodes from /sys/devices/system/node (or a recorded copy of it): node<N>/cpulist. An absent
 * or unreadable tree gives [] (a kernel without NUMA, a container hiding /sys).
 */
export function readNumaNodes(root = '/sys/devices/system/node'): NumaNode[] {
  let names: string[];
  try {
    names = readdirSync(root);
  } catch {
    return [];
  }
  const nodes: NumaNode[] = [];
  for (const name of names) {
    const m = /^node([0-9]{1,4})$/.exec(name);
    if (!m) continue;
    let cpus: number[] | null = null;
    try {
      cpus = parseCpuList(readFileSync(join(root, name, 'cpulist'), 'utf8'));
    } catch {
      // a node without a readable cpulist is left out
    }
    if (cpus !== null) nodes.push({ id: Number(m[1]), cpus });
  }
  return nodes.sort((a, b) => a.id - b.id);
}
