/**
 * Window/level presets for MR. MR intensities have no absolute scale (unlike
 * CT's Hounsfield units), so the presets are percentile windows of the image
 * on screen rather than fixed numbers.
 */
export interface WindowPreset {
  key: string;
  label: string;
  /** lower and upper percentile (0-100) of the image's pixel values */
  percentiles: readonly [number, number] | null;
}

export const WINDOW_PRESETS: readonly WindowPreset[] = [
  { key: 'default', label: 'Default (DICOM / auto)', percentiles: null },
  { key: 'full', label: 'Full range', percentiles: [0, 100] },
  { key: 'soft', label: 'Soft tissue (2–98 %)', percentiles: [2, 98] },
  { key: 'fluid', label: 'Bright fluid (40–99.5 %)', percentiles: [40, 99.5] },
  { key: 'contrast', label: 'High contrast (10–90 %)', percentiles: [10, 90] },
];

/**
 * The [lower, upper] values at two percentiles of `pixels` (nearest rank on
 * the sorted values). A flat image gets a window one unit wide so the
 * display is still defined.
 */
export function percentileWindow(pixels: ArrayLike<number>, lowPct: number, highPct: number): [number, number] {
  if (!(lowPct >= 0 && highPct <= 100 && lowPct < highPct)) throw new RangeError(`percentiles must satisfy 0 <= low < high <= 100, got ${lowPct}, ${highPct}`);
  if (pixels.length === 0) throw new RangeError('cannot window an empty image');
  const sorted = Float64Array.from(pixels).sort();
  const at = (pct: number): number => sorted[Math.min(sorted.length - 1, Math.max(0, Math.round((pct / 100) * (sorted.length - 1))))]!;
  const lower = at(lowPct);
  let upper = at(highPct);
  if (upper <= lower) upper = lower + 1;
  return [lower, upper];
}
