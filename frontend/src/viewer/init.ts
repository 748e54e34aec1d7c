import { getWebWorkerManager, init as csInit, isCornerstoneInitialized, metaData } from '@cornerstonejs/core';
import { init as csToolsInit } from '@cornerstonejs/tools';
import dicomImageLoader from '@cornerstonejs/dicom-image-loader';
import { decodeWorkerCount, takeDecodeWorker } from './decodeWorkers';
import { BOOT_FRAMES_PRIORITY, bootFrameData, type CompressedFrameData } from './frameRegistry';
import type { FramePart } from './preview';

/** The worker name the DICOM image loader registers and decodes with (its init.js). */
const DECODE_WORKER_NAME = 'dicomImageLoader';

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
    // The loader's decode workers, started by the entry chunk (viewer/decodeWorkers.ts), registered
    // under the loader's name first: the loader's init then keeps them (and says so in the console).
    const workers = decodeWorkerCount();
    getWebWorkerManager().registerWorker(DECODE_WORKER_NAME, takeDecodeWorker, { maxWorkerInstances: workers });
    dicomImageLoader.init({ maxWebWorkers: workers });
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
