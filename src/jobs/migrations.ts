import type { Migration } from '../ports/store.js';

/**
 * The job scheduler's tables (docs/jobs.md#durability). Times are ms since the epoch (BIGINT).
 * - jobs: one row per job; open_tasks counts tasks not yet terminal (the last to finish ends the job);
 * - job_tasks: one row per task, its state, attempt counter and lease. ready_at is NULL while a
 *   dependency is unfinished (deps_left > 0), else when it may start (a retry's wait included);
 *   class_points is the task's priority class in points when submitted; prio_key = class points − agePerS · ready_at in seconds orders candidates by class and age
 *   with an index (the urgency term is added in memory, see jobs/store.ts);
 * - job_attempts: the attempt ledger, keyed (job, task, attempt): an attempt is inserted when a
 *   task is claimed, so two schedulers can never run the same attempt, and a task once succeeded
 *   is never claimed again;
 * - job_checkpoints: what tasks reported, newest per task handed back to the next attempt;
 * - job_specs: each job's spec as submitted (0004; before, jobs.spec).
 */
const WORKERS = `CREATE TABLE IF NOT EXISTS job_workers (
  id TEXT PRIMARY KEY,
  token_name TEXT NOT NULL,
  gpus TEXT NOT NULL,
  slots INTEGER NOT NULL,
  cpu DOUBLE PRECISION NOT NULL,
  memory_mib INTEGER NOT NULL,
  running INTEGER NOT NULL,
  seen_at BIGINT NOT NULL
);`;

export const JOBS_MIGRATIONS: readonly Migration[] = [
  {
    id: 'jobs/0001_init',
    sql: `CREATE TABLE IF NOT EXISTS jobs (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  state TEXT NOT NULL,
  priority TEXT NOT NULL,
  deadline BIGINT,
  spec TEXT NOT NULL,
  open_tasks INTEGER NOT NULL,
  reason TEXT,
  created_at BIGINT NOT NULL,
  started_at BIGINT,
  finished_at BIGINT
);
CREATE INDEX IF NOT EXISTS jobs_created ON jobs (created_at);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state, created_at);
CREATE TABLE IF NOT EXISTS job_tasks (
  job_id TEXT NOT NULL,
  name TEXT NOT NULL,
  idx INTEGER NOT NULL,
  state TEXT NOT NULL,
  deps_left INTEGER NOT NULL,
  dependents TEXT NOT NULL,
  on_failure TEXT NOT NULL,
  priority TEXT NOT NULL,
  class_points DOUBLE PRECISION NOT NULL,
  spec TEXT NOT NULL,
  deadline BIGINT,
  expected_s DOUBLE PRECISION,
  gpus INTEGER NOT NULL,
  gpu_memory_mib INTEGER NOT NULL,
  cpu DOUBLE PRECISION NOT NULL,
  memory_mib INTEGER NOT NULL,
  attempt INTEGER NOT NULL,
  attempt_base INTEGER NOT NULL,
  ready_at BIGINT,
  prio_key DOUBLE PRECISION,
  lease_owner TEXT,
  lease_until BIGINT,
  reason TEXT,
  started_at BIGINT,
  finished_at BIGINT,
  PRIMARY KEY (job_id, name)
);
CREATE INDEX IF NOT EXISTS job_tasks_ready ON job_tasks (prio_key) WHERE ready_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS job_tasks_lease ON job_tasks (state, lease_until);
CREATE TABLE IF NOT EXISTS job_attempts (
  job_id TEXT NOT NULL,
  task TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  owner TEXT NOT NULL,
  pid INTEGER,
  gpus TEXT NOT NULL,
  state TEXT NOT NULL,
  failure TEXT,
  exit_code INTEGER,
  output TEXT,
  started_at BIGINT NOT NULL,
  finished_at BIGINT,
  PRIMARY KEY (job_id, task, attempt)
);
CREATE TABLE IF NOT EXISTS job_checkpoints (
  job_id TEXT NOT NULL,
  task TEXT NOT NULL,
  seq INTEGER NOT NULL,
  attempt INTEGER NOT NULL,
  data TEXT,
  uri TEXT,
  sm3 TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (job_id, task, seq)
);`,
  },
  {
    // The executor as a column, so a worker claims only what it can run (pull workers: no inference);
    // job_workers: the pull workers seen, their GPUs as last reported (refreshed on each heartbeat).
    id: 'jobs/0002_workers',
    sql: {
      sqlite: `ALTER TABLE job_tasks ADD COLUMN executor TEXT NOT NULL DEFAULT 'process';
UPDATE job_tasks SET executor = json_extract(spec, '$.run.executor');
${WORKERS}`,
      postgres: `ALTER TABLE job_tasks ADD COLUMN IF NOT EXISTS executor TEXT NOT NULL DEFAULT 'process';
UPDATE job_tasks SET executor = (spec::json -> 'run' ->> 'executor');
${WORKERS}`,
    },
  },
  {
    // The ready rows that have a deadline, by prio_key: a claim reads the best of them next to its
    // short first page, to bound what urgency can add to a row it did not read (transitions.ts).
    id: 'jobs/0003_ready_deadline',
    sql: 'CREATE INDEX IF NOT EXISTS job_tasks_ready_deadline ON job_tasks (prio_key) WHERE ready_at IS NOT NULL AND deadline IS NOT NULL;',
  },
  {
    // The submitted spec in a table of its own: on SQLite every UPDATE of a jobs row (open_tasks,
    // once per batch of results) read back its whole record, spec included (230 kB for 1,000
    // tasks: ~0.5 ms an UPDATE, 0.05 ms without it). Written once, read by no transition.
    id: 'jobs/0004_job_specs',
    sql: {
      sqlite: `CREATE TABLE IF NOT EXISTS job_specs (job_id TEXT PRIMARY KEY, spec TEXT NOT NULL);
INSERT OR IGNORE INTO job_specs (job_id, spec) SELECT id, spec FROM jobs;
ALTER TABLE jobs DROP COLUMN spec;`,
      postgres: `CREATE TABLE IF NOT EXISTS job_specs (job_id TEXT PRIMARY KEY, spec TEXT NOT NULL);
INSERT INTO job_specs (job_id, spec) SELECT id, spec FROM jobs ON CONFLICT DO NOTHING;
ALTER TABLE jobs DROP COLUMN spec;`,
    },
  },
];
