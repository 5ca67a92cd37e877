import { availableParallelism } from 'node:os';
import { startApp } from '../src/app.js';
import { configSchema } from '../src/config.js';
import { fromHex } from '../src/crypto/bytes.js';
import { authRequestBody, type DeviceCredentials } from '../src/gm/client.js';
import type { Registration } from '../src/gm/devices.js';
import { unwrapDeviceKey } from '../src/gm/wrap.js';
import { tempDir } from './lib.js';

/**
 * Device authentications per second end to end: POST /api/gm/devices/auth over HTTP on an
 * in-process Kapok (SQLite store, memory KV, SM9 verification on the worker pool), `concurrency`
 * requests in flight. Request bodies (device-side SM9 signatures) are made before the clock starts.
 */
export async function gmAuth(
  total = Number(process.env.KAPOK_BENCH_AUTHS ?? 400),
  concurrency = 16,
  /** null: the default (one per core). */
  verifyWorkers: number | null = null,
) {
  const tmp = tempDir();
  const admin = 'bench-admin-token-0001';
  const factorySecret = 'bench-factory-secret';
  const config = configSchema.parse({
    dataDir: tmp.dir,
    http: { host: '127.0.0.1', port: 0 },
    log: { level: 'warn', requests: false },
    gm: {
      enabled: true,
      kek: '000102030405060708090a0b0c0d0e0f',
      adminToken: admin,
      keyWrap: 'pbkdf2',
      factorySecret,
      pbkdf2Iterations: 1000,
      verifyWorkers,
    },
  });
  const app = await startApp({ config, file: null, envOverrides: new Map() });
  const base = `http://127.0.0.1:${app.port}`;
  try {
    const devices = 8;
    const creds: DeviceCredentials[] = [];
    for (let i = 0; i < devices; i++) {
      const serial = `BENCH-${i}`;
      const res = await fetch(`${base}/api/gm/devices`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${admin}` },
        body: JSON.stringify({ serial }),
      });
      const reg = (await res.json()) as Registration;
      creds.push({
        serial,
        signKey: unwrapDeviceKey(reg.signKey, serial, { factorySecret }),
        signMasterPublicKey: fromHex(reg.signMasterPublicKey, 'master'),
      });
    }
    const bodies = Array.from({ length: total + 32 }, (_, i) =>
      JSON.stringify(authRequestBody(creds[i % devices] as DeviceCredentials)),
    );
    const post = async (body: string) => {
      const res = await fetch(`${base}/api/gm/devices/auth`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
      });
      await res.arrayBuffer();
      if (res.status !== 200) throw new Error(`auth answered ${res.status}`);
    };
    for (const b of bodies.slice(total)) await post(b); // warm: tables, workers, JIT
    let next = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < total) await post(bodies[next++] as string);
      }),
    );
    const seconds = (performance.now() - t0) / 1000;
    const perSec = Math.round(total / seconds);
    return {
      total,
      concurrency,
      devices,
      verifyWorkers: config.gm.verifyWorkers ?? availableParallelism(),
      perSec,
      target: 200,
      met: perSec >= 200,
    };
  } finally {
    await app.stop();
    tmp.remove();
  }
}
