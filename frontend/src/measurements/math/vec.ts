/**
 * 3-vectors in DICOM patient coordinates (LPS, mm). Pure functions, no
 * Cornerstone, no DOM.
 */
export type Vec3 = readonly [number, number, number];

export function sub(a: Vec3, b: Vec3): [number, number, number] {
  return [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
}

export function add(a: Vec3, b: Vec3): [number, number, number] {
  return [a[0] + b[0], a[1] + b[1], a[2] + b[2]];
}

export function scale(a: Vec3, s: number): [number, number, number] {
  return [a[0] * s, a[1] * s, a[2] * s];
}

export function dot(a: Vec3, b: Vec3): number {
  return a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
}

export function cross(a: Vec3, b: Vec3): [number, number, number] {
  return [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
}

export function norm(a: Vec3): number {
  return Math.hypot(a[0], a[1], a[2]);
}

export function distance(a: Vec3, b: Vec3): number {
  return norm(sub(a, b));
}

export function normalize(a: Vec3): [number, number, number] {
  const n = norm(a);
  if (!(n > 1e-12)) throw new RangeError('cannot normalise a zero-length vector');
  return [a[0] / n, a[1] / n, a[2] / n];
}

/** Throws a RangeError naming `what` unless `p` is three finite numbers. */
export function checkPoint(p: unknown, what: string): Vec3 {
  if (!Array.isArray(p) || p.length !== 3 || !p.every((x) => typeof x === 'number' && Number.isFinite(x))) {
    throw new RangeError(`${what} must be three finite numbers (x, y, z in mm), got ${JSON.stringify(p)}`);
  }
  return p as unknown as Vec3;
}
