import { Command } from 'commander';
import { openConfigAdmin } from '../app.js';
import { KapokError, messageOf } from '../core/errors.js';
import { diffKeys, type KeyChange, selectorText } from '../ports/config-overlay.js';
import { planPush, viewsOf } from './config-push.js';
import { cliActor, cliConfig } from './context.js';
import { fail } from './exit.js';
import { table } from './table.js';

type Admin = Awaited<ReturnType<typeof openConfigAdmin>>;

interface Common {
  config?: string;
  json?: boolean;
}

const collect = (v: string, acc: string[]) => [...acc, v];

async function withAdmin<T>(opts: Common, fn: (a: Admin) => Promise<T>): Promise<T> {
  const a = await openConfigAdmin(cliConfig(opts));
  try {
    return await fn(a);
  } finally {
    a.close();
  }
}

/** Validates every view of `keys` (the fleet's, each overlay's) as an instance would compose it. */
function check(a: Admin, keys: ReadonlyMap<string, string>): void {
  for (const labels of viewsOf(keys)) {
    try {
      a.check(keys, labels);
    } catch (err) {
      if (!(err instanceof KapokError)) throw err;
      const who = Object.keys(labels).length ? `instances labelled ${selectorText(labels)}` : 'the fleet';
      throw new KapokError(
        err.code,
        `${err.message} (as ${who} would compose it; nothing was written; --force writes it anyway)`,
      );
    }
  }
}

/** The base of a compare-and-swap: now, or the revision the operator saw (then nothing may differ since). */
async function baseAt(a: Admin, revision: string | undefined) {
  const now = await a.admin.read();
  if (revision === undefined) return now;
  const rev = Number(revision);
  if (!Number.isInteger(rev) || rev < 1)
    throw new KapokError('KAPOK_CONFIG_INVALID', `--revision ${revision}: expected a revision number`);
  if (rev >= now.revision) return now;
  // A key deleted after `rev` leaves no mod revision for the compare: the content then must equal now's.
  const then = await a.admin.readAt(rev);
  if (!then || diffKeys(then, now.keys).length)
    throw new KapokError(
      'KAPOK_CONTROL_CONFLICT',
      `${a.admin.prefix} changed after revision ${rev}${then ? '' : ' (or etcd compacted that revision)'}: nothing was written; run \`kapok config diff\` and push again`,
    );
  return { revision: rev, keys: now.keys };
}

function printChanges(opts: Common, what: string, revision: number, changes: KeyChange[], extra = {}) {
  if (opts.json) {
    process.stdout.write(`${JSON.stringify({ revision, changes, ...extra })}\n`);
    return;
  }
  if (changes.length === 0) {
    process.stdout.write(`no change: etcd already holds this (revision ${revision})\n`);
    return;
  }
  process.stdout.write(`${what} revision ${revision}: ${changes.length} key(s)\n`);
  for (const c of changes) process.stdout.write(`  ${c.op === 'put' ? '~' : '-'} ${c.key}\n`);
}

interface PushOpts extends Common {
  set: string[];
  unset: string[];
  selector?: string;
  clear?: boolean;
  revision?: string;
  force?: boolean;
}

function pushOptions(cmd: Command): Command {
  return cmd
    .argument('[file]', 'YAML: the etcd layer as a whole (with --selector: the overlay as a whole)')
    .option('--set <path=value>', 'set one key path (value is YAML); repeatable', collect, [])
    .option('--unset <path>', 'delete one key path; repeatable', collect, [])
    .option('--selector <labels>', 'only instances whose control.labels match (zone=a,tier=canary)')
    .option('--clear', 'with --selector: delete that overlay (promote or abort a staged rollout)')
    .option('-c, --config <file>', 'YAML config file (control.etcd, the file layer to validate with)')
    .option('--json', 'print JSON');
}

export function configOpsCommands(): Command[] {
  const push = pushOptions(new Command('push'))
    .description('write a configuration change to etcd (compare-and-swap on the revision read)')
    .option('--revision <rev>', 'refuse unless the prefix is unchanged since this revision (from diff)')
    .option('--force', 'write even if this config file ⊕ the change does not validate')
    .action((file: string | undefined, opts: PushOpts) =>
      withAdmin(opts, async (a) => {
        const base = await baseAt(a, opts.revision);
        const plan = planPush(base.keys, { ...opts, sets: opts.set, unsets: opts.unset, file });
        if (!opts.force) check(a, plan.next);
        const r = await a.admin.commit(base, plan.next, { by: cliActor(), action: 'push', note: plan.note });
        printChanges(opts, 'pushed', r.revision, r.changes);
      }).catch(fail),
    );

  const diff = pushOptions(new Command('diff'))
    .description('show what a push (or --rollback REV) would change, without writing; and the revision read')
    .option('--rollback <rev>', 'compare with the content of that revision instead')
    .action((file: string | undefined, opts: PushOpts & { rollback?: string }) =>
      withAdmin(opts, async (a) => {
        const base = await a.admin.read();
        const next = opts.rollback
          ? await a.admin.contentAt(Number(opts.rollback))
          : file || opts.set.length || opts.unset.length || opts.clear
            ? planPush(base.keys, { ...opts, sets: opts.set, unsets: opts.unset, file }).next
            : base.keys;
        let invalid: string | null = null;
        try {
          check(a, next);
        } catch (err) {
          invalid = messageOf(err);
        }
        const changes = diffKeys(base.keys, next);
        if (opts.json)
          process.stdout.write(
            `${JSON.stringify({ revision: base.revision, changes, valid: !invalid, invalid })}\n`,
          );
        else {
          process.stdout.write(`etcd ${a.admin.prefix} at revision ${base.revision}\n`);
          for (const c of changes) process.stdout.write(`  ${c.op === 'put' ? '~' : '-'} ${c.key}\n`);
          if (!changes.length) process.stdout.write('  (no change)\n');
          if (invalid) process.stdout.write(`would be refused: ${invalid}\n`);
        }
      }).catch(fail),
    );

  const history = new Command('history')
    .description('the changes written with kapok config push/rollback (newest last)')
    .option('-c, --config <file>', 'YAML config file')
    .option('--json', 'print JSON')
    .action((opts: Common) =>
      withAdmin(opts, async (a) => {
        const h = await a.admin.history();
        if (opts.json) process.stdout.write(`${JSON.stringify({ prefix: a.admin.prefix, history: h })}\n`);
        else if (!h.length) process.stdout.write('no history yet\n');
        else
          process.stdout.write(
            table(
              ['REVISION', 'AT', 'BY', 'ACTION', 'WHAT', 'KEYS'],
              h.map((e) => [
                String(e.revision),
                e.at,
                e.by,
                e.action,
                e.note,
                e.changes.map((c) => `${c.op === 'put' ? '~' : '-'}${c.key}`).join(' '),
              ]),
            ),
          );
      }).catch(fail),
    );

  const rollback = new Command('rollback')
    .description('write the content the prefix had at REV as a new revision')
    .argument('<rev>', 'a revision from kapok config history')
    .option('--revision <rev>', 'refuse unless the prefix is unchanged since this revision')
    .option('--force', 'write even if the old content does not validate with this config file')
    .option('-c, --config <file>', 'YAML config file')
    .option('--json', 'print JSON')
    .action((rev: string, opts: PushOpts) =>
      withAdmin(opts, async (a) => {
        const to = Number(rev);
        if (!Number.isInteger(to) || to < 1)
          throw new KapokError('KAPOK_CONFIG_INVALID', `${rev}: expected a revision number`);
        const base = await baseAt(a, opts.revision);
        const next = await a.admin.contentAt(to);
        if (!opts.force) check(a, next);
        const r = await a.admin.commit(base, next, {
          by: cliActor(),
          action: 'rollback',
          note: `to revision ${to}`,
        });
        printChanges(opts, `rolled back to ${to} as`, r.revision, r.changes, { to });
      }).catch(fail),
    );

  const status = new Command('status')
    .description('per instance of this region: the revision applied, keys pending a restart, the last error')
    .option('-c, --config <file>', 'YAML config file')
    .option('--json', 'print JSON')
    .action((opts: Common) =>
      withAdmin(opts, async (a) => {
        const [state, hist, all] = await Promise.all([
          a.admin.read(),
          a.admin.history(),
          a.admin.instances(),
        ]);
        const latest = Math.max(state.latest ?? 0, hist.at(-1)?.revision ?? 0);
        const instances = all
          .filter((i) => i.region === a.region)
          .map((i) => {
            const c = i.config;
            const revision = c ? (c.revisions.at(-1) ?? 0) : null;
            return {
              id: i.id,
              labels: i.labels,
              http: i.http,
              revision,
              inSync: revision !== null && revision >= latest,
              pendingRestart: c?.pendingRestart ?? [],
              lastError: c?.lastError ?? null,
              appliedAt: c?.appliedAt ?? null,
            };
          });
        if (opts.json)
          process.stdout.write(`${JSON.stringify({ prefix: a.admin.prefix, latest, instances })}\n`);
        else if (!instances.length) process.stdout.write(`no instance of region ${a.region} registered\n`);
        else
          process.stdout.write(
            `etcd ${a.admin.prefix}: latest change at revision ${latest}\n${table(
              ['ID', 'LABELS', 'REVISION', 'STATE', 'PENDING RESTART', 'LAST ERROR'],
              instances.map((i) => [
                i.id,
                selectorText(i.labels) || '-',
                String(i.revision ?? '-'),
                i.inSync ? 'applied' : 'behind',
                i.pendingRestart.join(',') || '-',
                i.lastError ? `${i.lastError.code}: ${i.lastError.message}` : '-',
              ]),
            )}`,
          );
      }).catch(fail),
    );
  return [push, diff, history, rollback, status];
}
