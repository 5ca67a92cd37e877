import { isKapokError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { KubeClient, KubeObject } from '../ports/kubernetes.js';
import { LEASES } from './resources.js';

/**
 * Leader election on a coordination.k8s.io Lease, as client-go's leaderelection does: take the
 * Lease when it is absent or its holder has not renewed it within leaseDurationSeconds, renew it
 * while leading, and lose leadership when a renewal fails past the lease's duration. Every write
 * is a PUT with the Lease's resourceVersion, so of two replicas racing only one wins (the other
 * gets 409). Time is read from this replica's clock, as client-go does (clock skew beyond the lease
 * duration breaks any Lease-based election).
 */

export interface LeaderOptions {
  kube: KubeClient;
  namespace: string;
  name: string;
  identity: string;
  leaseDurationS: number;
  renewMs: number;
  logger: Logger;
  onStart(): void;
  onStop(): void;
}

const micro = (ms: number) => new Date(ms).toISOString().replace('Z', '000Z');

export function createLeaderElector(o: LeaderOptions): { leading(): boolean; stop(): Promise<void> } {
  let leading = false;
  let lastRenew = 0;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;

  async function attempt(): Promise<boolean> {
    const now = Date.now();
    const current = await o.kube.get<KubeObject>(LEASES, o.namespace, o.name);
    const spec = {
      holderIdentity: o.identity,
      leaseDurationSeconds: o.leaseDurationS,
      renewTime: micro(now),
    };
    if (!current) {
      await o.kube.create(LEASES, o.namespace, {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: { name: o.name, namespace: o.namespace },
        spec: { ...spec, acquireTime: micro(now), leaseTransitions: 0 },
      });
      return true;
    }
    const s = current.spec ?? {};
    const mine = s.holderIdentity === o.identity;
    const renewed = Date.parse(s.renewTime ?? '') || 0;
    const expired = !s.holderIdentity || renewed + (s.leaseDurationSeconds ?? o.leaseDurationS) * 1000 < now;
    if (!mine && !expired) return false;
    await o.kube.replace(LEASES, o.namespace, {
      ...current,
      spec: {
        ...s,
        ...spec,
        ...(mine ? {} : { acquireTime: micro(now), leaseTransitions: (s.leaseTransitions ?? 0) + 1 }),
      },
    });
    return true;
  }

  async function tick(): Promise<void> {
    if (stopped) return;
    let held = false;
    try {
      held = await attempt();
      if (held) lastRenew = Date.now();
    } catch (err) {
      // 409: another replica wrote first. Anything else: the API is unreachable; keep leading only
      // while the lease we hold has not run out.
      if (!isKapokError(err, 'KAPOK_OPERATOR_API') || err.details?.status !== 409)
        o.logger.warn({ reason: String(err) }, 'operator: leader election request failed');
      held = leading && Date.now() - lastRenew < o.leaseDurationS * 1000;
    }
    if (stopped) return;
    if (held && !leading) {
      leading = true;
      o.logger.info(
        { identity: o.identity, lease: `${o.namespace}/${o.name}` },
        'operator: became the leader',
      );
      o.onStart();
    } else if (!held && leading) {
      leading = false;
      o.logger.warn({ identity: o.identity }, 'operator: lost the leadership');
      o.onStop();
    }
    timer = setTimeout(() => void tick(), o.renewMs);
    timer.unref?.();
  }

  void tick();
  return {
    leading: () => leading,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      if (!leading) return;
      leading = false;
      o.onStop();
      // Give the Lease up so a standby takes over at once rather than after the lease duration.
      try {
        const cur = await o.kube.get<KubeObject>(LEASES, o.namespace, o.name);
        if (cur?.spec?.holderIdentity === o.identity)
          await o.kube.replace(LEASES, o.namespace, {
            ...cur,
            spec: { ...cur.spec, holderIdentity: null, renewTime: null },
          });
      } catch {
        // It runs out by itself.
      }
    },
  };
}
