/**
 * Gate for *.int.test.ts files that need a real service. Use with top-level await:
 *
 *   const { skip } = await serviceAvailable('postgres', () => probe(url), { where: '127.0.0.1:5432' });
 *   describe('postgres store', { skip }, () => { ... });
 *
 * A service that does not answer skips the suite with a message saying what to start, unless
 * KAPOK_REQUIRE_SERVICES=1 (set by .ci/run): then this throws and the test file fails.
 */
export type ServiceName = 'postgres' | 'redis' | 'mosquitto' | 'nats' | 'etcd' | 'influxdb';

const HOW: Record<ServiceName, { where: string; start: string; env: string }> = {
  postgres: {
    where: '127.0.0.1:5432',
    start:
      'pg_ctlcluster <version> main start, or docker run -d -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust postgres',
    env: 'KAPOK_TEST_PG_URL',
  },
  redis: {
    where: '127.0.0.1:6379',
    start: 'redis-server --daemonize yes, or docker run -d -p 6379:6379 redis',
    env: 'KAPOK_TEST_REDIS_URL',
  },
  mosquitto: {
    where: '127.0.0.1:1883',
    start: 'mosquitto -d, or docker run -d -p 1883:1883 eclipse-mosquitto',
    env: 'KAPOK_TEST_MQTT_URL',
  },
  nats: {
    where: '127.0.0.1:4222',
    start: 'nats-server &, or docker run -d -p 4222:4222 nats',
    env: 'KAPOK_TEST_NATS_URL',
  },
  etcd: {
    where: '127.0.0.1:2379',
    start: 'etcd &, or docker run -d -p 2379:2379 quay.io/coreos/etcd',
    env: 'KAPOK_TEST_ETCD_URL',
  },
  influxdb: {
    where: '127.0.0.1:8086',
    start: 'influxd &, or docker run -d -p 8086:8086 influxdb',
    env: 'KAPOK_TEST_INFLUX_URL',
  },
};

export interface ServiceCheckOptions {
  /** Where the probe looked (host:port, never a password); defaults to the usual local address. */
  where?: string;
  /** Longest wait for the probe; default 3000 ms. */
  timeoutMs?: number;
}

export async function serviceAvailable(
  name: ServiceName,
  probe: () => Promise<void>,
  options: ServiceCheckOptions = {},
): Promise<{ skip: string | false }> {
  const how = HOW[name];
  const timeoutMs = options.timeoutMs ?? 3000;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      probe(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
    return { skip: false };
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    const msg =
      `${name} not reachable at ${options.where ?? how.where} (${reason}): ` +
      `start it (${how.start}) or set ${how.env}`;
    if (process.env.KAPOK_REQUIRE_SERVICES === '1') {
      throw new Error(`${msg}. KAPOK_REQUIRE_SERVICES=1, so a missing service fails the run.`, {
        cause: err,
      });
    }
    return { skip: msg };
  } finally {
    clearTimeout(timer);
  }
}
