import { execFile } from 'node:child_process';
import { KapokError } from '../core/errors.js';

/**
 * The GPUs of this worker: from `nvidia-smi --query-gpu=index,memory.total,memory.used
 * --format=csv,noheader,nounits` when jobs.worker.gpus is `auto`, else from the config.
 */

export interface GpuInfo {
  index: number;
  totalMiB: number;
  usedMiB: number;
}

export const NVIDIA_SMI_ARGS = [
  '--query-gpu=index,memory.total,memory.used',
  '--format=csv,noheader,nounits',
] as const;

/**
 * Parses nvidia-smi's CSV (`0, 81559, 1234` per line; spaces and CRLF as printed). Shapes seen in
 * published output (test/fixtures/jobs/nvidia-smi-published.json):
 * - `[N/A]` or `[Not Supported]` memory (unified-memory GB10 / DGX Spark, some MIG and vGPU
 *   setups): unknown, so the GPU is listed with 0 MiB and a task asking for memory never lands there;
 * - `81920 MiB` (the same query without `nounits`): the number;
 * - a header line (without `noheader`): skipped.
 * Anything else (a line split in two, a name where the index belongs, a garbled number) is refused
 * naming the line: a guess could put a task on a GPU without the memory it asked for.
 */
export function parseNvidiaSmi(text: string): GpuInfo[] {
  const out: GpuInfo[] = [];
  for (const [n, line] of text.split(/\r?\n/).entries()) {
    if (line.trim() === '') continue;
    if (/^\s*index\s*,/.test(line)) continue;
    const bad = (why: string) =>
      new KapokError(
        'KAPOK_CONFIG_INVALID',
        `nvidia-smi output line ${n + 1} is not "index, memory.total, memory.used" (${why}): ${JSON.stringify(line.slice(0, 80))}`,
      );
    const parts = line.split(',').map((s) => s.trim());
    if (parts.length !== 3) throw bad(`${parts.length} fields`);
    const index = /^\d{1,4}$/.test(parts[0] as string) ? Number(parts[0]) : null;
    if (index === null) throw bad('no GPU index first');
    if (out.some((g) => g.index === index)) throw bad(`GPU ${index} twice`);
    /** MiB, or null where nvidia-smi says it does not know (`[N/A]`, `[Not Supported]`). */
    const mib = (s: string): number | null => {
      const m = /^(\d{1,9})(?: MiB)?$/.exec(s);
      if (m) return Number(m[1]);
      if (/^\[[A-Za-z /]+\]$/.test(s)) return null;
      throw bad(`memory ${JSON.stringify(s.slice(0, 20))}`);
    };
    const total = mib(parts[1] as string) ?? 0;
    const used = mib(parts[2] as string) ?? total;
    out.push({ index, totalMiB: total, usedMiB: Math.min(used, total) });
  }
  return out;
}

/** Runs nvidia-smi; [] when it is absent or fails (a machine without NVIDIA GPUs). */
export function detectGpus(bin = 'nvidia-smi', timeoutMs = 5000): Promise<GpuInfo[]> {
  return new Promise((resolve) => {
    execFile(bin, [...NVIDIA_SMI_ARGS], { timeout: timeoutMs }, (err, stdout) => {
      if (err) return resolve([]);
      try {
        resolve(parseNvidiaSmi(stdout));
      } catch {
        resolve([]);
      }
    });
  });
}

/** What `kapok worker --gpus` (or jobs.worker.gpus) says to report. */
export type GpuFlag =
  | { kind: 'auto' }
  | { kind: 'none' }
  | { kind: 'count'; n: number }
  | { kind: 'list'; gpus: GpuInfo[] };

/**
 * Parses `--gpus`: `auto` (nvidia-smi; none when absent), `none`, `N` (GPUs 0..N−1: memory from
 * nvidia-smi when it answers, else unknown, so only tasks asking no GPU memory fit), or
 * `index:memMiB,...` (a machine without nvidia-smi: those GPUs, that much memory each, none used).
 */
export function parseGpuFlag(text: string): GpuFlag {
  const t = text.trim();
  if (t === 'auto' || t === 'none') return { kind: t };
  if (/^\d{1,4}$/.test(t)) {
    const n = Number(t);
    if (n > 1024) throw badFlag(text, 'at most 1024 GPUs');
    return n === 0 ? { kind: 'none' } : { kind: 'count', n };
  }
  const gpus: GpuInfo[] = [];
  for (const part of t.split(',')) {
    const m = /^(\d{1,4}):(\d{1,9})$/.exec(part.trim());
    if (!m) throw badFlag(text, `"${part.slice(0, 40)}" is not index:memMiB`);
    const index = Number(m[1]);
    if (gpus.some((g) => g.index === index)) throw badFlag(text, `GPU ${index} is listed twice`);
    gpus.push({ index, totalMiB: Number(m[2]), usedMiB: 0 });
  }
  return { kind: 'list', gpus };
}

function badFlag(text: string, why: string): KapokError {
  return new KapokError(
    'KAPOK_CONFIG_INVALID',
    `--gpus ${JSON.stringify(text.slice(0, 80))}: ${why}; use auto, none, a count (2) or index:memMiB,... (0:81920,1:81920)`,
  );
}

/** The GPUs a flag reports now (auto and N read nvidia-smi on each call: free memory changes). */
export async function gpusOf(flag: GpuFlag, bin = 'nvidia-smi'): Promise<GpuInfo[]> {
  switch (flag.kind) {
    case 'none':
      return [];
    case 'list':
      return flag.gpus.map((g) => ({ ...g }));
    case 'auto':
      return detectGpus(bin);
    case 'count': {
      const seen = await detectGpus(bin);
      return Array.from(
        { length: flag.n },
        (_, i) => seen.find((g) => g.index === i) ?? { index: i, totalMiB: 0, usedMiB: 0 },
      );
    }
  }
}
