import type { MeasurementKind, MeasurementValues, Point3 } from '../../api/types';

/** The parts of a Cornerstone annotation an adapter reads (no Cornerstone import: adapters stay pure). */
export interface AnnotationLike {
  annotationUID?: string;
  metadata?: { toolName?: string; referencedImageId?: string };
  data?: {
    label?: string;
    handles?: { points?: number[][] };
    contour?: { polyline?: number[][]; closed?: boolean };
  };
}

/** Between one tool's annotations and the API's measurement payload. */
export interface MeasurementAdapter {
  toolName: string;
  kind: MeasurementKind;
  /** the annotation's points in patient coordinates, or null while it is incomplete */
  points(annotation: AnnotationLike): Point3[] | null;
  /** values from points (same maths the server uses) */
  values(points: readonly Point3[]): MeasurementValues;
}

export function asPoints(raw: number[][] | undefined, what: string): Point3[] {
  return (raw ?? []).map((p, i) => {
    if (!Array.isArray(p) || p.length !== 3 || !p.every((x) => Number.isFinite(x))) {
      throw new RangeError(`${what}: point ${i + 1} is not three finite coordinates`);
    }
    return [p[0]!, p[1]!, p[2]!] as Point3;
  });
}
