import { useEffect, useRef, useState } from 'preact/hooks';
import { get } from '../api';
import { fmt, fmtTime, t } from '../i18n';
import type { TelemetryCommand, TelemetryPost } from '../telemetry-worker';
import { drawThrottle } from '../throttle';
import { Card, Chart, Empty, Problem, Stat } from '../ui';

interface DeviceLatest {
  device: string;
  measurement: string;
  lastSeen: string;
  latest: Record<string, unknown>;
}
interface DeadLetter {
  id: number;
  at: string;
  topic: string;
  reason?: string;
}

const seriesKey = (device: string, measurement: string, field: string) =>
  `${device}\u0000${measurement}\u0000${field}`;
const KEEP = 600; // points kept of the chosen series (a minute at 10 Hz)

/**
 * Two calls (devices, dead letters), then /ws/telemetry. A flood is coalesced: each frame only
 * updates the latest value per series in a Map; the table and chart are drawn at most 10 times a
 * second from whatever is latest.
 */
export default function Edge() {
  // (device, measurement) → what is known of it: seeded by /devices, extended by live frames.
  const known = useRef(
    new Map<string, { device: string; measurement: string; lastSeen: number; fields: Set<string> }>(),
  );
  const [, setLoaded] = useState(false);
  const [dead, setDead] = useState<DeadLetter[]>([]);
  const [error, setError] = useState<unknown>(null);
  const [chosen, setChosen] = useState<{ device: string; measurement: string; field: string } | null>(null);
  const latest = useRef(new Map<string, { v: unknown; ts: number }>());
  const trace = useRef<{ xs: number[]; ys: number[] }>({ xs: [], ys: [] });
  const counters = useRef({ dropped: 0, rate: 0 });
  const workerRef = useRef<Worker | null>(null);
  const [, setTick] = useState(0);
  const [query, setQuery] = useState<{ xs: number[]; ys: number[] } | null>(null);
  const [q, setQ] = useState({ every: '60s', agg: 'avg', minutes: '60' });

  useEffect(() => {
    get<{ devices: DeviceLatest[] }>('/api/edge/devices?limit=500').then((r) => {
      for (const d of r.devices) {
        known.current.set(`${d.device}\u0000${d.measurement}`, {
          device: d.device,
          measurement: d.measurement,
          lastSeen: Date.parse(d.lastSeen),
          fields: new Set(Object.keys(d.latest)),
        });
        for (const [f, v] of Object.entries(d.latest))
          if (!latest.current.has(seriesKey(d.device, d.measurement, f)))
            latest.current.set(seriesKey(d.device, d.measurement, f), { v, ts: Date.parse(d.lastSeen) });
      }
      // The most recently heard device with a numeric field is charted first.
      const first = [...r.devices]
        .sort((a, b) => Date.parse(b.lastSeen) - Date.parse(a.lastSeen))
        .find((d) => Object.values(d.latest).some((v) => typeof v === 'number'));
      const field = first && Object.keys(first.latest).find((k) => typeof first.latest[k] === 'number');
      if (first && field) setChosen({ device: first.device, measurement: first.measurement, field });
      setLoaded(true);
    }, setError);
    get<{ deadLetters: DeadLetter[] }>('/api/edge/dead-letters?limit=50').then(
      (r) => setDead(r.deadLetters),
      setError,
    );
    // The socket lives in a worker (telemetry-worker.ts): the flood is parsed and coalesced there,
    // and the page gets at most ten small posts a second.
    const src = document.querySelector('meta[name="kapok-telemetry-worker"]')?.getAttribute('content');
    if (!src) return;
    const worker = new Worker(src, { type: 'module' });
    workerRef.current = worker;
    // A post only folds its data into refs (well under a millisecond); the page is drawn in a timer
    // task of its own, at most ten times a second, however many posts arrived meanwhile. The whole
    // page's render used to run inside each post's task (Preact's render queue flushes in that
    // task's microtasks), and posts that queued up behind a busy frame each drew it again. Not in an
    // animation frame: there the render would share one task with the frame's layout and paint.
    const view = drawThrottle(
      () => {
        const tr = trace.current;
        if (tr.xs.length > KEEP) {
          tr.xs.splice(0, tr.xs.length - KEEP);
          tr.ys.splice(0, tr.ys.length - KEEP);
        }
        // A new array per draw: the chart redraws once per draw, not once per post.
        trace.current = { xs: tr.xs.slice(), ys: tr.ys.slice() };
        setTick((n) => n + 1);
      },
      10,
      false,
    );
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    worker.postMessage({
      type: 'open',
      url: `${proto}//${location.host}/ws/telemetry?topic=%23`,
    } satisfies TelemetryCommand);
    worker.onmessage = (ev: MessageEvent<TelemetryPost>) => {
      const m = ev.data;
      const c = counters.current;
      c.rate = m.rate;
      c.dropped = m.dropped;
      for (const [device, measurement, f, v, ts] of m.latest) {
        const k = `${device}\u0000${measurement}`;
        let row = known.current.get(k);
        if (!row && known.current.size < 500) {
          row = { device, measurement, lastSeen: ts, fields: new Set() };
          known.current.set(k, row);
        }
        if (row) {
          row.lastSeen = Math.max(row.lastSeen, ts);
          row.fields.add(f);
        }
        latest.current.set(seriesKey(device, measurement, f), { v, ts });
      }
      const tr = trace.current;
      for (const [x, y] of m.trace) {
        tr.xs.push(x);
        tr.ys.push(y);
      }
      // Bounded between draws too (a post holds at most 2,000 points).
      if (tr.xs.length > 4 * KEEP) {
        tr.xs.splice(0, tr.xs.length - KEEP);
        tr.ys.splice(0, tr.ys.length - KEEP);
      }
      view.mark();
    };
    return () => {
      view.cancel();
      worker.postMessage({ type: 'close' } satisfies TelemetryCommand);
      workerRef.current = null;
    };
  }, []);

  useEffect(() => {
    trace.current = { xs: [], ys: [] };
    setQuery(null);
    if (chosen) workerRef.current?.postMessage({ type: 'choose', ...chosen } satisfies TelemetryCommand);
  }, [chosen?.device, chosen?.measurement, chosen?.field]);

  const runQuery = async (e: Event) => {
    e.preventDefault();
    if (!chosen) return;
    const to = Date.now();
    const from = to - Number(q.minutes) * 60_000;
    const p = new URLSearchParams({
      measurement: chosen.measurement,
      field: chosen.field,
      device: chosen.device,
      from: String(from),
      to: String(to),
      every: q.every,
      agg: q.agg,
    });
    try {
      const r = await get<{ points: Array<{ ts: number; value: number | null }> }>(`/api/edge/query?${p}`);
      setQuery({
        xs: r.points.map((x) => x.ts / 1000),
        ys: r.points.map((x) => (typeof x.value === 'number' ? x.value : Number.NaN)),
      });
    } catch (err) {
      setError(err);
    }
  };

  const c = counters.current;
  const devices = [...known.current.values()].sort((a, b) =>
    a.device < b.device ? -1 : a.device > b.device ? 1 : a.measurement < b.measurement ? -1 : 1,
  );
  const rows = devices.map((d) => {
    const fields = [...d.fields].map(
      (f) => [f, latest.current.get(seriesKey(d.device, d.measurement, f))?.v] as const,
    );
    return { d, fields };
  });
  return (
    <div class="grid">
      <div class="stats wide">
        <Stat label={t('telemetry devices')} value={String(new Set(devices.map((d) => d.device)).size)} />
        <Stat label={t('messages/s')} value={fmt(c.rate, 0)} sub={t('live')} />
        <Stat label={t('dropped frames')} value={fmt(c.dropped)} />
        <Stat label={t('dead letters')} value={String(dead.length)} />
      </div>
      <Card
        wide
        title={`${t('live telemetry')} · ${chosen ? `${chosen.device} / ${chosen.measurement} / ${chosen.field}` : t('no device chosen')}`}
      >
        <Problem error={error} />
        <Chart
          windowS={60}
          labels={[chosen?.field ?? '']}
          data={[trace.current.xs, trace.current.ys]}
          height={200}
        />
      </Card>
      <Card wide title={t('devices')}>
        <table class="devices">
          <thead>
            <tr>
              <th>{t('device')}</th>
              <th>measurement</th>
              <th>{t('field')}</th>
              <th>{t('last seen')}</th>
            </tr>
          </thead>
          <tbody>
            {rows.map(({ d, fields }) => (
              <tr key={`${d.device}\u0000${d.measurement}`}>
                <td class="device-name">{d.device}</td>
                <td>{d.measurement}</td>
                <td>
                  {fields.map(([f, v]) => (
                    <button
                      type="button"
                      key={f}
                      class={
                        chosen?.device === d.device &&
                        chosen.measurement === d.measurement &&
                        chosen.field === f
                          ? 'chip on'
                          : 'chip'
                      }
                      onClick={() => setChosen({ device: d.device, measurement: d.measurement, field: f })}
                    >
                      {f}={typeof v === 'number' ? fmt(v, 2) : String(v)}
                    </button>
                  ))}
                </td>
                <td>{fmtTime(d.lastSeen)}</td>
              </tr>
            ))}
          </tbody>
        </table>
        <Empty when={devices.length === 0} />
      </Card>
      <Card title={t('query explorer')}>
        <form class="inline" onSubmit={runQuery}>
          <select value={q.minutes} onChange={(e) => setQ({ ...q, minutes: e.currentTarget.value })}>
            <option value="15">15 min</option>
            <option value="60">1 h</option>
            <option value="1440">24 h</option>
          </select>
          <select value={q.every} onChange={(e) => setQ({ ...q, every: e.currentTarget.value })}>
            <option value="10s">10 s</option>
            <option value="60s">1 min</option>
            <option value="600s">10 min</option>
          </select>
          <select value={q.agg} onChange={(e) => setQ({ ...q, agg: e.currentTarget.value })}>
            {['avg', 'min', 'max', 'last', 'count'].map((a) => (
              <option key={a} value={a}>
                {a}
              </option>
            ))}
          </select>
          <button type="submit" disabled={!chosen}>
            {t('run')}
          </button>
        </form>
        {query ? <Chart labels={[chosen?.field ?? '']} data={[query.xs, query.ys]} height={160} /> : null}
      </Card>
      <Card title={t('dead letters')}>
        <table>
          <thead>
            <tr>
              <th>{t('time')}</th>
              <th>topic</th>
              <th>{t('reason')}</th>
            </tr>
          </thead>
          <tbody>
            {dead.map((x) => (
              <tr key={x.id}>
                <td>{fmtTime(x.at)}</td>
                <td class="mono">{x.topic}</td>
                <td class="reason">{x.reason ?? ''}</td>
              </tr>
            ))}
          </tbody>
        </table>
        <Empty when={dead.length === 0} />
      </Card>
    </div>
  );
}
