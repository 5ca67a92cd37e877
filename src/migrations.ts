import { AUDIT_MIGRATIONS } from './audit/migrations.js';
import { CONSOLE_MIGRATIONS } from './console/migrations.js';
import { GATEWAY_MIGRATIONS } from './gateway/migrations.js';
import { GM_MIGRATIONS } from './gm/migrations.js';
import { JOBS_MIGRATIONS } from './jobs/migrations.js';
import type { Migration } from './ports/store.js';
import { SAGA_MIGRATIONS } from './saga/migrations.js';

/**
 * Every capability's tables, for the commands that work on the Store beside a running Kapok (or
 * none): `kapok keys`, `kapok device`, `kapok audit`. `kapok up` migrates each enabled capability in
 * its factory. Migrations are idempotent and recorded by id, so running all of them is safe at any time.
 */
export const ALL_MIGRATIONS: readonly Migration[] = [
  ...GATEWAY_MIGRATIONS,
  ...GM_MIGRATIONS,
  ...AUDIT_MIGRATIONS,
  ...JOBS_MIGRATIONS,
  ...SAGA_MIGRATIONS,
  ...CONSOLE_MIGRATIONS,
];
