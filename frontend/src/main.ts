import './ui/styles.css';
import { mountReadingViewer } from './app';

function start(): void {
  const root = document.getElementById('viewer-root');
  if (!root) {
    // Nothing to mount into: this bundle was included on another page.
    return;
  }
  mountReadingViewer(root).catch((err: unknown) => {
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
