import { lengthMm } from './length';
import type { Vec3 } from './vec';

export interface DiscHeights {
  anterior_mm: number;
  middle_mm: number;
  posterior_mm: number;
}

/** Order of the six disc-height points: a superior and an inferior endplate point per position. */
export const DISC_HEIGHT_POINTS = [
  'anterior superior',
  'anterior inferior',
  'middle superior',
  'middle inferior',
  'posterior superior',
  'posterior inferior',
] as const;

/**
 * Disc heights (mm) at the anterior, middle and posterior thirds, each the
 * distance between the superior and the inferior endplate point of that pair
 * on the mid-sagittal slice (the "anterior, middle, posterior disc height"
 * variant of e.g. Hurxthal's method; here measured point to point in patient
 * coordinates, not projected on a vertebral axis).
 *
 * Points, in this order: anterior superior/inferior, middle superior/inferior,
 * posterior superior/inferior.
 */
export function discHeightsMm(points: readonly Vec3[]): DiscHeights {
  if (points.length !== 6) {
    throw new RangeError(`a disc height needs 6 points (anterior, middle, posterior; superior then inferior), got ${points.length}`);
  }
  return {
    anterior_mm: lengthMm([points[0]!, points[1]!]),
    middle_mm: lengthMm([points[2]!, points[3]!]),
    posterior_mm: lengthMm([points[4]!, points[5]!]),
  };
}
