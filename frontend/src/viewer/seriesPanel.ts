import { Enums, imageLoader, type RenderingEngine, type Types } from '@cornerstonejs/core';
import { h } from '../ui/dom';
import type { ViewportRole } from '../ui/rootState';
import { middleSliceIndex } from './geometry';

/**
 * One viewport with its header (series description, slice n/N), a loading
 * indicator, an error line, and the window/level readout.
 */
export class SeriesPanel {
  readonly role: ViewportRole;
  readonly viewportId: string;
  readonly container: HTMLElement;
  readonly element: HTMLDivElement;
  private readonly titleEl: HTMLElement;
  private readonly sliceEl: HTMLElement;
  private readonly statusEl: HTMLElement;
  private readonly voiEl: HTMLElement;
  private imageCount = 0;

  constructor(role: ViewportRole, heading: string) {
    this.role = role;
    this.viewportId = `viewport-${role}`;
    this.titleEl = h('span', { class: 'sr-vp-title' }, heading);
    this.sliceEl = h('span', { class: 'sr-vp-slice', 'data-testid': `slice-${role}` }, '');
    this.element = h('div', { id: this.viewportId, class: 'sr-vp-element' });
    // The right button zooms: keep the browser menu out of the way.
    this.element.addEventListener('contextmenu', (e) => e.preventDefault());
    this.statusEl = h('div', { class: 'sr-vp-status', role: 'status', 'aria-live': 'polite' }, 'Waiting…');
    this.voiEl = h('div', { class: 'sr-vp-voi' }, '');
    this.container = h(
      'section',
      { class: 'sr-vp', 'data-role': role, 'aria-label': `${role} viewport` },
      h('header', { class: 'sr-vp-header' }, this.titleEl, this.sliceEl),
      h('div', { class: 'sr-vp-body' }, this.element, this.statusEl, this.voiEl),
    );
  }

  setTitle(text: string): void {
    this.titleEl.textContent = text;
  }

  setLoading(text: string): void {
    this.statusEl.textContent = text;
    this.statusEl.className = 'sr-vp-status';
    this.statusEl.hidden = false;
  }

  setLoaded(): void {
    this.statusEl.hidden = true;
  }

  setMessage(text: string): void {
    this.statusEl.textContent = text;
    this.statusEl.className = 'sr-vp-status sr-vp-status-info';
    this.statusEl.hidden = false;
  }

  setError(text: string): void {
    this.statusEl.textContent = text;
    this.statusEl.className = 'sr-vp-status sr-vp-status-error';
    this.statusEl.setAttribute('role', 'alert');
    this.statusEl.hidden = false;
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
    }) as EventListener);
    this.element.addEventListener(Enums.Events.VOI_MODIFIED, ((evt: Event) => {
      const detail = (evt as CustomEvent<Types.EventTypes.VoiModifiedEventDetail>).detail;
      this.showVoi(detail.range);
    }) as EventListener);
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
   * rendered, then prefetches the rest with a progress readout.
   */
  async showStack(
    engine: RenderingEngine,
    imageIds: string[],
    initialIndex: 'middle' | 'first',
    onFirstRender: () => void,
  ): Promise<void> {
    const viewport = engine.getViewport(this.viewportId) as Types.IStackViewport;
    this.imageCount = imageIds.length;
    const index = initialIndex === 'middle' ? middleSliceIndex(imageIds.length) : 0;
    this.setLoading(`Loading image ${index + 1} of ${imageIds.length}…`);

    await viewport.setStack(imageIds, index);
    // Registered after setStack so the event we wait for is a render of a
    // loaded image, not of the empty canvas.
    const rendered = new Promise<void>((resolve) => {
      const listener = (): void => {
        if (!viewport.getImageData()) return;
        this.element.removeEventListener(Enums.Events.IMAGE_RENDERED, listener);
        resolve();
      };
      this.element.addEventListener(Enums.Events.IMAGE_RENDERED, listener);
    });
    viewport.render();
    await rendered;
    this.showSlice(viewport.getCurrentImageIdIndex());
    this.showVoi(viewport.getProperties().voiRange);
    onFirstRender();
    void this.prefetch(imageIds, index);
  }

  /** Loads every slice into the cache so scrolling is instant. */
  private async prefetch(imageIds: string[], shownIndex: number): Promise<void> {
    let done = 1;
    let failed = 0;
    const others = imageIds.filter((_, i) => i !== shownIndex);
    if (others.length === 0) {
      this.setLoaded();
      return;
    }
    this.setLoading(`Loading ${done} / ${imageIds.length}`);
    await Promise.all(
      others.map((imageId) =>
        imageLoader
          .loadAndCacheImage(imageId, { priority: 0, requestType: Enums.RequestType.Prefetch })
          .catch(() => {
            failed += 1;
          })
          .finally(() => {
            done += 1;
            if (done < imageIds.length) this.setLoading(`Loading ${done} / ${imageIds.length}`);
          }),
      ),
    );
    if (failed > 0) {
      this.setError(`${failed} of ${imageIds.length} images could not be loaded`);
    } else {
      this.setLoaded();
    }
  }
}
