import { useEffect, useState } from 'preact/hooks';
import { api, get } from '../api';
import { fmtTime, t } from '../i18n';
import { Badge, Card, Empty, Problem, Stat } from '../ui';

interface Device {
  serial: string;
  group: string;
  vehicle: string;
  status: string;
  createdAt: number;
  revokedAt: number | null;
  signKeyId: string;
}

/** One call (the first page of GM registrations, keyset by serial); more pages on demand. */
export default function Devices() {
  const [devices, setDevices] = useState<Device[]>([]);
  const [next, setNext] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const page = (after: string | null) =>
    get<{ devices: Device[]; next: string | null }>(
      `/api/gm/devices?limit=50${after ? `&after=${encodeURIComponent(after)}` : ''}`,
    ).then((r) => {
      setDevices((d) => (after ? [...d, ...r.devices] : r.devices));
      setNext(r.next);
    }, setError);
  useEffect(() => {
    void page(null);
  }, []);
  const revoke = async (serial: string) => {
    try {
      await api('DELETE', `/api/gm/devices/${encodeURIComponent(serial)}`);
      setDevices((ds) =>
        ds.map((d) => (d.serial === serial ? { ...d, status: 'revoked', revokedAt: Date.now() } : d)),
      );
    } catch (err) {
      setError(err);
    }
  };
  return (
    <div class="grid">
      <div class="stats wide">
        <Stat label={t('devices')} value={`${devices.length}${next ? '+' : ''}`} />
        <Stat label="active" value={String(devices.filter((d) => d.status === 'active').length)} />
        <Stat label="revoked" value={String(devices.filter((d) => d.status === 'revoked').length)} />
      </div>
      <Card wide title={t('GM registrations')}>
        <Problem error={error} />
        <table>
          <thead>
            <tr>
              <th>{t('serial')}</th>
              <th>{t('group')}</th>
              <th>{t('vehicle')}</th>
              <th>{t('status')}</th>
              <th>{t('created')}</th>
              <th>SM9 key</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {devices.map((d) => (
              <tr key={d.serial}>
                <td class="mono">{d.serial}</td>
                <td>{d.group}</td>
                <td>{d.vehicle}</td>
                <td>
                  <Badge state={d.status} />
                </td>
                <td>{fmtTime(d.createdAt)}</td>
                <td class="mono">{d.signKeyId}</td>
                <td class="right">
                  {d.status === 'active' ? (
                    <button type="button" class="danger" onClick={() => revoke(d.serial)}>
                      {t('revoke')}
                    </button>
                  ) : null}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        <Empty when={devices.length === 0} />
        {next ? (
          <button type="button" onClick={() => page(next)}>
            {t('more')}
          </button>
        ) : null}
      </Card>
    </div>
  );
}
