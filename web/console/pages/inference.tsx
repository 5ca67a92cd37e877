import { useEffect, useRef, useState } from 'preact/hooks';
import { api, live } from '../api';
import { fmt, t } from '../i18n';
import { drawThrottle } from '../throttle';
import { Badge, Card, Chart, DataTable, Empty, Problem, Stat } from '../ui';

interface ModelEntry {
  name: string;
  version?: string;
  state: string;
  reason?: string;
}

/**
 * One call (the OIP repository index), then /v2's rate and mean latency and each model's queue depth
 * (kapok_inference_queue_depth) from the console's pulse.
 */
export default function Inference() {
  const [models, setModels] = useState<ModelEntry[]>([]);
  const [error, setError] = useState<unknown>(null);
  const pts = useRef<Array<[number, number, number, number]>>([]);
  const queues = useRef<Array<Record<string, number>>>([]);
  const [, setTick] = useState(0);
  const refresh = () => api<ModelEntry[]>('POST', '/v2/repository/index', {}).then(setModels, setError);
  useEffect(() => {
    void refresh();
    const th = drawThrottle(() => setTick((n) => n + 1), 2);
    const close = live('/ws/console', (m) => {
      type Sample = { t: number; rates: Record<string, number[]>; queues?: Record<string, number> };
      const msg = m as { type: string; sample?: Sample; samples?: Sample[] };
      // On connect: the last samples of the hour the server keeps, so the chart starts full.
      const samples =
        msg.type === 'history' ? (msg.samples ?? []).slice(-300) : msg.sample ? [msg.sample] : [];
      for (const sample of samples) {
        const r = sample.rates.inference ?? [0, 0, 0];
        pts.current.push([sample.t / 1000, r[0] ?? 0, r[1] ?? 0, r[2] ?? 0]);
        queues.current.push(sample.queues ?? {});
      }
      if (samples.length === 0) return;
      if (pts.current.length > 300) {
        pts.current.splice(0, pts.current.length - 300);
        queues.current.splice(0, queues.current.length - 300);
      }
      th.mark();
    });
    return () => {
      close();
      th.cancel();
    };
  }, []);
  const act = async (name: string, what: 'load' | 'unload') => {
    try {
      await api('POST', `/v2/repository/models/${encodeURIComponent(name)}/${what}`, {});
      await refresh();
    } catch (err) {
      setError(err);
    }
  };
  const p = pts.current;
  const lastP = p.at(-1);
  const qs = queues.current;
  const queued = [...new Set(qs.flatMap((q) => Object.keys(q)))].sort();
  return (
    <div class="grid">
      <div class="stats wide">
        <Stat label={t('models')} value={String(models.length)} />
        <Stat label={t('ready')} value={String(models.filter((m) => m.state === 'READY').length)} />
        <Stat label={t('requests/s')} value={fmt(lastP?.[1] ?? 0, 1)} sub={t('live')} />
        <Stat label={t('mean latency (ms)')} value={fmt(lastP?.[3] ?? 0, 1)} sub={t('live')} />
      </div>
      <Card wide title={t('models')}>
        <Problem error={error} />
        <DataTable
          rows={models}
          rowKey={(m) => `${m.name}/${m.version ?? ''}`}
          columns={[
            { head: t('name'), cell: (m) => m.name },
            { head: t('version'), cell: (m) => m.version ?? '' },
            {
              head: t('state'),
              cell: (m) => <Badge state={m.state === 'READY' ? 'ready' : m.state.toLowerCase()} />,
            },
            { head: t('reason'), cell: (m) => m.reason ?? '', class: 'reason' },
            {
              head: null,
              class: 'right',
              cell: (m) => (
                <>
                  <button type="button" onClick={() => act(m.name, 'load')}>
                    {t('load')}
                  </button>{' '}
                  <button type="button" class="danger" onClick={() => act(m.name, 'unload')}>
                    {t('unload')}
                  </button>
                </>
              ),
            },
          ]}
        />
      </Card>
      <Card title={`${t('requests/s')} · ${t('live')}`}>
        <Chart
          windowS={300}
          labels={[t('requests/s'), t('errors/s')]}
          data={[p.map((x) => x[0]), p.map((x) => x[1]), p.map((x) => x[2])]}
          height={160}
        />
      </Card>
      <Card title={`${t('mean latency (ms)')} · ${t('live')}`}>
        <Chart
          windowS={300}
          labels={[t('mean latency (ms)')]}
          data={[p.map((x) => x[0]), p.map((x) => x[3])]}
          height={160}
        />
      </Card>
      <Card wide title={`${t('queue depth')} · ${t('live')}`}>
        {queued.length ? (
          <Chart
            windowS={300}
            labels={queued}
            data={[p.map((x) => x[0]), ...queued.map((m) => qs.map((q) => q[m] ?? 0))]}
            height={160}
          />
        ) : (
          <Empty when />
        )}
      </Card>
    </div>
  );
}
