import { Command, InvalidArgumentError } from 'commander';
import type { KeyInfo, KeyService } from '../gateway/index.js';
import { type CliAct, withCliContext, withCliEvents } from './context.js';
import { fail } from './exit.js';
import { table } from './table.js';

/**
 * `kapok keys create|list|revoke`: manage gateway API keys in the configured Store, with or without
 * a running `kapok up` (a revocation is published on the event bus, docs/events.md; a process not
 * on the bus sees it within gateway.auth.keyCacheMs).
 */
export function keysCommand(): Command {
  const cmd = new Command('keys').description('manage LLM gateway API keys');
  const withService = async <T>(
    opts: { config?: string },
    fn: (keys: KeyService) => Promise<T>,
    act?: CliAct,
  ): Promise<T> => {
    const { keyAdmin } = await import('../gateway/index.js');
    return withCliContext(opts, ({ store, config }) => fn(keyAdmin(store, config.gateway)), act);
  };

  cmd
    .command('create')
    .description('create a key and print it once (only its hash is stored)')
    .requiredOption('--name <name>', 'a unique label, e.g. team-vision')
    .option('--rpm <n>', 'requests per minute (default gateway.limits.default.rpm)', positive)
    .option('--tpm <n>', 'tokens per minute (default gateway.limits.default.tpm)', positive)
    .option('--models <list>', 'comma-separated client-facing models this key may use (default all)')
    .option('-c, --config <file>', 'YAML config file')
    .option('--json', 'print JSON')
    .action(
      async (opts: {
        name: string;
        rpm?: number;
        tpm?: number;
        models?: string;
        config?: string;
        json?: boolean;
      }) => {
        try {
          const models = opts.models
            ?.split(',')
            .map((m) => m.trim())
            .filter(Boolean);
          const { key, info } = await withService(
            opts,
            (k) => k.create({ name: opts.name, rpm: opts.rpm, tpm: opts.tpm, models }),
            { action: 'gateway.key.create', target: opts.name },
          );
          if (opts.json) process.stdout.write(`${JSON.stringify({ ...info, key })}\n`);
          else {
            process.stdout.write(`${key}\n`);
            process.stderr.write(
              `created key ${info.id} (${info.name}); it is shown only this once: store it now\n`,
            );
          }
        } catch (err) {
          fail(err);
        }
      },
    );

  cmd
    .command('list')
    .description('list keys (never their secrets)')
    .option('--all', 'include revoked keys')
    .option('-c, --config <file>', 'YAML config file')
    .option('--json', 'print JSON')
    .action(async (opts: { all?: boolean; config?: string; json?: boolean }) => {
      try {
        const list = await withService(opts, (k) => k.list(opts.all === true));
        if (opts.json) process.stdout.write(`${JSON.stringify(list)}\n`);
        else process.stdout.write(keyTable(list));
      } catch (err) {
        fail(err);
      }
    });

  cmd
    .command('revoke')
    .description('revoke a key by id or name')
    .argument('<id-or-name>')
    .option('-c, --config <file>', 'YAML config file')
    .option('--json', 'print JSON')
    .action(async (idOrName: string, opts: { config?: string; json?: boolean }) => {
      try {
        const { keyAdmin } = await import('../gateway/index.js');
        const id = await withCliEvents(
          opts,
          ({ store, config, events }) => keyAdmin(store, config.gateway, events).revoke(idOrName),
          { action: 'gateway.key.revoke', target: idOrName },
        );
        process.stdout.write(opts.json ? `${JSON.stringify({ id, revoked: true })}\n` : `revoked ${id}\n`);
      } catch (err) {
        fail(err);
      }
    });
  return cmd;
}

function positive(v: string): number {
  const n = Number(v);
  if (!/^[0-9]+$/.test(v) || n < 1 || n > 1_000_000_000)
    throw new InvalidArgumentError('a whole number from 1 to 1000000000');
  return n;
}

function keyTable(list: KeyInfo[]): string {
  if (!list.length) return 'no keys\n';
  const rows = list.map((k) => [
    k.id,
    k.name,
    String(k.rpm ?? 'default'),
    String(k.tpm ?? 'default'),
    k.models?.join(',') ?? 'all',
    k.createdAt,
    k.revokedAt ?? '',
  ]);
  return table(['ID', 'NAME', 'RPM', 'TPM', 'MODELS', 'CREATED', 'REVOKED'], rows);
}
