import './ui/styles.css';
import { bootReading, type Boot } from './boot';
import { startDecodeWorkers } from './viewer/decodeWorkers';

/** Longest the workspace's evaluation waits for the previews (ms). */
const PREVIEW_WAIT_MS = 1500;

/**
 * The entry chunk stays small: it starts the page's requests (boot.ts) and
 * draws previews of the shown slices before the workspace (Cornerstone and
 * vtk.js, most of the JavaScript) is even requested. Compiling and evaluating
 * the workspace hold the main thread for hundreds of milliseconds, so it is
 * imported once the boot has drawn its previews (or after PREVIEW_WAIT_MS):
 * Cornerstone needs the same metadata and frames, so it loses little by
 * waiting. (Preloading its chunks from the page's head made a cold load's
 * previews ~80 ms later and the series no sooner: bench/viewer_load.py.)
 */
function start(): void {
  const compareRoot = document.getElementById('viewer-root');
  if (compareRoot?.dataset.mode === 'compare-readers') {
    import('./compare/readerCompareApp')
      .then(({ mountReaderCompare }) => mountReaderCompare(compareRoot))
      .catch((err: unknown) => {
        compareRoot.dataset.state = 'error';
        compareRoot.dataset.error = err instanceof Error ? err.message : String(err);
        compareRoot.textContent = `The comparison failed: ${compareRoot.dataset.error}`;
      });
    return;
  }
  const root = document.getElementById('viewer-root');
  if (!root) {
    // Nothing to mount into: this bundle was included on another page.
    return;
  }
  let boot: Boot | null = null;
  try {
    boot = bootReading(root);
  } catch {
    boot = null; // the viewer reports the page's missing configuration itself
  }
  const previews = boot ? Promise.race([boot.previewsSettled, new Promise<void>((resolve) => window.setTimeout(resolve, PREVIEW_WAIT_MS))]) : Promise.resolve();
  previews
    .then(() => {
      // The workspace's chunks are requested first: their download (megabytes) is the longest wait.
      const app = import('./app');
      // After the previews (their decoding and drawing would share the cores with the workers'
      // compiling), while the workspace downloads and evaluates.
      startDecodeWorkers();
      boot?.fetchRemainingFrames();
      return app;
    })
    .then(({ mountReadingViewer }) => mountReadingViewer(root, boot))
    .catch((err: unknown) => {
      const message = err instanceof Error ? err.message : String(err);
      root.dataset.state = 'error';
      root.dataset.error = message;
      const box = document.createElement('div');
      box.className = 'sr-splash sr-splash-error';
      box.setAttribute('role', 'alert');
      box.textContent = `The viewer failed: ${message}`;
      root.replaceChildren(box);
    });
}

if (document.readyState === 'loading') {
  document.addEventListener('DOMContentLoaded', start, { once: true });
} else {
  start();
}
