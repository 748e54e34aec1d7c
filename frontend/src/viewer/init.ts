import { init as csInit, isCornerstoneInitialized, metaData } from '@cornerstonejs/core';
import { init as csToolsInit } from '@cornerstonejs/tools';
import dicomImageLoader from '@cornerstonejs/dicom-image-loader';
import { BOOT_FRAMES_PRIORITY, bootFrameData, type CompressedFrameData } from './frameRegistry';
import type { FramePart } from './preview';

let initPromise: Promise<void> | null = null;

/**
 * Initialises Cornerstone core, tools and the DICOM image loader, once per
 * page. Rendering stays on Cornerstone's default (WebGL): its CPU fallback
 * does not draw labelmap overlays.
 */
export function initCornerstone(): Promise<void> {
  if (initPromise) return initPromise;
  initPromise = (async () => {
    if (!isCornerstoneInitialized()) csInit();
    // Small uncompressed frames: a couple of decode workers are plenty and
    // leave cores for rendering on modest reading-room machines; two at least,
    // so a series' frames decode while the first image renders.
    const cores = typeof navigator !== 'undefined' ? navigator.hardwareConcurrency || 2 : 2;
    dicomImageLoader.init({ maxWebWorkers: Math.max(2, Math.min(cores - 1, 3)) });
    csToolsInit();
  })();
  return initPromise;
}

/**
 * Has Cornerstone's WADO-RS loader decode the frames the boot received
 * instead of requesting them again (viewer/frameRegistry.ts); the returned
 * function removes the provider.
 */
export function registerBootFrames(take: (url: string) => FramePart | undefined): () => void {
  const provider = (type: string, query: unknown): CompressedFrameData | undefined => bootFrameData(type, query, take);
  metaData.addProvider(provider, BOOT_FRAMES_PRIORITY);
  return () => metaData.removeProvider(provider);
}
