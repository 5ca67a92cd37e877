import { Command } from 'commander';
import { stringify } from 'yaml';
import { configSchema, loadKapokConfig } from '../config.js';
import { redact } from '../core/config/index.js';
import { fail } from './exit.js';

export function configCommand(): Command {
  const cmd = new Command('config').description('check or print configuration');

  cmd
    .command('check')
    .description('validate a config file (plus KAPOK_* overrides) exactly as `kapok up` would')
    .argument('[file]', 'YAML file (default: --config, else ./kapok.yaml, else defaults)')
    .option('-c, --config <file>', 'YAML config file')
    .option('--json', 'print the result as JSON')
    .action((file: string | undefined, opts: { config?: string; json?: boolean }) => {
      try {
        const loaded = loadKapokConfig({ file: file ?? opts.config });
        const source = loaded.file ?? 'defaults';
        if (opts.json) {
          process.stdout.write(
            `${JSON.stringify({ ok: true, file: loaded.file, env: Object.fromEntries(loaded.envOverrides) })}\n`,
          );
        } else {
          process.stdout.write(
            `ok: ${source}${loaded.envOverrides.size ? ` with ${[...loaded.envOverrides.values()].join(', ')}` : ''}\n`,
          );
        }
      } catch (err) {
        if (opts.json) {
          const e = err as { code?: string; message?: string };
          process.stdout.write(
            `${JSON.stringify({ ok: false, code: e.code ?? 'KAPOK_INTERNAL', message: e.message })}\n`,
          );
        }
        fail(err);
      }
    });

  cmd
    .command('print')
    .description('print the effective configuration (defaults + file + environment), secrets as ***')
    .option('-c, --config <file>', 'YAML config file')
    .option('--json', 'print JSON instead of YAML')
    .action((opts: { config?: string; json?: boolean }) => {
      try {
        const loaded = loadKapokConfig({ file: opts.config });
        const shown = redact(configSchema, loaded.config);
        process.stdout.write(opts.json ? `${JSON.stringify(shown, null, 2)}\n` : stringify(shown));
      } catch (err) {
        fail(err);
      }
    });

  return cmd;
}
