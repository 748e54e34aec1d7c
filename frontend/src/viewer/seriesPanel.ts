import { Enums, imageLoader, type RenderingEngine, type Types } from '@cornerstonejs/core';
import { h } from '../ui/dom';
import { middleSliceIndex } from './geometry';

/** Longest a slice's load waits for the boot's request of its frame before requesting it itself (ms). */
const FRAME_WAIT_MS = 5000;

/**
 * One viewport with its header (series description, slice n/N, level), a
 * loading bar, an error line, the window/level readout, and an SVG layer for
 * the cross-reference line.
 */
export class SeriesPanel {
  readonly role: string;
  readonly viewportId: string;
  readonly container: HTMLElement;
  readonly element: HTMLDivElement;
  readonly overlay: SVGSVGElement;
  private readonly titleEl: HTMLElement;
  private readonly sliceEl: HTMLElement;
  private readonly levelEl: HTMLElement;
  private readonly statusEl: HTMLElement;
  private readonly voiEl: HTMLElement;
  private readonly progressEl: HTMLElement;
  private readonly progressBar: HTMLElement;
  private imageCount = 0;
  /** the entry chunk's preview of the shown slice, until Cornerstone has rendered it */
  private preview: HTMLCanvasElement | null = null;
  /** Cornerstone has rendered an image here (a preview arriving later is dropped) */
  private rendered = false;
  imageIds: string[] = [];
  /** resolves once every slice is in the cache (or failed) */
  loaded: Promise<void> = Promise.resolve();
  /** When the page's boot is fetching a slice's frame: a promise that settles when that request ends. */
  frameArrival: (imageId: string) => Promise<void> | undefined = () => undefined;
  private readonly sliceListeners = new Set<(index: number) => void>();

  constructor(role: string, heading: string) {
    this.role = role;
    this.viewportId = `viewport-${role}`;
    this.titleEl = h('span', { class: 'sr-vp-title' }, heading);
    this.sliceEl = h('span', { class: 'sr-vp-slice', 'data-testid': `slice-${role}` }, '');
    this.levelEl = h('span', { class: 'sr-vp-level', 'data-testid': `level-${role}` }, '');
    this.element = h('div', { id: this.viewportId, class: 'sr-vp-element' });
    // The right button zooms: keep the browser menu out of the way.
    this.element.addEventListener('contextmenu', (e) => e.preventDefault());
    this.overlay = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
    this.overlay.setAttribute('class', 'sr-vp-overlay');
    this.statusEl = h('div', { class: 'sr-vp-status', role: 'status', 'aria-live': 'polite' }, 'Waiting…');
    this.voiEl = h('div', { class: 'sr-vp-voi' }, '');
    this.progressBar = h('div', { class: 'sr-vp-progress-bar' });
    this.progressEl = h(
      'div',
      { class: 'sr-vp-progress', role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-label': `${heading} loading`, 'data-testid': `progress-${role}` },
      this.progressBar,
    );
    this.container = h(
      'section',
      { class: 'sr-vp', 'data-role': role, 'aria-label': `${heading} viewport` },
      h('header', { class: 'sr-vp-header' }, this.titleEl, this.levelEl, this.sliceEl),
      this.progressEl,
      h('div', { class: 'sr-vp-body' }, this.element, this.overlay, this.statusEl, this.voiEl),
    );
  }

  setTitle(text: string): void {
    this.titleEl.textContent = text;
  }

  setLevel(text: string): void {
    this.levelEl.textContent = text;
  }

  setLoading(text: string): void {
    this.statusEl.textContent = text;
    this.statusEl.className = 'sr-vp-status';
    // Over a preview the image itself says that it is coming.
    this.statusEl.hidden = this.preview !== null;
  }

  /** Shows the entry chunk's drawing of the shown slice until Cornerstone renders it. */
  showPreview(canvas: HTMLCanvasElement): void {
    if (this.rendered || this.statusEl.getAttribute('role') === 'alert') return;
    this.dropPreview();
    this.preview = canvas;
    this.element.after(canvas);
    this.statusEl.hidden = true;
  }

  private dropPreview(): void {
    this.preview?.remove();
    this.preview = null;
  }

  setLoaded(): void {
    this.statusEl.hidden = true;
  }

  setMessage(text: string): void {
    this.dropPreview();
    this.statusEl.textContent = text;
    this.statusEl.className = 'sr-vp-status sr-vp-status-info';
    this.statusEl.hidden = false;
    this.progressEl.hidden = true;
  }

  setError(text: string): void {
    this.dropPreview();
    this.statusEl.textContent = text;
    this.statusEl.className = 'sr-vp-status sr-vp-status-error';
    this.statusEl.setAttribute('role', 'alert');
    this.statusEl.hidden = false;
  }

  private setProgress(done: number, total: number): void {
    const pct = total > 0 ? Math.round((100 * done) / total) : 0;
    this.progressBar.style.width = `${pct}%`;
    this.progressEl.setAttribute('aria-valuenow', String(pct));
    this.progressEl.title = `${done} of ${total} images loaded`;
    this.progressEl.classList.toggle('sr-done', done >= total);
  }

  enable(engine: RenderingEngine): void {
    engine.enableElement({
      viewportId: this.viewportId,
      type: Enums.ViewportType.STACK,
      element: this.element,
      defaultOptions: { background: [0, 0, 0] as Types.Point3 },
    });
    this.element.addEventListener(Enums.Events.STACK_NEW_IMAGE, ((evt: Event) => {
      const detail = (evt as CustomEvent<Types.EventTypes.StackNewImageEventDetail>).detail;
      this.showSlice(detail.imageIdIndex);
      for (const l of this.sliceListeners) l(detail.imageIdIndex);
    }) as EventListener);
    this.element.addEventListener(Enums.Events.VOI_MODIFIED, ((evt: Event) => {
      const detail = (evt as CustomEvent<Types.EventTypes.VoiModifiedEventDetail>).detail;
      this.showVoi(detail.range);
    }) as EventListener);
  }

  onSlice(listener: (index: number) => void): void {
    this.sliceListeners.add(listener);
  }

  private showSlice(index: number): void {
    this.sliceEl.textContent = this.imageCount > 0 ? `${index + 1} / ${this.imageCount}` : '';
  }

  private showVoi(range: Types.VOIRange | undefined): void {
    if (!range) return;
    const width = range.upper - range.lower;
    const center = range.lower + width / 2;
    this.voiEl.textContent = `W ${Math.round(width)}  L ${Math.round(center)}`;
  }

  /**
   * Shows the stack at its initial slice, resolves once the first image is
   * rendered, then loads the rest in the background with the loading bar.
   */
  async showStack(engine: RenderingEngine, imageIds: string[], initialIndex: 'middle' | 'first', onFirstRender: () => void): Promise<void> {
    const viewport = engine.getViewport(this.viewportId) as Types.IStackViewport;
    this.imageIds = imageIds;
    this.imageCount = imageIds.length;
    const index = initialIndex === 'middle' ? middleSliceIndex(imageIds.length) : 0;
    this.setProgress(0, imageIds.length);
    this.setLoading(`Loading image ${index + 1} of ${imageIds.length}…`);
    await viewport.setStack(imageIds, index);
    // Registered after setStack so the event we wait for is a render of a
    // loaded image, not of the empty canvas.
    const rendered = new Promise<void>((resolve) => {
      const listener = (): void => {
        if (!viewport.getImageData()) return;
        this.element.removeEventListener(Enums.Events.IMAGE_RENDERED, listener);
        // Same task as Cornerstone's drawing: the preview gives way without a blank frame.
        this.rendered = true;
        this.dropPreview();
        resolve();
      };
      this.element.addEventListener(Enums.Events.IMAGE_RENDERED, listener);
    });
    viewport.render();
    await rendered;
    this.showSlice(viewport.getCurrentImageIdIndex());
    this.showVoi(viewport.getProperties().voiRange);
    onFirstRender();
    this.setLoaded();
    this.loaded = this.prefetch(imageIds, index);
  }

  /**
   * Loads every slice into the cache so scrolling is instant. A slice whose
   * frame the page's boot is still fetching (`frameArrival`) is loaded once
   * that request ends (Cornerstone then decodes the boot's bytes, not a second
   * download), or after FRAME_WAIT_MS at the latest.
   */
  private async prefetch(imageIds: string[], shownIndex: number): Promise<void> {
    let done = 1;
    let failed = 0;
    this.setProgress(done, imageIds.length);
    const others = imageIds.filter((_, i) => i !== shownIndex);
    const arrival = (imageId: string): Promise<void> => {
      const pending = this.frameArrival(imageId);
      if (!pending) return Promise.resolve();
      return Promise.race([pending, new Promise<void>((resolve) => window.setTimeout(resolve, FRAME_WAIT_MS))]);
    };
    await Promise.all(
      others.map((imageId) =>
        arrival(imageId)
          .then(() => imageLoader.loadAndCacheImage(imageId, { priority: 0, requestType: Enums.RequestType.Prefetch }))
          .catch(() => {
            failed += 1;
          })
          .finally(() => {
            done += 1;
            this.setProgress(done, imageIds.length);
          }),
      ),
    );
    if (failed > 0) this.setError(`${failed} of ${imageIds.length} images could not be loaded`);
    this.container.dataset.loaded = failed > 0 ? 'partial' : 'true';
  }
}
