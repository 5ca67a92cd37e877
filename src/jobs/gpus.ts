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
 * Parses nvidia-smi's CSV (`0, 81559, 1234` per line). `[N/A]` memory (some MIG and vGPU setups)
 * counts as unknown: the GPU is listed with 0 MiB so a task asking for memory never lands there.
 */
export function parseNvidiaSmi(text: string): GpuInfo[] {
  const out: GpuInfo[] = [];
  for (const [n, line] of text.split(/\r?\n/).entries()) {
    if (line.trim() === '') continue;
    const parts = line.split(',').map((s) => s.trim());
    const num = (s: string | undefined) => (s !== undefined && /^\d+$/.test(s) ? Number(s) : null);
    const index = num(parts[0]);
    if (parts.length !== 3 || index === null)
      throw new KapokError(
        'KAPOK_CONFIG_INVALID',
        `nvidia-smi output line ${n + 1} is not "index, memory.total, memory.used": ${JSON.stringify(line.slice(0, 80))}`,
      );
    const total = num(parts[1]) ?? 0;
    const used = num(parts[2]) ?? total;
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
