import { lengthMm } from '../math/length';
import { asPoints, type MeasurementAdapter } from './types';

/** ApDiameter annotations: handles.points = [p0, p1]. */
export const lengthAdapter: MeasurementAdapter = {
  toolName: 'ApDiameter',
  kind: 'length',
  points(annotation) {
    const pts = asPoints(annotation.data?.handles?.points, 'length');
    return pts.length === 2 ? pts : null;
  },
  values(points) {
    return { length_mm: lengthMm(points) };
  },
};
