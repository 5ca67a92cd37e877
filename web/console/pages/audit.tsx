import { useState } from 'preact/hooks';
import { get } from '../api';
import { fmtTime, t } from '../i18n';
import { Badge, Card, type Column, DataTable, Problem, usePages } from '../ui';

interface Entry {
  seq: number;
  ts?: string;
  at?: string;
  actor: string;
  action: string;
  outcome: string;
  target?: string | null;
  ip?: string | null;
}
interface Verify {
  ok: boolean;
  entries: number;
  checkpoints: number;
  lastSeq: number;
  problem?: { seq: number; kind: string; message: string } | null;
}

const COLUMNS: ReadonlyArray<Column<Entry>> = [
  { head: '#', cell: (e) => e.seq, class: 'num' },
  { head: t('time'), cell: (e) => (e.ts || e.at ? fmtTime((e.ts ?? e.at) as string) : '') },
  { head: t('actor'), cell: (e) => e.actor },
  { head: t('action'), cell: (e) => e.action, class: 'mono' },
  { head: t('target'), cell: (e) => e.target ?? '' },
  { head: t('outcome'), cell: (e) => <Badge state={e.outcome} /> },
];

/** One call (newest entries, keyset by seq); verify and more pages on demand. */
export default function Audit() {
  const { rows, more, error, setError } = usePages<Entry>((cursor) =>
    get<{ entries: Entry[]; next: string | null }>(
      `/api/audit?order=desc&limit=50${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
    ).then((r) => ({ rows: r.entries, next: r.next })),
  );
  const [verify, setVerify] = useState<Verify | null>(null);
  const runVerify = () => get<Verify>('/api/audit/verify').then(setVerify, setError);
  return (
    <div class="grid">
      <Card
        wide
        title={t('audit')}
        actions={
          <button type="button" onClick={runVerify}>
            {t('verify')}
          </button>
        }
      >
        <Problem error={error} />
        {verify ? (
          <p class={verify.ok ? 'okline' : 'problem'}>
            {verify.ok
              ? `${t('chain verified')}: ${verify.entries} entries, ${verify.checkpoints} checkpoints, last seq ${verify.lastSeq}`
              : `${t('chain broken')}: seq ${verify.problem?.seq} (${verify.problem?.kind}) ${verify.problem?.message ?? ''}`}
          </p>
        ) : null}
        <DataTable columns={COLUMNS} rows={rows} rowKey={(e) => e.seq} more={more} />
      </Card>
    </div>
  );
}
