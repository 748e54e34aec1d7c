/**
 * Pure slice geometry: no Cornerstone, no DOM.
 *
 * Positions and orientations are DICOM patient coordinates (mm):
 * ImagePositionPatient (0020,0032) and ImageOrientationPatient (0020,0037).
 */

export type Vec3 = [number, number, number];

export interface SliceGeometry {
  imageId: string;
  /** ImagePositionPatient, mm; null when the header lacks it */
  imagePositionPatient: readonly number[] | null;
  /** ImageOrientationPatient (row cosines, then column cosines); null when absent */
  imageOrientationPatient: readonly number[] | null;
  /** InstanceNumber, used only when geometry is missing */
  instanceNumber: number | null;
}

export function cross(a: Vec3, b: Vec3): Vec3 {
  return [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
}

export function dot(a: readonly number[], b: readonly number[]): number {
  return (a[0] ?? 0) * (b[0] ?? 0) + (a[1] ?? 0) * (b[1] ?? 0) + (a[2] ?? 0) * (b[2] ?? 0);
}

function isFiniteVector(v: readonly number[] | null, length: number): v is readonly number[] {
  return v !== null && v.length === length && v.every((x) => Number.isFinite(x));
}

/** Unit slice normal (row × column) from an ImageOrientationPatient, or null if degenerate. */
export function sliceNormal(iop: readonly number[] | null): Vec3 | null {
  if (!isFiniteVector(iop, 6)) return null;
  const row: Vec3 = [iop[0]!, iop[1]!, iop[2]!];
  const col: Vec3 = [iop[3]!, iop[4]!, iop[5]!];
  const n = cross(row, col);
  const norm = Math.hypot(n[0], n[1], n[2]);
  if (norm < 1e-6) return null;
  return [n[0] / norm, n[1] / norm, n[2] / norm];
}

/**
 * Orders a series' images by position along the slice normal (ascending
 * dot(IPP, row × column)), i.e. the order a reader scrolls through.
 *
 * The normal comes from the first image with a valid orientation. When any
 * image lacks a position, or there is no valid orientation, it falls back to
 * InstanceNumber, then to the input order (the sort is stable).
 */
export function sortImageIdsBySliceNormal(slices: readonly SliceGeometry[]): string[] {
  const normal =
    slices.map((s) => sliceNormal(s.imageOrientationPatient)).find((n): n is Vec3 => n !== null) ?? null;
  const allPositioned = slices.every((s) => isFiniteVector(s.imagePositionPatient, 3));
  const indexed = slices.map((s, index) => ({ s, index }));

  if (normal !== null && allPositioned) {
    const keyed = indexed.map(({ s, index }) => ({
      imageId: s.imageId,
      index,
      distance: dot(s.imagePositionPatient as readonly number[], normal),
    }));
    keyed.sort((a, b) => a.distance - b.distance || a.index - b.index);
    return keyed.map((k) => k.imageId);
  }

  indexed.sort((a, b) => {
    const ia = a.s.instanceNumber;
    const ib = b.s.instanceNumber;
    if (ia !== null && ib !== null && ia !== ib) return ia - ib;
    if (ia !== null && ib === null) return -1;
    if (ia === null && ib !== null) return 1;
    return a.index - b.index;
  });
  return indexed.map(({ s }) => s.imageId);
}

/** Index of the slice to open a stack on: the middle one (lower middle for even counts). */
export function middleSliceIndex(count: number): number {
  return count <= 0 ? 0 : Math.floor((count - 1) / 2);
}
