import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, it } from 'node:test';
import { stringify } from 'yaml';
import { kapok } from '../helpers/cli.js';
import { kapokArgv } from '../helpers/kapok-bin.js';
import { tmpDir } from '../helpers/tmp.js';
import { startEdge, until } from './setup.js';

describe('kapok edge (CLI)', () => {
  it('tail prints live points from a running Kapok', async () => {
    const e = await startEdge();
    const child = spawn(
      process.execPath,
      [...kapokArgv(), 'edge', 'tail', '--topic', 'telemetry/+/env', '--url', e.base, '--json'],
      {
        cwd: tmpDir(),
      },
    );
    const lines: string[] = [];
    createInterface({ input: child.stdout }).on('line', (l) => lines.push(l));
    try {
      const c = await e.client();
      // Publish until tail is connected and prints (its start takes a moment).
      await until(
        async () => {
          await c.publishAsync('telemetry/tail-1/env', '{"v":42}', { qos: 1 });
          return lines.length > 0;
        },
        15_000,
        'a line from kapok edge tail',
      );
      await c.endAsync();
      const p = JSON.parse(lines[0] as string);
      assert.equal(p.device, 'tail-1');
      assert.equal(p.fields.v, 42);
      assert.equal(p.topic, 'telemetry/tail-1/env');
    } finally {
      child.kill();
      await e.stop();
    }
  });

  it('replay-dead-letters sends what now decodes to the sinks and keeps the rest', async () => {
    const dataDir = tmpDir();
    const e = await startEdge({}, dataDir);
    const c = await e.client();
    // Two levels where the pattern wants three: a dead letter until the pattern is fixed.
    await c.publishAsync('telemetry/a-1', '{"v":2,"measurement":"env","ts":1767225600000}', { qos: 1 });
    await c.publishAsync('telemetry/a-1/env', '{"v":', { qos: 1 }); // bad JSON: stays dead
    await c.endAsync();
    assert.equal((await e.get('/api/edge/dead-letters')).body.deadLetters.length, 2);
    await e.stop({ keepData: true });

    const file = join(dataDir, 'kapok.yaml');
    const edge = {
      enabled: true,
      auth: { anonymous: true },
      mqtt: { port: 0, host: '127.0.0.1' },
      topicPattern: 'telemetry/{device}/#',
    };
    writeFileSync(file, stringify({ dataDir, edge }));
    const r = await kapok(['edge', 'replay-dead-letters', '--config', file, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.deepEqual([out.replayed, out.stillFailing], [1, 1]);
    assert.match(Object.keys(out.reasons)[0] as string, /invalid JSON/);

    // The replayed message reaches the sink on the next start.
    const e2 = await startEdge({ topicPattern: 'telemetry/{device}/#' }, dataDir);
    try {
      const q = await until(async () => {
        const q = await e2.get(
          '/api/edge/query?measurement=env&field=v&device=a-1&from=1767225600000&to=1767225600001',
        );
        return q.body.points?.length === 1 ? q : null;
      });
      assert.equal(q.body.points[0].value, 2);
      assert.equal((await e2.get('/api/edge/dead-letters')).body.deadLetters.length, 1);
    } finally {
      await e2.stop({ keepData: true });
    }

    writeFileSync(
      file,
      stringify({ dataDir, edge: { enabled: true, topicPattern: 'telemetry/{measurement}' } }),
    );
    const bad = await kapok(['edge', 'replay-dead-letters', '--config', file]);
    assert.equal(bad.code, 2, 'a pattern without {device} is a config error');
    assert.match(bad.stderr, /edge\.topicPattern/);
  });
});
