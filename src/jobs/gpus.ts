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
