import { Command } from 'commander';
import { request } from 'undici';
import { ERROR_CATALOGUE, type ErrorCode, KapokError, messageOf } from '../core/errors.js';
import type { InstanceInfo } from '../ports/registry.js';
import { AS_OPTION, adminBearer } from './admin-token.js';
import { cliConfig } from './context.js';
import { fail } from './exit.js';
import { table } from './table.js';

interface Opts {
  url?: string;
  config?: string;
  json?: boolean;
  as?: string;
}

/** `kapok instances list`: the fleet as a running Kapok's service registry sees it (GET /api/control/instances). */
export function instancesCommand(): Command {
  const cmd = new Command('instances').description('the Kapok instances in the service registry');
  cmd
    .command('list')
    .description('list the registered instances (id, region, version, capabilities, addresses, labels)')
    .option('--url <url>', 'Kapok base URL (default http://127.0.0.1:<http.port> from the config)')
    .option('-c, --config <file>', 'YAML config file')
    .option('--json', 'print JSON')
    .option(...AS_OPTION)
    .action(async (opts: Opts) => {
      try {
        const { config } = cliConfig(opts);
        const token = adminBearer(config, config.control.adminToken, 'viewer', opts.as);
        const base = (opts.url ?? `http://127.0.0.1:${config.http.port}`).replace(/\/+$/, '');
        let res: Awaited<ReturnType<typeof request>>;
        try {
          res = await request(`${base}/api/control/instances`, {
            headers: token ? { authorization: `Bearer ${token}` } : {},
            headersTimeout: 10_000,
            bodyTimeout: 10_000,
          });
        } catch (err) {
          throw new KapokError(
            'KAPOK_UPSTREAM_UNAVAILABLE',
            `cannot reach Kapok at ${base} (${(err as NodeJS.ErrnoException).code ?? messageOf(err)}): is \`kapok up\` running, and are --url or http.port right?`,
          );
        }
        const text = await res.body.text();
        if (res.statusCode >= 400) {
          // The API's error shape: {"error": {"code", "message"}}.
          let e: { code?: unknown; message?: unknown } = {};
          try {
            e = JSON.parse(text)?.error ?? {};
          } catch {}
          const known = typeof e.code === 'string' && Object.hasOwn(ERROR_CATALOGUE, e.code);
          throw new KapokError(
            (known ? e.code : 'KAPOK_INTERNAL') as ErrorCode,
            typeof e.message === 'string' ? e.message : `HTTP ${res.statusCode} from ${base}`,
          );
        }
        const body = JSON.parse(text) as { instances: InstanceInfo[] };
        if (opts.json) process.stdout.write(`${JSON.stringify(body)}\n`);
        else if (body.instances.length === 0) process.stdout.write('no instances registered\n');
        else
          process.stdout.write(
            table(
              ['ID', 'REGION', 'VERSION', 'HTTP', 'CAPABILITIES', 'LABELS', 'STARTED'],
              body.instances.map((i) => [
                i.id,
                i.region,
                i.version,
                i.http ?? '-',
                i.capabilities.join(',') || '-',
                Object.entries(i.labels)
                  .map(([k, v]) => `${k}=${v}`)
                  .join(',') || '-',
                i.startedAt,
              ]),
            ),
          );
      } catch (err) {
        fail(err);
      }
    });
  return cmd;
}
