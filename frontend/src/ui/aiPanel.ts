import type { AiSegmentation } from '../api/types';
import { cssColor, prettyLabelName, sortedLabelEntries } from '../viewer/colors';
import { DEFAULT_FILL_ALPHA } from '../viewer/aiOverlay';
import { clear, h } from './dom';

export interface AiPanelHandlers {
  onToggle: (visible: boolean) => void;
  onOpacity: (alpha: number) => void;
}

/**
 * The AI card: model version, legend, show/hide and opacity. When the API
 * gives no AI result (job still running, or hidden from this reader by the
 * protocol) it says so plainly; that is a normal state, not an error.
 */
export class AiPanel {
  readonly element: HTMLElement;
  private readonly body: HTMLElement;
  private readonly statusEl: HTMLElement;
  private readonly toggle: HTMLInputElement;
  private readonly opacity: HTMLInputElement;

  constructor(segmentations: AiSegmentation[], handlers: AiPanelHandlers) {
    this.statusEl = h('p', { class: 'sr-ai-status', role: 'status' });
    this.toggle = h('input', { type: 'checkbox', id: 'toggle-ai-overlay', checked: true, disabled: true });
    this.toggle.addEventListener('change', () => handlers.onToggle(this.toggle.checked));
    this.opacity = h('input', {
      type: 'range',
      id: 'ai-overlay-opacity',
      min: 0.1,
      max: 1,
      step: 0.05,
      value: DEFAULT_FILL_ALPHA,
      disabled: true,
      'aria-label': 'AI overlay opacity',
    });
    this.opacity.addEventListener('input', () => handlers.onOpacity(Number(this.opacity.value)));
    this.body = h('div', { class: 'sr-ai-body' });
    this.element = h(
      'section',
      { class: 'sr-card sr-ai', 'aria-label': 'AI segmentation', id: 'ai-panel' },
      h('header', { class: 'sr-card-header' }, h('h2', {}, 'AI segmentation')),
      this.body,
    );
    this.render(segmentations);
  }

  private render(segmentations: AiSegmentation[]): void {
    clear(this.body);
    if (segmentations.length === 0) {
      this.body.append(h('p', { class: 'sr-ai-unavailable', id: 'ai-unavailable' }, 'AI result not available'));
      return;
    }
    const versions = [...new Set(segmentations.map((s) => s.model_version))];
    const labels = new Map<number, string>();
    for (const seg of segmentations) {
      for (const { value, name } of sortedLabelEntries(seg.label_map)) if (!labels.has(value)) labels.set(value, name);
    }
    const legend = h(
      'ul',
      { class: 'sr-legend', id: 'ai-legend' },
      ...[...labels.entries()]
        .sort((a, b) => a[0] - b[0])
        .map(([value, name]) =>
          h(
            'li',
            { 'data-label-value': value },
            h('span', { class: 'sr-swatch', style: `background:${cssColor(value)}` }),
            h('span', { class: 'sr-legend-name' }, prettyLabelName(name)),
            h('span', { class: 'sr-legend-value' }, String(value)),
          ),
        ),
    );
    this.body.append(
      h(
        'p',
        { class: 'sr-model' },
        'Model ',
        h('code', { id: 'ai-model-version' }, versions.join(', ')),
      ),
      h(
        'div',
        { class: 'sr-ai-controls' },
        h('label', { class: 'sr-switch', for: 'toggle-ai-overlay' }, this.toggle, h('span', {}, 'Show AI overlay')),
        h('label', { class: 'sr-opacity' }, h('span', {}, 'Opacity'), this.opacity),
      ),
      this.statusEl,
      legend,
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
    this.opacity.disabled = false;
  }
}
