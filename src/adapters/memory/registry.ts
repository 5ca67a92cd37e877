import { byId, type InstanceInfo, type Registry, type RegistryStatus } from '../../ports/registry.js';

/** The instances of one process; registries made on the same hub see each other (tests, embedders). */
export type RegistryHub = Map<string, InstanceInfo>;

export function createRegistryHub(): RegistryHub {
  return new Map();
}

/** The memory registry: one process, no expiry (a process that dies takes the hub with it). */
export function createMemoryRegistry(hub: RegistryHub = createRegistryHub()): Registry {
  let self: string | null = null;
  let closed = false;
  return {
    async register(info) {
      if (closed) throw new Error('registry closed');
      if (self && self !== info.id) hub.delete(self);
      self = info.id;
      hub.set(info.id, structuredClone(info));
    },
    async update(info) {
      if (self !== info.id) throw new Error('registry: update before register');
      hub.set(info.id, structuredClone(info));
    },
    async deregister() {
      if (self) hub.delete(self);
      self = null;
    },
    list: () => [...hub.values()].map((i) => structuredClone(i)).sort(byId),
    status: (): RegistryStatus => ({ kind: 'memory', connected: self !== null }),
    async close() {
      if (self) hub.delete(self);
      self = null;
      closed = true;
    },
  };
}
