import { availableParallelism, hostname } from 'node:os';
import { resolve } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { KapokError } from '../core/errors.js';
import { createLogger } from '../core/log.js';
import { fail } from './exit.js';

/**
 * `kapok worker --url URL --token TOKEN --gpus auto|N|index:memMiB,...` (docs/jobs.md#pull-workers):
 * leases tasks from a Kapok over HTTP and runs them on this machine until SIGTERM/SIGINT.
 */

function whole(min: number, max: number) {
  return (v: string): number => {
    if (!/^\d{1,9}$/.test(v) || Number(v) < min || Number(v) > max)
      throw new InvalidArgumentError(`a whole number from ${min} to ${max}`);
    return Number(v);
  };
}

export function workerCommand(): Command {
  return new Command('worker')
    .description('lease job tasks from a Kapok over HTTP and run them here (a pull worker)')
    .requiredOption('--url <url>', 'the Kapok to lease from, http(s)://host:port')
    .option('--token <token>', "a token of the Kapok's jobs.workerTokens (default: $KAPOK_WORKER_TOKEN)")
    .option('--gpus <spec>', 'auto (nvidia-smi), none, a count, or index:memMiB,...', 'auto')
    .option(
      '--id <id>',
      "this worker's name, unique per token",
      hostname()
        .replace(/[^A-Za-z0-9._:-]/g, '_')
        .slice(0, 128),
    )
    .option('--slots <n>', 'tasks at once (default: the CPUs)', whole(1, 64))
    .option('--cpu <n>', 'CPUs tasks may ask for in total (default: the CPUs)', whole(1, 100_000))
    .option('--memory-mib <n>', 'memory tasks may ask for in total, MiB; 0: not accounted', whole(0, 1e9), 0)
    .option('--data-dir <dir>', 'checkpoint directories and pid records', './kapok-worker')
    .option('--poll-ms <n>', 'how often to ask for work when idle', whole(10, 60_000), 1000)
    .option('--nvidia-smi <path>', 'the nvidia-smi program', 'nvidia-smi')
    .action(
      async (opts: {
        url: string;
        token?: string;
        gpus: string;
        id: string;
        slots?: number;
        cpu?: number;
        memoryMib: number;
        dataDir: string;
        pollMs: number;
        nvidiaSmi: string;
      }) => {
        try {
          const token = opts.token ?? process.env.KAPOK_WORKER_TOKEN;
          if (!token)
            throw new KapokError(
              'KAPOK_CONFIG_INVALID',
              'kapok worker needs --token or KAPOK_WORKER_TOKEN (a token of jobs.workerTokens)',
            );
          const jobs = await import('../jobs/index.js');
          const cpus = Math.max(1, availableParallelism());
          const logger = createLogger({ level: 'info', destination: process.stderr });
          const w = new jobs.PullWorker({
            url: opts.url,
            token,
            id: opts.id,
            gpus: jobs.parseGpuFlag(opts.gpus),
            nvidiaSmi: opts.nvidiaSmi,
            slots: opts.slots ?? Math.min(64, cpus),
            cpu: opts.cpu ?? cpus,
            memoryMiB: opts.memoryMib,
            dataDir: resolve(opts.dataDir),
            pollMs: opts.pollMs,
            logger,
          });
          await w.start();
          process.stdout.write('kapok worker ready\n');
          const stop = async () => {
            await w.stop();
            process.exit(0);
          };
          process.once('SIGTERM', () => void stop());
          process.once('SIGINT', () => void stop());
        } catch (err) {
          fail(err);
        }
      },
    );
}
