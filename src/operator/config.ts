import { z } from 'zod';

/** The `operator` section: the AIJob Kubernetes operator (docs/operator.md). */
export const operatorSchema = z
  .strictObject({
    /** Run the operator in this process. Off by default: it acts on a cluster. */
    enabled: z.boolean().default(false),
    /** A kubeconfig file; null: in-cluster (service account) when in a Pod, else ~/.kube/config. */
    kubeconfig: z.string().min(1).nullable().default(null),
    /** Watch AIJobs of this namespace only; null: all namespaces (needs the ClusterRole). */
    namespace: z.string().min(1).max(63).nullable().default(null),
    /** Client-side rate limit of API requests (client-go's defaults are 5 and 10). */
    qps: z.number().positive().max(10_000).default(50),
    burst: z.number().int().min(1).max(10_000).default(100),
    /** Reconciles running at once. */
    workers: z.number().int().min(1).max(64).default(4),
    /** A watch silent this long (no event, no bookmark) is ended and resumed. */
    watchIdleMs: z.number().int().min(100).max(3_600_000).default(300_000),
    /** Backoff after a failed watch, list or reconcile (exponential with jitter, up to retryMaxMs). */
    retryBaseMs: z.number().int().min(1).max(60_000).default(200),
    retryMaxMs: z.number().int().min(1).max(600_000).default(30_000),
    /** Per API request. */
    requestTimeoutMs: z.number().int().min(100).max(600_000).default(30_000),
    /** Every AIJob is reconciled again at least this often, events or not. */
    resyncMs: z.number().int().min(1000).max(86_400_000).default(600_000),
    /** Leader election on a coordination.k8s.io Lease: only the holder reconciles. */
    leaderElection: z
      .strictObject({
        enabled: z.boolean().default(true),
        namespace: z.string().min(1).max(63).default('kapok-system'),
        name: z.string().min(1).max(253).default('kapok-operator'),
        /** The Lease's leaseDurationSeconds: a holder silent this long loses it. */
        leaseDurationS: z.number().int().min(1).max(3600).default(15),
        /** How often the holder renews (and a standby retries); below the lease duration. */
        renewMs: z.number().int().min(50).max(600_000).default(5000),
        /** This replica's name in the Lease; null: hostname-pid. */
        identity: z.string().min(1).max(253).nullable().default(null),
      })
      .prefault({}),
    /** Node label giving each GPU's memory in MiB (NVIDIA GPU feature discovery's). */
    gpuMemoryLabel: z.string().min(1).max(316).default('nvidia.com/gpu.memory'),
    /** The extended resource name of GPUs. */
    gpuResource: z.string().min(1).max(253).default('nvidia.com/gpu'),
    /** Where the checkpoint volume is mounted in worker Pods. */
    checkpointMountPath: z.string().startsWith('/').default('/checkpoint'),
  })
  .superRefine((c, ctx) => {
    if (c.leaderElection.renewMs >= c.leaderElection.leaseDurationS * 1000)
      ctx.addIssue({
        code: 'custom',
        path: ['leaderElection', 'renewMs'],
        message: `must be below leaderElection.leaseDurationS (${c.leaderElection.leaseDurationS} s), or the lease runs out between renewals`,
      });
    if (c.retryMaxMs < c.retryBaseMs)
      ctx.addIssue({ code: 'custom', path: ['retryMaxMs'], message: 'must be at least retryBaseMs' });
  });

export type OperatorConfig = z.infer<typeof operatorSchema>;
