import { describe, expect, it } from 'vitest';
import { LabelsShapeError, matchSlicesToImages, presentLabels, sliceLabelsBySop } from './labels';

// shape (z=3, y=2, x=2): slice k is filled with 10*k + pixel index
function volume(): Uint8Array {
  const out = new Uint8Array(12);
  for (let k = 0; k < 3; k++) for (let p = 0; p < 4; p++) out[k * 4 + p] = 10 * k + p;
  return out;
}

describe('sliceLabelsBySop', () => {
  it('splits C-order (z, y, x) into per-SOP (y, x) slices', () => {
    const bySop = sliceLabelsBySop(volume(), [3, 2, 2], ['s0', 's1', 's2']);
    expect([...bySop.keys()]).toEqual(['s0', 's1', 's2']);
    expect([...bySop.get('s0')!]).toEqual([0, 1, 2, 3]);
    expect([...bySop.get('s1')!]).toEqual([10, 11, 12, 13]);
    expect([...bySop.get('s2')!]).toEqual([20, 21, 22, 23]);
  });

  it('rejects a buffer whose length does not match the shape', () => {
    expect(() => sliceLabelsBySop(new Uint8Array(11), [3, 2, 2], ['a', 'b', 'c'])).toThrow(
      'AI labels buffer has 11 bytes; shape (3, 2, 2) needs 12',
    );
  });

  it('rejects a SOP list that does not match z, duplicates and bad shapes', () => {
    expect(() => sliceLabelsBySop(volume(), [3, 2, 2], ['a', 'b'])).toThrow(LabelsShapeError);
    expect(() => sliceLabelsBySop(volume(), [3, 2, 2], ['a', 'b', 'a'])).toThrow('twice');
    expect(() => sliceLabelsBySop(volume(), [12, 1], ['a'])).toThrow('three positive integers');
    expect(() => sliceLabelsBySop(volume(), [3, 0, 4], ['a', 'b', 'c'])).toThrow(LabelsShapeError);
  });
});

describe('matchSlicesToImages', () => {
  it('matches by SOPInstanceUID, not by position, and reports gaps', () => {
    const bySop = sliceLabelsBySop(volume(), [3, 2, 2], ['s0', 's1', 's2']);
    // the stack is sorted differently and has one image without AI labels
    const match = matchSlicesToImages(bySop, [3, 2, 2], ['s2', 'extra', 's0'], 2, 2);
    expect(match.slices.map((s) => (s ? [...s] : null))).toEqual([[20, 21, 22, 23], null, [0, 1, 2, 3]]);
    expect(match.matched).toBe(2);
    expect(match.unmatchedLabelSops).toEqual(['s1']);
  });

  it('refuses labels whose in-plane size differs from the images', () => {
    const bySop = sliceLabelsBySop(new Uint8Array(6), [1, 2, 3], ['a']);
    expect(() => matchSlicesToImages(bySop, [1, 2, 3], ['a'], 3, 2)).toThrow(
      'AI labels are 2×3 (rows×columns) but the images are 3×2',
    );
  });
});

describe('presentLabels', () => {
  it('lists non-zero label values once, ascending', () => {
    expect(presentLabels(new Uint8Array([0, 4, 1, 4, 0, 255]))).toEqual([1, 4, 255]);
    expect(presentLabels(new Uint8Array(5))).toEqual([]);
  });
});
