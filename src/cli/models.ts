import { Command } from 'commander';
import { request } from 'undici';
import { ERROR_CATALOGUE, type ErrorCode, KapokError, messageOf } from '../core/errors.js';
import { AS_OPTION, adminBearer } from './admin-token.js';
import { cliConfig } from './context.js';
import { fail } from './exit.js';
import { table } from './table.js';

/**
 * `kapok models list|load|unload`: model control of a running `kapok up` through its OIP repository
 * extension (POST /v2/repository/...), so the server that holds the workers does the loading.
 */

interface Opts {
  url?: string;
  config?: string;
  json?: boolean;
  as?: string;
}

async function call(opts: Opts, path: string): Promise<unknown> {
  const { config } = cliConfig(opts);
  // Model control is operator's; the index is open (the token does no harm there).
  const token = adminBearer(config, config.inference.adminToken, 'operator', opts.as);
  const base = (opts.url ?? `http://127.0.0.1:${config.http.port}`).replace(/\/+$/, '');
  let res: Awaited<ReturnType<typeof request>>;
  try {
    res = await request(`${base}${path}`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
      body: '{}',
      headersTimeout: 120_000,
      bodyTimeout: 120_000,
    });
  } catch (err) {
    throw new KapokError(
      'KAPOK_UPSTREAM_UNAVAILABLE',
      `cannot reach Kapok at ${base} (${(err as NodeJS.ErrnoException).code ?? messageOf(err)}): is \`kapok up\` running with inference.enabled, and are --url or http.port right?`,
    );
  }
  const text = await res.body.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  if (res.statusCode >= 400) {
    const header = String(res.headers['x-kapok-error'] ?? '');
    const code = (Object.hasOwn(ERROR_CATALOGUE, header) ? header : 'KAPOK_INTERNAL') as ErrorCode;
    const msg = (body as { error?: unknown })?.error;
    throw new KapokError(code, typeof msg === 'string' ? msg : `HTTP ${res.statusCode} from ${base}${path}`);
  }
  return body;
}

const common = (c: Command) =>
  c
    .option('--url <url>', 'Kapok base URL (default http://127.0.0.1:<http.port> from the config)')
    .option('-c, --config <file>', 'YAML config file')
    .option('--json', 'print JSON')
    .option(...AS_OPTION);

export function modelsCommand(): Command {
  const cmd = new Command('models').description('inference models of a running kapok: list, load, unload');

  common(cmd.command('list').description('list every model version in the repository with its state')).action(
    async (opts: Opts) => {
      try {
        const rows = (await call(opts, '/v2/repository/index')) as Array<{
          name: string;
          version: string;
          state: string;
          reason: string;
        }>;
        if (opts.json) process.stdout.write(`${JSON.stringify(rows)}\n`);
        else if (rows.length === 0) process.stdout.write('no models in the repository\n');
        else
          process.stdout.write(
            table(
              ['MODEL', 'VERSION', 'STATE', 'REASON'],
              rows.map((r) => [r.name, r.version || '-', r.state, r.reason ?? '']),
            ),
          );
      } catch (err) {
        fail(err);
      }
    },
  );

  for (const action of ['load', 'unload'] as const)
    common(
      cmd
        .command(`${action} <model>`)
        .description(
          action === 'load'
            ? 'load (or reload) a model now; failed versions are retried'
            : 'unload every version of a model until it is loaded again',
        ),
    ).action(async (model: string, opts: Opts) => {
      try {
        await call(opts, `/v2/repository/models/${encodeURIComponent(model)}/${action}`);
        process.stdout.write(
          opts.json
            ? `${JSON.stringify({ model, [action === 'load' ? 'loaded' : 'unloaded']: true })}\n`
            : `${action}ed ${model}\n`,
        );
      } catch (err) {
        fail(err);
      }
    });
  return cmd;
}
