import { clear, h } from '../ui/dom';
import type { LabelmapLayer, LayerSegment } from './layer';
import type { ReaderSegmentation } from './readerSegmentation';

function rgb(c: readonly [number, number, number]): string {
  return `rgb(${c[0]}, ${c[1]}, ${c[2]})`;
}

/** Fill / outline / opacity controls for a group of layers (the same structure on several viewports). */
function styleControls(layers: () => LabelmapLayer[], idPrefix: string): HTMLElement {
  const first = layers()[0];
  const fill = h('input', { type: 'checkbox', id: `${idPrefix}-fill`, checked: first?.style.fill ?? true });
  const outline = h('input', { type: 'checkbox', id: `${idPrefix}-outline`, checked: first?.style.outline ?? true });
  const opacity = h('input', { type: 'range', id: `${idPrefix}-opacity`, min: 0.05, max: 1, step: 0.05, value: first?.style.alpha ?? 0.4, 'aria-label': 'Fill opacity' });
  fill.addEventListener('change', () => layers().forEach((l) => l.setStyle({ fill: fill.checked })));
  outline.addEventListener('change', () => layers().forEach((l) => l.setStyle({ outline: outline.checked })));
  opacity.addEventListener('input', () => layers().forEach((l) => l.setStyle({ alpha: Number(opacity.value) })));
  return h(
    'div',
    { class: 'sr-style-row' },
    h('label', { class: 'sr-check' }, fill, ' Fill'),
    h('label', { class: 'sr-check' }, outline, ' Outline'),
    h('label', { class: 'sr-opacity' }, h('span', {}, 'Opacity'), opacity),
  );
}

/** Per-segment list: swatch, name, visibility (and, for the editable mask, which label the brush paints). */
function segmentList(segments: LayerSegment[], layers: () => LabelmapLayer[], id: string, pick: ((value: number) => void) | null, active: () => number): HTMLElement {
  return h(
    'ul',
    { class: 'sr-legend', id },
    ...segments.map((s, i) => {
      const eye = h('input', { type: 'checkbox', checked: true, title: `Show ${s.label}`, 'aria-label': `Show ${s.label}` });
      eye.addEventListener('change', () => layers().forEach((l) => l.setSegmentVisible(s.value, eye.checked)));
      const radio = pick
        ? h('input', { type: 'radio', name: `${id}-active`, value: s.value, checked: active() === s.value, 'aria-label': `Paint ${s.label}` })
        : null;
      radio?.addEventListener('change', () => radio.checked && pick?.(s.value));
      return h(
        'li',
        { 'data-label-value': s.value },
        radio,
        h('span', { class: 'sr-swatch', style: `background:${rgb(s.color)}` }),
        h('span', { class: 'sr-legend-name' }, s.label),
        pick && i < 9 ? h('kbd', { title: `Paint ${s.label} (Alt+${i + 1})` }, `Alt+${i + 1}`) : h('span', { class: 'sr-legend-value' }, String(s.value)),
        eye,
      );
    }),
  );
}

export interface SegmentationPanelOptions {
  mine: ReaderSegmentation | null;
  /** why there is no editable mask (no segmentation task, series missing…) */
  mineUnavailable: string | null;
  seriesLabel: string;
  brushRadiusMm: number;
  onBrushRadius: (mm: number) => void;
  /** "Start from AI" is offered only when the AI mask of this series is shown */
  aiAvailable: () => boolean;
  notify: (message: string) => void;
}

/** The reader's own mask: labels, style, brush size, mask operations and the autosave state. */
export class SegmentationPanel {
  readonly element: HTMLElement;
  private readonly saveEl: HTMLElement;
  private readonly alertEl: HTMLElement;
  private readonly fromAiButton: HTMLButtonElement | null = null;
  private readonly opts: SegmentationPanelOptions;
  private readonly radiusInput: HTMLInputElement;
  private readonly radiusValue: HTMLElement;
  private readonly list: HTMLElement | null = null;

  constructor(opts: SegmentationPanelOptions) {
    this.opts = opts;
    this.saveEl = h('span', { class: 'sr-save', id: 'mask-save-status', role: 'status', 'aria-live': 'polite' });
    this.alertEl = h('div', { class: 'sr-alert', role: 'alert', hidden: true, id: 'mask-alert' });
    this.radiusValue = h('span', { class: 'sr-radius-value' });
    this.radiusInput = h('input', { type: 'range', id: 'brush-radius', min: 0.5, max: 15, step: 0.5, value: opts.brushRadiusMm, 'aria-label': 'Brush radius (mm)' });
    this.radiusInput.addEventListener('input', () => this.setRadius(Number(this.radiusInput.value), false));
    this.setRadius(opts.brushRadiusMm, false);
    const body = h('div', { class: 'sr-seg-body' });
    this.element = h(
      'section',
      { class: 'sr-card sr-segmentation', 'aria-label': 'My segmentation', id: 'segmentation-panel' },
      h('header', { class: 'sr-card-header' }, h('h2', {}, 'My mask'), this.saveEl),
      this.alertEl,
      body,
    );
    const mine = opts.mine;
    if (!mine) {
      body.append(h('p', { class: 'sr-hint', id: 'mask-unavailable' }, opts.mineUnavailable ?? 'No segmentation task in this protocol.'));
      this.saveEl.hidden = true;
      return;
    }
    const layers = (): LabelmapLayer[] => [mine.layer];
    this.list = segmentList(mine.layer.opts.segments, layers, 'mask-legend', (v) => mine.setActiveLabel(v), () => mine.activeLabel);
    const islands = h('button', { type: 'button', class: 'sr-btn sr-btn-small', id: 'remove-islands', title: 'Keep the largest piece of the selected label on this slice (X)' }, 'Remove islands');
    islands.addEventListener('click', () => {
      const n = mine.removeIslandsOnSlice();
      opts.notify(n > 0 ? `Removed ${n} voxels of small islands on this slice` : 'No islands on this slice');
    });
    const interpolate = h('button', { type: 'button', class: 'sr-btn sr-btn-small', id: 'interpolate', title: 'Fill the slices between drawn slices of the selected label (I)' }, 'Interpolate');
    interpolate.addEventListener('click', () => this.interpolate());
    const fromAi = h('button', { type: 'button', class: 'sr-btn sr-btn-small', id: 'start-from-ai', title: 'Replace my mask with a copy of the AI mask (undoable)' }, 'Start from AI');
    fromAi.addEventListener('click', () => void mine.startFromAi());
    this.fromAiButton = fromAi;
    body.append(
      h('p', { class: 'sr-hint' }, `${opts.seriesLabel} · the brush paints the selected label`),
      this.list,
      styleControls(layers, 'mask'),
      h('div', { class: 'sr-style-row' }, h('label', { class: 'sr-opacity', for: 'brush-radius' }, h('span', {}, 'Brush radius'), this.radiusInput, this.radiusValue)),
      h('div', { class: 'sr-button-row' }, fromAi, islands, interpolate),
    );
    mine.saver.onChange(() => this.refresh());
    this.refresh();
  }

  interpolate(): void {
    const mine = this.opts.mine;
    if (!mine) return;
    const { voxels, slices } = mine.interpolate();
    this.opts.notify(voxels > 0 ? `Interpolated ${voxels} voxels on ${slices.length} slice(s)` : 'Nothing to interpolate: draw the label on two slices with empty slices between them');
  }

  setRadius(mm: number, notify = true): void {
    const clamped = Math.min(15, Math.max(0.5, Math.round(mm * 2) / 2));
    this.radiusInput.value = String(clamped);
    this.radiusValue.textContent = `${clamped.toFixed(1)} mm`;
    this.opts.onBrushRadius(clamped);
    if (notify) this.opts.notify(`Brush radius ${clamped.toFixed(1)} mm`);
  }

  get radius(): number {
    return Number(this.radiusInput.value);
  }

  /** Selects the n-th label (0-based) for the brush. */
  pickLabel(index: number): void {
    const mine = this.opts.mine;
    const s = mine?.layer.opts.segments[index];
    if (!mine || !s) return;
    mine.setActiveLabel(s.value);
    const radio = this.list?.querySelector<HTMLInputElement>(`input[type=radio][value="${s.value}"]`);
    if (radio) radio.checked = true;
  }

  refresh(): void {
    const mine = this.opts.mine;
    if (!mine) return;
    const saver = mine.saver;
    this.saveEl.textContent = saver.describe();
    this.saveEl.className = `sr-save ${saver.state.kind === 'saving' ? 'sr-save-busy' : saver.state.kind === 'saved' ? 'sr-save-ok' : saver.state.kind === 'error' || saver.state.kind === 'conflict' ? 'sr-save-error' : ''}`;
    clear(this.alertEl);
    const state = saver.state;
    if (state.kind === 'conflict') {
      const load = h('button', { type: 'button', class: 'sr-btn sr-btn-primary', id: 'load-latest-mask' }, 'Load latest mask');
      load.addEventListener('click', () => void mine.loadLatest());
      this.alertEl.append(h('p', {}, state.message), load);
      this.alertEl.hidden = false;
    } else if (state.kind === 'error') {
      const retry = h('button', { type: 'button', class: 'sr-btn' }, 'Retry');
      retry.addEventListener('click', () => saver.retry());
      this.alertEl.append(h('p', {}, state.message), retry);
      this.alertEl.hidden = false;
    } else {
      this.alertEl.hidden = true;
    }
    if (this.fromAiButton) {
      const ai = this.opts.aiAvailable();
      this.fromAiButton.hidden = !ai;
      this.fromAiButton.disabled = mine.readOnly;
    }
  }
}

export interface AiPanelOptions {
  modelVersions: string[];
  segments: LayerSegment[];
  layers: () => LabelmapLayer[];
  /** why no AI is shown (blinded until the unaided read is submitted, job running…) */
  unavailable: string | null;
}

/** The AI's masks: read-only, with per-segment visibility, fill/outline and opacity. */
export class AiPanel {
  readonly element: HTMLElement;
  private readonly statusEl: HTMLElement;
  private readonly toggle: HTMLInputElement;
  private readonly controls: HTMLElement;

  constructor(opts: AiPanelOptions) {
    this.statusEl = h('p', { class: 'sr-ai-status', role: 'status' });
    this.toggle = h('input', { type: 'checkbox', id: 'toggle-ai-overlay', checked: true, disabled: true });
    this.toggle.addEventListener('change', () => opts.layers().forEach((l) => l.setVisible(this.toggle.checked)));
    const body = h('div', { class: 'sr-ai-body' });
    this.controls = h('div', { class: 'sr-ai-controls' });
    this.element = h(
      'section',
      { class: 'sr-card sr-ai', 'aria-label': 'AI segmentation', id: 'ai-panel' },
      h('header', { class: 'sr-card-header' }, h('h2', {}, 'AI mask'), h('span', { class: 'sr-lock', title: 'The AI mask is read-only' }, 'read-only')),
      body,
    );
    if (opts.unavailable !== null || opts.segments.length === 0) {
      body.append(h('p', { class: 'sr-ai-unavailable', id: 'ai-unavailable' }, opts.unavailable ?? 'AI result not available'));
      return;
    }
    const opacityStyle = styleControls(opts.layers, 'ai');
    const opacity = opacityStyle.querySelector<HTMLInputElement>('#ai-opacity');
    if (opacity) opacity.id = 'ai-overlay-opacity';
    this.controls.append(h('label', { class: 'sr-switch', for: 'toggle-ai-overlay' }, this.toggle, h('span', {}, 'Show AI mask (V)')), opacityStyle);
    body.append(
      h('p', { class: 'sr-model' }, 'Model ', h('code', { id: 'ai-model-version' }, opts.modelVersions.join(', '))),
      this.controls,
      this.statusEl,
      segmentList(opts.segments, opts.layers, 'ai-legend', null, () => 0),
    );
    this.setStatus('Loading AI labels…');
  }

  setStatus(text: string, kind: 'info' | 'error' = 'info'): void {
    this.statusEl.textContent = text;
    this.statusEl.className = kind === 'error' ? 'sr-ai-status sr-ai-error' : 'sr-ai-status';
    this.statusEl.hidden = text === '';
  }

  enableControls(): void {
    this.toggle.disabled = false;
  }

  /** V: show or hide the AI mask. */
  toggleVisible(): void {
    if (this.toggle.disabled) return;
    this.toggle.checked = !this.toggle.checked;
    this.toggle.dispatchEvent(new Event('change'));
  }
}
