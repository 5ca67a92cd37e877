import { after, before, describe } from 'node:test';
import { createInfluxTimeSeries } from '../../src/adapters/influx/timeseries.js';
import type { FieldValue } from '../../src/ports/timeseries.js';
import { type Influxd, influxdAvailable, startInfluxd } from '../helpers/influxd.js';
import { type Stored, timeSeriesConformance } from '../ports/timeseries.conformance.js';

// A real InfluxDB 1.x started on free ports for this file (test/helpers/influxd.ts).
const { skip } = await influxdAvailable();
const DB = 'conformance';

/** An InfluxQL identifier. */
const ident = (s: string) => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;

describe('influx time-series sink against a real InfluxDB 1.x (needs influxd)', { skip }, () => {
  let influx: Influxd;
  before(async () => {
    influx = await startInfluxd();
    await influx.query(`CREATE DATABASE ${DB}`);
  });
  after(async () => {
    await influx?.destroy();
  });

  async function read(measurement: string): Promise<Stored[]> {
    // InfluxQL cannot name a measurement with a newline (the adapter never writes one).
    if (measurement.includes('\n')) return [];
    const j = await influx.query(`SELECT * FROM ${ident(measurement)} GROUP BY *`, DB);
    const res = j.results?.[0];
    if (!res || res.error) throw new Error(`InfluxDB query failed: ${JSON.stringify(j)}`);
    const out: Stored[] = [];
    for (const s of (res.series ?? []) as {
      tags: Record<string, string>;
      columns: string[];
      values: (FieldValue | null)[][];
    }[]) {
      const tags: Record<string, string> = {};
      for (const [k, v] of Object.entries(s.tags ?? {}))
        if (k !== 'device' && v !== '')
          Object.defineProperty(tags, k, { value: v, enumerable: true, writable: true, configurable: true });
      for (const row of s.values)
        for (let c = 1; c < s.columns.length; c++)
          if (row[c] !== null)
            out.push({
              device: s.tags.device ?? '',
              tags,
              field: s.columns[c] as string,
              ts: row[0] as number,
              value: row[c] as FieldValue,
            });
    }
    return out;
  }

  timeSeriesConformance('influx', {
    make: async (name) => createInfluxTimeSeries({ name, url: influx.url, version: 1, db: DB }),
    read,
    down: async () =>
      createInfluxTimeSeries({ name: 'influx-down', url: 'http://127.0.0.1:1', version: 1, db: DB }),
  });
});
