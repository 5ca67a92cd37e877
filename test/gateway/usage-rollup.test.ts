import { after, describe, it } from 'node:test';
import { createSqliteStore } from '../../src/adapters/sqlite/store.js';
import type { Store } from '../../src/ports/store.js';
import { tmpDir } from '../helpers/tmp.js';
import { rollupFlow } from './usage-rollup-flow.js';

describe('gateway usage per-minute sums on SQLite', () => {
  let store: Store | undefined;
  after(() => store?.close());

  it('back-fills, keeps up with the writer, and answers series as the raw rows do', async () => {
    store = await createSqliteStore({ file: `${tmpDir('kapok-usage-rollup-')}/u.db` });
    await rollupFlow(store);
  });
});
