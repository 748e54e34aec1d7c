import { SplineROITool, type Types } from '@cornerstonejs/tools';
import { areaTextLines } from './textLines';

/**
 * Dural sac area drawn as a closed spline (click control points, close on the
 * first point); measured like the freehand outline, from the spline's
 * polyline in patient coordinates.
 */
export class DscaSplineTool extends SplineROITool {
  static override toolName = 'DscaSpline';

  constructor(toolProps: Types.PublicToolProps = {}) {
    super(toolProps);
    this.configuration.getTextLines = areaTextLines;
    this.configuration.actions = {};
  }
}
