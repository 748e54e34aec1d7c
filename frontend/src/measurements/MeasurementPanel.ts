import type { Measurement, MeasurementValues } from '../api/types';
import type { ReadStore } from '../reading/readStore';
import { clear, h } from '../ui/dom';
import type { MeasurementController } from './controller';

/** "12.3 mm", "142.0 mm²", "A 9.1 · M 10.2 · P 7.0 mm" */
export function formatValues(values: MeasurementValues): string {
  if ('length_mm' in values) return `${values.length_mm.toFixed(1)} mm`;
  if ('area_mm2' in values) return `${values.area_mm2.toFixed(1)} mm²`;
  return `A ${values.anterior_mm.toFixed(1)} · M ${values.middle_mm.toFixed(1)} · P ${values.posterior_mm.toFixed(1)} mm`;
}

export interface MeasurementPanelOptions {
  store: ReadStore;
  controller: MeasurementController;
  /** picks a tool from the panel's "add" buttons */
  pickTool: (kind: Measurement['kind']) => void;
}

/**
 * The measurement list: every measurement of the read with its level
 * (editable), label (editable), value, a "show" action and delete (undo
 * brings it back). The protocol's required measurements not yet made are
 * listed under it.
 */
export class MeasurementPanel {
  readonly element: HTMLElement;
  private readonly listEl: HTMLElement;
  private readonly requiredEl: HTMLElement;
  private readonly opts: MeasurementPanelOptions;

  constructor(opts: MeasurementPanelOptions) {
    this.opts = opts;
    this.listEl = h('div', { class: 'sr-measure-list', id: 'measurement-list' });
    this.requiredEl = h('p', { class: 'sr-hint', id: 'measurement-required' });
    const specs = opts.store.protocol.measurements ?? [];
    const addButtons = specs.map((spec) => {
      const b = h('button', { type: 'button', class: 'sr-btn sr-btn-small', 'data-kind': spec.kind, title: `Draw ${spec.label} (${keyFor(spec.kind)})` }, `+ ${spec.label}`);
      b.addEventListener('click', () => opts.pickTool(spec.kind));
      return b;
    });
    this.element = h(
      'section',
      { class: 'sr-card sr-measurements', 'aria-label': 'Measurements', id: 'measurement-panel' },
      h('header', { class: 'sr-card-header' }, h('h2', {}, 'Measurements')),
      specs.length > 0 ? h('div', { class: 'sr-measure-add' }, ...addButtons) : h('p', { class: 'sr-hint' }, 'This protocol asks for no measurements.'),
      this.listEl,
      this.requiredEl,
    );
    opts.store.onChange(() => this.render());
    opts.controller.onChange(() => this.render());
    this.render();
  }

  private render(): void {
    const { store, controller } = this.opts;
    const levels = store.protocol.levels;
    const rows = [...store.measurements].sort(
      (a, b) => levels.indexOf(a.level) - levels.indexOf(b.level) || a.key.localeCompare(b.key) || a.label.localeCompare(b.label),
    );
    const focused = document.activeElement instanceof HTMLInputElement && this.listEl.contains(document.activeElement) ? document.activeElement.dataset.id : null;
    if (focused) return; // do not re-render under the reader's typing
    clear(this.listEl);
    if (rows.length === 0) {
      this.listEl.append(h('p', { class: 'sr-hint', id: 'measurement-empty' }, 'No measurements yet. Pick a tool above (or press L, A, D) and draw on the image.'));
    } else {
      const table = h('table', { class: 'sr-measure-table' });
      const body = h('tbody');
      for (const m of rows) {
        const levelSelect = h('select', { 'aria-label': 'Level', 'data-id': m.id, disabled: store.readOnly });
        for (const level of levels) {
          const option = h('option', { value: level }, level);
          option.selected = level === m.level;
          levelSelect.append(option);
        }
        levelSelect.addEventListener('change', () => controller.edit(m.id, { level: levelSelect.value }));
        const label = h('input', { type: 'text', value: m.label, 'aria-label': 'Label', 'data-id': m.id, disabled: store.readOnly, class: 'sr-measure-label' });
        label.addEventListener('change', () => {
          const text = label.value.trim();
          if (text && text !== m.label) controller.edit(m.id, { label: text });
          else label.value = m.label;
        });
        label.addEventListener('keydown', (e) => {
          if (e.key === 'Enter') label.blur();
          e.stopPropagation();
        });
        label.addEventListener('blur', () => this.render());
        const show = h('button', { type: 'button', class: 'sr-icon-btn', title: 'Show on the image' }, '◎');
        show.addEventListener('click', () => controller.show(m.id));
        const del = h('button', { type: 'button', class: 'sr-icon-btn sr-danger', title: 'Delete (Ctrl+Z brings it back)', 'aria-label': `Delete ${m.label}`, disabled: store.readOnly }, '✕');
        del.addEventListener('click', () => controller.remove(m.id));
        body.append(
          h(
            'tr',
            { 'data-measurement-id': m.id, 'data-kind': m.kind },
            h('td', {}, levelSelect),
            h('td', {}, label),
            h('td', { class: 'sr-measure-value', 'data-testid': 'measurement-value' }, formatValues(m.values)),
            h('td', { class: 'sr-measure-actions' }, show, del),
          ),
        );
      }
      table.append(body);
      this.listEl.append(table);
    }
    const missing = store.missing().filter((k) => controller.specByKey(k.slice(k.indexOf('/') + 1)));
    this.requiredEl.textContent =
      missing.length > 0
        ? `Required, not yet measured: ${missing.map((k) => `${k.slice(0, k.indexOf('/'))} ${controller.specByKey(k.slice(k.indexOf('/') + 1))?.label ?? ''}`).join(', ')}`
        : '';
    this.requiredEl.hidden = missing.length === 0;
  }
}

export function keyFor(kind: Measurement['kind']): string {
  return kind === 'length' ? 'L' : kind === 'area' ? 'A' : 'D';
}
