import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseModule } from '../../../src/v2x/codec/gen/asn.js';
import * as gen from '../../../src/v2x/codec/generated.js';
import { SCHEMA } from '../../../src/v2x/codec/schema.js';
import { ASN_DIR } from './helpers/asn1c.js';

describe('v2x codec: generated code matches the vendored ASN.1', () => {
  it('schema.ts equals a fresh parse of src/v2x/codec/asn (regenerate after editing a module)', () => {
    const fresh: Record<string, unknown> = {};
    for (const f of readdirSync(ASN_DIR).filter((n) => n.endsWith('.asn')))
      for (const [n, t] of parseModule(readFileSync(join(ASN_DIR, f), 'utf8')).types) fresh[n] = t;
    assert.deepEqual(Object.keys(fresh).sort(), Object.keys(SCHEMA).sort());
    for (const n of Object.keys(fresh)) assert.deepEqual(SCHEMA[n], fresh[n], n);
    assert.equal(Object.keys(SCHEMA).length, 162);
  });

  it('has a decoder, encoder and validator for every type', () => {
    const fns = gen as Record<string, unknown>;
    for (const n of Object.keys(SCHEMA)) {
      const id = n.replace(/-/g, '_');
      for (const p of ['dec_', 'enc_', 'val_']) assert.equal(typeof fns[p + id], 'function', p + id);
    }
  });

  it('parses what the modules use and refuses what the generator does not cover', () => {
    const t = parseModule(`M DEFINITIONS AUTOMATIC TAGS ::= BEGIN
      A ::= SEQUENCE { a INTEGER (-5..5), b BIT STRING { x (0), y (1) } (SIZE (2, ...)) OPTIONAL, ... }
      E ::= ENUMERATED { p (2), q (0), ... } -- sorted by value
      v A ::= 1
    END`).types;
    assert.deepEqual(t.get('E'), { kind: 'enum', items: ['q', 'p'], ext: true });
    assert.deepEqual(t.get('A'), {
      kind: 'seq',
      ext: true,
      fields: [
        { name: 'a', type: { kind: 'int', lb: -5, ub: 5 }, optional: false },
        { name: 'b', type: { kind: 'bits', names: ['x', 'y'], min: 2, max: 2, ext: true }, optional: true },
      ],
    });
    const bad = (body: string) => () => parseModule(`M DEFINITIONS AUTOMATIC TAGS ::= BEGIN ${body} END`);
    assert.throws(bad('A ::= SEQUENCE { a INTEGER (0..1) DEFAULT 0 }'), /DEFAULT/);
    assert.throws(bad('A ::= REAL'), /unsupported type REAL/);
    assert.throws(
      bad('A ::= SEQUENCE { a BOOLEAN, ..., b INTEGER (0..1) }'),
      /unsupported type BOOLEAN|extension additions/,
    );
  });
});
