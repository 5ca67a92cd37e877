/**
 * The text picture of a job for `kapok jobs show` and `watch`: a progress bar, then the DAG level
 * by level (a task's level is one more than the deepest task it needs), each task with its state.
 */

interface TaskLike {
  name: string;
  state: string;
  needs: string[];
  attempts: unknown[];
  reason: string | null;
}
interface JobLike {
  id: string;
  name: string;
  state: string;
  tasks: TaskLike[];
}

const MARK: Record<string, string> = {
  queued: '·',
  running: '▶',
  retrying: '↻',
  succeeded: '✓',
  failed: '✗',
  cancelled: '⊘',
  skipped: '-',
};
const COLOR: Record<string, string> = {
  running: '36',
  retrying: '33',
  succeeded: '32',
  failed: '31',
  cancelled: '35',
};

function levels(tasks: readonly TaskLike[]): TaskLike[][] {
  const byName = new Map(tasks.map((t) => [t.name, t]));
  const level = new Map<string, number>();
  const of = (t: TaskLike, guard = 0): number => {
    const known = level.get(t.name);
    if (known !== undefined) return known;
    if (guard > 64) return 0;
    const l =
      t.needs.length === 0
        ? 0
        : 1 +
          Math.max(
            ...t.needs.map((n) => {
              const d = byName.get(n);
              return d ? of(d, guard + 1) : 0;
            }),
          );
    level.set(t.name, l);
    return l;
  };
  const out: TaskLike[][] = [];
  for (const t of tasks) {
    const l = of(t);
    out[l] = [...(out[l] ?? []), t];
  }
  return out.filter(Boolean);
}

export function drawJob(job: JobLike, color: boolean): string {
  const paint = (state: string, s: string) =>
    color && COLOR[state] ? `\x1b[${COLOR[state]}m${s}\x1b[0m` : s;
  const count = (s: string) => job.tasks.filter((t) => t.state === s).length;
  const done = job.tasks.length - count('queued') - count('running') - count('retrying');
  const width = 30;
  const filled = Math.round((done / Math.max(1, job.tasks.length)) * width);
  const lines = [
    `${job.name} (${job.id})  ${paint(job.state, job.state)}`,
    `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${job.tasks.length}  ` +
      ['running', 'retrying', 'succeeded', 'failed', 'skipped', 'cancelled']
        .map((s) => `${s} ${count(s)}`)
        .join('  '),
  ];
  for (const [i, row] of levels(job.tasks).entries()) {
    const shown = row
      .slice(0, 12)
      .map((t) =>
        paint(
          t.state,
          `${MARK[t.state] ?? '?'} ${t.name}${t.attempts.length > 1 ? ` ×${t.attempts.length}` : ''}`,
        ),
      );
    lines.push(`  L${i}: ${shown.join('  ')}${row.length > 12 ? `  … ${row.length - 12} more` : ''}`);
  }
  for (const t of job.tasks)
    if (t.state === 'failed' && t.reason) lines.push(`  ${paint('failed', '✗')} ${t.name}: ${t.reason}`);
  return `${lines.join('\n')}\n`;
}
