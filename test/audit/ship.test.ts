import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { createSqliteStore } from '../../src/adapters/sqlite/store.js';
import { type AuditEntry, chainHash, GENESIS_HASH } from '../../src/audit/chain.js';
import { type Envelope, envelopeAad, Shipper } from '../../src/audit/ship.js';
import { isKapokError } from '../../src/core/errors.js';
import { sm4GcmDecrypt } from '../../src/crypto/sm4.js';
import { tmpDir } from '../helpers/tmp.js';
import { openLog } from './setup.js';

/**
 * Sealed shipping (docs/audit.md#shipping). The receiver is a FAKE of the external government audit
 * centre, an HTTP server in this test: it decrypts each SM4-GCM envelope with the shared key (AAD =
 * firstSeq ‖ lastSeq), checks that the entries chain onto what it holds, and can be switched down
 * (503), or made to lose its answer after accepting (the connection is cut). It does not model the
 * centre's own storage or its authentication of Kapok.
 */

const KEY = Uint8Array.from(Buffer.from('0f1e2d3c4b5a69788796a5b4c3d2e1f0', 'hex'));

class Centre {
  mode: 'up' | 'down' | 'lose-answer-once' = 'up';
  refused = 0;
  envelopes: Envelope[] = [];
  /** Entries accepted, deduplicated by seq (resends carry resend: true). */
  entries = new Map<number, AuditEntry>();
  lastHash = GENESIS_HASH;
  errors: string[] = [];
  server: Server;
  constructor() {
    this.server = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => {
        body += d;
      });
      req.on('end', () => {
        if (this.mode === 'down') {
          this.refused++;
          res.writeHead(503).end();
          return;
        }
        try {
          this.accept(JSON.parse(body) as Envelope);
        } catch (err) {
          this.errors.push(String(err));
          res.writeHead(400).end();
          return;
        }
        if (this.mode === 'lose-answer-once') {
          this.mode = 'up';
          req.socket.destroy();
          return;
        }
        res.writeHead(204).end();
      });
    });
  }
  accept(env: Envelope) {
    assert.equal(env.version, 1);
    assert.equal(env.keyId, 'centre-key-1');
    const plain = sm4GcmDecrypt(
      KEY,
      Buffer.from(env.nonce, 'hex'),
      Buffer.from(env.ciphertext, 'base64'),
      Buffer.from(env.tag, 'hex'),
      envelopeAad(env.firstSeq, env.lastSeq),
    );
    const entries = JSON.parse(Buffer.from(plain).toString('utf8')) as AuditEntry[];
    assert.equal(entries[0]?.seq, env.firstSeq);
    assert.equal(entries.at(-1)?.seq, env.lastSeq);
    this.envelopes.push(env);
    for (const e of entries) {
      if (this.entries.has(e.seq)) {
        if (!env.resend) this.errors.push(`seq ${e.seq} sent twice without resend: true`);
        continue;
      }
      if (e.seq !== this.entries.size + 1) this.errors.push(`seq ${e.seq} out of order`);
      if (chainHash(this.lastHash, e) !== e.hash) this.errors.push(`seq ${e.seq} does not chain`);
      this.lastHash = e.hash;
      this.entries.set(e.seq, e);
    }
  }
  async listen(): Promise<string> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/ingest`;
  }
}

const until = async (what: string, cond: () => boolean, ms = 15_000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe('audit shipping to an audit centre (fake receiver)', () => {
  it('an outage delays; everything arrives in order once the centre is back; a restart sends nothing twice', async () => {
    const centre = new Centre();
    const url = await centre.listen();
    const store = await createSqliteStore({ file: `${tmpDir('kapok-audit-ship-')}/a.db` });
    const log = await openLog(store);
    const write = (n: number, from: number) =>
      Promise.all(
        Array.from({ length: n }, (_, i) =>
          log.record({ actor: 'ops', action: 'test.ship', outcome: 'ok', target: String(from + i) }),
        ),
      );
    const ship = () =>
      new Shipper({
        store,
        url,
        keyId: 'centre-key-1',
        key: KEY,
        batch: 50,
        intervalMs: 20,
        maxBackoffMs: 80,
        timeoutMs: 2000,
      });
    const warn: unknown[] = [];
    try {
      await write(120, 0);
      centre.mode = 'down';
      let shipper = new Shipper({
        store,
        url,
        keyId: 'centre-key-1',
        key: KEY,
        batch: 50,
        intervalMs: 20,
        maxBackoffMs: 80,
        timeoutMs: 2000,
        logger: { warn: (o: unknown) => warn.push(o) } as never,
      });
      shipper.start();
      await until('three refused attempts', () => centre.refused >= 3);
      assert.equal(centre.entries.size, 0);
      assert.ok(
        warn.some((w) => (w as { code: string }).code === 'KAPOK_AUDIT_SHIP_FAILED'),
        'the failure is logged with its code',
      );
      await write(30, 120); // more acts during the outage
      centre.mode = 'up';
      await until('150 entries at the centre', () => centre.entries.size === 150);
      assert.deepEqual(centre.errors, []);
      // The batch that was tried during the outage goes again marked as a resend.
      assert.equal(centre.envelopes[0]?.firstSeq, 1);
      assert.equal(centre.envelopes[0]?.resend, true);
      assert.ok(
        centre.envelopes.slice(1).every((e) => !e.resend),
        'later batches are first sends',
      );
      await shipper.close();

      // Restart: a new shipper on the same Store continues after the acknowledged cursor.
      const before = centre.envelopes.length;
      await write(10, 150);
      shipper = ship();
      shipper.start();
      await until('160 entries', () => centre.entries.size === 160);
      assert.equal(centre.envelopes[before]?.firstSeq, 151);
      assert.equal(centre.envelopes[before]?.resend, false);

      // An answer lost after the centre accepted: the retry carries resend: true, the centre dedupes.
      centre.mode = 'lose-answer-once';
      const lostAt = centre.envelopes.length;
      await write(5, 160);
      await until('165 entries', () => centre.entries.size === 165);
      await until('the retry', () => centre.envelopes.length >= lostAt + 2);
      assert.equal(centre.envelopes[lostAt + 1]?.firstSeq, centre.envelopes[lostAt]?.firstSeq);
      assert.equal(centre.envelopes[lostAt + 1]?.resend, true);
      assert.deepEqual(centre.errors, []);
      await shipper.close();
      const [cur] = await store.query<{ acked_seq: number }>('SELECT acked_seq FROM audit_ship');
      assert.equal(Number(cur?.acked_seq), 165);
    } finally {
      await log.close();
      await store.close();
      centre.server.close();
    }
  });

  it('a tampered envelope does not open at the centre (AAD binds the range)', async () => {
    const { sealBatch } = await import('../../src/audit/ship.js');
    const e = {
      seq: 1,
      time: 1,
      actor: 'a',
      ip: null,
      action: 'a.b',
      target: null,
      outcome: 'ok',
      requestId: null,
      hash: 'x',
    };
    const env = sealBatch(KEY, 'centre-key-1', [e], false);
    const centre = new Centre();
    assert.throws(
      () => centre.accept({ ...env, lastSeq: 2 }),
      (err) => isKapokError(err, 'KAPOK_GM_DECRYPT_FAILED'),
    );
  });
});
