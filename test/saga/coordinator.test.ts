import { coordinatorSuite } from './coordinator.suite.js';
import { sqliteStore } from './setup.js';

coordinatorSuite('sqlite', async () => {
  const coordinator = await sqliteStore();
  const bank = await sqliteStore();
  return {
    coordinator,
    bank,
    close: async () => {
      await coordinator.close();
      await bank.close();
    },
  };
});
