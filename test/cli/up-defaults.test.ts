import assert from 'node:assert/strict';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { kapokUp } from '../helpers/cli.js';
import { freePort } from '../helpers/ports.js';
import { tmpDir } from '../helpers/tmp.js';

// `npm start` is `kapok up` with no config: every capability that needs nothing outside the machine
// runs. Only the ports move (through the environment), since this machine runs Mosquitto on 1883.
describe('kapok up with no config (npm start)', () => {
  it('starts every capability on embedded defaults, all ready, with the start block on stderr', async () => {
    const cwd = tmpDir('kapok-defaults-');
    const [mqtt, grpc] = [await freePort(), await freePort()];
    const up = await kapokUp(
      { KAPOK_EDGE__MQTT__PORT: String(mqtt), KAPOK_GRPC__PORT: String(grpc) },
      [],
      30_000,
      { defaults: true, cwd },
    );
    try {
      const ready = up.lines.find((l) => l.msg === 'kapok ready') as { capabilities: string[] };
      assert.deepEqual([...ready.capabilities].sort(), [
        'console',
        'control',
        'edge',
        'gateway',
        'gm',
        'inference',
        'v2x',
      ]);
      const r = await fetch(`http://127.0.0.1:${up.port}/readyz`);
      const body = (await r.json()) as {
        components: Array<{ name: string; state: string; detail?: unknown }>;
      };
      assert.equal(r.status, 200, JSON.stringify(body));
      for (const c of ['gateway', 'inference', 'edge', 'v2x', 'gm', 'control'])
        assert.equal(body.components.find((x) => x.name === c)?.state, 'ready', c);
      const gw = body.components.find((x) => x.name === 'gateway')?.detail as { note?: string };
      assert.match(String(gw?.note), /no models configured/);
      // The generated KEK, beside the data, private, with a warning naming the production setting.
      const kek = join(cwd, 'data', 'gm.kek');
      assert.ok(existsSync(kek));
      assert.equal(statSync(kek).mode & 0o777, 0o600);
      assert.ok(up.lines.some((l) => /generated a KEK/.test(String(l.msg)) && l.level === 'warn'));
      assert.ok(up.lines.some((l) => /no models in .*models yet/.test(String(l.msg))));
      await new Promise((res) => setTimeout(res, 100));
      const block = up.stderr();
      assert.match(block, /^kapok is running: http:\/\/127\.0\.0\.1:\d+/m);
      for (const next of [
        'kapok keys create',
        'kapok models list',
        'kapok edge tail',
        'kapok v2x simulate',
        'kapok device register',
        'edit the config, or kill -HUP <pid>',
      ])
        assert.ok(block.includes(`try: ${next}`), next);
      assert.match(block, new RegExp(`MQTT on :${mqtt}`));
    } finally {
      up.child.kill('SIGTERM');
      assert.equal(await up.exited, 0, up.stderr());
    }
  });
});
