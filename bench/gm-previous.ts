import { sm2GenerateKeyPair, sm2Sign } from '../src/crypto/index.js';
import { SM2_CURVE, sm2Domain, sm2SignOn } from '../src/crypto/sm2.js';
import { GtTable, gtTable } from '../src/crypto/sm9/fixed.js';
import { fp12mul } from '../src/crypto/sm9/fp12.js';
import { type Sm9SignMasterKey, sm9Sign } from '../src/crypto/sm9/index.js';
import { finalExp, millerLoop, prepareG2 } from '../src/crypto/sm9/pairing.js';
import { G1 } from '../src/crypto/sm9/params.js';
import { decodeSm9Signature } from '../src/crypto/sm9/sign.js';
import { pairPrepared } from '../src/crypto/sm9/wasm/pairing.js';
import * as oldFixed from '../test/gm/sm9-oracle/fixed.js';
import * as old12 from '../test/gm/sm9-oracle/fp12.js';
import * as oldPairing from '../test/gm/sm9-oracle/pairing.js';

/**
 * Same-run ratios against the code issue 24 replaced: SM9 verification's arithmetic (Miller loop
 * with the prepared point, final exponentiation, g^h) in test/gm/sm9-oracle/ against src's wasm
 * field (sm9VerifyArithmetic), src's bigint path (the one for processes without WebAssembly, the
 * hot path before item 6) against the wasm field (sm9WasmVsBigint), and SM2
 * signing on a fresh domain with @noble/curves' default 6-bit windows and no Z cache against
 * sm2Sign. Alternating blocks, timed by process CPU time so that waiting for a busy core does not
 * count; the ratio is the figure, the milliseconds are only as good as the machine's load.
 */
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

function alternate(rounds: number, per: number, a: (i: number) => unknown, b: (i: number) => unknown) {
  for (let i = 0; i < 3; i++) {
    a(i);
    b(i);
  }
  let ta = 0;
  let tb = 0;
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 ? [a, b] : [b, a];
    for (const f of order) {
      const t0 = cpuMs();
      for (let i = 0; i < per; i++) f(r * per + i);
      const dt = cpuMs() - t0;
      if (f === a) ta += dt;
      else tb += dt;
    }
  }
  const n = rounds * per;
  return { previousMs: round3(ta / n), nowMs: round3(tb / n), nowOverPrevious: round3(tb / ta) };
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;

export function gmVsPrevious(master: Sm9SignMasterKey, rounds = 20) {
  const pub = master.publicKey;
  const user = master.extract('SN-000001');
  const prepared = pub.preparedFor(new TextEncoder().encode('SN-000001'), 1);
  if (!prepared) throw new Error('no prepared point');
  const sigs = Array.from({ length: 16 }, (_, i) => decodeSm9Signature(sm9Sign(pub, user, `m${i}`)));
  const pts = sigs.map((s) => G1.fromBytes(s.S).toAffine());
  const p1 = G1.BASE.toAffine();
  const g = finalExp(millerLoop(prepareG2(pub.point), p1.x, p1.y));
  const bigTable = new GtTable(g);
  const nowTable = gtTable(g);
  const oldTable = new oldFixed.GtTable(g);
  const at = (i: number) => [pts[i % 16], sigs[i % 16]?.h] as const;
  const sm9 = alternate(
    rounds,
    3,
    (i) => {
      const [s, h] = at(i);
      return old12.fp12mul(
        oldPairing.finalExp(oldPairing.millerLoop(prepared, s?.x ?? 0n, s?.y ?? 0n)),
        oldTable.pow(h ?? 1n),
      );
    },
    (i) => {
      const [s, h] = at(i);
      return fp12mul(pairPrepared(prepared, s?.x ?? 0n, s?.y ?? 0n), nowTable.pow(h ?? 1n));
    },
  );
  const sm9Bigint = alternate(
    rounds,
    3,
    (i) => {
      const [s, h] = at(i);
      return fp12mul(finalExp(millerLoop(prepared, s?.x ?? 0n, s?.y ?? 0n)), bigTable.pow(h ?? 1n));
    },
    (i) => {
      const [s, h] = at(i);
      return fp12mul(pairPrepared(prepared, s?.x ?? 0n, s?.y ?? 0n), nowTable.pow(h ?? 1n));
    },
  );
  const kp = sm2GenerateKeyPair();
  const oldDomain = sm2Domain(SM2_CURVE);
  const sm2 = alternate(
    rounds,
    20,
    (i) => sm2SignOn(oldDomain, kp.privateKey, `m${i}`, { publicKey: kp.publicKey }),
    (i) => sm2Sign(kp.privateKey, `m${i}`, { publicKey: kp.publicKey }),
  );
  return { sm9VerifyArithmetic: sm9, sm9WasmVsBigint: sm9Bigint, sm2Sign: sm2 };
}
