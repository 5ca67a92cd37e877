import { availableParallelism } from 'node:os';
import { startApp } from '../src/app.js';
import { configSchema } from '../src/config.js';
import { fromHex } from '../src/crypto/bytes.js';
import { createSm9VerifyPool, Sm9SignMasterKey, sm9Sign, type VerifyJob } from '../src/crypto/index.js';
import { defaultVerifyWorkers } from '../src/gm/capability.js';
import { authRequestBody, type DeviceCredentials } from '../src/gm/client.js';
import type { Registration } from '../src/gm/devices.js';
import { unwrapDeviceKey } from '../src/gm/wrap.js';
import { CAPABILITIES_OFF_CONFIG, errorCount, noErrors, tempDir, verdict } from './lib.js';

/**
 * Device authentications per second end to end: POST /api/gm/devices/auth over HTTP on an
 * in-process Kapok (SQLite store, memory KV, SM9 verification on the worker pool), `concurrency`
 * requests in flight. Request bodies (device-side SM9 signatures) are made before the clock starts.
 * Baseline in the same run: the raw SM9 verify rate of a verify pool of the same size, driven the
 * same way (`concurrency` callers, one verify() each, the same number of device ids), so
 * perSec / rawVerifyPerSec is what HTTP, JSON, the device store and token issuing leave of it.
 * Non-2xx answers and transport errors are counted; any fails the verdict.
 */
export async function gmAuth(
  total = Number(process.env.KAPOK_BENCH_AUTHS ?? 400),
  concurrency = 16,
  /** null: the default (defaultVerifyWorkers: one per core but the event loop's). */
  verifyWorkers: number | null = null,
) {
  const workers = verifyWorkers ?? defaultVerifyWorkers(availableParallelism());
  const raw = await rawVerifyPerSec(total, concurrency, 8, workers);
  const tmp = tempDir();
  const admin = 'bench-admin-token-0001';
  const factorySecret = 'bench-factory-secret';
  const config = configSchema.parse({
    dataDir: tmp.dir,
    http: { host: '127.0.0.1', port: 0 },
    // Kapok runs in this process, and its log goes to this process's stdout, which carries the
    // bench's JSON: errors only (warn printed the loopback-only console and control notices there).
    log: { level: 'error', requests: false },
    ...CAPABILITIES_OFF_CONFIG,
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
    const outcomes = noErrors();
    const post = async (body: string) => {
      try {
        const res = await fetch(`${base}/api/gm/devices/auth`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
        });
        await res.arrayBuffer();
        if (res.status !== 200) outcomes.non2xx++;
      } catch {
        outcomes.transportErrors++;
      }
    };
    for (const b of bodies.slice(total)) await post(b); // warm: tables, workers, JIT
    const warmErrors = errorCount(outcomes);
    let next = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < total) await post(bodies[next++] as string);
      }),
    );
    const seconds = (performance.now() - t0) / 1000;
    // Answered 200 within the timed run, per second: a refused authentication is no authentication.
    const perSec = Math.round((total - (errorCount(outcomes) - warmErrors)) / seconds);
    const v = verdict({ perSec: perSec >= 200 }, { auth: { requests: total + 32, ...outcomes } });
    return {
      total,
      ...outcomes,
      concurrency,
      devices,
      verifyWorkers: workers,
      perSec,
      rawVerifyPerSec: raw,
      ratioToRawVerify: Math.round((perSec / raw) * 100) / 100,
      target: 200,
      met: v.met.perSec,
      why: v.why,
    };
  } finally {
    await app.stop();
    tmp.remove();
  }
}

/**
 * SM9 verifications per second on a fresh pool of `workers` workers, `concurrency` callers each
 * awaiting one verify() at a time, signatures of `ids` ids made before the clock starts. Throws if
 * any verification fails (the baseline must be doing the real work).
 */
async function rawVerifyPerSec(total: number, concurrency: number, ids: number, workers: number) {
  const master = Sm9SignMasterKey.generate();
  const pub = master.publicKey;
  const keys = Array.from({ length: ids }, (_, i) => master.extract(`BENCH-${i}`));
  const jobs: VerifyJob[] = Array.from({ length: total + 32 }, (_, i) => {
    const message = `auth challenge ${i} ${Date.now()}`;
    return {
      masterPublicKey: pub.toBytes(),
      id: `BENCH-${i % ids}`,
      message,
      signature: sm9Sign(pub, keys[i % ids] as (typeof keys)[number], message),
    };
  });
  const pool = createSm9VerifyPool({ size: workers });
  try {
    const check = async (j: VerifyJob) => {
      if (!(await pool.verify(j))) throw new Error('gm-auth bench: a raw SM9 verification failed');
    };
    for (const j of jobs.slice(total)) await check(j); // warm workers
    let next = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < total) await check(jobs[next++] as VerifyJob);
      }),
    );
    return Math.round(total / ((performance.now() - t0) / 1000));
  } finally {
    await pool.close();
  }
}
