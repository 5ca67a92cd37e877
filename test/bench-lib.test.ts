import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bucketQuantiles, diffBuckets, histogramBuckets, leBound, verdict } from '../bench/lib.js';

/**
 * bench/lib's histogram helpers, on /metrics text in the Prometheus text exposition format
 * (cumulative `_bucket` series with an `le` label; the last bucket is le="+Inf").
 */
const METRICS = [
  '# HELP lag_seconds lag',
  '# TYPE lag_seconds histogram',
  'lag_seconds_bucket{le="0.001",sink="a"} 1',
  'lag_seconds_bucket{le="0.01",sink="a"} 3',
  'lag_seconds_bucket{le="+Inf",sink="a"} 4',
  'lag_seconds_bucket{le="0.001",sink="b"} 0',
  'lag_seconds_bucket{le="0.01",sink="b"} 2',
  'lag_seconds_bucket{le="+Inf",sink="b"} 6',
  'lag_seconds_sum{sink="a"} 9',
  'lag_seconds_count{sink="a"} 4',
  'other_bucket{le="+Inf"} 100',
].join('\n');

describe('bench/lib histogram summing', () => {
  it('reads le="+Inf" as +Infinity, not NaN', () => {
    assert.equal(leBound('+Inf'), Number.POSITIVE_INFINITY);
    assert.equal(leBound('0.25'), 0.25);
    assert.throws(() => leBound('abc'), /not a number/);
  });

  it('sums the +Inf bucket over label sets like every other bucket', () => {
    const b = histogramBuckets(METRICS, 'lag_seconds');
    assert.deepEqual(
      [...b].sort((x, y) => x[0] - y[0]),
      [
        [0.001, 1],
        [0.01, 5],
        [Number.POSITIVE_INFINITY, 10],
      ],
    );
    assert.equal([...b.keys()].some(Number.isNaN), false);
  });

  it('takes quantiles from the summed buckets, null when they fall in +Inf', () => {
    const before = histogramBuckets(METRICS, 'lag_seconds');
    const after = histogramBuckets(
      METRICS.replace('le="+Inf",sink="b"} 6', 'le="+Inf",sink="b"} 26'),
      'lag_seconds',
    );
    const d = diffBuckets(after, before);
    assert.equal(d.get(Number.POSITIVE_INFINITY), 20);
    // All 10 in the first read: p50 within 10 ms; p99 beyond every finite bound.
    assert.deepEqual(bucketQuantiles(before), { count: 10, p50MsAtMost: 10, p99MsAtMost: null });
    assert.deepEqual(bucketQuantiles(new Map()), { count: 0, p50MsAtMost: null, p99MsAtMost: null });
  });
});

describe('bench/lib verdict', () => {
  it('fails every check when a loop had errors, and says why', () => {
    const v = verdict({ rps: true }, { closed: { requests: 100, non2xx: 1, transportErrors: 0 } });
    assert.deepEqual(v.met, { rps: false });
    assert.match(v.why[0] as string, /closed: 1 non-2xx \+ 0 transport errors in 100 requests/);
  });

  it('allows up to the stated fraction of errors, and no more', () => {
    const loop = (n: number) => ({ sweep: { requests: 1000, non2xx: 0, transportErrors: n } });
    assert.equal(verdict({ ok: true }, loop(1), 0.001).met.ok, true);
    assert.equal(verdict({ ok: true }, loop(2), 0.001).met.ok, false);
  });
});
