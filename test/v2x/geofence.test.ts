import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Geofences, ringTest } from '../../src/v2x/geofence.js';

const square = (id: string, x0: number, y0: number, x1: number, y1: number, holes: number[][][] = []) => ({
  id,
  geometry: {
    type: 'Polygon' as const,
    coordinates: [
      [
        [x0, y0],
        [x1, y0],
        [x1, y1],
        [x0, y1],
        [x0, y0],
      ] as [number, number][],
      ...(holes as [number, number][][]),
    ],
  },
});

describe('v2x geofences', () => {
  const g = new Geofences();
  g.set(
    square('plaza', 113.3, 23.1, 113.31, 23.11, [
      [
        [113.304, 23.104],
        [113.306, 23.104],
        [113.306, 23.106],
        [113.304, 23.106],
        [113.304, 23.104],
      ],
    ]),
  );
  const out: string[] = [];
  const at = (lon: number, lat: number) => {
    g.zonesAt(lon, lat, out);
    return [...out];
  };

  it('inside, outside, and on the outline (edges and vertices count as inside)', () => {
    assert.deepEqual(at(113.302, 23.102), ['plaza']);
    assert.deepEqual(at(113.32, 23.102), []);
    assert.deepEqual(at(113.3, 23.105), ['plaza'], 'west edge');
    assert.deepEqual(at(113.31, 23.11), ['plaza'], 'north-east vertex');
    assert.deepEqual(at(113.305, 23.1), ['plaza'], 'south edge');
    assert.deepEqual(at(113.2999999, 23.105), [], 'just outside the west edge');
  });

  it('holes: inside a hole is outside the zone, its boundary inside', () => {
    assert.deepEqual(at(113.305, 23.105), []);
    assert.deepEqual(at(113.304, 23.105), ['plaza'], 'on the hole boundary');
    assert.deepEqual(at(113.3039, 23.105), ['plaza']);
  });

  it('overlapping zones, replacement and deletion keep the index right', () => {
    g.set(square('east', 113.305, 23.1, 113.33, 23.11));
    assert.deepEqual(at(113.308, 23.102).sort(), ['east', 'plaza']);
    assert.deepEqual(at(113.32, 23.102), ['east']);
    g.set(square('east', 113.4, 23.1, 113.41, 23.11));
    assert.deepEqual(at(113.32, 23.102), []);
    assert.deepEqual(at(113.405, 23.105), ['east']);
    assert.equal(g.delete('east'), true);
    assert.equal(g.delete('east'), false);
    assert.deepEqual(at(113.405, 23.105), []);
    assert.equal(g.size, 1);
  });

  it('concave polygons (ray casting through a notch)', () => {
    const c = new Geofences();
    // A U shape: the notch (113.004..113.006, 23.002..23.01) is outside.
    c.set({
      id: 'u',
      geometry: {
        type: 'Polygon',
        coordinates: [
          [
            [113.0, 23.0],
            [113.01, 23.0],
            [113.01, 23.01],
            [113.006, 23.01],
            [113.006, 23.002],
            [113.004, 23.002],
            [113.004, 23.01],
            [113.0, 23.01],
            [113.0, 23.0],
          ],
        ],
      },
    });
    const o: string[] = [];
    assert.equal(c.zonesAt(113.005, 23.005, o), 0);
    assert.equal(c.zonesAt(113.002, 23.005, o), 1);
    assert.equal(c.zonesAt(113.008, 23.005, o), 1);
    assert.equal(c.zonesAt(113.005, 23.001, o), 1);
  });

  it('refuses unclosed rings, polygons without area and zones too large to index', () => {
    const bad = new Geofences({ maxCellsPerZone: 100 });
    assert.throws(
      () =>
        bad.set({
          id: 'open',
          geometry: {
            type: 'Polygon',
            coordinates: [
              [
                [1, 1],
                [2, 1],
                [2, 2],
                [1, 2],
              ],
            ],
          },
        }),
      /not closed/,
    );
    assert.throws(() => bad.set(square('line', 1, 1, 1, 2)), /no area/);
    assert.throws(() => bad.set(square('huge', 0, 0, 10, 10)), /too large/);
    assert.equal(bad.size, 0);
  });

  it('ringTest: strictly inside 1, boundary 0, outside -1', () => {
    const r = new Float64Array([0, 0, 4, 0, 4, 4, 0, 4]);
    assert.equal(ringTest(r, 2, 2), 1);
    assert.equal(ringTest(r, 4, 2), 0);
    assert.equal(ringTest(r, 0, 0), 0);
    assert.equal(ringTest(r, 5, 2), -1);
    assert.equal(ringTest(r, 2, -0.0001), -1);
  });
});
