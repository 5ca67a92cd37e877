import { api, get } from '../api';
import { fmtTime, t } from '../i18n';
import { Badge, Card, type Column, DataTable, Problem, Stat, usePages } from '../ui';

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
  const {
    rows: devices,
    setRows: setDevices,
    next,
    more,
    error,
    setError,
  } = usePages<Device>((after) =>
    get<{ devices: Device[]; next: string | null }>(
      `/api/gm/devices?limit=50${after ? `&after=${encodeURIComponent(after)}` : ''}`,
    ).then((r) => ({ rows: r.devices, next: r.next })),
  );
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
        <DataTable
          rows={devices}
          rowKey={(d) => d.serial}
          more={more}
          columns={[
            { head: t('serial'), cell: (d) => d.serial, class: 'mono' },
            { head: t('group'), cell: (d) => d.group },
            { head: t('vehicle'), cell: (d) => d.vehicle },
            { head: t('status'), cell: (d) => <Badge state={d.status} /> },
            { head: t('created'), cell: (d) => fmtTime(d.createdAt) },
            { head: 'SM9 key', cell: (d) => d.signKeyId, class: 'mono' },
            {
              head: null,
              class: 'right',
              cell: (d) =>
                d.status === 'active' ? (
                  <button type="button" class="danger" onClick={() => revoke(d.serial)}>
                    {t('revoke')}
                  </button>
                ) : null,
            } satisfies Column<Device>,
          ]}
        />
      </Card>
    </div>
  );
}
