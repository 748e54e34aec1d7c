import { metaData } from '@cornerstonejs/core';
import type { ImagePlane } from '../measurements/math/plane';

interface ImagePlaneModule {
  imagePositionPatient?: number[];
  rowCosines?: number[];
  columnCosines?: number[];
  rows?: number;
  columns?: number;
  rowPixelSpacing?: number;
  columnPixelSpacing?: number;
}

function vec3(v: number[] | undefined): [number, number, number] | null {
  return v && v.length === 3 && v.every(Number.isFinite) ? [v[0]!, v[1]!, v[2]!] : null;
}

/** The image's plane from the loader's metadata; null when the header lacks geometry. */
export function imagePlaneOf(imageId: string): ImagePlane | null {
  const m = metaData.get('imagePlaneModule', imageId) as ImagePlaneModule | undefined;
  if (!m) return null;
  const position = vec3(m.imagePositionPatient);
  const rowCosines = vec3(m.rowCosines);
  const columnCosines = vec3(m.columnCosines);
  const rows = m.rows ?? 0;
  const columns = m.columns ?? 0;
  const rowSpacing = m.rowPixelSpacing ?? 0;
  const columnSpacing = m.columnPixelSpacing ?? 0;
  if (!position || !rowCosines || !columnCosines || !(rows > 0 && columns > 0 && rowSpacing > 0 && columnSpacing > 0)) return null;
  return { position, rowCosines, columnCosines, rows, columns, pixelSpacing: [rowSpacing, columnSpacing] };
}
