import { hostname } from 'node:os';
import type { CapabilityFactory } from '../ports/capability.js';
import type { JobModel } from '../ports/job-model.js';
import type { KubeClient } from '../ports/kubernetes.js';
import type { OperatorConfig } from './config.js';
import { Controller } from './controller.js';
import { createLeaderElector } from './leader.js';

/** What the wiring point builds for the operator: the Kubernetes client and the jobs capability's model. */
export interface OperatorDeps {
  kube: KubeClient;
  model: JobModel;
}

/**
 * The AIJob operator (docs/operator.md): a controller reconciling AIJobs into worker Pods, acting
 * only while this replica holds the leader Lease (leaderElection.enabled: false acts at once, for
 * a single replica). No routes: its surface is the AIJob resource and its status.
 */
export const createOperator: CapabilityFactory<OperatorConfig, OperatorDeps> = async (ctx, deps) => {
  const cfg = ctx.config;
  const logger = ctx.logger.child({ capability: 'operator' });
  const controller = new Controller({
    kube: deps.kube,
    model: deps.model,
    config: cfg,
    logger,
    registry: ctx.metrics.registry,
  });
  const le = cfg.leaderElection;
  let elector: ReturnType<typeof createLeaderElector> | null = null;
  ctx.health.register({
    name: 'operator',
    kind: 'capability',
    // A standby is ready too: it keeps its caches warm and takes over when the leader goes.
    check: () => ({
      ready: true,
      detail: { role: !le.enabled || elector?.leading() ? 'leader' : 'standby', ...controller.stats() },
    }),
  });
  return {
    name: 'operator',
    async start() {
      await controller.start();
      if (!le.enabled) return controller.setActive(true);
      elector = createLeaderElector({
        kube: deps.kube,
        namespace: le.namespace,
        name: le.name,
        identity: le.identity ?? `${hostname()}-${process.pid}`,
        leaseDurationS: le.leaseDurationS,
        renewMs: le.renewMs,
        logger,
        onStart: () => controller.setActive(true),
        onStop: () => controller.setActive(false),
      });
    },
    async stop() {
      await elector?.stop();
      await controller.stop();
      deps.kube.close();
    },
  };
};
