import { describe, expect, it } from 'vitest';
import { applyDiff, compareMasks, diffVolumes, distanceTransform, interpolateLabel, labelLut, remapLabels, removeIslands, reorderSlices } from './ops';

describe('diffVolumes / applyDiff', () => {
  it('records only changed voxels and undoes and redoes exactly', () => {
    const before = new Uint8Array([0, 1, 2, 0, 0]);
    const after = new Uint8Array([0, 3, 2, 0, 1]);
    const diff = diffVolumes(before, after);
    expect([...diff.indices]).toEqual([1, 4]);
    expect([...diff.before]).toEqual([1, 0]);
    expect([...diff.after]).toEqual([3, 1]);
    const v = after.slice();
    applyDiff(v, diff, 'undo');
    expect([...v]).toEqual([...before]);
    applyDiff(v, diff, 'redo');
    expect([...v]).toEqual([...after]);
    expect(() => diffVolumes(before, new Uint8Array(4))).toThrow('5 and 4 voxels');
  });
});

describe('removeIslands', () => {
  it('keeps the largest 8-connected component per label', () => {
    // 4x5: label 1 big blob (diagonal joins count) + 1 stray voxel; label 2 two pieces of 2 and 1
    const s = new Uint8Array([
      1, 1, 0, 0, 1,
      0, 0, 1, 0, 0,
      2, 0, 0, 0, 2,
      2, 0, 0, 0, 0,
    ]);
    const { slice, removed } = removeIslands(s, 4, 5);
    expect([...slice]).toEqual([
      1, 1, 0, 0, 0,
      0, 0, 1, 0, 0,
      2, 0, 0, 0, 0,
      2, 0, 0, 0, 0,
    ]);
    expect(removed).toBe(2);
    expect(removeIslands(s, 4, 5, 2).removed).toBe(1);
    expect(() => removeIslands(s, 4, 4)).toThrow('4x4 needs 16');
  });
});

describe('distanceTransform', () => {
  it('is the exact Euclidean distance with anisotropic spacing', () => {
    const inside = new Uint8Array(3 * 4);
    inside[0] = 1; // (row 0, col 0)
    const d = distanceTransform(inside, 3, 4, [2, 1]);
    expect(d[0]).toBe(0);
    expect(d[3]).toBe(3); // row 0, col 3
    expect(d[2 * 4 + 0]).toBe(4); // row 2, col 0: 2 rows x 2 mm
    expect(d[2 * 4 + 3]).toBe(5); // 3-4-5
  });
});

describe('interpolateLabel', () => {
  it('fills the slices between two drawn squares with the in-between shape', () => {
    // shape (5, 9, 9): a 3x3 square at z=0 and a 7x7 square at z=4, same centre
    const shape = [5, 9, 9] as const;
    const v = new Uint8Array(5 * 81);
    for (let y = 3; y <= 5; y++) for (let x = 3; x <= 5; x++) v[y * 9 + x] = 4;
    for (let y = 1; y <= 7; y++) for (let x = 1; x <= 7; x++) v[4 * 81 + y * 9 + x] = 4;
    v[2 * 81] = 1; // another label in the way stays
    const { volume, filledSlices } = interpolateLabel(v, shape, 4);
    expect(filledSlices).toEqual([1, 2, 3]);
    const count = (z: number): number => volume.subarray(z * 81, (z + 1) * 81).filter((x) => x === 4).length;
    expect([count(0), count(1), count(2), count(3), count(4)]).toEqual([9, 9, 25, 25, 49]);
    expect(volume[2 * 81]).toBe(1);
    expect(v.subarray(81, 4 * 81).every((x, i) => x === 0 || i === 81)).toBe(true); // input untouched
  });
  it('does nothing with one drawn slice and rejects a bad label or shape', () => {
    const v = new Uint8Array(2 * 4);
    v[0] = 1;
    expect(interpolateLabel(v, [2, 2, 2], 1).filledSlices).toEqual([]);
    expect(() => interpolateLabel(v, [2, 2, 2], 0)).toThrow('label must be an integer 1-255');
    expect(() => interpolateLabel(v, [3, 2, 2], 1)).toThrow('3x2x2 needs 12');
  });
});

describe('compareMasks', () => {
  const reader = new Uint8Array([1, 1, 0, 2, 0, 3]);
  const ai = new Uint8Array([1, 0, 1, 2, 0, 2]);
  it('codes agreement, AI-only and reader-only voxels', () => {
    expect([...compareMasks(reader, ai, 1)]).toEqual([1, 3, 2, 0, 0, 0]);
    expect([...compareMasks(reader, ai, null)]).toEqual([1, 3, 2, 1, 0, 1]);
  });
});

describe('reorderSlices', () => {
  it('moves slices by SOP and leaves missing ones empty', () => {
    const v = new Uint8Array([1, 1, 2, 2, 3, 3]);
    expect([...reorderSlices(v, 2, ['a', 'b', 'c'], ['c', 'x', 'a'])]).toEqual([3, 3, 0, 0, 1, 1]);
    expect(() => reorderSlices(v, 4, ['a', 'b'], ['a'])).toThrow('need 8');
  });
});

describe('labelLut / remapLabels', () => {
  it('maps structures by name and drops the ones the target lacks', () => {
    const lut = labelLut({ '1': 'vertebral_body', '3': 'spinal_canal', '4': 'dural_sac' }, [
      { value: 1, name: 'dural_sac' },
      { value: 2, name: 'spinal_canal' },
    ]);
    expect([...remapLabels(new Uint8Array([0, 1, 3, 4, 9]), lut)]).toEqual([0, 0, 2, 1, 0]);
  });
});
