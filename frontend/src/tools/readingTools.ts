import {
  addTool,
  Enums as ToolEnums,
  PanTool,
  StackScrollTool,
  ToolGroupManager,
  WindowLevelTool,
  ZoomTool,
} from '@cornerstonejs/tools';

export const READING_TOOL_GROUP_ID = 'spinereview-reading';

let toolsAdded = false;

/**
 * The reading tool group: WindowLevel (left drag), Pan (middle), Zoom
 * (right), StackScroll (wheel). Read-only: no segmentation editing tools.
 */
export function createReadingToolGroup(viewportIds: string[], renderingEngineId: string): void {
  if (!toolsAdded) {
    for (const tool of [WindowLevelTool, PanTool, ZoomTool, StackScrollTool]) addTool(tool);
    toolsAdded = true;
  }
  const existing = ToolGroupManager.getToolGroup(READING_TOOL_GROUP_ID);
  if (existing) ToolGroupManager.destroyToolGroup(READING_TOOL_GROUP_ID);
  const group = ToolGroupManager.createToolGroup(READING_TOOL_GROUP_ID);
  if (!group) throw new Error('Could not create the viewer tool group');

  group.addTool(WindowLevelTool.toolName);
  group.addTool(PanTool.toolName);
  group.addTool(ZoomTool.toolName);
  group.addTool(StackScrollTool.toolName);

  const { MouseBindings } = ToolEnums;
  group.setToolActive(WindowLevelTool.toolName, { bindings: [{ mouseButton: MouseBindings.Primary }] });
  group.setToolActive(PanTool.toolName, { bindings: [{ mouseButton: MouseBindings.Auxiliary }] });
  group.setToolActive(ZoomTool.toolName, { bindings: [{ mouseButton: MouseBindings.Secondary }] });
  group.setToolActive(StackScrollTool.toolName, { bindings: [{ mouseButton: MouseBindings.Wheel }] });

  for (const viewportId of viewportIds) group.addViewport(viewportId, renderingEngineId);
}
