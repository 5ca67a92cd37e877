import { Command } from 'commander';
import { WebSocket } from 'ws';
import { ensureDataDir, replayEdgeDeadLetters, resolveDataDir } from '../app.js';
import { KapokError } from '../core/errors.js';
import { AS_OPTION, adminBearer } from './admin-token.js';
import { cliConfig } from './context.js';
import { fail } from './exit.js';

/** `kapok edge tail|replay-dead-letters`: live points from a running Kapok; dead-letter replay. */
export function edgeCommand(): Command {
  const cmd = new Command('edge').description('edge telemetry: live points, dead letters');

  cmd
    .command('tail')
    .description('print live decoded points from a running `kapok up` (one line each)')
    .option('--topic <filter>', 'MQTT topic filter (+ and # wildcards)', '#')
    .option('--url <url>', 'Kapok base URL (default http://127.0.0.1:<http.port> from the config)')
    .option('-c, --config <file>', 'YAML config file')
    .option('--json', 'print each point as JSON')
    .option(...AS_OPTION)
    .action(async (opts: { topic: string; url?: string; config?: string; json?: boolean; as?: string }) => {
      try {
        const { config } = cliConfig(opts);
        const base = new URL(opts.url ?? `http://127.0.0.1:${config.http.port}`);
        base.protocol = base.protocol === 'https:' ? 'wss:' : 'ws:';
        base.pathname = '/ws/telemetry';
        base.search = `?topic=${encodeURIComponent(opts.topic)}`;
        const token = adminBearer(config, config.edge.adminToken, 'viewer', opts.as);
        const ws = new WebSocket(base, token ? { headers: { authorization: `Bearer ${token}` } } : {});
        await new Promise<void>((resolve, reject) => {
          ws.once('open', () => resolve());
          ws.once('error', (err) =>
            reject(
              new KapokError(
                'KAPOK_START_FAILED',
                `cannot reach ${base.origin}/ws/telemetry (${err.message}): is kapok up running with edge.enabled, and is --url or http.port right?`,
              ),
            ),
          );
        });
        ws.on('message', (data) => {
          const frame = JSON.parse(String(data)) as {
            type: string;
            topic?: string;
            count?: number;
            points?: { ts: number; measurement: string; device: string; fields: object; tags: object }[];
          };
          if (frame.type === 'dropped') {
            process.stderr.write(`kapok: ${frame.count} frames dropped (this terminal is too slow)\n`);
            return;
          }
          for (const p of frame.points ?? []) {
            process.stdout.write(
              opts.json
                ? `${JSON.stringify({ topic: frame.topic, ...p })}\n`
                : `${new Date(p.ts).toISOString()} ${p.device} ${p.measurement} ${Object.entries(p.fields)
                    .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
                    .join(' ')}\n`,
            );
          }
        });
        const code = await new Promise<number>((r) => ws.once('close', (c) => r(c)));
        process.exit(code === 1000 || code === 1001 ? 0 : 1);
      } catch (err) {
        fail(err);
      }
    });

  cmd
    .command('replay-dead-letters')
    .description('re-decode dead letters with the current config; those that decode go to the sinks')
    .option('-c, --config <file>', 'YAML config file')
    .option('--json', 'print JSON')
    .action(async (opts: { config?: string; json?: boolean }) => {
      try {
        const loaded = cliConfig(opts);
        const dataDir = resolveDataDir(loaded);
        ensureDataDir(dataDir);
        // app.ts picks the spool's storage; edge's replay and SQLite load only for this command.
        const r = await replayEdgeDeadLetters(loaded.config.edge, dataDir);
        process.stdout.write(
          opts.json
            ? `${JSON.stringify(r)}\n`
            : `replayed ${r.replayed}, still failing ${r.stillFailing}${Object.entries(r.reasons)
                .map(([k, n]) => `\n  ${n} × ${k}`)
                .join('')}\n`,
        );
      } catch (err) {
        fail(err);
      }
    });
  return cmd;
}
