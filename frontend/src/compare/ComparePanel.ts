import type { ApiClient } from '../api/client';
import type { CompareValue, Comparison, Grade } from '../api/types';
import { clear, describeError, h } from '../ui/dom';
import { compareMasks } from '../segmentation/ops';

export interface CompareDiffSource {
  /** label values and names of the reader's mask */
  labels: Array<{ value: number; label: string }>;
  reader: () => Uint8Array;
  /** the AI mask in the reader mask's z order */
  ai: () => Uint8Array;
  /** shows the difference codes (or hides the view with null) */
  show: (codes: Uint8Array | null) => void;
}

export interface ComparePanelOptions {
  api: ApiClient;
  assignmentId: string;
  onAiGrades: (grades: Grade[] | null) => void;
  diff: CompareDiffSource | null;
}

function fmt(v: number | null | undefined, digits = 1): string {
  return v === null || v === undefined ? '—' : v.toFixed(digits);
}

function valueCells(v: CompareValue | null): HTMLElement[] {
  if (!v) return [h('td', {}, '—'), h('td', {}, '—'), h('td', {}, '—')];
  const delta = v.delta;
  return [
    h('td', {}, fmt(v.reader)),
    h('td', {}, fmt(v.ai)),
    h('td', { class: delta !== null && Math.abs(delta) > 0 ? 'sr-delta' : '' }, delta === null ? '—' : `${delta > 0 ? '+' : ''}${delta.toFixed(1)}`),
  ];
}

/**
 * AI vs mine: Dice per structure, per-level deltas of DSCA, AP diameter and
 * disc height, grade differences (also marked in the grading grid), and a
 * difference view of the masks: agreement, AI only (a false positive taking
 * the reader as reference) and mine only (a false negative of the AI).
 */
export class ComparePanel {
  readonly element: HTMLElement;
  private readonly body: HTMLElement;
  private readonly opts: ComparePanelOptions;
  private diffOn = false;
  private diffLabel: number | null = null;

  constructor(opts: ComparePanelOptions) {
    this.opts = opts;
    this.body = h('div', { class: 'sr-compare-body' });
    const reload = h('button', { type: 'button', class: 'sr-btn sr-btn-small', id: 'compare-refresh', title: 'Recompute with the latest saved read and mask' }, 'Refresh');
    reload.addEventListener('click', () => void this.load());
    this.element = h(
      'section',
      { class: 'sr-card sr-compare', id: 'compare-panel', 'aria-label': 'Compare with AI' },
      h('header', { class: 'sr-card-header' }, h('h2', {}, 'Compare: mine vs AI'), reload),
      this.diffControls(),
      this.body,
    );
  }

  private diffControls(): HTMLElement | null {
    const diff = this.opts.diff;
    if (!diff) return null;
    const toggle = h('input', { type: 'checkbox', id: 'toggle-diff' });
    const select = h('select', { id: 'diff-structure', 'aria-label': 'Structure' }, h('option', { value: '' }, 'All structures'), ...diff.labels.map((l) => h('option', { value: l.value }, l.label)));
    const update = (): void => {
      this.diffOn = toggle.checked;
      this.diffLabel = select.value === '' ? null : Number(select.value);
      this.refreshDiff();
    };
    toggle.addEventListener('change', update);
    select.addEventListener('change', update);
    const key = (cls: string, text: string): HTMLElement => h('span', { class: 'sr-diff-key' }, h('span', { class: `sr-swatch ${cls}` }), text);
    return h(
      'div',
      { class: 'sr-diff-controls' },
      h('label', { class: 'sr-switch', for: 'toggle-diff' }, toggle, h('span', {}, 'Difference view')),
      select,
      h('div', { class: 'sr-diff-legend' }, key('sr-diff-both', 'both'), key('sr-diff-ai', 'AI only (FP)'), key('sr-diff-mine', 'mine only (FN)')),
    );
  }

  /** Recomputes the difference view from the current masks (after an edit). */
  refreshDiff(): void {
    const diff = this.opts.diff;
    if (!diff) return;
    if (!this.diffOn) {
      diff.show(null);
      return;
    }
    try {
      diff.show(compareMasks(diff.reader(), diff.ai(), this.diffLabel));
    } catch (err) {
      this.body.prepend(h('p', { class: 'sr-ai-error' }, `Difference view unavailable: ${describeError(err)}`));
    }
  }

  get diffVisible(): boolean {
    return this.diffOn;
  }

  async load(): Promise<void> {
    clear(this.body);
    this.body.append(h('p', { class: 'sr-hint' }, 'Loading comparison…'));
    let c: Comparison;
    try {
      c = await this.opts.api.getComparison(this.opts.assignmentId);
    } catch (err) {
      clear(this.body);
      this.body.append(h('p', { class: 'sr-ai-error', id: 'compare-error' }, `Comparison not available: ${describeError(err)}`));
      this.opts.onAiGrades(null);
      return;
    }
    this.render(c);
  }

  private render(c: Comparison): void {
    clear(this.body);
    const structures = h(
      'table',
      { class: 'sr-compare-table', id: 'compare-dice' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Structure'), h('th', {}, 'Dice'), h('th', {}, 'Mine (vox)'), h('th', {}, 'AI (vox)'))),
      h(
        'tbody',
        {},
        ...c.structures.map((s) =>
          h('tr', { 'data-structure': s.name }, h('td', {}, s.name.replace(/_/g, ' ')), h('td', { class: 'sr-dice' }, fmt(s.dice, 3)), h('td', {}, String(s.reader_voxels)), h('td', {}, String(s.ai_voxels))),
        ),
      ),
    );
    const levels = h(
      'table',
      { class: 'sr-compare-table', id: 'compare-levels' },
      h(
        'thead',
        {},
        h('tr', {}, h('th', { rowspan: 2 }, 'Level'), h('th', { colspan: 3 }, 'DSCA mm²'), h('th', { colspan: 3 }, 'AP mm'), h('th', { colspan: 3 }, 'Disc height mm'), h('th', { rowspan: 2 }, 'Grades (mine / AI)')),
        h('tr', {}, ...['mine', 'AI', 'Δ', 'mine', 'AI', 'Δ', 'mine', 'AI', 'Δ'].map((t) => h('th', {}, t))),
      ),
      h(
        'tbody',
        {},
        ...c.levels.map((l) =>
          h(
            'tr',
            { 'data-level': l.level },
            h('th', {}, l.level),
            ...valueCells(l.dsca_mm2),
            ...valueCells(l.ap_diameter_mm),
            ...valueCells(l.disc_height_mm),
            h(
              'td',
              {},
              ...l.grades.map((g) => h('span', { class: `sr-grade-pair${g.differs ? ' sr-differs' : ''}`, title: g.condition }, `${g.reader ?? '—'} / ${g.ai ?? '—'}`)),
            ),
          ),
        ),
      ),
    );
    const muscles = h(
      'table',
      { class: 'sr-compare-table', id: 'compare-muscles' },
      h(
        'thead',
        {},
        h('tr', {}, h('th', { rowspan: 2 }, 'Level'), h('th', { colspan: 3 }, 'Muscle CSA L mm²'), h('th', { colspan: 3 }, 'CSA R mm²'), h('th', { colspan: 3 }, 'Fat L %'), h('th', { colspan: 3 }, 'Fat R %')),
        h('tr', {}, ...Array.from({ length: 4 }, () => ['mine', 'AI', 'Δ']).flat().map((t) => h('th', {}, t))),
      ),
      h(
        'tbody',
        {},
        ...c.levels.map((l) =>
          h(
            'tr',
            { 'data-level': l.level, title: `fat fraction: mine ${l.muscle_fat_method.reader || '—'}; AI ${l.muscle_fat_method.ai || '—'}` },
            h('th', {}, l.level),
            ...valueCells(l.muscle_csa_left_mm2),
            ...valueCells(l.muscle_csa_right_mm2),
            ...valueCells(l.muscle_fat_fraction_left_percent),
            ...valueCells(l.muscle_fat_fraction_right_percent),
          ),
        ),
      ),
    );
    this.body.append(h('p', { class: 'sr-model' }, 'Model ', h('code', {}, c.model_version)), structures, levels, muscles);
    const aiGrades: Grade[] = c.levels.flatMap((l) => l.grades.filter((g) => g.ai !== null).map((g) => ({ level: l.level, condition: g.condition, value: g.ai! })));
    this.opts.onAiGrades(aiGrades);
  }
}

