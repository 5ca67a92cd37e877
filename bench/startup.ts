import {
  BASELINE_SERVER,
  CAPABILITIES_OFF,
  freePort,
  kapokBin,
  rssBytes,
  spawnProcess,
  stats,
  stop,
  tempDir,
  waitFor200,
} from './lib.js';

/**
 * Time from spawn to the first /healthz 200, idle RSS 1 s later, and SIGTERM-to-exit time, for
 * `kapok up` on embedded defaults and for a bare node:http server run the same way (the baseline:
 * node's own start-up, which no Node program can beat).
 */
export async function startup(runs = Number(process.env.KAPOK_BENCH_RUNS ?? 10)) {
  const kapok = await measure(runs, async (port, dataDir) => ({
    cmd: [process.execPath, kapokBin, 'up'],
    env: {
      KAPOK_HTTP__PORT: String(port),
      KAPOK_HTTP__HOST: '127.0.0.1',
      // The empty platform (every capability is on by default).
      ...CAPABILITIES_OFF,
      KAPOK_DATA_DIR: dataDir,
      KAPOK_LOG__LEVEL: 'warn',
    },
  }));
  const baseline = await measure(runs, async (port) => ({
    cmd: [process.execPath, '-e', BASELINE_SERVER],
    env: { PORT: String(port) },
  }));
  return {
    kapok,
    baseline,
    ratio: {
      readyMs: round(kapok.readyMs.median / baseline.readyMs.median),
      idleRssMB: round(kapok.idleRssMB.median / baseline.idleRssMB.median),
    },
    targets: { readyMs: 400, idleRssMB: 80 },
    met: { readyMs: kapok.readyMs.median <= 400, idleRssMB: kapok.idleRssMB.median <= 80 },
  };
}

async function measure(
  runs: number,
  make: (port: number, dataDir: string) => Promise<{ cmd: string[]; env: Record<string, string> }>,
) {
  const ready: number[] = [];
  const rss: number[] = [];
  const stopMs: number[] = [];
  const exits: (number | null)[] = [];
  for (let i = 0; i < runs; i++) {
    const port = await freePort();
    const tmp = tempDir();
    const { cmd, env } = await make(port, tmp.dir);
    const t0 = performance.now();
    const child = spawnProcess(cmd, env);
    try {
      ready.push(await waitFor200(`http://127.0.0.1:${port}/healthz`, t0, child));
      await new Promise((r) => setTimeout(r, 1000));
      rss.push(rssBytes(child.pid as number) / 2 ** 20);
      const s0 = performance.now();
      exits.push(await stop(child));
      stopMs.push(performance.now() - s0);
    } finally {
      child.kill('SIGKILL');
      tmp.remove();
    }
    process.stderr.write(
      `  run ${i + 1}/${runs}: ready ${ready.at(-1)?.toFixed(1)} ms, rss ${rss.at(-1)?.toFixed(1)} MB\n`,
    );
  }
  return {
    readyMs: stats(ready),
    idleRssMB: stats(rss),
    stopMs: stats(stopMs),
    exitCodes: [...new Set(exits)],
  };
}

const round = (n: number) => Math.round(n * 100) / 100;
