import { createMemoryRegistry, createRegistryHub } from '../../src/adapters/memory/registry.js';
import { registryConformance } from '../ports/registry.conformance.js';

let hub = createRegistryHub();
registryConformance('memory', {
  make: async () => createMemoryRegistry(hub),
  reset: () => {
    hub = createRegistryHub();
  },
});
