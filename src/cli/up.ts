import { Command } from 'commander';
import { startApp } from '../app.js';
import { loadKapokConfig } from '../config.js';
import { startBanner } from './banner.js';
import { EXIT, fail } from './exit.js';

export function upCommand(): Command {
  return new Command('up')
    .description('start every enabled capability (embedded defaults unless configured otherwise)')
    .option('-c, --config <file>', 'YAML config file (default ./kapok.yaml if present)')
    .action(async (opts: { config?: string }) => {
      let app: Awaited<ReturnType<typeof startApp>>;
      try {
        const loaded = loadKapokConfig({ file: opts.config });
        app = await startApp(loaded);
        process.stderr.write(startBanner(app.config, app.port));
      } catch (err) {
        fail(err);
      }
      let signals = 0;
      const onSignal = (sig: NodeJS.Signals) => {
        signals += 1;
        if (signals > 1) {
          // A second signal means "now": skip the rest of the drain.
          app.logger.warn({ signal: sig }, 'second signal: exiting without finishing the drain');
          process.exit(EXIT.FAILURE);
        }
        void app.stop(sig).then(
          ({ clean }) => process.exit(clean ? EXIT.OK : EXIT.FAILURE),
          (err) => fail(err),
        );
      };
      process.on('SIGTERM', onSignal);
      process.on('SIGINT', onSignal);
      // SIGHUP re-reads the configuration (control.enabled) instead of ending the process.
      process.on('SIGHUP', () => {
        void app.reload().catch((err) => app.logger.warn({ reason: String(err) }, 'reload on SIGHUP failed'));
      });
    });
}
