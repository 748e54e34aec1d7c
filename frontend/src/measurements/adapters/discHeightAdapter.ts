import { discHeightsMm } from '../math/discHeight';
import { asPoints, type MeasurementAdapter } from './types';

/** DiscHeight annotations: six handles (anterior, middle, posterior; superior then inferior). */
export const discHeightAdapter: MeasurementAdapter = {
  toolName: 'DiscHeight',
  kind: 'disc_height',
  points(annotation) {
    const pts = asPoints(annotation.data?.handles?.points, 'disc height');
    return pts.length === 6 ? pts : null;
  },
  values(points) {
    return discHeightsMm(points);
  },
};
