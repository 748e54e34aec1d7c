import { add, checkPoint, cross, dot, normalize, scale, sub, type Vec3 } from './vec';

/**
 * One image's geometry from its DICOM header, in patient coordinates (mm).
 * PixelSpacing is [row spacing, column spacing]: the distance between rows
 * (along the column direction) first, as in (0028,0030).
 */
export interface ImagePlane {
  /** ImagePositionPatient: centre of the first transmitted pixel */
  position: Vec3;
  /** first three values of ImageOrientationPatient (direction of increasing column index) */
  rowCosines: Vec3;
  /** last three values of ImageOrientationPatient (direction of increasing row index) */
  columnCosines: Vec3;
  rows: number;
  columns: number;
  /** [row spacing, column spacing] in mm */
  pixelSpacing: readonly [number, number];
}

export function checkImagePlane(plane: ImagePlane): ImagePlane {
  checkPoint(plane.position, 'ImagePositionPatient');
  checkPoint(plane.rowCosines, 'row direction');
  checkPoint(plane.columnCosines, 'column direction');
  if (!(plane.rows > 0 && plane.columns > 0)) throw new RangeError(`image size must be positive, got ${plane.rows} x ${plane.columns}`);
  const [dr, dc] = plane.pixelSpacing;
  if (!(dr > 0 && dc > 0)) throw new RangeError(`PixelSpacing must be positive, got [${dr}, ${dc}]`);
  return plane;
}

/** Unit normal of an image plane: row direction × column direction. */
export function planeNormal(plane: ImagePlane): [number, number, number] {
  return normalize(cross(plane.rowCosines, plane.columnCosines));
}

/** Patient coordinates of pixel (column i, row j); fractional indices allowed. */
export function pixelToPatient(plane: ImagePlane, column: number, row: number): [number, number, number] {
  const [rowSpacing, columnSpacing] = plane.pixelSpacing;
  return add(add(plane.position, scale(plane.rowCosines, column * columnSpacing)), scale(plane.columnCosines, row * rowSpacing));
}

/** Signed distance (mm) of a point from an image plane, along its normal. */
export function signedDistanceToPlane(plane: ImagePlane, point: Vec3): number {
  return dot(sub(point, plane.position), planeNormal(plane));
}

/** The four corners of the image's pixel area (outer edges of the edge pixels). */
export function imageCorners(plane: ImagePlane): [Vec3, Vec3, Vec3, Vec3] {
  const c0 = -0.5;
  const c1 = plane.columns - 0.5;
  const r0 = -0.5;
  const r1 = plane.rows - 0.5;
  return [pixelToPatient(plane, c0, r0), pixelToPatient(plane, c1, r0), pixelToPatient(plane, c1, r1), pixelToPatient(plane, c0, r1)];
}

/**
 * The cross-reference line: where the plane of image `cut` (e.g. the current
 * axial slice) crosses the image area of `target` (e.g. the sagittal slice),
 * as two points in patient coordinates, or null when the planes are parallel
 * or the line misses the target image.
 *
 * Each edge of the target's rectangle whose corners lie on opposite sides of
 * the cut plane (signed distances d₀, d₁) is cut at t = d₀ / (d₀ − d₁).
 */
export function crossReferenceLine(cut: ImagePlane, target: ImagePlane): [Vec3, Vec3] | null {
  checkImagePlane(cut);
  checkImagePlane(target);
  const n = planeNormal(cut);
  const targetNormal = planeNormal(target);
  if (Math.abs(dot(n, targetNormal)) > 1 - 1e-9) return null; // parallel planes
  const corners = imageCorners(target);
  const d = corners.map((c) => dot(sub(c, cut.position), n));
  const points: Vec3[] = [];
  const push = (p: Vec3): void => {
    if (!points.some((q) => Math.abs(q[0] - p[0]) + Math.abs(q[1] - p[1]) + Math.abs(q[2] - p[2]) < 1e-9)) points.push(p);
  };
  for (let k = 0; k < 4; k++) {
    const d0 = d[k]!;
    const d1 = d[(k + 1) % 4]!;
    const a = corners[k]!;
    const b = corners[(k + 1) % 4]!;
    if (d0 === 0) push(a);
    if ((d0 < 0 && d1 > 0) || (d0 > 0 && d1 < 0)) {
      const t = d0 / (d0 - d1);
      push(add(a, scale(sub(b, a), t)));
    }
  }
  if (points.length < 2) return null;
  return [points[0]!, points[1]!];
}
