import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { Command, InvalidArgumentError, Option } from 'commander';
import { KapokError } from '../core/errors.js';
import { withCliContext } from './context.js';
import { EXIT, fail } from './exit.js';

/**
 * `kapok audit verify|tail|export` (docs/audit.md): check the chain in the configured Store (or an
 * export file, with the published public key), read its newest entries, write an export.
 */

const configOption = () =>
  new Option('-c, --config <file>', 'YAML config file (default ./kapok.yaml if present)');

function seq(v: string): number {
  if (!/^\d{1,15}$/.test(v) || Number(v) < 1) throw new InvalidArgumentError('a whole number of 1 or more');
  return Number(v);
}

export function auditCommand(): Command {
  const cmd = new Command('audit').description('verify, read and export the audit trail');

  cmd
    .command('verify')
    .description('verify the hash chain and checkpoint signatures; exit 1 naming the first bad entry')
    .option('--from <seq>', "start at this entry (its predecessor's stored hash is trusted)", seq)
    .option('--file <export.jsonl>', 'verify an export (kapok audit export) instead of the Store')
    .option('--public-key <hex>', 'with --file: the published checkpoint key (GET /api/audit/public-key)')
    .addOption(configOption())
    .option('--json', 'print the result as JSON')
    .action(
      async (opts: { from?: number; file?: string; publicKey?: string; config?: string; json?: boolean }) => {
        try {
          const audit = await import('../audit/index.js');
          let result: Awaited<ReturnType<typeof audit.verifyStore>>;
          if (opts.file) {
            if (opts.from)
              throw new KapokError('KAPOK_AUDIT_BAD_QUERY', '--from applies to the Store, not to --file');
            const input = createReadStream(opts.file, 'utf8');
            const error = once(input, 'error').then(([e]) => {
              throw new KapokError(
                'KAPOK_AUDIT_EXPORT_INVALID',
                `${opts.file} cannot be read: ${(e as Error).message}`,
              );
            });
            result = await Promise.race([
              audit.verifyExport(createInterface({ input, crlfDelay: Infinity }), opts.publicKey),
              error,
            ]);
            if (!opts.publicKey && !opts.json)
              process.stderr.write(
                'note: checked with the keys in the file itself; pass --public-key to check who signed it\n',
              );
          } else result = await withCliContext(opts, ({ store }) => audit.verifyStore(store, opts.from ?? 1));
          if (opts.json) process.stdout.write(`${JSON.stringify(result)}\n`);
          else if (result.ok)
            process.stdout.write(
              `ok: entries ${result.from}..${result.lastSeq} (${result.entries}), ${result.checkpoints} checkpoints verified` +
                (result.unsigned ? `, ${result.unsigned} after the last checkpoint` : '') +
                '\n',
            );
          else
            process.stderr.write(
              `kapok: audit chain broken at seq ${result.problem?.seq} (${result.problem?.kind}): ${result.problem?.message} [KAPOK_AUDIT_CHAIN_BROKEN]\n`,
            );
          process.exit(result.ok ? EXIT.OK : EXIT.FAILURE);
        } catch (err) {
          fail(err);
        }
      },
    );

  cmd
    .command('tail')
    .description('print the newest entries, oldest first (JSON lines)')
    .option('-n, --lines <n>', 'how many', seq, 20)
    .option('--actor <name>', 'only this actor')
    .option('--action <name>', 'only this action')
    .addOption(configOption())
    .action(async (opts: { lines: number; actor?: string; action?: string; config?: string }) => {
      try {
        const audit = await import('../audit/index.js');
        const page = await withCliContext(opts, ({ store, config }) => {
          if (opts.lines > config.audit.queryMaxLimit)
            throw new KapokError(
              'KAPOK_AUDIT_RANGE_TOO_LARGE',
              `-n ${opts.lines} is over audit.queryMaxLimit (${config.audit.queryMaxLimit}): use kapok audit export`,
            );
          return audit.queryEntries(store, {
            order: 'desc',
            limit: opts.lines,
            ...(opts.actor ? { actor: opts.actor } : {}),
            ...(opts.action ? { action: opts.action } : {}),
          });
        });
        for (const e of page.entries.reverse()) process.stdout.write(`${JSON.stringify(e)}\n`);
      } catch (err) {
        fail(err);
      }
    });

  cmd
    .command('export')
    .description('write the chain and its checkpoints as JSON lines, for a third party to verify')
    .option('--from <seq>', 'start at this entry', seq)
    .option('-o, --out <file>', 'write here instead of stdout')
    .addOption(configOption())
    .action(async (opts: { from?: number; out?: string; config?: string }) => {
      try {
        const audit = await import('../audit/index.js');
        const out = opts.out ? createWriteStream(opts.out) : process.stdout;
        await withCliContext(opts, async ({ store }) => {
          for await (const line of audit.exportLines(store, opts.from ?? 1))
            if (!out.write(`${line}\n`)) await once(out, 'drain');
        });
        if (opts.out) {
          out.end();
          await once(out, 'finish');
        }
      } catch (err) {
        fail(err);
      }
    });
  return cmd;
}
