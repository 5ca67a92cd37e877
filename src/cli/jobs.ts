import { readFileSync, statSync } from 'node:fs';
import { Command, InvalidArgumentError, Option } from 'commander';
import { KapokError } from '../core/errors.js';
import { type CliContext, withCliContext, withCliEvents } from './context.js';
import { EXIT, fail } from './exit.js';
import { drawJob } from './jobs-draw.js';

/**
 * `kapok jobs submit|list|show|cancel|retry|watch` (docs/jobs.md#cli): on the Store, like the
 * HTTP API, with or without a running `kapok up` (which picks a submitted job up at once through
 * the event bus, or on its next poll). Changes are recorded in the audit trail when it is on.
 */

const configOption = () =>
  new Option('-c, --config <file>', 'YAML config file (default ./kapok.yaml if present)');
const MAX_FILE = 1024 * 1024;

function posInt(v: string): number {
  if (!/^\d{1,7}$/.test(v) || Number(v) < 1) throw new InvalidArgumentError('a whole number of 1 or more');
  return Number(v);
}

async function service(
  ctx: CliContext,
  publish?: (
    type: 'jobs.job.submitted' | 'jobs.job.cancelled',
    d: Record<string, unknown>,
  ) => Promise<unknown>,
) {
  const jobs = await import('../jobs/index.js');
  const cfg = ctx.config.jobs;
  const gpus = await jobs.workerGpus(cfg);
  return new jobs.JobsService({
    store: ctx.store,
    weights: jobs.weightsOf(cfg),
    limits: jobs.limitsOf(cfg, gpus),
    executors: cfg.executors,
    maxPendingTasks: cfg.maxPendingTasks,
    notify: (n) => {
      if (n.kind === 'submitted') void publish?.('jobs.job.submitted', { jobId: n.jobId });
      if (n.kind === 'cancelled')
        void publish?.('jobs.job.cancelled', { jobId: n.jobId, ...(n.task ? { task: n.task } : {}) });
    },
  });
}

function readSpec(file: string): string {
  let size: number;
  try {
    size = statSync(file).size;
  } catch (err) {
    throw new KapokError('KAPOK_JOBS_INVALID_SPEC', `${file} cannot be read: ${(err as Error).message}`);
  }
  if (size > MAX_FILE)
    throw new KapokError(
      'KAPOK_JOBS_INVALID_SPEC',
      `${file} is ${size} bytes, over 1 MiB: split the work into several jobs`,
    );
  return readFileSync(file, 'utf8');
}

const out = (v: unknown) => process.stdout.write(`${JSON.stringify(v)}\n`);

export function jobsCommand(): Command {
  const cmd = new Command('jobs').description('submit, follow and control DAG jobs');

  cmd
    .command('submit')
    .description('check a job spec (YAML or JSON) and queue it; prints its id')
    .argument('<file>', 'the job spec')
    .option('--dry-run', 'check the spec only')
    .option('--json', 'print the result as JSON')
    .addOption(configOption())
    .action(async (file: string, opts: { dryRun?: boolean; json?: boolean; config?: string }) => {
      try {
        const text = readSpec(file);
        if (opts.dryRun) {
          const spec = await withCliContext(opts, async (ctx) => (await service(ctx)).check(text));
          if (opts.json) out({ ok: true, name: spec.name, tasks: spec.tasks.length });
          else process.stdout.write(`ok: ${spec.name}, ${spec.tasks.length} tasks\n`);
          return;
        }
        const job = await withCliEvents(
          opts,
          async (ctx) => (await service(ctx, (t, d) => ctx.events.publish(t, d))).submit(text),
          { action: 'jobs.job.submit', target: file.slice(-200) },
        );
        if (opts.json) out(job);
        else process.stdout.write(`${job.id}\n`);
      } catch (err) {
        fail(err);
      }
    });

  cmd
    .command('list')
    .description('the newest jobs first')
    .option('--state <state>', 'queued, running, succeeded, failed or cancelled')
    .option('-n, --limit <n>', 'how many', posInt, 20)
    .option('--json', 'JSON lines')
    .addOption(configOption())
    .action(async (opts: { state?: string; limit: number; json?: boolean; config?: string }) => {
      try {
        const states = ['queued', 'running', 'succeeded', 'failed', 'cancelled'];
        if (opts.state && !states.includes(opts.state))
          throw new KapokError('KAPOK_JOBS_BAD_QUERY', `--state: expected one of ${states.join(', ')}`);
        const jobs = await withCliContext(opts, async (ctx) =>
          (await service(ctx)).list({
            limit: opts.limit,
            ...(opts.state ? { state: opts.state as 'queued' } : {}),
          }),
        );
        for (const j of jobs)
          if (opts.json) out(j);
          else
            process.stdout.write(
              `${j.id}  ${j.state.padEnd(9)}  ${j.priority.padEnd(8)}  ${j.createdAt}  ${j.name}\n`,
            );
      } catch (err) {
        fail(err);
      }
    });

  cmd
    .command('show')
    .description('a job with its DAG: each task, its state and attempts')
    .argument('<id>')
    .option('--outputs', 'with each attempt’s output (JSON)')
    .option('--json', 'print as JSON')
    .addOption(configOption())
    .action(async (id: string, opts: { outputs?: boolean; json?: boolean; config?: string }) => {
      try {
        const job = await withCliContext(opts, async (ctx) =>
          (await service(ctx)).get(id, opts.outputs === true),
        );
        if (opts.json || opts.outputs) out(job);
        else process.stdout.write(drawJob(job, false));
      } catch (err) {
        fail(err);
      }
    });

  for (const [name, what] of [
    ['cancel', 'cancel a job (or one task with --task) from any state'],
    ['retry', 'run a failed or cancelled job’s unsucceeded tasks again'],
  ] as const) {
    const c = cmd
      .command(name)
      .description(what)
      .argument('<id>')
      .option('--json', 'print the job as JSON')
      .addOption(configOption());
    if (name === 'cancel') c.option('--task <name>', 'only this task (what needs it is skipped)');
    c.action(async (id: string, opts: { task?: string; json?: boolean; config?: string }) => {
      try {
        const job = await withCliEvents(
          opts,
          async (ctx) => {
            const s = await service(ctx, (t, d) => ctx.events.publish(t, d));
            return name === 'cancel' ? s.cancel(id, opts.task) : s.retry(id);
          },
          {
            action:
              name === 'cancel' ? (opts.task ? 'jobs.task.cancel' : 'jobs.job.cancel') : 'jobs.job.retry',
            target: id.slice(0, 64),
          },
        );
        if (opts.json) out(job);
        else process.stdout.write(`${job.id} ${job.state}\n`);
      } catch (err) {
        fail(err);
      }
    });
  }

  cmd
    .command('watch')
    .description('draw the DAG’s progress live until the job ends (exit 0 when it succeeded)')
    .argument('<id>')
    .option('--interval <ms>', 'redraw every', posInt, 500)
    .addOption(configOption())
    .action(async (id: string, opts: { interval: number; config?: string }) => {
      try {
        const tty = process.stdout.isTTY === true;
        const state = await withCliContext(opts, async (ctx) => {
          const s = await service(ctx);
          let last = '';
          for (;;) {
            const job = await s.get(id);
            const frame = drawJob(job, tty);
            if (frame !== last) {
              // A terminal is redrawn in place; a pipe gets each changed frame once.
              process.stdout.write(tty ? `\x1b[H\x1b[2J${frame}` : `${frame}\n`);
              last = frame;
            }
            if (['succeeded', 'failed', 'cancelled'].includes(job.state)) return job.state;
            await new Promise((r) => setTimeout(r, opts.interval));
          }
        });
        process.exit(state === 'succeeded' ? EXIT.OK : EXIT.FAILURE);
      } catch (err) {
        fail(err);
      }
    });

  return cmd;
}
