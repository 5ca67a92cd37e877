import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { openConfigAdmin } from '../../src/app.js';
import { type PushInput, planPush, viewsOf } from '../../src/cli/config-push.js';
import { loadKapokConfig } from '../../src/config.js';
import { isKapokError } from '../../src/core/errors.js';
import type { InstanceInfo } from '../../src/ports/registry.js';
import { kapok, kapokUp, type Running } from '../helpers/cli.js';
import { ALL_OFF } from '../helpers/config.js';
import { type Etcd, etcdAvailable, startEtcd } from '../helpers/etcd.js';
import { tmpDir } from '../helpers/tmp.js';

// Two `kapok up` processes (labels zone=a, zone=b) on one real etcd started for this file. Changes
// are written as `kapok config push|rollback` writes them (openConfigAdmin + planPush, in this
// process to keep the file short; the CLI itself runs for the conflict and `config status`), and
// read back from what each instance publishes in its registry record. Restart-only keys (shutdownDelayMs,
// shutdownTimeoutMs) make each instance's composed content visible as its pendingRestart list.
const { skip } = await etcdAvailable();
const REGION = 'opstest';

describe('kapok config push, rollback and status on a fleet of two', { skip }, () => {
  let etcd: Etcd;
  let admin: Awaited<ReturnType<typeof openConfigAdmin>>;
  const procs: Record<string, Running> = {};
  const dir = tmpDir('kapok-ops-');
  const write = (name: string, zone: string) => {
    const file = join(dir, `${name}.yaml`);
    writeFileSync(
      file,
      stringify({
        ...ALL_OFF,
        region: REGION,
        http: { host: '127.0.0.1', port: 0 },
        dataDir: join(dir, name),
        shutdownDelayMs: 0,
        log: { level: 'info' },
        control: {
          enabled: true,
          source: 'etcd',
          labels: { zone },
          etcd: { endpoints: [etcd.endpoint], callTimeoutMs: 2000, probeIntervalMs: 5000 },
          registry: { ttlSeconds: 5, prefix: '/kapok-registry-ops/' },
        },
      }),
    );
    return file;
  };
  const push = async (input: Partial<PushInput>, force = false) => {
    const base = await admin.admin.read();
    const plan = planPush(base.keys, { sets: [], unsets: [], ...input });
    if (!force) for (const labels of viewsOf(plan.next)) admin.check(plan.next, labels);
    return admin.admin.commit(base, plan.next, { by: 'test', action: 'push', note: plan.note });
  };
  type Seen = Record<string, InstanceInfo['config']>;
  /** Waits until both instances published a status for `revision` that `ok` accepts. */
  const both = async (
    what: string,
    ok: (s: NonNullable<InstanceInfo['config']>, zone: string) => boolean,
  ) => {
    const end = Date.now() + 20_000;
    let seen: Seen = {};
    for (;;) {
      const all = (await admin.admin.instances()).filter((i) => i.region === REGION);
      seen = Object.fromEntries(all.map((i) => [i.labels.zone as string, i.config]));
      if (all.length === 2 && all.every((i) => i.config && ok(i.config, i.labels.zone as string)))
        return seen;
      if (Date.now() > end) throw new Error(`timed out: ${what}: ${JSON.stringify(seen)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const at = (rev: number) => (s: NonNullable<InstanceInfo['config']>) =>
    (s.revisions[1] ?? 0) >= rev && s.lastError === null;

  before(async () => {
    etcd = await startEtcd();
    const [a, b] = await Promise.all([
      kapokUp({}, ['--config', write('a', 'a')], 60_000),
      kapokUp({}, ['--config', write('b', 'b')], 60_000),
    ]);
    Object.assign(procs, { a, b });
    admin = await openConfigAdmin(loadKapokConfig({ file: join(dir, 'a.yaml') }));
  });
  after(async () => {
    for (const p of Object.values(procs)) {
      p.child.kill('SIGKILL');
      await p.exited;
    }
    admin?.close();
    await etcd?.destroy();
  });

  let first = 0;
  it('a push reaches both instances: applied live (log.level) or pending a restart (shutdownDelayMs)', async () => {
    const r = await push({ sets: ['log.level=debug', 'shutdownDelayMs=7'] });
    assert.deepEqual(
      r.changes.map((c) => c.key),
      ['log/level', 'shutdownDelayMs'],
    );
    first = r.revision;
    await both('first push', (s) => at(first)(s) && s.pendingRestart.join() === 'shutdownDelayMs');
  });

  it('a push limited to a label selector reaches only the matching instance, deletions included', async () => {
    // zone=a: shutdownDelayMs deleted (back to the file's value); zone=b: one more restart key.
    const del = await push({ selector: 'zone=a', unsets: ['shutdownDelayMs'] });
    const put = await push({ selector: 'zone=b', sets: ['shutdownTimeoutMs=1234'] });
    const seen = await both(
      'staged',
      (s, zone) =>
        at(Math.max(del.revision, put.revision))(s) &&
        s.pendingRestart.join() === (zone === 'a' ? '' : 'shutdownDelayMs,shutdownTimeoutMs'),
    );
    assert.deepEqual(seen.a?.pendingRestart, []);
  });

  it('a rollback writes the old content as a new revision, and both follow it', async () => {
    const base = await admin.admin.read();
    const r = await admin.admin.commit(base, await admin.admin.contentAt(first), {
      by: 'test',
      action: 'rollback',
      note: `to revision ${first}`,
    });
    assert.ok(r.revision > base.revision);
    assert.deepEqual(
      r.changes.map((c) => `${c.op} ${c.key}`),
      ['delete @zone%3Da/shutdownDelayMs', 'delete @zone%3Db/shutdownTimeoutMs'],
    );
    await both('rollback', (s) => at(r.revision)(s) && s.pendingRestart.join() === 'shutdownDelayMs');
    const h = await admin.admin.history();
    assert.deepEqual(
      h.map((e) => e.action),
      ['push', 'push', 'push', 'rollback'],
    );
    assert.equal(h.at(-1)?.revision, r.revision);
    // A revision neither the push history nor etcd holds (a future one): a clear refusal.
    await assert.rejects(admin.admin.contentAt(r.revision + 100_000), (e: unknown) =>
      isKapokError(e, 'KAPOK_CONTROL_REVISION_UNKNOWN'),
    );
  });

  it('a push based on a stale revision is refused and loses nothing', async () => {
    const stale = await admin.admin.read();
    const mine = planPush(stale.keys, { sets: ['log.level=info'], unsets: [] });
    const theirs = await push({ sets: ['log.level=trace'] });
    await assert.rejects(
      admin.admin.commit(stale, mine.next, { by: 'test', action: 'push', note: mine.note }),
      (e: unknown) => isKapokError(e, 'KAPOK_CONTROL_CONFLICT'),
    );
    // A deletion leaves no mod revision behind: the compare still catches it.
    const before = await admin.admin.read();
    await push({ unsets: ['shutdownDelayMs'] });
    await assert.rejects(
      admin.admin.commit(before, planPush(before.keys, { sets: ['log.level=info'], unsets: [] }).next, {
        by: 'test',
        action: 'push',
        note: 'x',
      }),
      (e: unknown) => isKapokError(e, 'KAPOK_CONTROL_CONFLICT'),
    );
    const held = await admin.admin.read();
    assert.equal(held.keys.get('log/level'), 'trace');
    assert.ok(held.revision > theirs.revision);
  });

  it('a rejected push changes neither instance; both report why in kapok config status', async () => {
    const file = join(dir, 'a.yaml');
    const prior = await both('settled', (s) => s.lastError === null && s.pendingRestart.length === 0);
    // Checked before writing (as `kapok config push` does without --force): refused, nothing written.
    const held = (await admin.admin.read()).keys;
    await assert.rejects(push({ sets: ['log.level=loud'] }), (e: unknown) => {
      assert.ok(isKapokError(e, 'KAPOK_CONFIG_INVALID'));
      assert.match((e as Error).message, /^log\.level: expected one of/);
      return true;
    });
    assert.deepEqual((await admin.admin.read()).keys, held);
    const bad = await push({ sets: ['log.level=loud'] }, true);
    const [status, conflict] = await Promise.all([
      (async () => {
        await both('rejected', (s) => s.lastError?.revisions[1] === bad.revision);
        return kapok(['config', 'status', '--json', '--config', file]);
      })(),
      kapok(['config', 'push', '--revision', String(first), '--set', 'log.level=info', '--config', file]),
    ]);
    assert.equal(status.code, 0, status.stderr);
    const body = JSON.parse(status.stdout) as {
      latest: number;
      instances: Array<{
        labels: Record<string, string>;
        revision: number;
        inSync: boolean;
        lastError: { code: string; message: string } | null;
      }>;
    };
    assert.equal(body.latest, bad.revision);
    assert.deepEqual(body.instances.map((i) => i.labels.zone).sort(), ['a', 'b']);
    for (const i of body.instances) {
      assert.equal(i.inSync, false);
      assert.equal(i.revision, prior[i.labels.zone as string]?.revisions[1]);
      assert.equal(i.lastError?.code, 'KAPOK_CONFIG_INVALID');
      assert.match(i.lastError?.message ?? '', /^log\.level: expected one of/);
    }
    // The CLI refuses a push based on a stale --revision (exit 1), writing nothing.
    assert.equal(conflict.code, 1, conflict.stderr);
    assert.match(
      conflict.stderr,
      /changed after revision \d+: nothing was written.*\[KAPOK_CONTROL_CONFLICT\]/,
    );
    assert.equal((await admin.admin.read()).keys.get('log/level'), 'loud');
    assert.equal((await admin.admin.history()).at(-1)?.revision, bad.revision);
  });
});
