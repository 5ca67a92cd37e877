/**
 * Malformed UPER: truncated, wrong CHOICE index, out-of-range values, huge lengths, bit flips and
 * random bytes. Each decode throws KAPOK_V2X_DECODE (with a path) or returns a value that re-encodes;
 * never a RangeError, a hang or an allocation of what a length claims.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isKapokError } from '../../../src/core/errors.js';
import { decodeUper, encodeUper, type MessageFrame } from '../../../src/v2x/codec/index.js';
import { bin, bitsOf, bufOf } from './helpers/bits.js';
import { MIN_BSM, MIN_BSM_BITS, MIN_BSM_HEX, MIN_BSM_VC_EXT_BIT } from './helpers/fixtures.js';
import { FRAMES, prng, randomMessage } from './helpers/random.js';

const ROOT = bitsOf(Buffer.from(MIN_BSM_HEX, 'hex')).slice(0, MIN_BSM_BITS);
const X = MIN_BSM_VC_EXT_BIT;
/** The minimal BSM with VehicleClassification's extension bit set and `tail` after its root. */
const withExt = (tail: string) => bufOf(`${ROOT.slice(0, X)}1${ROOT.slice(X + 1)}${tail}`);

function rejects(buf: Uint8Array, re: RegExp): void {
  assert.throws(
    () => decodeUper(buf),
    (e: unknown) =>
      isKapokError(e) && e.code === ('KAPOK_V2X_DECODE' as never) && e.status === 400 && re.test(e.message),
    String(re),
  );
}

/** The fuzz oracle: a KAPOK_V2X_DECODE naming a path, or a value that re-encodes and decodes back. */
function decodeOrReject(buf: Uint8Array): 'ok' | 'rejected' {
  let v: MessageFrame;
  try {
    v = decodeUper(buf);
  } catch (e) {
    if (!isKapokError(e) || e.code !== ('KAPOK_V2X_DECODE' as never) || !/ at \S/.test(e.message)) throw e;
    return 'rejected';
  }
  assert.deepEqual(decodeUper(encodeUper(v)), v);
  return 'ok';
}

describe('v2x codec: hostile UPER', () => {
  it('rejects a wrong CHOICE index, out-of-range values and sizes with the field path', () => {
    rejects(bufOf(`0${bin(5, 3)}0000`), /at \(message\): value 5 out of range 0\.\.4/);
    rejects(bufOf(`0${bin(7, 3)}0000`), /value 7 out of range 0\.\.4/);
    // accelSet.long is 12 bits for -2000..2001: 4095 is past the range.
    const at = ROOT.indexOf(bin(2000, 12), 194);
    rejects(
      bufOf(`${ROOT.slice(0, at)}${bin(4095, 12)}${ROOT.slice(at + 12)}`),
      /bsmFrame\.accelSet\.long: value 2095 out of range -2000\.\.2001/,
    );
    // SPAT with only `name` present: its IA5String SIZE(1..63) length field (6 bits) says 64.
    rejects(
      bufOf(`0${bin(3, 3)}0001${bin(0, 7)}${bin(63, 6)}`),
      /at spatFrame\.name: value 64 out of range 1\.\.63/,
    );
    // MAP with timeStamp present: MinuteOfTheYear (0..527040, 20 bits) says 527041.
    rejects(
      bufOf(`0${bin(1, 3)}01${bin(0, 7)}${bin(527040 + 1, 20)}`),
      /at mapFrame\.timeStamp: value 527041 out of range 0\.\.527040/,
    );
  });

  it('names the enclosing component when its preamble (extension and presence bits) is cut', () => {
    // MessageFrame header, then the BSM's extension bit and only 3 of its 7 presence bits.
    rejects(
      bufOf('0000' + '0101').subarray(0, 1),
      /at bsmFrame: truncated: needs 7 more bits at bit 5, 3 left/,
    );
  });

  it('rejects truncation at every bit of real messages', () => {
    const rnd = prng(11);
    for (const frame of FRAMES) {
      const bytes = encodeUper(randomMessage(rnd, frame, { mode: 'random', optional: 0.7, printable: true }));
      for (let n = 0; n < bytes.length; n++) rejects(bytes.subarray(0, n), /truncated|exceeds the input/);
    }
  });

  it('skips unknown SEQUENCE extension additions of any length, fragmented ones included', () => {
    for (const octets of [0, 1, 2, 3, 5, 127, 128, 1000]) {
      const len = octets < 128 ? bin(octets, 8) : `10${bin(octets, 14)}`;
      const buf = withExt(`0${bin(0, 6)}1${len}${'1'.repeat(octets * 8)}`);
      assert.deepEqual(decodeUper(buf), { bsmFrame: MIN_BSM }, `${octets} octets`);
    }
    // 16K octets in one fragment, then a final length of 2.
    const frag = withExt(`0${bin(0, 6)}1${'11000001'}${'0'.repeat(16384 * 8)}${bin(2, 8)}${'0'.repeat(16)}`);
    assert.deepEqual(decodeUper(frag), { bsmFrame: MIN_BSM });
  });

  it('checks huge lengths against the input before using them', () => {
    // An open type claiming 4 x 16K octets, an extension bitmap of 16383 bits, a bit string of 16383
    // bits: all in a buffer of a few dozen bytes.
    rejects(
      withExt(`0${bin(0, 6)}1${'11000100'}${'1'.repeat(64)}`),
      /\.\.\.: open type of 65536 octets exceeds the input/,
    );
    rejects(withExt(`1${'10'}${bin(16383, 14)}1111`), /extension bitmap of 16383 bits exceeds the input/);
    rejects(withExt(`1${'11000011'}`), /fragment|exceeds/);
    const safety = encodeUper({ bsmFrame: { ...MIN_BSM, safetyExt: { events: '1'.repeat(14) } } });
    const b = bitsOf(safety);
    const i = b.indexOf(`1${bin(14, 8)}${'1'.repeat(14)}`);
    assert.ok(i > 0);
    rejects(
      bufOf(`${b.slice(0, i)}1${'10'}${bin(16383, 14)}${'1'.repeat(40)}`),
      /safetyExt\.events: truncated: bit string of 16383 bits exceeds the input/,
    );
  });

  it('round-trips an extensible bit string past 16K bits (fragmented length)', () => {
    for (const n of [0, 12, 14, 16383, 16384, 16385, 65536, 70000]) {
      const events = '10'.repeat(n / 2) + (n % 2 ? '1' : '');
      const m: MessageFrame = { bsmFrame: { ...MIN_BSM, safetyExt: { events } } };
      assert.deepEqual(decodeUper(encodeUper(m)), m, `${n} bits`);
    }
  });

  it('fuzz: 3,000 random buffers and 6,000 mutated real messages (fixed seed)', () => {
    const rnd = prng(0xf022);
    const seen = { ok: 0, rejected: 0 };
    for (let i = 0; i < 3000; i++) {
      const b = new Uint8Array(Math.floor(rnd() * 120));
      for (let k = 0; k < b.length; k++) b[k] = Math.floor(rnd() * 256);
      // Half start with a valid frame index so decoding goes deep.
      if (b.length && i % 2) b[0] = (Math.floor(rnd() * 5) << 4) | (b[0]! & 0x0f);
      seen[decodeOrReject(b)]++;
    }
    const real = FRAMES.flatMap((f) =>
      Array.from({ length: 8 }, () =>
        encodeUper(randomMessage(rnd, f, { mode: 'random', optional: 0.6, printable: true })),
      ),
    );
    for (let i = 0; i < 6000; i++) {
      const b = Uint8Array.from(real[i % real.length]!);
      const flips = 1 + Math.floor(rnd() * 3);
      for (let k = 0; k < flips; k++) {
        const bit = Math.floor(rnd() * b.length * 8);
        b[bit >>> 3]! ^= 0x80 >>> (bit & 7);
      }
      const cut = i % 5 === 0 ? Math.floor(rnd() * b.length) : b.length;
      seen[decodeOrReject(b.subarray(0, cut))]++;
    }
    // Both outcomes occur: the oracle is exercised on each side.
    assert.ok(seen.ok > 500 && seen.rejected > 500, JSON.stringify(seen));
  });

  it('rejects a non-Uint8Array input', () => {
    assert.throws(
      () => decodeUper('00' as never),
      (e: unknown) => isKapokError(e) && /Uint8Array/.test(e.message),
    );
  });
});
