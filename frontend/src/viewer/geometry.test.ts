import { describe, expect, it } from 'vitest';
import { middleSliceIndex, sliceNormal, sortImageIdsBySliceNormal, type SliceGeometry } from './geometry';

const AXIAL_IOP = [1, 0, 0, 0, 1, 0]; // normal +z
const SAGITTAL_IOP = [0, 1, 0, 0, 0, -1]; // normal (0,1,0)x(0,0,-1) = -x

function slice(imageId: string, ipp: number[] | null, iop: number[] | null, instanceNumber: number | null = null): SliceGeometry {
  return { imageId, imagePositionPatient: ipp, imageOrientationPatient: iop, instanceNumber };
}

describe('sliceNormal', () => {
  it('is row x column, normalised', () => {
    expect(sliceNormal(AXIAL_IOP)).toEqual([0, 0, 1]);
    expect(sliceNormal(SAGITTAL_IOP)).toEqual([-1, 0, 0]);
    expect(sliceNormal([2, 0, 0, 0, 2, 0])).toEqual([0, 0, 1]);
  });

  it('rejects degenerate or missing orientations', () => {
    expect(sliceNormal(null)).toBeNull();
    expect(sliceNormal([1, 0, 0, 1, 0, 0])).toBeNull();
    expect(sliceNormal([1, 0, 0])).toBeNull();
    expect(sliceNormal([1, 0, 0, 0, Number.NaN, 0])).toBeNull();
  });
});

describe('sortImageIdsBySliceNormal', () => {
  it('orders axial slices by z, ignoring arrival order and instance numbers', () => {
    const ids = sortImageIdsBySliceNormal([
      slice('c', [0, 0, 8], AXIAL_IOP, 1),
      slice('a', [0, 0, -4], AXIAL_IOP, 2),
      slice('b', [0, 0, 2], AXIAL_IOP, 3),
    ]);
    expect(ids).toEqual(['a', 'b', 'c']);
  });

  it('orders sagittal slices along -x (row x column), not by raw x', () => {
    const ids = sortImageIdsBySliceNormal([
      slice('left', [10, 0, 0], SAGITTAL_IOP),
      slice('mid', [0, 0, 0], SAGITTAL_IOP),
      slice('right', [-10, 0, 0], SAGITTAL_IOP),
    ]);
    // distance = -x: left -10, mid 0, right 10
    expect(ids).toEqual(['left', 'mid', 'right']);
  });

  it('projects oblique stacks onto the normal (in-plane offsets do not matter)', () => {
    const c = Math.SQRT1_2;
    const iop = [1, 0, 0, 0, c, c]; // normal = (0, -c, c)
    const ids = sortImageIdsBySliceNormal([
      slice('far', [50, -3 * c, 3 * c], iop),
      slice('near', [-50, 1, 1], iop), // in-plane shift only: distance 0
      slice('mid', [0, -c, c], iop),
    ]);
    expect(ids).toEqual(['near', 'mid', 'far']);
  });

  it('falls back to InstanceNumber when a position is missing, stable otherwise', () => {
    const ids = sortImageIdsBySliceNormal([
      slice('x3', [0, 0, 1], AXIAL_IOP, 3),
      slice('x1', null, AXIAL_IOP, 1),
      slice('none-a', [0, 0, 0], AXIAL_IOP, null),
      slice('x2', [0, 0, 5], AXIAL_IOP, 2),
      slice('none-b', [0, 0, 0], AXIAL_IOP, null),
    ]);
    expect(ids).toEqual(['x1', 'x2', 'x3', 'none-a', 'none-b']);
  });

  it('keeps input order for equal positions and handles an empty series', () => {
    expect(
      sortImageIdsBySliceNormal([slice('p', [0, 0, 0], AXIAL_IOP), slice('q', [0, 0, 0], AXIAL_IOP)]),
    ).toEqual(['p', 'q']);
    expect(sortImageIdsBySliceNormal([])).toEqual([]);
  });
});

describe('middleSliceIndex', () => {
  it('picks the middle (lower middle when even)', () => {
    expect(middleSliceIndex(15)).toBe(7);
    expect(middleSliceIndex(16)).toBe(7);
    expect(middleSliceIndex(1)).toBe(0);
    expect(middleSliceIndex(0)).toBe(0);
  });
});
