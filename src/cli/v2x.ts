import { Command } from 'commander';
import { KapokError } from '../core/errors.js';
import type { Scenario } from '../v2x/index.js';
import { cliConfig } from './context.js';
import { fail } from './exit.js';

const num = (name: string, v: string, min: number, max: number): number => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < min || n > max)
    throw new KapokError('KAPOK_CONFIG_INVALID', `--${name} ${v}: expected a number ${min}..${max}`);
  return n;
};

/** `kapok v2x simulate`: MQTT traffic with scripted conflicts whose ground truth is known. */
export function v2xCommand(): Command {
  const cmd = new Command('v2x').description('V2X engine: traffic simulator');
  cmd
    .command('simulate')
    .description(
      'publish BSM (and SPAT/MAP) traffic on a road grid plus scripted conflicts, take the strategies and score detection',
    )
    .option('--vehicles <n>', 'background vehicles', '1000')
    .option('--rate <hz>', 'messages per vehicle per second', '10')
    .option('--duration <s>', 'seconds to run', '30')
    .option('--scenario <path>', 'scenario file or directory of *.json scenarios (see docs/v2x.md)')
    .option('--copies <n>', 'copies of the scenario set run side by side each cycle', '1')
    .option('--format <f>', 'payload encoding: uper or json', 'uper')
    .option('--clients <n>', 'publishing MQTT connections', '4')
    .option('--url <url>', 'MQTT broker (default mqtt://127.0.0.1:<edge.mqtt.port> from the config)')
    .option('--username <u>', 'MQTT username')
    .option('--password <p>', 'MQTT password')
    .option('-c, --config <file>', 'YAML config file')
    .action(
      async (opts: {
        vehicles: string;
        rate: string;
        duration: string;
        scenario?: string;
        copies: string;
        format: string;
        clients: string;
        url?: string;
        username?: string;
        password?: string;
        config?: string;
      }) => {
        try {
          const { config } = cliConfig(opts);
          // Loaded on use: `kapok up` (same bundle entry) never pays for the simulator.
          const { loadScenarios, simulate } = await import('../v2x/index.js');
          if (opts.format !== 'uper' && opts.format !== 'json')
            throw new KapokError('KAPOK_CONFIG_INVALID', `--format ${opts.format}: use uper or json`);
          let scenarios: Scenario[] = [];
          if (opts.scenario) {
            try {
              scenarios = loadScenarios(opts.scenario);
            } catch (err) {
              throw new KapokError('KAPOK_CONFIG_INVALID', `--scenario: ${(err as Error).message}`);
            }
          }
          const report = await simulate({
            url: opts.url ?? `mqtt://127.0.0.1:${config.edge.mqtt.port}`,
            ...(opts.username ? { username: opts.username } : {}),
            ...(opts.password ? { password: opts.password } : {}),
            vehicles: num('vehicles', opts.vehicles, 0, 1_000_000),
            rateHz: num('rate', opts.rate, 0.1, 100),
            durationS: num('duration', opts.duration, 1, 86_400),
            clients: num('clients', opts.clients, 1, 64),
            scenarios,
            copies: num('copies', opts.copies, 1, 100),
            format: opts.format,
            onProgress: (l) => process.stderr.write(`kapok v2x simulate: ${l}\n`),
          });
          process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
        } catch (err) {
          fail(err);
        }
      },
    );
  return cmd;
}
