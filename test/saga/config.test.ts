import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { configSchema } from '../../src/config.js';
import { testConfig } from '../helpers/config.js';

/** The saga section: defaults (off, no targets: closed), and the rules between its keys. */
describe('saga config', () => {
  it('is off with no targets by default, with the brief’s 30 s coordinator limit', () => {
    const c = configSchema.parse({}).saga;
    assert.equal(c.enabled, false);
    assert.deepEqual(c.targets, []);
    assert.equal(c.coordinatorTimeoutMs, 30_000);
  });

  it('refuses contradictory settings, naming the key', () => {
    const bad = (saga: Record<string, unknown>, path: RegExp) =>
      assert.throws(
        () => testConfig({ saga: { enabled: true, ...saga } }),
        (e: Error) => {
          assert.match(e.message, path);
          return true;
        },
      );
    bad({ retry: { baseMs: 5000, maxMs: 1000 } }, /retry/);
    bad({ coordinatorTimeoutMs: 30_000, transactionTimeoutMs: 30_000 }, /coordinatorTimeoutMs/);
    bad(
      {
        targets: [
          { name: 'x', url: 'http://a/' },
          { name: 'x', url: 'http://b/' },
        ],
      },
      /x appears twice/,
    );
    bad({ targets: [{ name: 'n', url: 'nats://svc.' }] }, /natsUrl/);
    bad({ targets: [{ name: 'f', url: 'ftp://a/' }] }, /http\(s\):\/\/… or nats:\/\/subject/);
    bad({ targets: [{ name: 'k', url: 'http://a/', kind: 'corba' }] }, /kind/);
    bad({ coordinatorTimeoutMs: 0 }, /coordinatorTimeoutMs/);
  });
});
