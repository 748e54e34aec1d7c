/**
 * The DICOM image loader's decode workers, started by the entry chunk once
 * the previews are drawn: each worker fetches and compiles its module
 * (~200 kB) while the workspace evaluates, instead of after Cornerstone's init
 * (a cold load's first decode waited ~200 ms for them, bench/viewer_load.py
 * --trace). viewer/init.ts registers them with Cornerstone's worker manager
 * under the loader's own name before the loader's init, which then keeps them.
 *
 * No Cornerstone import here: part of the small entry chunk.
 */

/** How many decode workers: a couple are plenty for small uncompressed frames and leave cores for rendering; two at least. */
export function decodeWorkerCount(): number {
  const cores = typeof navigator !== 'undefined' ? navigator.hardwareConcurrency || 2 : 2;
  return Math.max(2, Math.min(cores - 1, 3));
}

const started: Worker[] = [];

function newDecodeWorker(): Worker {
  // The loader's own worker module (its init.js builds the same URL).
  return new Worker(new URL('../../node_modules/@cornerstonejs/dicom-image-loader/dist/esm/decodeImageFrameWorker.js', import.meta.url), { type: 'module' });
}

/** Starts the decode workers now (once). */
export function startDecodeWorkers(): void {
  if (started.length > 0 || typeof Worker === 'undefined') return;
  for (let i = 0; i < decodeWorkerCount(); i += 1) started.push(newDecodeWorker());
}

/** A decode worker for Cornerstone's worker manager: one started early if any is left, else a new one. */
export function takeDecodeWorker(): Worker {
  return started.shift() ?? newDecodeWorker();
}
