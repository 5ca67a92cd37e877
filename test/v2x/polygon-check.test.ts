import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { configSchema } from '../../src/config.js';
import { findCrossing, type Position } from '../../src/v2x/polygon-check.js';

const square: Position[] = [
  [0, 0],
  [4, 0],
  [4, 4],
  [0, 4],
  [0, 0],
];

describe('v2x zones: crossing edges are refused', () => {
  it('accepts simple outlines with holes, concave ones and repeated closing positions', () => {
    const hole: Position[] = [
      [1, 1],
      [2, 1],
      [2, 2],
      [1, 1],
    ];
    assert.equal(findCrossing([square, hole]), null);
    const concave: Position[] = [
      [0, 0],
      [4, 0],
      [4, 4],
      [2, 1],
      [0, 4],
      [0, 0],
    ];
    assert.equal(findCrossing([concave]), null);
  });

  it('names the two edges of a bowtie, a loop, and a hole that leaves the outline', () => {
    const bowtie: Position[] = [
      [0, 0],
      [1, 1],
      [1, 0],
      [0, 1],
      [0, 0],
    ];
    assert.equal(
      findCrossing([bowtie]),
      'ring 0 edge 0 (positions 0→1) crosses ring 0 edge 2 (positions 2→3)',
    );
    // Touching itself at a vertex (a figure eight) is a crossing too.
    const eight: Position[] = [
      [0, 0],
      [2, 2],
      [4, 0],
      [4, 4],
      [2, 2],
      [0, 4],
      [0, 0],
    ];
    assert.match(findCrossing([eight]) ?? '', /ring 0 edge \d .* crosses ring 0 edge \d/);
    const outside: Position[] = [
      [3, 3],
      [6, 3],
      [6, 5],
      [3, 3],
    ];
    assert.match(findCrossing([square, outside]) ?? '', /ring 0 edge \d .* crosses ring 1 edge \d/);
  });

  it('bounds its work on hostile outlines', () => {
    // A comb: every tooth spans the whole width, so every pair overlaps in longitude.
    const comb: Position[] = [];
    for (let i = 0; i < 2000; i++)
      comb.push(i % 2 ? [100, i] : [0, i], i % 2 ? [0, i + 0.5] : [100, i + 0.5]);
    comb.push(comb[0] as Position);
    assert.match(findCrossing([comb], 1000) ?? '', /too complex to check .*over 1000 edge pairs/);
  });

  it('a crossing zone in the config file fails the config check, naming the zone and the edges', () => {
    const r = configSchema.safeParse({
      edge: { enabled: true },
      v2x: {
        enabled: true,
        zones: [
          {
            id: 'gate',
            geometry: {
              type: 'Polygon',
              coordinates: [
                [
                  [0, 0],
                  [1, 1],
                  [1, 0],
                  [0, 1],
                  [0, 0],
                ],
              ],
            },
          },
        ],
      },
    });
    assert.equal(r.success, false);
    const issue = r.error?.issues.find((i) => i.path.join('.') === 'v2x.zones.0.geometry.coordinates');
    assert.equal(issue?.message, 'ring 0 edge 0 (positions 0→1) crosses ring 0 edge 2 (positions 2→3)');
  });
});
