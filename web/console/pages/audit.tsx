import { useEffect, useState } from 'preact/hooks';
import { get } from '../api';
import { fmtTime, t } from '../i18n';
import { Badge, Card, Empty, Problem } from '../ui';

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

/** One call (newest entries, keyset by seq); verify and more pages on demand. */
export default function Audit() {
  const [entries, setEntries] = useState<Entry[]>([]);
  const [next, setNext] = useState<string | null>(null);
  const [verify, setVerify] = useState<Verify | null>(null);
  const [error, setError] = useState<unknown>(null);
  const page = (cursor: string | null) =>
    get<{ entries: Entry[]; next: string | null }>(
      `/api/audit?order=desc&limit=50${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
    ).then((r) => {
      setEntries((e) => (cursor ? [...e, ...r.entries] : r.entries));
      setNext(r.next);
    }, setError);
  useEffect(() => {
    void page(null);
  }, []);
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
        <table>
          <thead>
            <tr>
              <th>#</th>
              <th>{t('time')}</th>
              <th>{t('actor')}</th>
              <th>{t('action')}</th>
              <th>{t('target')}</th>
              <th>{t('outcome')}</th>
            </tr>
          </thead>
          <tbody>
            {entries.map((e) => (
              <tr key={e.seq}>
                <td class="num">{e.seq}</td>
                <td>{e.ts || e.at ? fmtTime((e.ts ?? e.at) as string) : ''}</td>
                <td>{e.actor}</td>
                <td class="mono">{e.action}</td>
                <td>{e.target ?? ''}</td>
                <td>
                  <Badge state={e.outcome} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        <Empty when={entries.length === 0} />
        {next ? (
          <button type="button" onClick={() => page(next)}>
            {t('more')}
          </button>
        ) : null}
      </Card>
    </div>
  );
}
