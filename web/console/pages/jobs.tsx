import { useEffect, useRef, useState } from 'preact/hooks';
import { get, live } from '../api';
import { fmtTime, t } from '../i18n';
import { drawThrottle } from '../throttle';
import { Badge, Card, Empty, Problem } from '../ui';

interface JobSummary {
  id: string;
  name: string;
  state: string;
  priority: string;
  createdAt: string;
  openTasks: number;
}
interface Task {
  name: string;
  state: string;
  needs: string[];
  executor: string;
  attempt: number;
}
interface Job extends JobSummary {
  tasks: Task[];
}
interface Event {
  type: string;
  jobId: string;
  task?: string;
}

const TASK_STATE: Record<string, string> = {
  'task.started': 'running',
  'task.succeeded': 'succeeded',
  'task.failed': 'failed',
  'task.retrying': 'retrying',
};

/** Two calls (the newest jobs, the chosen job's DAG), then /ws/jobs moves task states live. */
export default function Jobs() {
  const [jobs, setJobs] = useState<JobSummary[]>([]);
  const [job, setJob] = useState<Job | null>(null);
  const jobRef = useRef<Job | null>(null);
  jobRef.current = job;
  const events = useRef<Event[]>([]);
  const [error, setError] = useState<unknown>(null);
  const [, setTick] = useState(0);
  const open = (id: string) => get<Job>(`/api/jobs/${encodeURIComponent(id)}`).then(setJob, setError);
  useEffect(() => {
    get<{ jobs: JobSummary[] }>('/api/jobs?limit=50').then((r) => {
      setJobs(r.jobs);
      if (r.jobs[0]) void open(r.jobs[0].id);
    }, setError);
    const th = drawThrottle(() => setTick((n) => n + 1), 10);
    const close = live('/ws/jobs', (m) => {
      const e = m as Event;
      if (!e.jobId) return;
      events.current.unshift(e);
      if (events.current.length > 50) events.current.length = 50;
      const state = TASK_STATE[e.type];
      const cur = jobRef.current;
      if (state && cur && cur.id === e.jobId && e.task)
        setJob({ ...cur, tasks: cur.tasks.map((x) => (x.name === e.task ? { ...x, state } : x)) });
      if (e.type === 'job.submitted')
        setJobs((js) => [
          {
            id: e.jobId,
            name: e.jobId,
            state: 'queued',
            priority: '',
            createdAt: new Date().toISOString(),
            openTasks: 0,
          },
          ...js,
        ]);
      if (e.type === 'job.finished' || e.type === 'job.cancelled') {
        const s = (m as { state?: string }).state ?? (e.type === 'job.cancelled' ? 'cancelled' : 'finished');
        setJobs((js) => js.map((j) => (j.id === e.jobId ? { ...j, state: s } : j)));
      }
      th.mark();
    });
    return () => {
      close();
      th.cancel();
    };
  }, []);
  return (
    <div class="grid">
      <Card title={t('jobs')}>
        <Problem error={error} />
        <table>
          <thead>
            <tr>
              <th>{t('name')}</th>
              <th>{t('state')}</th>
              <th>{t('created')}</th>
            </tr>
          </thead>
          <tbody>
            {jobs.map((j) => (
              <tr key={j.id} class={job?.id === j.id ? 'sel' : ''} onClick={() => open(j.id)}>
                <td>{j.name}</td>
                <td>
                  <Badge state={j.state} />
                </td>
                <td>{fmtTime(j.createdAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
        <Empty when={jobs.length === 0} />
      </Card>
      <Card title={`${t('tasks')}${job ? ` · ${job.name}` : ''}`}>
        {job ? <Dag tasks={job.tasks} /> : <Empty when />}
      </Card>
      <Card wide title={t('live events')}>
        <table>
          <tbody>
            {events.current.map((e, i) => (
              <tr key={`${i}-${e.type}`}>
                <td class="mono">{e.type}</td>
                <td class="mono">{e.jobId}</td>
                <td>{e.task ?? ''}</td>
              </tr>
            ))}
          </tbody>
        </table>
        <Empty when={events.current.length === 0} />
      </Card>
    </div>
  );
}

const STATE_COLOR: Record<string, string> = {
  succeeded: '#16a34a',
  running: '#2563eb',
  failed: '#dc2626',
  retrying: '#d97706',
  cancelled: '#6b7280',
};

/** Tasks in columns by depth (longest chain of needs), edges from each need; SVG text is text. */
function Dag(p: { tasks: Task[] }) {
  const depth = new Map<string, number>();
  const byName = new Map(p.tasks.map((x) => [x.name, x]));
  const d = (n: string, seen = new Set<string>()): number => {
    if (depth.has(n)) return depth.get(n) as number;
    if (seen.has(n)) return 0;
    seen.add(n);
    const v = Math.max(-1, ...(byName.get(n)?.needs ?? []).map((x) => d(x, seen))) + 1;
    depth.set(n, v);
    return v;
  };
  for (const x of p.tasks) d(x.name);
  const cols: Task[][] = [];
  for (const x of p.tasks) {
    const i = depth.get(x.name) ?? 0;
    cols[i] = [...(cols[i] ?? []), x];
  }
  const W = 150;
  const H = 44;
  const pos = new Map<string, [number, number]>();
  cols.forEach((col, i) => {
    col.forEach((x, j) => {
      pos.set(x.name, [10 + i * (W + 40), 10 + j * (H + 16)]);
    });
  });
  const width = 20 + cols.length * (W + 40);
  const height = 20 + Math.max(1, ...cols.map((c) => c.length)) * (H + 16);
  return (
    <svg class="dag" viewBox={`0 0 ${width} ${height}`} width={width} height={height} role="img">
      <title>{t('tasks')}</title>
      {p.tasks.flatMap((x) =>
        x.needs.map((n) => {
          const a = pos.get(n);
          const b = pos.get(x.name);
          if (!a || !b) return null;
          return (
            <line
              key={`${n}->${x.name}`}
              x1={a[0] + W}
              y1={a[1] + H / 2}
              x2={b[0]}
              y2={b[1] + H / 2}
              stroke="#94a3b8"
            />
          );
        }),
      )}
      {p.tasks.map((x) => {
        const [px, py] = pos.get(x.name) ?? [0, 0];
        return (
          <g key={x.name} data-task={x.name} data-state={x.state}>
            <rect
              x={px}
              y={py}
              width={W}
              height={H}
              rx={6}
              fill="#fff"
              stroke={STATE_COLOR[x.state] ?? '#94a3b8'}
              stroke-width={2}
            />
            <text x={px + 10} y={py + 18} font-size="13" fill="#0f172a">
              {x.name}
            </text>
            <text x={px + 10} y={py + 35} font-size="11" fill={STATE_COLOR[x.state] ?? '#64748b'}>
              {t(x.state)} · {x.executor}
            </text>
          </g>
        );
      })}
    </svg>
  );
}
