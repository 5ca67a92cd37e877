import { Command } from 'commander';
import { startApp } from '../app.js';
import { CAPABILITIES, loadKapokConfig } from '../config.js';
import { EXIT, fail } from './exit.js';

/**
 * `kapok operator`: the AIJob operator alone (docs/operator.md). The configuration is read as
 * `kapok up` reads it, with operator.enabled on and every other capability off; /healthz, /readyz
 * and /metrics stay on http.port for the Pod's probes.
 */
export function operatorCommand(): Command {
  return new Command('operator')
    .description('run the AIJob Kubernetes operator alone (docs/operator.md)')
    .option('-c, --config <file>', 'YAML config file (default ./kapok.yaml if present)')
    .option(
      '--kubeconfig <file>',
      'kubeconfig file (default: in-cluster service account, else ~/.kube/config)',
    )
    .option('-n, --namespace <ns>', 'watch AIJobs of this namespace only (default: all)')
    .action(async (opts: { config?: string; kubeconfig?: string; namespace?: string }) => {
      const env: NodeJS.ProcessEnv = { ...process.env };
      for (const c of CAPABILITIES)
        env[`KAPOK_${c.toUpperCase()}__ENABLED`] = c === 'operator' ? 'true' : 'false';
      if (opts.kubeconfig) env.KAPOK_OPERATOR__KUBECONFIG = opts.kubeconfig;
      if (opts.namespace) env.KAPOK_OPERATOR__NAMESPACE = opts.namespace;
      let app: Awaited<ReturnType<typeof startApp>>;
      try {
        app = await startApp(loadKapokConfig({ file: opts.config, env }));
        process.stderr.write(`kapok operator ready (health and metrics on port ${app.port})\n`);
      } catch (err) {
        fail(err);
      }
      const onSignal = () => {
        void app.stop('SIGTERM').then(
          ({ clean }) => process.exit(clean ? EXIT.OK : EXIT.FAILURE),
          (err) => fail(err),
        );
      };
      process.on('SIGTERM', onSignal);
      process.on('SIGINT', onSignal);
    });
}
