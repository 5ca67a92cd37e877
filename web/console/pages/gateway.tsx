import { useEffect, useRef, useState } from 'preact/hooks';
import { api, get, live } from '../api';
import { fmt, fmtTime, t } from '../i18n';
import { drawThrottle } from '../throttle';
import { Badge, Card, Chart, DataTable, Empty, Problem, Stat } from '../ui';

interface Series {
  by: string;
  stepMs: number;
  times: number[];
  series: Array<{ group: string; requests: number[]; errors: number[]; tokens: number[] }>;
  totals: { requests: number; errors: number; tokens: number; groups: number };
}
interface Key {
  id: string;
  name: string;
  rpm: number | null;
  tpm: number | null;
  createdAt?: string;
  created_at?: string;
  revokedAt?: string | null;
}
interface Readiness {
  components: Array<{ name: string; detail?: { circuits?: Record<string, string> } }>;
}

/** Three calls: usage aggregates (server-side, whole range), keys, readiness (circuit states). */
export default function Gateway() {
  const [by, setBy] = useState<'model' | 'key' | 'status'>('model');
  const [series, setSeries] = useState<Series | null>(null);
  const [keys, setKeys] = useState<Key[]>([]);
  const [circuits, setCircuits] = useState<Record<string, string>>({});
  const [error, setError] = useState<unknown>(null);
  const [created, setCreated] = useState<string | null>(null);
  const [name, setName] = useState('');
  const rate = useRef<Array<[number, number, number]>>([]);
  const [, setTick] = useState(0);

  useEffect(() => {
    get<Series>(`/api/gateway/usage/series?by=${by}&buckets=48`).then(setSeries, setError);
  }, [by]);
  useEffect(() => {
    get<{ keys: Key[] }>('/api/gateway/keys').then((r) => setKeys(r.keys), setError);
    fetch('/readyz', { credentials: 'same-origin' })
      .then((r) => r.json() as Promise<Readiness>)
      .then((r) => setCircuits(r.components.find((c) => c.name === 'gateway')?.detail?.circuits ?? {}))
      .catch(setError);
    // Live request rate of /v1 from the console's pulse.
    const th = drawThrottle(() => setTick((n) => n + 1), 2);
    const close = live('/ws/console', (m) => {
      type Sample = { t: number; rates: Record<string, number[]> };
      const msg = m as { type: string; sample?: Sample; samples?: Sample[] };
      // On connect: the last samples of the hour the server keeps, so the chart starts full.
      const samples =
        msg.type === 'history' ? (msg.samples ?? []).slice(-300) : msg.sample ? [msg.sample] : [];
      for (const sample of samples) {
        const r = sample.rates.gateway ?? [0, 0, 0];
        rate.current.push([sample.t / 1000, r[0] ?? 0, r[1] ?? 0]);
      }
      if (samples.length === 0) return;
      if (rate.current.length > 300) rate.current.splice(0, rate.current.length - 300);
      th.mark();
    });
    return () => {
      close();
      th.cancel();
    };
  }, []);

  const create = async (e: Event) => {
    e.preventDefault();
    try {
      const k = await api<Key & { key: string }>('POST', '/api/gateway/keys', { name });
      setCreated(k.key);
      setKeys((ks) => [k, ...ks]);
      setName('');
    } catch (err) {
      setError(err);
    }
  };
  const revoke = async (id: string) => {
    try {
      await api('DELETE', `/api/gateway/keys/${encodeURIComponent(id)}`);
      setKeys((ks) => ks.filter((k) => k.id !== id));
    } catch (err) {
      setError(err);
    }
  };
  const xs = series?.times.map((x) => x / 1000) ?? [];
  const r = rate.current;
  return (
    <div class="grid">
      <div class="stats wide">
        <Stat label={t('requests')} value={fmt(series?.totals.requests ?? 0)} sub="24 h" />
        <Stat label={t('errors')} value={fmt(series?.totals.errors ?? 0)} sub="24 h" />
        <Stat label={t('tokens')} value={fmt(series?.totals.tokens ?? 0)} sub="24 h" />
        <Stat label={t('requests/s')} value={fmt(r.at(-1)?.[1] ?? 0, 1)} sub={t('live')} />
      </div>
      <Card
        wide
        title={t('usage over time')}
        actions={
          <div class="seg">
            {(['model', 'key', 'status'] as const).map((b) => (
              <button type="button" key={b} class={b === by ? 'on' : ''} onClick={() => setBy(b)}>
                {t(`by ${b}`)}
              </button>
            ))}
          </div>
        }
      >
        <Problem error={error} />
        {series ? (
          <Chart
            bars
            labels={series.series.map((s) => s.group)}
            data={[xs, ...series.series.map((s) => s.requests)]}
            height={220}
          />
        ) : null}
        <Empty when={!!series && series.series.length === 0} />
      </Card>
      <Card title={t('keys')}>
        <form class="inline" onSubmit={create}>
          <input
            placeholder={t('new key name')}
            value={name}
            onInput={(e) => setName(e.currentTarget.value)}
          />
          <button type="submit" disabled={!name}>
            {t('create')}
          </button>
        </form>
        {created ? (
          <p class="secret">
            {t('key created (shown once)')}: <code>{created}</code>
          </p>
        ) : null}
        <DataTable
          rows={keys}
          rowKey={(k) => k.id}
          columns={[
            { head: t('name'), cell: (k) => k.name },
            { head: 'ID', cell: (k) => k.id, class: 'mono' },
            {
              head: t('created'),
              cell: (k) =>
                k.createdAt || k.created_at ? fmtTime((k.createdAt ?? k.created_at) as string) : '',
            },
            {
              head: null,
              cell: (k) => (
                <button type="button" class="danger" onClick={() => revoke(k.id)}>
                  {t('revoke')}
                </button>
              ),
            },
          ]}
        />
      </Card>
      <Card title={t('circuits')}>
        <DataTable
          rows={Object.entries(circuits)}
          rowKey={([target]) => target}
          columns={[
            { head: t('target'), cell: ([target]) => target },
            { head: t('state'), cell: ([, state]) => <Badge state={state} /> },
          ]}
        />
      </Card>
      <Card wide title={`${t('requests/s')} · ${t('live')}`}>
        <Chart
          windowS={300}
          labels={[t('requests/s'), t('errors/s')]}
          data={[r.map((x) => x[0]), r.map((x) => x[1]), r.map((x) => x[2])]}
          height={140}
        />
      </Card>
    </div>
  );
}
