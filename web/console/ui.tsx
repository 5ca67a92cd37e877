import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import { ApiError } from './api';
import { t } from './i18n';

/** Every string below is rendered by Preact as text: data never becomes markup. */

export function Card(p: {
  title: string;
  children: ComponentChildren;
  actions?: ComponentChildren;
  wide?: boolean;
}) {
  return (
    <section class={p.wide ? 'card wide' : 'card'}>
      <header>
        <h2>{p.title}</h2>
        {p.actions ? <div class="actions">{p.actions}</div> : null}
      </header>
      <div class="body">{p.children}</div>
    </section>
  );
}

export function Badge(p: { state: string }) {
  const cls =
    p.state === 'ready' ||
    p.state === 'active' ||
    p.state === 'ok' ||
    p.state === 'closed' ||
    p.state === 'succeeded'
      ? 'good'
      : p.state === 'half_open' || p.state === 'running' || p.state === 'queued' || p.state === 'retrying'
        ? 'warn'
        : 'bad';
  return <span class={`badge ${cls}`}>{t(p.state)}</span>;
}

export function Stat(p: { label: string; value: string; sub?: string }) {
  return (
    <div class="stat">
      <div class="label">{p.label}</div>
      <div class="value">{p.value}</div>
      {p.sub ? <div class="sub">{p.sub}</div> : null}
    </div>
  );
}

export function Problem(p: { error: unknown }) {
  if (!p.error) return null;
  const e = p.error;
  if (e instanceof ApiError && e.status === 404) return <p class="muted">{t('not enabled here')}</p>;
  const text = e instanceof ApiError ? `${e.code}: ${e.message}` : String((e as Error).message ?? e);
  return <p class="problem">{text}</p>;
}

export function Empty(p: { when: boolean }) {
  return p.when ? <p class="muted">{t('nothing yet')}</p> : null;
}

const PALETTE = [
  '#2563eb',
  '#dc2626',
  '#059669',
  '#d97706',
  '#7c3aed',
  '#0891b2',
  '#db2777',
  '#65a30d',
  '#475569',
];
export const color = (i: number) => PALETTE[i % PALETTE.length] as string;

/**
 * A uPlot chart. `data` is [x seconds, ...series]; it is drawn again when `data` changes (callers
 * throttle that to ≤ 10 Hz). Created once per series layout.
 */
export function Chart(p: {
  data: uPlot.AlignedData;
  labels: string[];
  height?: number;
  bars?: boolean;
  spark?: boolean;
  /** Live charts: the x axis shows the last this many seconds up to the newest point. */
  windowS?: number;
}) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const layout = p.labels.join('\u0000');
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const width = Math.max(200, el.clientWidth || 400);
    const opts: uPlot.Options = {
      width,
      height: p.height ?? 180,
      legend: { show: !p.spark },
      cursor: { show: !p.spark },
      axes: p.spark ? [{ show: false }, { show: false }] : [{}, { size: 50 }],
      scales: {
        x: {
          time: true,
          ...(p.windowS
            ? {
                range: (_u: uPlot, _min: number, max: number): uPlot.Range.MinMax => [
                  max - (p.windowS as number),
                  max,
                ],
              }
            : {}),
        },
      },
      series: [
        {},
        ...p.labels.map((label, i) => ({
          label,
          stroke: color(i),
          width: 1.5,
          points: { show: false },
          fill: p.spark ? `${color(i)}22` : undefined,
          ...(p.bars ? { paths: uPlot.paths.bars?.({ size: [0.8, 20] }), fill: `${color(i)}aa` } : {}),
        })),
      ],
    };
    const u = new uPlot(opts, p.data, el);
    plot.current = u;
    const ro = new ResizeObserver(() =>
      u.setSize({ width: Math.max(200, el.clientWidth), height: p.height ?? 180 }),
    );
    ro.observe(el);
    return () => {
      ro.disconnect();
      u.destroy();
      plot.current = null;
    };
  }, [layout]);
  useEffect(() => {
    plot.current?.setData(p.data);
  }, [p.data]);
  // One point makes no line and uPlot ranges its time axis over years: wait for a second one.
  const few = (p.data[0]?.length ?? 0) < 2;
  return (
    <div class={few ? 'chart few' : 'chart'}>
      <div ref={box} />
      {few && !p.spark ? <p class="muted waiting">{t('waiting for data')}</p> : null}
    </div>
  );
}

/** A column of a DataTable: its header, and what a row shows in it (text: Preact escapes it). */
export interface Column<T> {
  head: ComponentChildren;
  cell: (row: T) => ComponentChildren;
  class?: string;
}

/**
 * The one table of the console's pages: header, rows, "nothing yet" when empty, and a "more" button
 * when a keyset pager says there is another page.
 */
export function DataTable<T>(p: {
  columns: ReadonlyArray<Column<T>>;
  rows: readonly T[];
  rowKey: (row: T) => string | number;
  /** Loads the next page; the button shows only when given. */
  more?: (() => void) | null;
}) {
  return (
    <>
      <table>
        <thead>
          <tr>
            {p.columns.map((c, i) => (
              <th key={i}>{c.head}</th>
            ))}
          </tr>
        </thead>
        <tbody>
          {p.rows.map((row) => (
            <tr key={p.rowKey(row)}>
              {p.columns.map((c, i) => (
                <td key={i} class={c.class}>
                  {c.cell(row)}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
      <Empty when={p.rows.length === 0} />
      {p.more ? (
        <button type="button" onClick={p.more}>
          {t('more')}
        </button>
      ) : null}
    </>
  );
}

/**
 * Keyset pages of one list (audit entries, GM devices): the first page on mount, the next on
 * `more`. `load(cursor)` fetches one page; rows accumulate.
 */
export function usePages<T>(load: (cursor: string | null) => Promise<{ rows: T[]; next: string | null }>) {
  const [rows, setRows] = useState<T[]>([]);
  const [next, setNext] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const page = (cursor: string | null) =>
    load(cursor).then((r) => {
      setRows((old) => (cursor ? [...old, ...r.rows] : r.rows));
      setNext(r.next);
    }, setError);
  useEffect(() => {
    void page(null);
  }, []);
  return { rows, setRows, next, error, setError, more: next ? () => void page(next) : null };
}
