import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startApp } from '../../src/app.js';
import { configSchema } from '../../src/config.js';
import { ConfigError } from '../../src/core/config/index.js';
import { testConfig } from '../helpers/config.js';
import { captureLogs } from '../helpers/logs.js';
import { tmpDir } from '../helpers/tmp.js';

describe('edge sink settings', () => {
  it('refuses an influx sink without url or db, and version 2 without org, naming the key', () => {
    const bad: [object, RegExp][] = [
      [{ type: 'influx', db: 'x' }, /sinks\.0\.url: required when type is influx/],
      [{ type: 'influx', url: 'http://h:8086' }, /sinks\.0\.db: required/],
      [{ type: 'influx', url: 'http://h:8086', db: 'b', version: 2 }, /sinks\.0\.org: required/],
    ];
    for (const [sink, re] of bad) {
      const r = configSchema.safeParse({ edge: { sinks: [sink] } });
      assert.equal(r.success, false, JSON.stringify(sink));
      assert.match((r.error?.issues ?? []).map((i) => `${i.path.join('.')}: ${i.message}`).join('; '), re);
    }
  });

  it("a sink adapter's refusal of a setting is a configuration error naming edge.sinks[i]", async () => {
    const config = testConfig({
      dataDir: tmpDir(),
      http: { host: '127.0.0.1', port: 0 },
      edge: {
        enabled: true,
        mqtt: { port: 0, host: '127.0.0.1' },
        sinks: [{ type: 'embedded' }, { type: 'influx', url: 'ftp://h/', db: 'x' }],
      },
    });
    await assert.rejects(
      startApp({ config, file: null, envOverrides: new Map() }, { logDestination: captureLogs() }),
      (err) =>
        err instanceof ConfigError &&
        err.code === 'KAPOK_CONFIG_INVALID' &&
        /^edge\.sinks\[1\]: .*option url/.test(err.message),
    );
  });
});
