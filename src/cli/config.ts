import { Command } from 'commander';
import { stringify } from 'yaml';
import { configSchema, loadKapokConfig } from '../config.js';
import { redact } from '../core/config/index.js';
import { encryptCommand, reencryptCommand } from './config-encrypt.js';
import { configOpsCommands } from './config-ops.js';
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
        const shown = hideSealed(redact(configSchema, loaded.config), loaded.sealed ?? []);
        process.stdout.write(opts.json ? `${JSON.stringify(shown, null, 2)}\n` : stringify(shown));
      } catch (err) {
        fail(err);
      }
    });

  cmd.addCommand(encryptCommand());
  cmd.addCommand(reencryptCommand());
  for (const c of configOpsCommands()) cmd.addCommand(c);
  return cmd;
}

/** Values that were encrypted are shown as `***` whatever their key (a secret or not). */
function hideSealed(shown: unknown, sealed: readonly string[]): unknown {
  if (sealed.length === 0) return shown;
  const copy = structuredClone(shown) as Record<string, unknown>;
  for (const path of sealed) {
    const parts = path.split('.');
    let cur: unknown = copy;
    for (const p of parts.slice(0, -1)) cur = (cur as Record<string, unknown> | undefined)?.[p];
    const last = parts[parts.length - 1] as string;
    if (cur && typeof cur === 'object' && last in cur) (cur as Record<string, unknown>)[last] = '***';
  }
  return copy;
}
