import { areaAdapter, splineAreaAdapter } from './areaAdapter';
import { discHeightAdapter } from './discHeightAdapter';
import { lengthAdapter } from './lengthAdapter';
import type { MeasurementAdapter } from './types';

export const ADAPTERS: readonly MeasurementAdapter[] = [lengthAdapter, areaAdapter, splineAreaAdapter, discHeightAdapter];

export function adapterForTool(toolName: string | undefined): MeasurementAdapter | null {
  return ADAPTERS.find((a) => a.toolName === toolName) ?? null;
}

export type { AnnotationLike, MeasurementAdapter } from './types';
