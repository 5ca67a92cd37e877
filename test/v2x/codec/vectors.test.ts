import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isKapokError } from '../../../src/core/errors.js';
import { decodeUper, encodeUper, fromJson } from '../../../src/v2x/codec/index.js';
import { bin } from './helpers/bits.js';
import { MIN_BSM, MIN_BSM_BITS, MIN_BSM_HEX } from './helpers/fixtures.js';

describe('v2x codec: hand-derived vectors pin the bit layout', () => {
  it('encodes a minimal BSM field by field as X.691 unaligned PER lays it out', () => {
    const fields: [string, string][] = [
      ['MessageFrame extension bit', '0'],
      ['MessageFrame index bsmFrame (0 of 5 → 3 bits)', '000'],
      ['BSM extension bit', '0'],
      ['BSM 7 OPTIONAL presence bits, all absent', '0000000'],
      ['msgCnt 1 (0..127 → 7 bits)', bin(1, 7)],
      [
        'id OCTET STRING SIZE(8): 64 bits, no length',
        '0102030405060708'.replace(/../g, (h) => bin(Number.parseInt(h, 16), 8)),
      ],
      ['secMark 1000 (0..65535 → 16 bits)', bin(1000, 16)],
      ['pos: elevation absent', '0'],
      ['pos.lat 399000000 - lb (range 1800000002 → 31 bits)', bin(399000000 + 900000000, 31)],
      ['pos.long 1163000000 - lb (range 3600000001 → 32 bits)', bin(1163000000 + 1799999999, 32)],
      ['transmission forwardGears index 2 of 8 → 3 bits', bin(2, 3)],
      ['speed 500 (13 bits)', bin(500, 13)],
      ['heading 7200 (0..28800 → 15 bits)', bin(7200, 15)],
      ['accelSet.long 0 - (-2000) (12 bits)', bin(2000, 12)],
      ['accelSet.lat', bin(2000, 12)],
      ['accelSet.vert 0 - (-127) (8 bits)', bin(127, 8)],
      ['accelSet.yaw 0 - (-32767) (16 bits)', bin(32767, 16)],
      ['brakes: 7 OPTIONAL bits, all absent', '0000000'],
      ['size: height absent', '0'],
      ['size.width 180 (10 bits)', bin(180, 10)],
      ['size.length 480 (12 bits)', bin(480, 12)],
      ['vehicleClass extension bit, fuelType absent', '00'],
      ['vehicleClass.classification 10 (8 bits)', bin(10, 8)],
    ];
    let bits = fields.map(([, b]) => b).join('');
    assert.equal(bits.length, MIN_BSM_BITS);
    bits += '0'.repeat((8 - (bits.length % 8)) % 8);
    const expected = bits.replace(/.{8}/g, (b) => Number.parseInt(b, 2).toString(16).padStart(2, '0'));
    assert.equal(expected, MIN_BSM_HEX);
    assert.equal(Buffer.from(encodeUper({ bsmFrame: MIN_BSM })).toString('hex'), MIN_BSM_HEX);
    assert.deepEqual(decodeUper(Buffer.from(MIN_BSM_HEX, 'hex')), { bsmFrame: MIN_BSM });
  });

  it('encodes Longitude past 31 bits and the range ends exactly', () => {
    for (const long of [-1799999999, 1800000001, 0, 1]) {
      for (const lat of [-900000000, 900000001]) {
        const msg = { bsmFrame: { ...MIN_BSM, pos: { lat, long, elevation: 61439 } } };
        assert.deepEqual(decodeUper(encodeUper(msg)), msg);
      }
    }
  });

  it('fromJson checks the UPER constraints and names the path', () => {
    assert.deepEqual(fromJson(JSON.parse(JSON.stringify({ bsmFrame: MIN_BSM }))), { bsmFrame: MIN_BSM });
    const bad: [unknown, RegExp][] = [
      [{ bsmFrame: { ...MIN_BSM, speed: 8192 } }, /bsmFrame\.speed: value 8192 out of range 0\.\.8191/],
      [{ bsmFrame: { ...MIN_BSM, pos: { lat: 1, long: 1.5 } } }, /bsmFrame\.pos\.long: expected an integer/],
      [
        { bsmFrame: { ...MIN_BSM, transmission: 'drive' } },
        /bsmFrame\.transmission: "drive" is not a TransmissionState/,
      ],
      [{ bsmFrame: { ...MIN_BSM, id: '0102' } }, /bsmFrame\.id: 2 octets, must be 8/],
      [{ bsmFrame: { ...MIN_BSM, extra: 1 } }, /bsmFrame: unknown component extra/],
      [
        { bsmFrame: { ...MIN_BSM, brakes: { wheelBrakes: '0101' } } },
        /bsmFrame\.brakes\.wheelBrakes: bit string of 4 bits, must be 5/,
      ],
      [{ bsmFrame: MIN_BSM, spatFrame: {} }, /exactly one key/],
      [{ carFrame: {} }, /expected one of bsmFrame/],
      [null, /expected an object/],
    ];
    for (const [v, re] of bad) {
      assert.throws(
        () => fromJson(v),
        (e: unknown) => isKapokError(e) && e.code === ('KAPOK_V2X_DECODE' as never) && re.test(e.message),
        String(re),
      );
    }
  });

  it('encodeUper rejects a missing or out-of-range field with KAPOK_V2X_ENCODE and the path', () => {
    const { speed: _s, ...noSpeed } = MIN_BSM;
    assert.throws(
      () => encodeUper({ bsmFrame: noSpeed } as never),
      (e: unknown) =>
        isKapokError(e) &&
        e.code === ('KAPOK_V2X_ENCODE' as never) &&
        /bsmFrame\.speed: .*missing/.test(e.message),
    );
    assert.throws(
      () => encodeUper({ bsmFrame: { ...MIN_BSM, heading: 28801 } }),
      (e: unknown) => isKapokError(e) && /bsmFrame\.heading: value 28801 out of range/.test(e.message),
    );
  });

  it('decodeUper rejects truncation and trailing garbage with KAPOK_V2X_DECODE and the path', () => {
    const buf = Buffer.from(MIN_BSM_HEX, 'hex');
    assert.throws(
      () => decodeUper(buf.subarray(0, 10)),
      (e: unknown) => isKapokError(e) && e.status === 400 && /at bsmFrame\.id: truncated/.test(e.message),
    );
    assert.throws(() => decodeUper(Buffer.concat([buf, Buffer.alloc(2)])), /2 trailing octets/);
    assert.throws(() => decodeUper(new Uint8Array(0)), /truncated/);
  });
});
