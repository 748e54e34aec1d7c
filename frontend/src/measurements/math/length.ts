import { checkPoint, distance, type Vec3 } from './vec';

/**
 * Length of a segment in mm: the Euclidean distance between its two end
 * points in patient coordinates, |p1 - p0|. The points come from Cornerstone
 * world coordinates, which follow ImagePositionPatient, ImageOrientationPatient
 * and PixelSpacing, so no pixel spacing enters here.
 */
export function lengthMm(points: readonly Vec3[]): number {
  if (points.length !== 2) throw new RangeError(`a length needs exactly 2 points, got ${points.length}`);
  return distance(checkPoint(points[0], 'point 1'), checkPoint(points[1], 'point 2'));
}
