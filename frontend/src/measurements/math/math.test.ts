import { describe, expect, it } from 'vitest';
import { polygonAreaMm2 } from './area';
import { discHeightsMm } from './discHeight';
import { lengthMm } from './length';
import { axialBlocks, componentCentroids, levelSlicesFromBlocks, levelSlicesFromDiscs, nearestSlice } from './levels';
import { crossReferenceLine, pixelToPatient, type ImagePlane } from './plane';
import type { Vec3 } from './vec';

describe('lengthMm', () => {
  it('is the Euclidean distance in patient space', () => {
    expect(lengthMm([[0, 0, 0], [3, 4, 12]])).toBe(13);
    expect(lengthMm([[-10, 5, 2], [-10, 5, 2]])).toBe(0);
  });
  it('rejects a wrong number of points or non-finite coordinates', () => {
    expect(() => lengthMm([[0, 0, 0]])).toThrow('exactly 2 points, got 1');
    expect(() => lengthMm([[0, 0, 0], [0, Number.NaN, 0]])).toThrow('point 2 must be three finite numbers');
  });
});

describe('polygonAreaMm2', () => {
  it('is exact for an axis-aligned rectangle, either winding, closed or not', () => {
    const rect: Vec3[] = [[0, 0, 5], [4, 0, 5], [4, 3, 5], [0, 3, 5]];
    expect(polygonAreaMm2(rect)).toBe(12);
    expect(polygonAreaMm2([...rect].reverse())).toBe(12);
    expect(polygonAreaMm2([...rect, rect[0]!])).toBe(12);
  });
  it('does not depend on the plane orientation (oblique slice) or a far origin', () => {
    const c = Math.SQRT1_2;
    // unit square spanned by u=(1,0,0) and v=(0,c,c), scaled 10 mm, far from the origin
    const o: Vec3 = [1000, -2000, 3000];
    const square: Vec3[] = [o, [o[0] + 10, o[1], o[2]], [o[0] + 10, o[1] + 10 * c, o[2] + 10 * c], [o[0], o[1] + 10 * c, o[2] + 10 * c]];
    expect(polygonAreaMm2(square)).toBeCloseTo(100, 9);
  });
  it('handles a concave outline (L shape, 3 unit squares)', () => {
    expect(polygonAreaMm2([[0, 0, 0], [2, 0, 0], [2, 1, 0], [1, 1, 0], [1, 2, 0], [0, 2, 0]])).toBe(3);
  });
  it('rejects too few points and non-finite coordinates', () => {
    expect(() => polygonAreaMm2([[0, 0, 0], [1, 0, 0], [0, 0, 0]])).toThrow('at least 3 points, got 2');
    expect(() => polygonAreaMm2([[0, 0, 0], [1, 0, 0], [1, 1, Number.POSITIVE_INFINITY]])).toThrow('point 3');
  });
});

describe('discHeightsMm', () => {
  it('measures the three superior-inferior pairs in order', () => {
    const pts: Vec3[] = [[0, 30, 10], [0, 30, 0], [0, 40, 9], [0, 40, 0], [0, 50, 6], [0, 50, 0]];
    expect(discHeightsMm(pts)).toEqual({ anterior_mm: 10, middle_mm: 9, posterior_mm: 6 });
  });
  it('needs exactly six points', () => {
    expect(() => discHeightsMm([[0, 0, 0], [0, 0, 1]])).toThrow('needs 6 points');
  });
});

// Sagittal image: rows along -z (head at the top), columns along +y (anterior to posterior).
const SAG: ImagePlane = {
  position: [0, -100, 100],
  rowCosines: [0, 1, 0],
  columnCosines: [0, 0, -1],
  rows: 200,
  columns: 200,
  pixelSpacing: [1, 1],
};
function axialAt(z: number, tiltRad = 0): ImagePlane {
  return {
    position: [-100, -100, z],
    rowCosines: [1, 0, 0],
    columnCosines: [0, Math.cos(tiltRad), Math.sin(tiltRad)],
    rows: 100,
    columns: 100,
    pixelSpacing: [2, 2],
  };
}

describe('crossReferenceLine', () => {
  it('draws a horizontal axial slice as a line across the sagittal image at its z', () => {
    const line = crossReferenceLine(axialAt(40), SAG);
    expect(line).not.toBeNull();
    const [a, b] = line!;
    expect(a[2]).toBeCloseTo(40, 9);
    expect(b[2]).toBeCloseTo(40, 9);
    // it spans the sagittal image from edge to edge along y (pixel edges at -100.5 and 99.5)
    expect([a[1], b[1]].sort((p, q) => p - q)).toEqual([-100.5, 99.5]);
  });
  it('follows a tilted axial block and misses an image it does not cross', () => {
    const tilt = Math.atan(0.1); // plane z = 40 + 0.1 (y + 100)
    const [a, b] = crossReferenceLine(axialAt(40, tilt), SAG)!;
    for (const p of [a, b]) expect(p[2]).toBeCloseTo(40 + 0.1 * (p[1] + 100), 9);
    expect(crossReferenceLine(axialAt(500), SAG)).toBeNull();
  });
  it('is null for parallel planes and rejects a bad header', () => {
    expect(crossReferenceLine(axialAt(0), axialAt(10))).toBeNull();
    expect(() => crossReferenceLine({ ...axialAt(0), pixelSpacing: [0, 1] }, SAG)).toThrow('PixelSpacing must be positive');
  });
});

describe('axial blocks and levels', () => {
  // 3 blocks of 3 slices, 4 mm apart inside a block, 30 mm between blocks; scroll order inferior -> superior
  const zs = [-40, -36, -32, 0, 4, 8, 40, 44, 48];
  const planes = zs.map((z) => axialAt(z));
  it('splits a stack at gaps and at orientation changes', () => {
    expect(axialBlocks(planes)).toEqual([[0, 1, 2], [3, 4, 5], [6, 7, 8]]);
    const tilted = [axialAt(0), axialAt(4), axialAt(8, 0.2), axialAt(12, 0.2)];
    expect(axialBlocks(tilted)).toEqual([[0, 1], [2, 3]]);
    expect(axialBlocks([])).toEqual([]);
  });
  it('maps blocks superior to inferior onto the levels, middle slice each', () => {
    expect(levelSlicesFromBlocks(['L3-L4', 'L4-L5', 'L5-S1'], planes)).toEqual([
      { level: 'L3-L4', sliceIndex: 7, distanceMm: null, source: 'blocks' },
      { level: 'L4-L5', sliceIndex: 4, distanceMm: null, source: 'blocks' },
      { level: 'L5-S1', sliceIndex: 1, distanceMm: null, source: 'blocks' },
    ]);
    expect(levelSlicesFromBlocks(['L4-L5', 'L5-S1'], planes)).toBeNull();
  });
  it('names discs from the sacrum up and picks the nearest axial slice', () => {
    const discs: Vec3[] = [[0, 0, 45], [0, 0, -35], [0, 0, 5], [0, 0, 90]];
    expect(nearestSlice(planes, [0, 0, 43])).toEqual({ index: 7, distanceMm: 1 });
    // the disc at z=90 is 42 mm from every slice: no slice for L2-L3
    expect(levelSlicesFromDiscs(['L2-L3', 'L3-L4', 'L4-L5', 'L5-S1'], discs, planes)).toEqual([
      { level: 'L3-L4', sliceIndex: 7, distanceMm: 1, source: 'labels' },
      { level: 'L4-L5', sliceIndex: 4, distanceMm: 1, source: 'labels' },
      { level: 'L5-S1', sliceIndex: 1, distanceMm: 1, source: 'labels' },
    ]);
  });
  it('finds component centroids in patient space and drops small ones', () => {
    // 2 slices of 4x4; label 2 forms a 2x2x2 cube at columns 1-2, rows 1-2; one stray voxel
    const labels = new Uint8Array(2 * 4 * 4);
    for (const z of [0, 1]) for (const y of [1, 2]) for (const x of [1, 2]) labels[z * 16 + y * 4 + x] = 2;
    labels[15] = 2;
    const p0: ImagePlane = { position: [0, 0, 0], rowCosines: [1, 0, 0], columnCosines: [0, 1, 0], rows: 4, columns: 4, pixelSpacing: [0.5, 2] };
    const p1: ImagePlane = { ...p0, position: [0, 0, 3] };
    expect(componentCentroids(labels, [2, 4, 4], 2, [p0, p1], 2)).toEqual([[3, 0.75, 1.5]]);
    expect(pixelToPatient(p0, 1.5, 1.5)).toEqual([3, 0.75, 0]);
    expect(() => componentCentroids(labels, [2, 4, 5], 2, [p0, p1])).toThrow('shape 2x4x5 needs 40');
  });
});
