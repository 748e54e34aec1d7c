import { LengthTool, type Types } from '@cornerstonejs/tools';
import { lengthTextLines } from './textLines';

/**
 * Canal antero-posterior diameter: a two-point length in mm (from the
 * patient-coordinate end points), labelled with its level.
 */
export class ApDiameterTool extends LengthTool {
  static override toolName = 'ApDiameter';

  constructor(toolProps: Types.PublicToolProps = {}) {
    super(toolProps);
    this.configuration.getTextLines = lengthTextLines;
    // Undo and redo are the workspace's own (one history for masks and measurements).
    this.configuration.actions = {};
  }
}
