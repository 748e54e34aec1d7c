import { describe, expect, it } from 'vitest';
import { percentileWindow } from './windowLevel';

describe('percentileWindow', () => {
  it('takes nearest-rank percentiles of the pixel values', () => {
    const pixels = Array.from({ length: 101 }, (_, i) => 100 - i); // 0..100 in reverse
    expect(percentileWindow(pixels, 0, 100)).toEqual([0, 100]);
    expect(percentileWindow(pixels, 2, 98)).toEqual([2, 98]);
    expect(percentileWindow(new Uint16Array([5, 5, 5]), 10, 90)).toEqual([5, 6]);
  });
  it('rejects bad percentiles and empty images', () => {
    expect(() => percentileWindow([1, 2], 50, 50)).toThrow('0 <= low < high <= 100');
    expect(() => percentileWindow([], 0, 100)).toThrow('empty image');
  });
});
