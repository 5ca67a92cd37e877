import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type Msg, type NatsConnection, headers as natsHeaders } from '@nats-io/transport-node';
import { createNatsEventBus } from '../../src/adapters/nats/events.js';
import { EVENTS_MIGRATIONS } from '../../src/adapters/nats/outbox.js';
import { createNatsRequestReply } from '../../src/adapters/nats/request.js';
import type { EventBus } from '../../src/ports/events.js';
import type { RequestReply } from '../../src/ports/request.js';
import type { Store } from '../../src/ports/store.js';
import { barrier, barrierKey } from '../../src/saga/barrier.js';
import { deleteRunStreams, NATS_URL, natsAvailable, runPrefix } from '../helpers/nats.js';
import { type Bank, createBank } from './bank.js';
import { opsOf, type Rig, rig, sagaConfig, sqliteStore } from './setup.js';

/**
 * On the real NATS server (4222): nats:// branches by request-reply (the branch service answers
 * through the barrier, status in the Kapok-Saga-Status header), and a dead letter reaching JetStream
 * on <prefix>.saga.dlq.added through the NATS event bus (its Store outbox).
 */
const { skip } = await natsAvailable();
const prefix = runPrefix();

describe('saga over NATS', { skip }, () => {
  let nc: NatsConnection;
  let store: Store;
  let bankStore: Store;
  let bank: Bank;
  let bus: EventBus;
  let rr: RequestReply;
  let r: Rig;
  const failing = new Set<string>();

  before(async () => {
    store = await sqliteStore();
    bankStore = await sqliteStore();
    bank = await createBank(bankStore, { a: 100, b: 100 });
    await store.migrate(EVENTS_MIGRATIONS);
    bus = await createNatsEventBus({
      url: NATS_URL,
      store,
      instanceId: `${prefix}-saga`,
      subjectPrefix: prefix,
    });
    await (bus as EventBus & { ready(): Promise<void> }).ready();
    nc = await connect({ servers: NATS_URL });
    // The branch service: <prefix>.bank.<account>.<op>, through the barrier in its own database.
    nc.subscribe(`${prefix}.bank.*.*`, {
      callback: (_e, msg) => void answer(msg),
    });
    const answer = async (msg: Msg) => {
      const [, , account, op] = msg.subject.split('.');
      const h: Record<string, string> = {};
      if (msg.headers) for (const [k] of msg.headers) h[k.toLowerCase()] = msg.headers.get(k);
      const reply = natsHeaders();
      if (failing.has(op as string)) {
        reply.set('Kapok-Saga-Status', '503');
        msg.respond('{"error":{"code":"DOWN","message":"ledger offline"}}', { headers: reply });
        return;
      }
      const key = barrierKey(h);
      const amount = (JSON.parse(Buffer.from(msg.data).toString()) as { amount: number }).amount;
      const delta = op === 'debit' || op === 'undo-credit' ? -amount : amount;
      const out = await bankStore.transaction((tx) =>
        barrier(tx, key, () =>
          tx.execute('UPDATE bank_accounts SET balance = balance + ? WHERE id = ?', [
            delta,
            account as string,
          ]),
        ),
      );
      reply.set('Kapok-Saga-Status', out.outcome === 'hanging' ? '409' : '200');
      msg.respond(JSON.stringify({ outcome: out.outcome }), { headers: reply });
    };
    await nc.flush();
    rr = await createNatsRequestReply({ url: NATS_URL });
    r = await rig(
      store,
      sagaConfig({
        natsUrl: NATS_URL,
        targets: [{ name: 'nbank', url: `nats://${prefix}.bank.`, timeoutMs: 1000 }],
      }),
      { events: bus, nats: rr },
    );
  });
  after(async () => {
    await r.close();
    await rr.close();
    await bus.close();
    await nc.drain();
    await bank.close();
    await deleteRunStreams(prefix);
    await store.close();
    await bankStore.close();
  });

  const transfer = (gid: string) => ({
    gid,
    mode: 'saga',
    maxAttempts: 2,
    branches: [
      {
        id: 'out',
        action: `nats://${prefix}.bank.a.debit`,
        compensate: `nats://${prefix}.bank.a.undo-debit`,
        payload: { amount: 5 },
      },
      {
        id: 'in',
        action: `nats://${prefix}.bank.b.credit`,
        compensate: `nats://${prefix}.bank.b.undo-credit`,
        payload: { amount: 5 },
      },
    ],
  });

  it('runs a saga whose branches are NATS subjects', async () => {
    await r.submit(transfer('n-1'));
    assert.equal((await r.coordinator.settled('n-1', 5000))?.state, 'succeeded');
    assert.equal(await bank.balance('a'), 95);
    assert.equal(await bank.balance('b'), 105);
  });

  it('a compensation that always fails goes to the dead-letter table and to JetStream (saga.dlq.added)', async () => {
    failing.add('credit');
    failing.add('undo-debit');
    const seen: unknown[] = [];
    const sub = nc.subscribe(`${prefix}.saga.dlq.added`, {
      callback: (_e, m) => {
        seen.push(JSON.parse(Buffer.from(m.data).toString()));
      },
    });
    await r.submit(transfer('n-2'));
    assert.equal((await r.coordinator.settled('n-2', 8000))?.state, 'dead');
    const ops = await opsOf(store, 'n-2');
    assert.match(
      ops.find((o) => o.branch === 'out' && o.op === 'compensate')?.last_error ?? '',
      /KAPOK_SAGA_BRANCH_UNAVAILABLE: nbank answered 503: DOWN ledger offline/,
    );
    const deadline = Date.now() + 5000;
    while (seen.length === 0 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 50));
    sub.unsubscribe();
    const ev = seen[0] as { type: string; data: { gid: string; branch: string; op: string } };
    assert.equal(ev?.type, 'saga.dlq.added');
    assert.deepEqual([ev.data.gid, ev.data.branch, ev.data.op], ['n-2', 'out', 'compensate']);
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info(`${prefix.toUpperCase()}_SAGA`);
    assert.ok(info.state.messages >= 1, 'kept in the stream for people to handle');
    const [row] = await store.query<{ published: number }>('SELECT published FROM saga_dead WHERE gid = ?', [
      'n-2',
    ]);
    assert.equal(Number(row?.published), 1);
    failing.clear();
  });
});
