import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLogger, LazyChildLogger, type Logger, lazyChildLoggerFactory } from '../../src/core/log.js';
import { captureLogs } from '../helpers/logs.js';

/** Counts the pino children the parent makes. */
function counted(logger: Logger): { logger: Logger; children: () => number } {
  let n = 0;
  const child = logger.child.bind(logger);
  (logger as { child: unknown }).child = (...a: Parameters<Logger['child']>) => {
    n++;
    return child(...a);
  };
  return { logger, children: () => n };
}

describe('log: the lazy per-request child logger', () => {
  it('makes no pino child for a request that writes nothing at an enabled level', () => {
    const cap = captureLogs();
    const { logger, children } = counted(createLogger({ level: 'warn', destination: cap }));
    const l = new LazyChildLogger(logger, { request_id: 'r1' });
    l.setBindings({ trace_id: 't1' });
    l.info('not written');
    l.debug({ a: 1 }, 'not written either');
    assert.equal(children(), 0);
    assert.equal(cap.lines.length, 0);
    assert.deepEqual(l.bindings(), { service: 'kapok', request_id: 'r1', trace_id: 't1' });
  });

  it('writes an enabled line with every binding, redacted, through one child', () => {
    const cap = captureLogs();
    const { logger, children } = counted(createLogger({ level: 'info', destination: cap }));
    const l = new LazyChildLogger(logger, { request_id: 'r2' });
    l.setBindings({ trace_id: 't2' });
    l.warn({ db: { password: 'hunter2' } }, 'first');
    l.setBindings({ span_id: 's2' });
    l.info('second');
    assert.equal(children(), 1);
    const [a, b] = cap.lines;
    assert.equal(a?.msg, 'first');
    assert.equal(a?.request_id, 'r2');
    assert.equal(a?.trace_id, 't2');
    assert.ok(!cap.text().includes('hunter2'), 'the child keeps redaction');
    assert.equal(b?.span_id, 's2');
    assert.equal(b?.level, 'info');
  });

  it('a level set on it applies to it alone; a route level or serializers get a pino child at once', () => {
    const cap = captureLogs();
    const parent = createLogger({ level: 'warn', destination: cap });
    const l = new LazyChildLogger(parent, { request_id: 'r3' });
    l.level = 'debug';
    l.debug('now written');
    assert.equal(cap.lines[0]?.msg, 'now written');
    assert.equal(parent.level, 'warn');
    assert.ok(!(lazyChildLoggerFactory(parent, {}, { level: 'info' }) instanceof LazyChildLogger));
    assert.ok(lazyChildLoggerFactory(parent, {}, {}) instanceof LazyChildLogger);
  });
});
