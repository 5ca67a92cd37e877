import { createSqliteStore } from '../../src/adapters/sqlite/store.js';
import { tmpDir } from '../helpers/tmp.js';
import { transitionsSuite } from './transitions.suite.js';

transitionsSuite('sqlite', () => createSqliteStore({ file: `${tmpDir('kapok-jobs-')}/j.db` }));
