import { PlanarFreehandROITool, type Types } from '@cornerstonejs/tools';
import { areaTextLines } from './textLines';

/**
 * Dural sac cross-sectional area: a closed freehand outline on an axial
 * slice; the area (mm²) is Newell's polygon area of the outline in patient
 * coordinates, so oblique axial blocks measure correctly.
 */
export class DscaTool extends PlanarFreehandROITool {
  static override toolName = 'DscaFreehand';

  constructor(toolProps: Types.PublicToolProps = {}) {
    super(toolProps);
    this.configuration.getTextLines = areaTextLines;
    this.configuration.actions = {};
    // Outlines are always closed: an area needs one.
    this.configuration.allowOpenContours = false;
  }
}
