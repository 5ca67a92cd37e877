import { useEffect, useRef, useState } from 'preact/hooks';
import { get, live } from '../api';
import { fmt, t } from '../i18n';
import { drawThrottle } from '../throttle';
import { Badge, Card, Chart, Problem, Stat } from '../ui';

interface Component {
  name: string;
  kind: string;
  state: string;
  detail?: unknown;
}
interface Readiness {
  status: string;
  components: Component[];
}
interface Sample {
  t: number;
  rates: Record<string, [number, number, number?]>;
}

/** One call (/readyz), then /ws/console: the last hour of rates on connect, a sample every pulse. */
export default function Overview() {
  const [ready, setReady] = useState<Readiness | null>(null);
  const [error, setError] = useState<unknown>(null);
  const samples = useRef<Sample[]>([]);
  const [, setTick] = useState(0);
  useEffect(() => {
    get<Readiness>('/readyz').then(setReady, (e) => {
      // 503 still carries the readiness body; get() threw it away, so show the error.
      setError(e);
    });
    const th = drawThrottle(() => setTick((n) => n + 1), 2);
    const close = live('/ws/console', (m) => {
      const msg = m as { type: string; samples?: Sample[]; sample?: Sample; readiness?: Readiness };
      if (msg.type === 'history' && msg.samples) samples.current = msg.samples.slice();
      if (msg.type === 'pulse' && msg.sample) {
        samples.current.push(msg.sample);
        if (samples.current.length > 2000) samples.current.splice(0, samples.current.length - 2000);
      }
      if (msg.readiness) setReady(msg.readiness);
      th.mark();
    });
    return () => {
      close();
      th.cancel();
    };
  }, []);
  const s = samples.current;
  const areas = [...new Set(s.flatMap((x) => Object.keys(x.rates)))].sort();
  const xs = s.map((x) => x.t / 1000);
  const last = s.at(-1);
  const total = (i: 0 | 1) => Object.values(last?.rates ?? {}).reduce((a, r) => a + (r[i] ?? 0), 0);
  return (
    <div class="grid">
      <div class="stats wide">
        <Stat label={t('state')} value={ready ? t(ready.status) : '…'} />
        <Stat label={t('requests/s')} value={fmt(total(0), 1)} />
        <Stat label={t('errors/s')} value={fmt(total(1), 1)} />
        <Stat
          label={t('capabilities')}
          value={String(ready?.components.filter((c) => c.kind === 'capability').length ?? '…')}
        />
      </div>
      <Card title={t('capabilities')}>
        <Problem error={error} />
        <table>
          <thead>
            <tr>
              <th>{t('component')}</th>
              <th>{t('state')}</th>
            </tr>
          </thead>
          <tbody>
            {ready?.components.map((c) => (
              <tr key={c.name}>
                <td>{c.name}</td>
                <td>
                  <Badge state={c.state} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </Card>
      <Card title={`${t('rate by area')} · ${t('last hour')}`}>
        <table class="sparks">
          <thead>
            <tr>
              <th>{t('area')}</th>
              <th>{t('requests/s')}</th>
              <th>{t('errors/s')}</th>
              <th>{t('last hour')}</th>
            </tr>
          </thead>
          <tbody>
            {areas.map((a) => (
              <tr key={a}>
                <td>{a}</td>
                <td class="num">{fmt(last?.rates[a]?.[0] ?? 0, 1)}</td>
                <td class="num">{fmt(last?.rates[a]?.[1] ?? 0, 1)}</td>
                <td class="spark">
                  <Chart spark height={32} labels={[a]} data={[xs, s.map((x) => x.rates[a]?.[0] ?? 0)]} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </Card>
      <Card title={`${t('requests/s')} · ${t('last hour')}`} wide>
        <Chart labels={areas} data={[xs, ...areas.map((a) => s.map((x) => x.rates[a]?.[0] ?? 0))]} />
      </Card>
    </div>
  );
}
