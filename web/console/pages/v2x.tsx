import { useEffect, useRef, useState } from 'preact/hooks';
import { api, get, live } from '../api';
import { fmt, fmtTime, t } from '../i18n';
import { drawThrottle } from '../throttle';
import { Card, Empty, Problem, Stat } from '../ui';

interface Zone {
  id: string;
  geometry: { type: 'Polygon'; coordinates: number[][][] };
}
interface Vehicle {
  id: string;
  lat: number;
  lon: number;
  speedMs: number;
  headingDeg: number;
}
interface Warning {
  id: string;
  type: string;
  severity: string;
  vehicles: string[];
  ttcS: number | null;
  at?: number;
}

const M_PER_DEG = 111_320;

/**
 * Two calls (zones, recent warnings), then /ws/v2x: positions, warnings and zone events. The map is
 * a canvas over a local metre grid around the zones and vehicles (no tiles), drawn at most 10 times
 * a second whatever the push rate.
 */
export default function V2x() {
  const canvas = useRef<HTMLCanvasElement>(null);
  const [zones, setZones] = useState<Zone[]>([]);
  const zonesRef = useRef<Zone[]>([]);
  zonesRef.current = zones;
  const vehicles = useRef<Vehicle[]>([]);
  const warnings = useRef<Warning[]>([]);
  const warned = useRef(new Map<string, number>());
  const view = useRef<{ lat0: number; lon0: number; span: number } | null>(null);
  const stats = useRef({ frames: 0, draws: 0, lastAt: 0 });
  const [error, setError] = useState<unknown>(null);
  const [, setTick] = useState(0);
  const [form, setForm] = useState({ id: '', geojson: '' });

  const fit = () => {
    const pts: Array<[number, number]> = [];
    for (const z of zonesRef.current)
      for (const ring of z.geometry.coordinates)
        for (const [lon, lat] of ring) pts.push([lat as number, lon as number]);
    for (const v of vehicles.current) pts.push([v.lat, v.lon]);
    if (pts.length === 0) return;
    let [a, b, c, d] = [Infinity, -Infinity, Infinity, -Infinity];
    for (const [lat, lon] of pts) {
      a = Math.min(a, lat);
      b = Math.max(b, lat);
      c = Math.min(c, lon);
      d = Math.max(d, lon);
    }
    const lat0 = (a + b) / 2;
    const span =
      Math.max(200, (b - a) * M_PER_DEG, (d - c) * M_PER_DEG * Math.cos((lat0 * Math.PI) / 180)) * 1.15;
    view.current = { lat0, lon0: (c + d) / 2, span };
  };

  const draw = () => {
    const cv = canvas.current;
    if (!cv) return;
    stats.current.draws++;
    const dpr = window.devicePixelRatio || 1;
    const w = cv.clientWidth;
    const h = cv.clientHeight;
    if (cv.width !== Math.round(w * dpr)) cv.width = Math.round(w * dpr);
    if (cv.height !== Math.round(h * dpr)) cv.height = Math.round(h * dpr);
    const g = cv.getContext('2d');
    if (!g) return;
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.fillStyle = '#0f172a';
    g.fillRect(0, 0, w, h);
    if (!view.current) fit();
    const vw = view.current;
    if (!vw) return;
    const scale = Math.min(w, h) / vw.span; // px per metre
    const cos = Math.cos((vw.lat0 * Math.PI) / 180);
    const px = (lon: number) => w / 2 + (lon - vw.lon0) * M_PER_DEG * cos * scale;
    const py = (lat: number) => h / 2 - (lat - vw.lat0) * M_PER_DEG * scale;
    // Local grid: 10, 50, 100, 500 m... whichever gives ~8 lines across.
    const steps = [10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];
    const step = steps.find((s) => vw.span / s <= 10) ?? 10000;
    g.strokeStyle = '#1e293b';
    g.lineWidth = 1;
    g.beginPath();
    for (let m = -Math.ceil(w / scale / 2 / step) * step; m * scale <= w / 2; m += step) {
      g.moveTo(w / 2 + m * scale, 0);
      g.lineTo(w / 2 + m * scale, h);
    }
    for (let m = -Math.ceil(h / scale / 2 / step) * step; m * scale <= h / 2; m += step) {
      g.moveTo(0, h / 2 + m * scale);
      g.lineTo(w, h / 2 + m * scale);
    }
    g.stroke();
    g.fillStyle = '#64748b';
    g.font = '11px system-ui, sans-serif';
    g.fillText(`${step} m`, 8, h - 8);
    // Zones.
    for (const z of zonesRef.current) {
      g.beginPath();
      for (const ring of z.geometry.coordinates)
        ring.forEach(([lon, lat], i) => {
          if (i) g.lineTo(px(lon as number), py(lat as number));
          else g.moveTo(px(lon as number), py(lat as number));
        });
      g.closePath();
      g.fillStyle = 'rgba(56,189,248,0.12)';
      g.fill();
      g.strokeStyle = '#38bdf8';
      g.stroke();
      const first = z.geometry.coordinates[0]?.[0];
      if (first) {
        g.fillStyle = '#7dd3fc';
        g.fillText(z.id, px(first[0] as number) + 4, py(first[1] as number) - 4);
      }
    }
    // Vehicles: one path per colour (two fills for thousands of vehicles).
    const now = Date.now();
    const ok = new Path2D();
    const hot = new Path2D();
    for (const v of vehicles.current) {
      const x = px(v.lon);
      const y = py(v.lat);
      const a = ((v.headingDeg ?? 0) * Math.PI) / 180;
      const sx = Math.sin(a);
      const cy = -Math.cos(a);
      const p = (warned.current.get(v.id) ?? 0) > now ? hot : ok;
      p.moveTo(x + sx * 6, y + cy * 6);
      p.lineTo(x - sx * 3 + cy * 3, y - cy * 3 - sx * 3);
      p.lineTo(x - sx * 3 - cy * 3, y - cy * 3 + sx * 3);
      p.closePath();
    }
    g.fillStyle = '#a3e635';
    g.fill(ok);
    g.fillStyle = '#f43f5e';
    g.fill(hot);
  };

  useEffect(() => {
    get<{ zones: Zone[] }>('/api/v2x/zones').then((r) => setZones(r.zones), setError);
    get<{ warnings: Array<Warning | { at: number; warning: Warning }> }>('/api/v2x/warnings?limit=20').then(
      (r) => {
        // Kept warnings come as {at, warning}; pushed ones as the warning itself.
        warnings.current = r.warnings.map((x) => ('warning' in x ? { ...x.warning, at: x.at } : x)).reverse();
      },
      setError,
    );
    const th = drawThrottle(() => {
      draw();
      setTick((n) => n + 1);
    }, 10);
    const close = live('/ws/v2x', (m) => {
      const msg = m as { type: string; vehicles?: Vehicle[]; warning?: Warning; at?: number };
      if (msg.type === 'positions' && msg.vehicles) {
        vehicles.current = msg.vehicles;
        stats.current.frames++;
        stats.current.lastAt = msg.at ?? Date.now();
        if (!view.current) fit();
      } else if (msg.type === 'warning' && msg.warning) {
        const w = { ...msg.warning, at: Date.now() };
        warnings.current.unshift(w);
        if (warnings.current.length > 20) warnings.current.length = 20;
        for (const id of w.vehicles) warned.current.set(id, Date.now() + 3000);
      }
      th.mark();
    });
    const onResize = () => th.mark();
    addEventListener('resize', onResize);
    return () => {
      close();
      th.cancel();
      removeEventListener('resize', onResize);
    };
  }, []);

  useEffect(() => {
    view.current = null;
    draw();
  }, [zones]);

  const save = async (e: Event) => {
    e.preventDefault();
    try {
      const geometry = JSON.parse(form.geojson) as unknown;
      await api('PUT', `/api/v2x/zones/${encodeURIComponent(form.id)}`, geometry);
      const z = await get<{ zones: Zone[] }>('/api/v2x/zones');
      setZones(z.zones);
      setError(null);
    } catch (err) {
      setError(err);
    }
  };
  const remove = async (id: string) => {
    try {
      await api('DELETE', `/api/v2x/zones/${encodeURIComponent(id)}`);
      setZones((zs) => zs.filter((z) => z.id !== id));
    } catch (err) {
      setError(err);
    }
  };
  const s = stats.current;
  return (
    <div class="grid">
      <div class="stats wide">
        <Stat label={t('vehicles')} value={fmt(vehicles.current.length)} sub={t('live')} />
        <Stat label={t('warnings')} value={fmt(warnings.current.length)} />
        <Stat label={t('zones')} value={fmt(zones.length)} />
        <Stat label="frames" value={fmt(s.frames)} sub={s.lastAt ? fmtTime(s.lastAt) : ''} />
      </div>
      <Card wide title={t('v2x')}>
        <Problem error={error} />
        <canvas ref={canvas} class="map" data-vehicles={vehicles.current.length} data-draws={s.draws} />
        <div class="right">
          <button
            type="button"
            onClick={() => {
              fit();
              draw();
            }}
          >
            ⤢
          </button>
        </div>
      </Card>
      <Card title={t('warnings')}>
        <table>
          <thead>
            <tr>
              <th>type</th>
              <th>{t('vehicles')}</th>
              <th>TTC (s)</th>
            </tr>
          </thead>
          <tbody>
            {warnings.current.map((w) => (
              <tr key={w.id}>
                <td>
                  <span
                    class={`badge ${w.severity === 'high' || w.severity === 'critical' ? 'bad' : 'warn'}`}
                  >
                    {w.type}
                  </span>
                </td>
                <td class="mono">{w.vehicles.join(', ')}</td>
                <td class="num">{w.ttcS === null ? '' : fmt(w.ttcS, 1)}</td>
              </tr>
            ))}
          </tbody>
        </table>
        <Empty when={warnings.current.length === 0} />
      </Card>
      <Card title={t('zones')}>
        <table>
          <tbody>
            {zones.map((z) => (
              <tr key={z.id}>
                <td>{z.id}</td>
                <td class="num">{z.geometry.coordinates[0]?.length ?? 0} pts</td>
                <td class="right">
                  <button
                    type="button"
                    onClick={() => setForm({ id: z.id, geojson: JSON.stringify(z.geometry) })}
                  >
                    ✎
                  </button>{' '}
                  <button type="button" class="danger" onClick={() => remove(z.id)}>
                    {t('delete')}
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        <form class="stack" onSubmit={save}>
          <input
            placeholder={t('zone id')}
            value={form.id}
            onInput={(e) => setForm({ ...form, id: e.currentTarget.value })}
          />
          <textarea
            rows={4}
            placeholder={`${t('GeoJSON polygon')}: {"type":"Polygon","coordinates":[[[lon,lat],…]]}`}
            value={form.geojson}
            onInput={(e) => setForm({ ...form, geojson: e.currentTarget.value })}
          />
          <button type="submit" disabled={!form.id || !form.geojson}>
            {t('save')}
          </button>
        </form>
      </Card>
    </div>
  );
}
