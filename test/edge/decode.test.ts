import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createDecoder, DecodeError } from '../../src/edge/decode/index.js';
import { decodeJson } from '../../src/edge/decode/json.js';
import { decodeLineProtocol } from '../../src/edge/decode/line-protocol.js';
import { compileTopicPattern, topicMatches, validFilter } from '../../src/edge/decode/topic.js';

const NOW = 1_767_225_600_000;
const lp = (s: string, precision?: 'ns' | 'us' | 'ms' | 's') =>
  decodeLineProtocol(s, 'topic-dev', NOW, precision);
const plain = (o: object) => JSON.parse(JSON.stringify(o));
const fails = (fn: () => unknown, re: RegExp) =>
  assert.throws(fn, (e: unknown) => e instanceof DecodeError && re.test(e.message));

describe('edge decode: topics', () => {
  it('maps topic levels to device and measurement and refuses other shapes', () => {
    const m = compileTopicPattern('telemetry/{device}/{measurement}');
    assert.deepEqual(m('telemetry/pump-1/env'), { device: 'pump-1', measurement: 'env' });
    fails(() => m('telemetry/pump-1'), /does not match/);
    fails(() => m('other/pump-1/env'), /does not match/);
    fails(() => m('telemetry/pump-1/env/x'), /does not match/);
    fails(() => m('telemetry//env'), /empty device/);
    const r = compileTopicPattern('site/+/{device}/#');
    assert.deepEqual(r('site/gz/d9/a/b'), { device: 'd9', measurement: null });
  });

  it('matches MQTT filters like a broker', () => {
    assert.ok(topicMatches('telemetry/#', 'telemetry/a/b'));
    assert.ok(topicMatches('telemetry/#', 'telemetry'));
    assert.ok(topicMatches('telemetry/+/env', 'telemetry/a/env'));
    assert.ok(!topicMatches('telemetry/+/env', 'telemetry/a/b/env'));
    assert.ok(!topicMatches('#', '$SYS/x'));
    assert.ok(validFilter('a/+/#'));
    assert.ok(!validFilter('a/#/b'));
    assert.ok(!validFilter('a/b+'));
    assert.ok(!validFilter(''));
  });
});

describe('edge decode: JSON', () => {
  const topic = { device: 'd1', measurement: 'env' };
  it('reads flat fields, ts in ms or RFC 3339, tags, and overrides', () => {
    const [p] = decodeJson(
      '{"temp":21.5,"on":true,"mode":"eco","ts":1700000000123,"tags":{"site":"gz","n":3}}',
      topic,
      NOW,
    );
    assert.deepEqual(plain(p as object), {
      measurement: 'env',
      device: 'd1',
      tags: { site: 'gz', n: '3' },
      fields: { temp: 21.5, on: true, mode: 'eco' },
      ts: 1700000000123,
    });
    assert.equal(
      decodeJson('{"v":1,"ts":"2026-01-01T00:00:00.5+08:00"}', topic, NOW)[0]?.ts,
      Date.UTC(2025, 11, 31, 16, 0, 0, 500),
    );
    assert.equal(decodeJson('{"v":1}', topic, NOW)[0]?.ts, NOW);
    const many = decodeJson('[{"v":1,"device":"d2","measurement":"m2"},{"v":2}]', topic, NOW);
    assert.deepEqual([many[0]?.device, many[0]?.measurement, many[1]?.device], ['d2', 'm2', 'd1']);
  });

  it('refuses malformed, nested, empty and out-of-range input with a reason', () => {
    fails(() => decodeJson('{"v":', topic, NOW), /invalid JSON/);
    fails(() => decodeJson('{"v":{"a":1}}', topic, NOW), /nested/);
    fails(() => decodeJson('{"v":[1]}', topic, NOW), /nested/);
    fails(() => decodeJson('{}', topic, NOW), /no fields/);
    fails(() => decodeJson('[]', topic, NOW), /empty JSON array/);
    fails(() => decodeJson('42', topic, NOW), /must be an object/);
    fails(() => decodeJson('{"v":1,"ts":"yesterday"}', topic, NOW), /RFC 3339/);
    fails(() => decodeJson('{"v":1,"ts":1e300}', topic, NOW), /out of range/);
    fails(() => decodeJson('{"v":1,"tags":{"a":{"b":1}}}', topic, NOW), /tag a must be a string/);
    fails(() => decodeJson('{"v":1}', { device: 'd', measurement: null }, NOW), /no measurement/);
    fails(() => decodeJson(`{"${'k'.repeat(300)}":1}`, topic, NOW), /longer than 256/);
  });

  it('is not fooled by __proto__ keys', () => {
    fails(() => decodeJson('{"__proto__":{"polluted":1}}', topic, NOW), /nested/);
    const [q] = decodeJson('{"constructor":5,"tags":{"__proto__":"x"}}', topic, NOW);
    assert.equal(q?.fields.constructor, 5);
    assert.equal(Object.getOwnPropertyDescriptor(q?.tags, '__proto__')?.value, 'x');
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });
});

describe('edge decode: line protocol', () => {
  it('reads every field type, tags, device tag and timestamps', () => {
    const [p] = lp(
      'weather,location=us-midwest,season=summer temperature=82,count=3i,big=18446744073709551615u,ok=T,note="hot, \\"dry\\" day" 1465839830100400200',
    );
    assert.deepEqual(plain(p as object), {
      measurement: 'weather',
      device: 'topic-dev',
      tags: { location: 'us-midwest', season: 'summer' },
      fields: { temperature: 82, count: 3, big: 2 ** 64, ok: true, note: 'hot, "dry" day' },
      ts: 1465839830100,
    });
    assert.equal(lp('m,device=rsu-9 v=1')[0]?.device, 'rsu-9');
    assert.equal(lp('m v=1')[0]?.ts, NOW);
    for (const b of ['t', 'T', 'true', 'True', 'TRUE']) assert.equal(lp(`m v=${b}`)[0]?.fields.v, true);
    for (const b of ['f', 'F', 'false', 'False', 'FALSE']) assert.equal(lp(`m v=${b}`)[0]?.fields.v, false);
    assert.deepEqual(
      lp('m v=-1.5e3,w=.5,x=+2,y=-7i').map((q) => plain(q.fields)),
      [{ v: -1500, w: 0.5, x: 2, y: -7 }],
    );
    // Integers: up to 15 digits without BigInt, longer ones through it; the same values either way.
    assert.deepEqual(
      lp(
        'm a=999999999999999i,b=-999999999999999i,c=1234567890123456i,d=-0i,e=+5i,f=007u,g=9007199254740993u',
      ).map((q) => plain(q.fields)),
      [
        {
          a: 999_999_999_999_999,
          b: -999_999_999_999_999,
          c: 1_234_567_890_123_456,
          d: 0,
          e: 5,
          f: 7,
          g: Number(9007199254740993n),
        },
      ],
    );
    assert.ok(Object.is(lp('m d=-0i')[0]?.fields.d, 0), '-0i is 0, not -0');
  });

  it('honours precision', () => {
    assert.equal(lp('m v=1 1700000000', 's')[0]?.ts, 1_700_000_000_000);
    assert.equal(lp('m v=1 1700000000123', 'ms')[0]?.ts, 1_700_000_000_123);
    assert.equal(lp('m v=1 1700000000123456', 'us')[0]?.ts, 1_700_000_000_123);
    assert.equal(lp('m v=1 1700000000123456789', 'ns')[0]?.ts, 1_700_000_000_123);
    assert.equal(lp('m v=1 -1000000')[0]?.ts, -1);
    assert.equal(lp('m v=1 999')[0]?.ts, 0);
  });

  it('reads numbers and timestamps in place with the same results as the general path', () => {
    // The in-place fast paths (plain digits) must agree with BigInt / Number() on every length.
    const divisor = { ns: 1_000_000n, us: 1000n, ms: 1n, s: 1n } as const;
    let seed = 7;
    const digit = () => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return String(seed % 10);
    };
    for (let len = 1; len <= 20; len++)
      for (let k = 0; k < 30; k++) {
        let t = k === 0 ? '9'.repeat(len) : k === 1 ? `8${'9'.repeat(len - 1)}` : '';
        while (t.length < len) t += digit();
        t = t.slice(0, len);
        for (const p of ['ns', 'us', 'ms', 's'] as const) {
          const b = BigInt(t);
          const ms = p === 's' ? b * 1000n : b / divisor[p];
          // As the general path: up to 18 digits through Number (s: times 1000), longer through BigInt.
          const cut = t.slice(0, Math.max(0, len - (p === 'ns' ? 6 : p === 'us' ? 3 : 0)));
          const want = len > 18 ? Number(ms) : p === 's' ? Number(t) * 1000 : cut === '' ? 0 : Number(cut);
          // Up to 18 digits the general path range-checks nothing (they fit int64).
          if (len > 18 && (b > 2n ** 63n - 1n || ms > 9_223_372_036_854n))
            fails(() => lp(`m v=1 ${t}`, p), /overflows|range/);
          else assert.equal(lp(`m v=1 ${t}  `, p)[0]?.ts, want, `${t} ${p}`);
        }
        if (len <= 18) {
          const i = BigInt(t);
          assert.equal(lp(`m v=-${t}i`)[0]?.fields.v, Number(-i) + 0, `-${t}i`);
          assert.equal(lp(`m v=${t}.${t}`)[0]?.fields.v, Number(`${t}.${t}`));
        }
      }
    assert.deepEqual(plain(lp('m a=5.,b=-.5,c=+0.0,d=0i,e=+0i 1')[0]?.fields as object), {
      a: 5,
      b: -0.5,
      c: 0,
      d: 0,
      e: 0,
    });
    assert.equal(lp('m v=1 000001000000')[0]?.ts, 1);
  });

  it('reads plain decimals in place as the same doubles as Number(), -0 included', () => {
    let seed = 11;
    const next = (n: number) => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed % n;
    };
    for (let digits = 1; digits <= 17; digits++)
      for (let k = 0; k < 40; k++) {
        let d = '';
        for (let j = 0; j < digits; j++) d += String(k === 0 ? 9 : next(10));
        const dot = next(digits + 1); // 0: ".ddd", digits: "ddd."
        const text = `${['', '-', '+'][next(3)]}${d.slice(0, dot)}.${d.slice(dot)}`;
        const got = lp(`m v=${text}`)[0]?.fields.v;
        assert.ok(Object.is(got, Number(text)), `${text}: ${got} against ${Number(text)}`);
        const whole = `${k % 2 ? '-' : ''}${d}`;
        assert.ok(Object.is(lp(`m v=${whole}`)[0]?.fields.v, Number(whole)), whole);
      }
    assert.ok(Object.is(lp('m v=-0.0')[0]?.fields.v, -0));
    assert.ok(Object.is(lp('m v=-0')[0]?.fields.v, -0));
    assert.equal(lp('m v=0.1')[0]?.fields.v, 0.1);
    assert.equal(lp('m v=123456789012.345')[0]?.fields.v, 123456789012.345);
  });

  it('a payload of many lines decodes each line as it would alone (names recalled between lines)', () => {
    // Names that are prefixes of one another, escapes, a backslash kept literally, and a value that
    // changes on every line (a position the parser stops recalling).
    const names = ['c1', 'c10', 'c', String.raw`c1\ x`, String.raw`c\,1`, String.raw`x\y`, 'c1=2'];
    let seed = 5;
    const pick = <T>(xs: readonly T[]) => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return xs[seed % xs.length] as T;
    };
    const lines: string[] = [];
    for (let i = 0; i < 600; i++) {
      const m = pick(['cpu', String.raw`cpu\ load`, 'cp', 'cpu2', String.raw`cpu\,x`]);
      const key = pick(['usage', 'use', String.raw`usage\=x`, String.raw`u\ s`]);
      lines.push(`${m},core=${pick(names)},serial=s${i} ${key}=${i}.5,temp=${i}i ${1_000_000 + i}`);
    }
    const alone = lines.map((line) => plain(lp(line, 'ms')[0] as object));
    const together = lp(lines.join('\n'), 'ms').map((p) => plain(p));
    assert.deepEqual(together, alone);
    assert.ok(alone.some((p) => p.tags.core === 'c1 x') && alone.some((p) => p.tags.core === 'c1'));
    // Long values that differ only at the end, more of them than a position remembers, then one
    // new per line (the position gives up): every line still decodes as it does alone.
    const prefix = 'v'.repeat(5000);
    const long = Array.from(
      { length: 120 },
      (_, i) => `m,t=${prefix}${i < 60 ? i % 9 : `x${i}`} f=${i} ${i + 1}`,
    );
    assert.deepEqual(
      lp(long.join('\n'), 'ms').map((p) => p.tags.t),
      long.map((line) => lp(line, 'ms')[0]?.tags.t),
    );
    // A spelling read before is not taken for a longer or escaped one that starts the same way.
    const [a, b, c] = lp(['m,t=c1 v=1', String.raw`m,t=c1\ x v=2`, 'm,t=c10 v=3'].join('\n'), 'ms');
    assert.deepEqual([a?.tags.t, b?.tags.t, c?.tags.t], ['c1', 'c1 x', 'c10']);
    const [d, e] = lp([String.raw`m,t=x\y v=1`, String.raw`m,t=x\y v=2`].join('\n'), 'ms');
    assert.deepEqual([d?.tags.t, e?.tags.t], [String.raw`x\y`, String.raw`x\y`]);
  });

  it('unescapes measurement, tag and field names, and strings with newlines', () => {
    const [p] = lp('my\\ meas\\,ure,t\\ k\\=1=v\\,a\\ l f\\=\\ k="a\\\\b\nc"');
    assert.equal(p?.measurement, 'my meas,ure');
    assert.deepEqual(plain(p?.tags as object), { 't k=1': 'v,a l' });
    assert.deepEqual(plain(p?.fields as object), { 'f= k': 'a\\b\nc' });
    // A backslash before any other character stays literal.
    assert.equal(lp('m\\x v=1')[0]?.measurement, 'm\\x');
  });

  it('skips comments and blank lines, handles CRLF and many lines', () => {
    const pts = lp('# header\r\n\r\ncpu v=1 1000000\r\n  \n# c\ncpu v=2 2000000\r\n');
    assert.deepEqual(
      pts.map((q) => [q.fields.v, q.ts]),
      [
        [1, 1],
        [2, 2],
      ],
    );
    const text = Array.from({ length: 5000 }, (_, i) => `cpu,host=h${i % 7} v=${i}i ${i}000000`).join('\n');
    assert.equal(lp(text).length, 5000);
  });

  it('refuses malformed lines with the line number and reason', () => {
    const bad: [string, RegExp][] = [
      ['m', /space before the fields/],
      ['m ', /empty field key/],
      ['m v', /has no =value/],
      ['m v=', /has no value/],
      ['m v=abc', /not a number/],
      ['m v=1.2.3', /not a number/],
      ['m v=1x', /not a number/],
      ['m v=12.5i', /not an integer/],
      ['m v=-3u', /not an unsigned/],
      ['m v=9223372036854775808i', /overflows int64/],
      ['m v=18446744073709551616u', /overflows uint64/],
      ['m v="open', /no closing quote/],
      ['m,t v=1', /tag "t" has no =value/],
      ['m,=x v=1', /empty tag/],
      ['m,t= v=1', /empty tag/],
      ['m v=1 12abc', /not an integer/],
      ['m v=1 99999999999999999999', /overflows int64|not an integer/],
      ['m v=1 1 2', /not an integer/],
      ['m v=1e999', /out of float range/],
      [`m v=${'9'.repeat(400)}`, /out of float range/],
      ['m v=1 9223372036854775808', /overflows int64/],
      ['m v=1 1-2', /not an integer/],
      ['m v=NaN', /not a number/],
      [',t=1 v=1', /empty measurement/],
      ['m v=1\nm w', /line 2: field "w" has no =value/],
      ['# only a comment\n', /no line-protocol points/],
    ];
    for (const [s, re] of bad) fails(() => lp(s), re);
  });
});

describe('edge decode: fuzz (random and mutated input never crashes or hangs)', () => {
  // A seeded generator keeps failures reproducible.
  let seed = 0x5eed;
  const rnd = () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x7fffffff;
  };
  const decode = createDecoder({ topicPattern: 'telemetry/{device}/{measurement}', format: 'auto' });
  const seeds = [
    'weather,location=us\\ west temperature=82,s="a \\"q\\"" 1465839830100400200\nm v=1i',
    '{"temp":21.5,"tags":{"a":"b"},"ts":"2026-01-01T00:00:00Z"}',
    '[{"v":1},{"v":2,"ts":5}]',
  ];
  const alphabet = ' ,="\\\n\r#{}[]:0123456789.eEiutfTF-+abc\u0000\u00ff';

  it('survives 20,000 mutated and random payloads, each failure a DecodeError', () => {
    let ok = 0;
    let failed = 0;
    const t0 = Date.now();
    for (let n = 0; n < 20_000; n++) {
      let s: string;
      if (n % 4 === 3) {
        s = Array.from(
          { length: Math.floor(rnd() * 80) },
          () => alphabet[Math.floor(rnd() * alphabet.length)],
        ).join('');
      } else {
        const chars = [...(seeds[n % seeds.length] as string)];
        const edits = 1 + Math.floor(rnd() * 4);
        for (let k = 0; k < edits; k++) {
          const at = Math.floor(rnd() * (chars.length + 1));
          const op = rnd();
          if (op < 0.33) chars.splice(at, 1);
          else if (op < 0.66) chars.splice(at, 0, alphabet[Math.floor(rnd() * alphabet.length)] as string);
          else chars.length = at; // truncate
        }
        s = chars.join('');
      }
      try {
        const pts = decode('telemetry/d/m', Buffer.from(s), NOW);
        assert.ok(pts.length > 0);
        for (const p of pts) assert.ok(Number.isFinite(p.ts));
        ok++;
      } catch (e) {
        assert.ok(e instanceof DecodeError, `non-DecodeError for ${JSON.stringify(s)}: ${String(e)}`);
        failed++;
      }
    }
    assert.ok(ok > 100 && failed > 100, `ok ${ok} failed ${failed}`);
    assert.ok(Date.now() - t0 < 30_000, 'decoding stays linear');
  });

  it('handles huge and hostile payloads in linear time', () => {
    fails(
      () => decode('telemetry/d/m', Buffer.from('['.repeat(200_000)), NOW),
      /invalid JSON|must be an object/,
    );
    fails(
      () => decode('telemetry/d/m', Buffer.from(`m v="${'x'.repeat(100_000)}"`), NOW),
      /longer than 64 KiB/,
    );
    fails(() => decode('telemetry/d/m', Buffer.from(`m ${'\\'.repeat(200_000)}`), NOW), /./);
    const many = Array.from({ length: 1100 }, (_, i) => `f${i}=1`).join(',');
    fails(() => decode('telemetry/d/m', Buffer.from(`m ${many}`), NOW), /more than 1024 fields/);
    const big = `${'cpu v=1\n'.repeat(100_001)}`;
    fails(() => decode('telemetry/d/m', Buffer.from(big), NOW), /more than 100000 points/);
  });
});
