import './ui/styles.css';
import { bootReading, type Boot } from './boot';

/**
 * The entry chunk stays small: it starts the page's requests (boot.ts), then
 * loads the viewer (Cornerstone and the workspace, most of the JavaScript)
 * while those requests are under way.
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
  import('./app')
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
