import { imageLoader, type Types } from '@cornerstonejs/core';
import { Enums as ToolEnums, segmentation } from '@cornerstonejs/tools';
import type { AiSegmentation } from '../api/types';
import { buildColorLUT, prettyLabelName, sortedLabelEntries } from './colors';
import { matchSlicesToImages, sliceLabelsBySop, type SliceMatch } from './labels';

const { SegmentationRepresentations } = ToolEnums;

/** Semi-transparent fill so the anatomy stays readable under the AI labels. */
export const DEFAULT_FILL_ALPHA = 0.35;

export interface OverlayInput {
  viewportId: string;
  /** the stack's imageIds, in stack order */
  imageIds: string[];
  /** SOPInstanceUID of each imageId */
  sopByImageId: ReadonlyMap<string, string>;
  rows: number;
  columns: number;
  ai: AiSegmentation;
  labels: Uint8Array;
}

export interface OverlayResult {
  segmentationId: string;
  match: SliceMatch;
}

/**
 * Adds the AI result as a read-only labelmap segmentation on a stack
 * viewport: one derived labelmap image per imageId, filled from the labels
 * slice with the same SOPInstanceUID (images without one stay empty).
 */
export async function addAiLabelmap(input: OverlayInput): Promise<OverlayResult> {
  const { viewportId, imageIds, ai } = input;
  const bySop = sliceLabelsBySop(input.labels, ai.shape, ai.sop_instance_uids);
  const imageSops = imageIds.map((id) => input.sopByImageId.get(id) ?? '');
  const match = matchSlicesToImages(bySop, ai.shape, imageSops, input.rows, input.columns);
  if (match.matched === 0) {
    throw new Error('None of the AI label slices matches an image of this series (by SOPInstanceUID)');
  }

  const segmentationId = `ai-${ai.id}-${viewportId}`;
  const labelmapImages = imageLoader.createAndCacheDerivedLabelmapImages(imageIds, {
    getDerivedImageId: (referencedImageId: string) => `derived:${segmentationId}:${referencedImageId}`,
  } as Parameters<typeof imageLoader.createAndCacheDerivedLabelmapImages>[1]);
  labelmapImages.forEach((image, i) => {
    const slice = match.slices[i];
    if (slice) fillImage(image, slice);
  });

  const entries = sortedLabelEntries(ai.label_map);
  const segments: Record<number, { label: string; locked: boolean }> = {};
  for (const { value, name } of entries) segments[value] = { label: prettyLabelName(name), locked: true };

  segmentation.addSegmentations([
    {
      segmentationId,
      representation: {
        type: SegmentationRepresentations.Labelmap,
        data: { imageIds: labelmapImages.map((img) => img.imageId) },
      },
      config: { label: `AI ${ai.model_version}`, segments },
    },
  ]);

  const maxLabel = entries.reduce((m, e) => Math.max(m, e.value), 1);
  await segmentation.addLabelmapRepresentationToViewportMap({
    [viewportId]: [
      {
        segmentationId,
        type: SegmentationRepresentations.Labelmap,
        config: { colorLUTOrIndex: buildColorLUT(maxLabel) as Types.ColorLUT },
      },
    ],
  });
  segmentation.config.style.setStyle(
    { type: SegmentationRepresentations.Labelmap, viewportId, segmentationId },
    {
      renderFill: true,
      fillAlpha: DEFAULT_FILL_ALPHA,
      renderFillInactive: true,
      fillAlphaInactive: DEFAULT_FILL_ALPHA,
      renderOutline: true,
      outlineWidth: 1,
      renderOutlineInactive: true,
      outlineWidthInactive: 1,
      outlineOpacity: 0.9,
      outlineOpacityInactive: 0.9,
    },
  );
  return { segmentationId, match };
}

function fillImage(image: Types.IImage, slice: Uint8Array): void {
  const manager = image.voxelManager as
    | { setFromScalarData?: (data: ArrayLike<number>) => void; getScalarData?: () => ArrayLike<number> }
    | undefined;
  if (manager?.setFromScalarData) {
    manager.setFromScalarData(slice);
    return;
  }
  const pixels = image.getPixelData() as Uint8Array;
  pixels.set(slice);
}

export function setAiOverlayVisible(viewportId: string, segmentationId: string, visible: boolean): void {
  segmentation.config.visibility.setSegmentationRepresentationVisibility(
    viewportId,
    { segmentationId, type: SegmentationRepresentations.Labelmap },
    visible,
  );
}

export function setAiOverlayOpacity(viewportId: string, segmentationId: string, alpha: number): void {
  segmentation.config.style.setStyle(
    { type: SegmentationRepresentations.Labelmap, viewportId, segmentationId },
    { fillAlpha: alpha, fillAlphaInactive: alpha },
    true,
  );
}

/** Resolves at the next SEGMENTATION_RENDERED event of the viewport. */
export function waitForSegmentationRender(
  eventTarget: EventTarget,
  viewportId: string,
  timeoutMs: number,
): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = window.setTimeout(() => {
      eventTarget.removeEventListener(ToolEnums.Events.SEGMENTATION_RENDERED, listener);
      resolve(false);
    }, timeoutMs);
    const listener = (evt: Event): void => {
      const detail = (evt as CustomEvent<{ viewportId?: string }>).detail;
      if (detail?.viewportId !== viewportId) return;
      window.clearTimeout(timer);
      eventTarget.removeEventListener(ToolEnums.Events.SEGMENTATION_RENDERED, listener);
      resolve(true);
    };
    eventTarget.addEventListener(ToolEnums.Events.SEGMENTATION_RENDERED, listener);
  });
}
