import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeUper, encodeUper, fromJson } from '../../../src/v2x/codec/index.js';
import { FRAMES, prng, randomMessage } from './helpers/random.js';

describe('v2x codec: UPER and JSON round trips of random messages', () => {
  for (const frame of FRAMES) {
    it(`${frame}: decode(encode(m)) = m and fromJson(JSON of m) = m, 300 messages`, () => {
      const rnd = prng(frame.length * 7919 + frame.charCodeAt(0));
      for (let i = 0; i < 300; i++) {
        const mode = i === 0 ? 'min' : i === 1 ? 'max' : 'random';
        const m = randomMessage(rnd, frame, { mode, optional: [0, 1, 0.5, 0.9][i % 4]!, printable: false });
        const bytes = encodeUper(m);
        const back = decodeUper(bytes);
        assert.deepEqual(back, m, `message ${i}`);
        assert.deepEqual(encodeUper(back), bytes);
        assert.deepEqual(fromJson(JSON.parse(JSON.stringify(m))), m);
      }
    });
  }

  it('fromJson lowercases hex and returns a copy without foreign references', () => {
    const m = randomMessage(prng(3), 'rsiFrame', { mode: 'min', optional: 0, printable: true });
    const j = JSON.parse(JSON.stringify(m));
    j.rsiFrame.id = j.rsiFrame.id.toUpperCase().replace(/0/g, 'A');
    const v = fromJson(j) as { rsiFrame: { id: string; refPos: unknown } };
    assert.equal(v.rsiFrame.id, j.rsiFrame.id.toLowerCase());
    assert.notEqual(v.rsiFrame.refPos, j.rsiFrame.refPos);
  });

  it('IA5 strings carry every 7-bit character and reject others', () => {
    const all = Array.from({ length: 63 }, (_, i) => String.fromCharCode(i * 2 + 1)).join('');
    const m = randomMessage(prng(5), 'spatFrame', { mode: 'min', optional: 0, printable: true });
    const spat = { spatFrame: { ...(m as { spatFrame: object }).spatFrame, name: all } };
    assert.deepEqual(decodeUper(encodeUper(spat as never)), spat);
    assert.throws(
      () => fromJson({ spatFrame: { ...spat.spatFrame, name: 'caf\u00e9' } }),
      /spatFrame\.name: character 3 is not IA5/,
    );
    assert.throws(
      () => encodeUper({ spatFrame: { ...spat.spatFrame, name: '' } } as never),
      /spatFrame\.name: 0 characters, must be 1\.\.63/,
    );
  });
});
