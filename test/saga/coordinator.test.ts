import { sqliteStore } from './setup.js';
import { coordinatorSuite } from './coordinator.suite.js';

coordinatorSuite('sqlite', async () => {
  const coordinator = await sqliteStore();
  const bank = await sqliteStore();
  return { coordinator, bank, close: async () => { await coordinator.close(); await bank.close(); } };
});
