import {
  addTool,
  BrushTool,
  CircleScissorsTool,
  Enums as ToolEnums,
  PanTool,
  RectangleScissorsTool,
  StackScrollTool,
  ToolGroupManager,
  utilities as toolUtilities,
  WindowLevelTool,
  ZoomTool,
  type Types,
} from '@cornerstonejs/tools';
import { ApDiameterTool } from './ApDiameterTool';
import { DiscHeightTool } from './DiscHeightTool';
import { DscaSplineTool } from './DscaSplineTool';
import { DscaTool } from './DscaTool';

export const READING_TOOL_GROUP_ID = 'spinereview-reading';
/** The viewport with the reader's own labelmap gets the editing tools; the others never can paint. */
export const SEGMENTATION_TOOL_GROUP_ID = 'spinereview-segmentation';

/** Tools the reader picks for the left mouse button. */
export const PRIMARY_TOOLS = {
  windowLevel: WindowLevelTool.toolName,
  pan: PanTool.toolName,
  zoom: ZoomTool.toolName,
  length: ApDiameterTool.toolName,
  area: DscaTool.toolName,
  spline: DscaSplineTool.toolName,
  discHeight: DiscHeightTool.toolName,
  brush: 'SrBrush',
  eraser: 'SrEraser',
  thresholdBrush: 'SrThresholdBrush',
  rectScissors: RectangleScissorsTool.toolName,
  circleScissors: CircleScissorsTool.toolName,
} as const;

export type PrimaryTool = keyof typeof PRIMARY_TOOLS;

export const MEASUREMENT_TOOL_NAMES = [ApDiameterTool.toolName, DscaTool.toolName, DscaSplineTool.toolName, DiscHeightTool.toolName];
const SEGMENTATION_TOOLS: PrimaryTool[] = ['brush', 'eraser', 'thresholdBrush', 'rectScissors', 'circleScissors'];

export function isSegmentationTool(tool: PrimaryTool): boolean {
  return SEGMENTATION_TOOLS.includes(tool);
}

let toolsAdded = false;

/**
 * The workspace's tool group: one primary (left-button) tool at a time,
 * Pan on the middle button, Zoom on the right, stack scroll on the wheel.
 * Measurement tools stay passive when not primary, so their annotations can
 * still be selected and edited.
 */
export class ReadingTools {
  private readonly groups: Array<{ group: Types.IToolGroup; canSegment: boolean }> = [];
  private primary: PrimaryTool = 'windowLevel';
  private readonly listeners = new Set<(tool: PrimaryTool) => void>();

  /** `viewports`: each viewport id, and whether it holds the reader's editable labelmap. */
  constructor(viewports: Array<{ viewportId: string; canSegment: boolean }>, renderingEngineId: string) {
    if (!toolsAdded) {
      for (const tool of [WindowLevelTool, PanTool, ZoomTool, StackScrollTool, ApDiameterTool, DscaTool, DscaSplineTool, DiscHeightTool, BrushTool, RectangleScissorsTool, CircleScissorsTool]) {
        addTool(tool);
      }
      toolsAdded = true;
    }
    for (const [id, canSegment] of [[READING_TOOL_GROUP_ID, false], [SEGMENTATION_TOOL_GROUP_ID, true]] as const) {
      const members = viewports.filter((v) => v.canSegment === canSegment);
      if (ToolGroupManager.getToolGroup(id)) ToolGroupManager.destroyToolGroup(id);
      if (members.length === 0) continue;
      const group = ToolGroupManager.createToolGroup(id);
      if (!group) throw new Error('Could not create the viewer tool group');
      this.setUpGroup(group, canSegment);
      for (const v of members) group.addViewport(v.viewportId, renderingEngineId);
      this.groups.push({ group, canSegment });
    }
    this.setPrimary('windowLevel');
  }

  private setUpGroup(group: Types.IToolGroup, canSegment: boolean): void {
    for (const name of [WindowLevelTool.toolName, PanTool.toolName, ZoomTool.toolName, StackScrollTool.toolName, ...MEASUREMENT_TOOL_NAMES]) {
      group.addTool(name);
    }
    if (canSegment) {
      group.addToolInstance(PRIMARY_TOOLS.brush, BrushTool.toolName, { activeStrategy: 'FILL_INSIDE_CIRCLE' });
      group.addToolInstance(PRIMARY_TOOLS.eraser, BrushTool.toolName, { activeStrategy: 'ERASE_INSIDE_CIRCLE' });
      group.addToolInstance(PRIMARY_TOOLS.thresholdBrush, BrushTool.toolName, {
        activeStrategy: 'THRESHOLD_INSIDE_CIRCLE',
        // MR has no absolute intensities: the range follows the pixels under the first click.
        threshold: { isDynamic: true, dynamicRadius: 2, range: [0, 1] },
      });
      group.addTool(RectangleScissorsTool.toolName);
      group.addTool(CircleScissorsTool.toolName);
    }
    // Cornerstone's own key bindings (z/y undo, i interpolate, Enter/Escape
    // preview) would fight the workspace's shortcuts: drop them.
    for (const name of [...MEASUREMENT_TOOL_NAMES, PRIMARY_TOOLS.brush, PRIMARY_TOOLS.eraser, PRIMARY_TOOLS.thresholdBrush]) {
      if (!group.hasTool(name)) continue;
      const tool = group.getToolInstance(name) as { configuration?: Record<string, unknown> } | undefined;
      if (tool?.configuration) tool.configuration.actions = {};
    }
    const { MouseBindings } = ToolEnums;
    group.setToolActive(PanTool.toolName, { bindings: [{ mouseButton: MouseBindings.Auxiliary }] });
    group.setToolActive(ZoomTool.toolName, { bindings: [{ mouseButton: MouseBindings.Secondary }] });
    group.setToolActive(StackScrollTool.toolName, { bindings: [{ mouseButton: MouseBindings.Wheel }] });
  }

  get active(): PrimaryTool {
    return this.primary;
  }

  onChange(listener: (tool: PrimaryTool) => void): void {
    this.listeners.add(listener);
  }

  /**
   * Puts `tool` on the left button; the previous one goes passive (or, for
   * Pan/Zoom, back to its own button). Viewports that cannot be painted keep
   * window/level on the left button while an editing tool is picked.
   */
  setPrimary(tool: PrimaryTool): void {
    for (const { group, canSegment } of this.groups) {
      const effective: PrimaryTool = isSegmentationTool(tool) && !canSegment ? 'windowLevel' : tool;
      this.applyPrimary(group, effective);
    }
    this.primary = tool;
    for (const l of this.listeners) l(tool);
  }

  private applyPrimary(group: Types.IToolGroup, tool: PrimaryTool): void {
    const { MouseBindings } = ToolEnums;
    (group.getToolInstance(DiscHeightTool.toolName) as DiscHeightTool | undefined)?.abandonPending();
    for (const [key, name] of Object.entries(PRIMARY_TOOLS) as Array<[PrimaryTool, string]>) {
      if (key === tool || !group.hasTool(name)) continue;
      if (name === PanTool.toolName) group.setToolActive(name, { bindings: [{ mouseButton: MouseBindings.Auxiliary }] });
      else if (name === ZoomTool.toolName) group.setToolActive(name, { bindings: [{ mouseButton: MouseBindings.Secondary }] });
      else if (MEASUREMENT_TOOL_NAMES.includes(name)) group.setToolPassive(name);
      else group.setToolDisabled(name);
    }
    const name = PRIMARY_TOOLS[tool];
    const bindings: Types.IToolBinding[] = [{ mouseButton: MouseBindings.Primary }];
    if (name === PanTool.toolName) bindings.push({ mouseButton: MouseBindings.Auxiliary });
    if (name === ZoomTool.toolName) bindings.push({ mouseButton: MouseBindings.Secondary });
    group.setToolActive(name, { bindings });
  }

  /** Brush radius in mm for the brush, eraser and threshold brush. */
  setBrushRadiusMm(radiusMm: number): void {
    if (!this.groups.some((g) => g.canSegment)) return;
    for (const name of [PRIMARY_TOOLS.brush, PRIMARY_TOOLS.eraser, PRIMARY_TOOLS.thresholdBrush]) {
      toolUtilities.segmentation.setBrushSizeForToolGroup(SEGMENTATION_TOOL_GROUP_ID, radiusMm, name);
    }
  }

  getBrushRadiusMm(): number {
    if (!this.groups.some((g) => g.canSegment)) return 0;
    return toolUtilities.segmentation.getBrushSizeForToolGroup(SEGMENTATION_TOOL_GROUP_ID, PRIMARY_TOOLS.brush);
  }
}
