import { polygonAreaMm2 } from '../measurements/math/area';
import { discHeightsMm } from '../measurements/math/discHeight';
import { lengthMm } from '../measurements/math/length';
import type { Vec3 } from '../measurements/math/vec';

/** The annotation fields the text lines read (Cornerstone's annotation.data). */
export interface TextData {
  label?: string;
  handles?: { points?: Vec3[] };
  contour?: { polyline?: Vec3[] };
}

function safe(f: () => string): string | null {
  try {
    return f();
  } catch {
    return null;
  }
}

/** "L4-L5 AP diameter" / "12.3 mm" from the annotation's own points (same maths as the panel and the server). */
export function lengthTextLines(data: TextData): string[] {
  const value = safe(() => `${lengthMm(data.handles?.points ?? []).toFixed(1)} mm`);
  return [data.label, value].filter((x): x is string => !!x);
}

export function areaTextLines(data: TextData): string[] {
  const polyline = data.contour?.polyline ?? [];
  const value = polyline.length >= 3 ? safe(() => `${polygonAreaMm2(polyline).toFixed(1)} mm²`) : null;
  return [data.label, value].filter((x): x is string => !!x);
}

export function discHeightTextLines(data: TextData): string[] {
  const points = data.handles?.points ?? [];
  if (points.length < 6) return [data.label ?? 'Disc height', `point ${points.length + 1} of 6…`];
  const d = safe(() => {
    const v = discHeightsMm(points);
    return `A ${v.anterior_mm.toFixed(1)} · M ${v.middle_mm.toFixed(1)} · P ${v.posterior_mm.toFixed(1)} mm`;
  });
  return [data.label, d].filter((x): x is string => !!x);
}
