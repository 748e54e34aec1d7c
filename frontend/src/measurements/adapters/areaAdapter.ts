import { polygonAreaMm2 } from '../math/area';
import { asPoints, type MeasurementAdapter } from './types';

/** Longest outline we send: enough for any dural sac, small enough for a quick PUT. */
export const MAX_OUTLINE_POINTS = 256;

/** Every k-th point so the outline has at most `max` points (the area changes by well under 1 %). */
export function thinOutline<T>(points: readonly T[], max = MAX_OUTLINE_POINTS): T[] {
  if (points.length <= max) return [...points];
  const step = points.length / max;
  return Array.from({ length: max }, (_, i) => points[Math.floor(i * step)]!);
}

function areaAdapterFor(toolName: string): MeasurementAdapter {
  return {
    toolName,
    kind: 'area',
    points(annotation) {
      const contour = annotation.data?.contour;
      if (!contour || contour.closed === false) return null;
      const pts = asPoints(contour.polyline, 'area outline');
      return pts.length >= 3 ? thinOutline(pts) : null;
    },
    values(points) {
      return { area_mm2: polygonAreaMm2(points) };
    },
  };
}

/** DSCA freehand and spline outlines: data.contour.polyline, closed. */
export const areaAdapter = areaAdapterFor('DscaFreehand');
export const splineAreaAdapter = areaAdapterFor('DscaSpline');
