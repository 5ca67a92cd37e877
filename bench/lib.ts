import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';

export const root = new URL('..', import.meta.url).pathname;
export const kapokBin = join(root, 'dist/bundle/main.js');

/** Facts every result carries so numbers from different machines are never compared blindly. */
export function machine() {
  return {
    cores: availableParallelism(),
    cpu: cpus()[0]?.model ?? 'unknown',
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
  };
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

export function tempDir(): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'kapok-bench-'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Writes `<dir>/kapok.yaml` for a benchmarked `kapok up`: data under `<dir>/data`, HTTP on
 * 127.0.0.1:httpPort, warn-level logs without request lines, plus the given sections. Returns its path.
 */
export function writeBenchConfig(dir: string, httpPort: number, sections: Record<string, unknown>): string {
  const file = join(dir, 'kapok.yaml');
  writeFileSync(
    file,
    stringify({
      dataDir: join(dir, 'data'),
      http: { host: '127.0.0.1', port: httpPort },
      log: { level: 'warn', requests: false },
      ...sections,
    }),
  );
  return file;
}

/** Resident set size of a process in bytes (Linux /proc). */
export function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : Number.NaN;
}

/** Polls GET url until 200; resolves with ms since `since` (hrtime ms). */
export async function waitFor200(
  url: string,
  since: number,
  child: ChildProcess,
  limitMs = 15_000,
): Promise<number> {
  for (;;) {
    if (child.exitCode !== null)
      throw new Error(`process exited with ${child.exitCode} before ${url} answered`);
    try {
      const res = await fetch(url);
      await res.arrayBuffer();
      if (res.status === 200) return performance.now() - since;
    } catch {
      // not listening yet
    }
    if (performance.now() - since > limitMs)
      throw new Error(`${url} did not answer 200 within ${limitMs} ms`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

export function spawnProcess(cmd: string[], env: Record<string, string>): ChildProcess {
  const [bin, ...args] = cmd as [string, ...string[]];
  return spawn(bin, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'inherit'] });
}

export function stop(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve(child.exitCode);
    child.once('exit', (code) => resolve(code));
    child.kill('SIGTERM');
  });
}

export function stats(xs: number[]) {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))] as number;
  const r = (n: number) => Math.round(n * 10) / 10;
  return {
    n: s.length,
    min: r(s[0] as number),
    median: r(q(0.5)),
    p90: r(q(0.9)),
    max: r(s[s.length - 1] as number),
  };
}

/** A bare node:http server answering the same /healthz JSON: the floor Kapok is measured against. */
export const BASELINE_SERVER = `
const http = require('node:http');
http.createServer((req, res) => {
  const body = JSON.stringify({ status: 'ok', timestamp: new Date().toISOString().slice(0, 19) + 'Z', region: 'guangzhou' });
  res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}).listen(Number(process.env.PORT), '127.0.0.1');
`;
