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
    .option('--vehicles <n>', 'background vehicles', '200')
    .option('--rate <hz>', 'messages per vehicle per second', '10')
    .option('--duration <s>', 'seconds to run', '20')
    .option(
      '--scenario <path>',
      'scenario file or directory of *.json scenarios (see docs/v2x.md); default: the built-in set',
    )
    .option('--copies <n>', 'copies of the scenario set run side by side each cycle', '1')
    .option('--format <f>', 'payload encoding: uper or json', 'uper')
    .option('--clients <n>', 'publishing MQTT connections', '4')
    .option('--url <url>', 'MQTT broker (default mqtt://127.0.0.1:<edge.mqtt.port> from the config)')
    .option('--username <u>', 'MQTT username')
    .option('--password <p>', 'MQTT password')
    .option('-c, --config <file>', 'YAML config file')
    .option('--json', 'print the full report as JSON')
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
        json?: boolean;
      }) => {
        try {
          const { config } = cliConfig(opts);
          // Loaded on use: `kapok up` (same bundle entry) never pays for the simulator.
          const { builtinScenarios, loadScenarios, simulate } = await import('../v2x/index.js');
          if (opts.format !== 'uper' && opts.format !== 'json')
            throw new KapokError('KAPOK_CONFIG_INVALID', `--format ${opts.format}: use uper or json`);
          let scenarios: Scenario[] = builtinScenarios();
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
          process.stdout.write(
            opts.json
              ? `${JSON.stringify(report, null, 2)}\n`
              : summary(report, { vehicles: Number(opts.vehicles), scenarios: scenarios.length }),
          );
        } catch (err) {
          fail(err);
        }
      },
    );
  return cmd;
}

type Report = Awaited<ReturnType<typeof import('../v2x/index.js').simulate>>;
const n = (v: number) => v.toLocaleString('en-US');
const ms = (v: number | null) => (v === null ? '-' : `${v.toFixed(1)} ms`);

/** What a run measured, in words (--json has every figure). */
export function summary(r: Report, o: { vehicles: number; scenarios: number }): string {
  const s = r.score;
  const lines = [
    `ran ${r.durationS} s: ${n(o.vehicles)} background vehicles and ${o.scenarios} scripted scenarios, ${r.cycles} complete cycle(s)`,
    `sent ${n(r.sent)} messages (${n(r.sentPerSec)}/s of ${n(r.offeredPerSec)}/s offered; ${r.lateTicks} late ticks)`,
    s.expected === 0
      ? 'detection: no scripted conflict completed a cycle, nothing to score (run longer, --duration)'
      : `detection: ${s.detected} of ${s.expected} scripted conflicts warned (recall ${(s.recall * 100).toFixed(0)}%), ${s.falseWarnings} false of ${s.warnings} warnings`,
    `strategies received by the simulated vehicles: ${n(r.strategies)}; BSM sent → strategy received p50 ${ms(r.endToEndMs.p50)}, p99 ${ms(r.endToEndMs.p99)} (${r.endToEndMs.samples} timed)`,
  ];
  if (s.missed.length) lines.push(`missed: ${s.missed.join('; ')}`);
  if (s.unexpected.length) lines.push(`unexpected: ${s.unexpected.join('; ')}`);
  return `${lines.join('\n')}\n`;
}
