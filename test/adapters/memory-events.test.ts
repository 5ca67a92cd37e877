import { createMemoryEventBus } from '../../src/adapters/memory/events.js';
import { eventsConformance } from '../ports/events.conformance.js';

let n = 0;
eventsConformance('memory', {
  make: (o) => createMemoryEventBus({ instanceId: `mem-${++n}`, ...o }),
});
