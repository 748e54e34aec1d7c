import { add, checkPoint, cross, norm, sub, type Vec3 } from './vec';

/**
 * Area in mm² of a closed planar polygon in patient coordinates, by Newell's
 * method: A = ½ |Σᵢ pᵢ × pᵢ₊₁| (indices modulo n). It is exact for any planar
 * polygon whatever its orientation in space (an oblique axial block included),
 * and does not depend on where the polygon lies. The closing edge is implied;
 * a repeated first point at the end is accepted.
 *
 * Reference: M. E. Newell, R. G. Newell, T. L. Sancha, "A solution to the
 * hidden surface problem", Proc. ACM Annual Conference, 1972; the vector-area
 * form in Graphics Gems III, "Newell's method".
 */
export function polygonAreaMm2(points: readonly Vec3[]): number {
  const pts = points.map((p, i) => checkPoint(p, `point ${i + 1}`));
  if (pts.length > 1) {
    const first = pts[0]!;
    const last = pts[pts.length - 1]!;
    if (first[0] === last[0] && first[1] === last[1] && first[2] === last[2]) pts.pop();
  }
  if (pts.length < 3) throw new RangeError(`an area needs a closed outline of at least 3 points, got ${pts.length}`);
  // Relative to the first point: the same sum, without cancellation far from the origin.
  const origin = pts[0]!;
  let total: [number, number, number] = [0, 0, 0];
  for (let i = 0; i < pts.length; i++) {
    const a = sub(pts[i]!, origin);
    const b = sub(pts[(i + 1) % pts.length]!, origin);
    total = add(total, cross(a, b));
  }
  return norm(total) / 2;
}

