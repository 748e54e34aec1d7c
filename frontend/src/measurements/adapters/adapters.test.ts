import { describe, expect, it } from 'vitest';
import { adapterForTool } from './index';
import { thinOutline } from './areaAdapter';

describe('measurement adapters', () => {
  it('length: two handles, value in mm', () => {
    const a = adapterForTool('ApDiameter')!;
    const pts = a.points({ data: { handles: { points: [[0, 0, 0], [0, 6, 8]] } } });
    expect(pts).toEqual([[0, 0, 0], [0, 6, 8]]);
    expect(a.values(pts!)).toEqual({ length_mm: 10 });
    expect(a.points({ data: { handles: { points: [[0, 0, 0]] } } })).toBeNull();
    expect(() => a.points({ data: { handles: { points: [[0, 0, Number.NaN], [1, 1, 1]] } } })).toThrow('length: point 1');
  });
  it('area: the closed outline only, area in mm2', () => {
    const a = adapterForTool('DscaFreehand')!;
    const square = [[0, 0, 1], [10, 0, 1], [10, 10, 1], [0, 10, 1]];
    expect(a.values(a.points({ data: { contour: { polyline: square, closed: true } } })!)).toEqual({ area_mm2: 100 });
    expect(a.points({ data: { contour: { polyline: square, closed: false } } })).toBeNull();
    expect(adapterForTool('DscaSpline')!.kind).toBe('area');
  });
  it('disc height: incomplete until six points', () => {
    const a = adapterForTool('DiscHeight')!;
    const six = [[0, 0, 9], [0, 0, 0], [0, 5, 10], [0, 5, 0], [0, 10, 7], [0, 10, 0]];
    expect(a.points({ data: { handles: { points: six.slice(0, 4) } } })).toBeNull();
    expect(a.values(a.points({ data: { handles: { points: six } } })!)).toEqual({ anterior_mm: 9, middle_mm: 10, posterior_mm: 7 });
    expect(adapterForTool('Length')).toBeNull();
  });
  it('thins long outlines evenly', () => {
    expect(thinOutline([1, 2, 3, 4, 5, 6], 3)).toEqual([1, 3, 5]);
    expect(thinOutline([1, 2], 3)).toEqual([1, 2]);
  });
});
