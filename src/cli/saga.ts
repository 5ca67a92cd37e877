import { Command, InvalidArgumentError } from 'commander';
import { withCliContext } from './context.js';
import { fail } from './exit.js';
import { table } from './table.js';

/**
 * `kapok saga list|show|retry|skip|compensate|dead-letters` (docs/saga.md#operating): read and act
 * on saga transactions in the configured Store, with or without a running coordinator (a running
 * one picks a change up at its next poll). Acts are recorded in the audit trail when it is on.
 */
type Opts = { config?: string; json?: boolean };

function limit(v: string): number {
  if (!/^\d{1,4}$/.test(v) || Number(v) < 1 || Number(v) > 1000)
    throw new InvalidArgumentError('a whole number from 1 to 1000');
  return Number(v);
}

const out = (v: unknown, json: boolean | undefined, human: () => string) =>
  process.stdout.write(json ? `${JSON.stringify(v)}\n` : human());

function showText(t: Record<string, unknown>): string {
  const ops = (t.branches as Array<Record<string, unknown>>) ?? [];
  const dead = (t.deadLetters as Array<Record<string, unknown>>) ?? [];
  return (
    `${t.gid}  ${t.mode}  ${t.state}${t.reason ? `  (${t.reason})` : ''}\n` +
    table(
      ['BRANCH', 'OP', 'STATE', 'ATTEMPTS', 'LAST ERROR'],
      ops.map((o) => [
        String(o.branch),
        String(o.op),
        String(o.state),
        String(o.attempts),
        String(o.lastError ?? ''),
      ]),
    ) +
    (dead.length
      ? `dead letters:\n${dead.map((d) => `  ${d.branch}/${d.op} ${d.resolution ?? 'open'}: ${d.reason}`).join('\n')}\n`
      : '')
  );
}

export function sagaCommand(): Command {
  const cmd = new Command('saga').description('read and act on saga transactions (docs/saga.md)');
  const saga = () => import('../saga/index.js');

  cmd
    .command('list')
    .description('list transactions, newest first; --state retrying lists those waiting to call again')
    .option(
      '--state <state>',
      'prepared, running, confirming, compensating, succeeded, aborted, dead or retrying',
    )
    .option('-n, --limit <n>', 'how many', limit, 50)
    .option('-c, --config <file>', 'YAML config file')
    .option('--json', 'print JSON')
    .action(async (opts: Opts & { state?: string; limit: number }) => {
      try {
        const s = await saga();
        const page = await withCliContext(opts, ({ store }) =>
          s.listTransactions(store, { limit: opts.limit, ...(opts.state ? { state: opts.state } : {}) }),
        );
        const rows = page.transactions as Array<Record<string, string>>;
        out(page, opts.json, () =>
          table(
            ['GID', 'MODE', 'STATE', 'UPDATED', 'REASON'],
            rows.map((t) => [t.gid ?? '', t.mode ?? '', t.state ?? '', t.updatedAt ?? '', t.reason ?? '']),
          ),
        );
      } catch (err) {
        fail(err);
      }
    });

  cmd
    .command('show <gid>')
    .description('one transaction: its operations, attempts, last errors and dead letters')
    .option('-c, --config <file>', 'YAML config file')
    .option('--json', 'print JSON')
    .action(async (gid: string, opts: Opts) => {
      try {
        const s = await saga();
        const t = await withCliContext(opts, ({ store }) => s.showTransaction(store, gid));
        out(t, opts.json, () => showText(t));
      } catch (err) {
        fail(err);
      }
    });

  cmd
    .command('retry <gid>')
    .description('call dead operations again from attempt 0 (all, or --branch/--op)')
    .option('--branch <id>', 'only this branch')
    .option(
      '--op <op>',
      'only this operation (action, compensate, try, confirm, cancel, prepare, commit, rollback, query)',
    )
    .option('-c, --config <file>', 'YAML config file')
    .option('--json', 'print JSON')
    .action(async (gid: string, opts: Opts & { branch?: string; op?: string }) => {
      try {
        const s = await saga();
        const t = await withCliContext(
          opts,
          ({ store }) => s.retryTransaction(store, gid, opts.branch, opts.op),
          {
            action: 'saga.transaction.retry',
            target: gid,
          },
        );
        out(t, opts.json, () => showText(t));
      } catch (err) {
        fail(err);
      }
    });

  cmd
    .command('skip <gid>')
    .description('mark a dead operation as done by hand, so the transaction can finish')
    .requiredOption('--branch <id>', 'the branch')
    .requiredOption('--op <op>', 'the operation')
    .option('-c, --config <file>', 'YAML config file')
    .option('--json', 'print JSON')
    .action(async (gid: string, opts: Opts & { branch: string; op: string }) => {
      try {
        const s = await saga();
        const t = await withCliContext(
          opts,
          ({ store }) => s.skipOperation(store, gid, opts.branch, opts.op),
          {
            action: 'saga.transaction.skip',
            target: gid,
          },
        );
        out(t, opts.json, () => showText(t));
      } catch (err) {
        fail(err);
      }
    });

  cmd
    .command('compensate <gid>')
    .description('undo a running, dead or finished saga: compensate every branch that was sent')
    .option('-c, --config <file>', 'YAML config file')
    .option('--json', 'print JSON')
    .action(async (gid: string, opts: Opts) => {
      try {
        const s = await saga();
        const t = await withCliContext(opts, ({ store }) => s.compensateTransaction(store, gid), {
          action: 'saga.transaction.compensate',
          target: gid,
        });
        out(t, opts.json, () => showText(t));
      } catch (err) {
        fail(err);
      }
    });

  cmd
    .command('dead-letters')
    .description('operations given up on (open ones unless --all)')
    .option('--all', 'include resolved ones')
    .option('-n, --limit <n>', 'how many', limit, 50)
    .option('-c, --config <file>', 'YAML config file')
    .option('--json', 'print JSON')
    .action(async (opts: Opts & { all?: boolean; limit: number }) => {
      try {
        const s = await saga();
        const rows = (await withCliContext(opts, ({ store }) =>
          s.listDeadLetters(store, !opts.all, opts.limit),
        )) as Array<Record<string, string | null>>;
        out({ deadLetters: rows }, opts.json, () =>
          table(
            ['GID', 'BRANCH', 'OP', 'CREATED', 'RESOLUTION', 'REASON'],
            rows.map((d) => [
              d.gid ?? '',
              d.branch ?? '',
              d.op ?? '',
              d.createdAt ?? '',
              d.resolution ?? 'open',
              d.reason ?? '',
            ]),
          ),
        );
      } catch (err) {
        fail(err);
      }
    });
  return cmd;
}
