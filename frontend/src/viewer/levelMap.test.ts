import { describe, expect, it } from 'vitest';
import type { ImagePlane } from '../measurements/math/plane';
import { levelMapFromBlocks, levelMapFromDiscs } from './levelMap';

function axialAt(z: number): ImagePlane {
  return { position: [-50, -50, z], rowCosines: [1, 0, 0], columnCosines: [0, 1, 0], rows: 100, columns: 100, pixelSpacing: [1, 1] };
}
const planes = [-40, -36, -32, 0, 4, 8].map(axialAt);

describe('level maps', () => {
  it('gives every image of a block its level', () => {
    const map = levelMapFromBlocks(['L4-L5', 'L5-S1'], planes)!;
    expect([...map.levelOfIndex.entries()]).toEqual([[0, 'L5-S1'], [1, 'L5-S1'], [2, 'L5-S1'], [3, 'L4-L5'], [4, 'L4-L5'], [5, 'L4-L5']]);
    expect(map.slices.map((s) => [s.level, s.sliceIndex])).toEqual([['L4-L5', 4], ['L5-S1', 1]]);
    expect(levelMapFromBlocks(['L3-L4', 'L4-L5', 'L5-S1'], planes)).toBeNull();
  });
  it('labels images within 8 mm of a disc centre, from the sacrum up', () => {
    const map = levelMapFromDiscs(['L4-L5', 'L5-S1'], [[0, 0, 5], [0, 0, -37]], planes)!;
    expect([...map.levelOfIndex.entries()]).toEqual([[0, 'L5-S1'], [1, 'L5-S1'], [2, 'L5-S1'], [3, 'L4-L5'], [4, 'L4-L5'], [5, 'L4-L5']]);
    expect(map.slices.map((s) => [s.level, s.sliceIndex, s.distanceMm])).toEqual([['L4-L5', 4, 1], ['L5-S1', 1, 1]]);
    expect(levelMapFromDiscs(['L5-S1'], [[0, 0, 500]], planes)).toBeNull();
  });
});
