import type { Grade, Read } from '../api/types';
import { clear, h } from '../ui/dom';
import type { RootState } from '../ui/rootState';
import { categoryForKey, gradeKey, gradeMapFromGrades, gridColumns, isApplicable, moveCell, nextCell, type Cell, type GradeMap, type GridColumn } from './grades';
import type { ReadStore } from './readStore';

export interface GradingPanelOptions {
  store: ReadStore;
  caseLabel: string;
  rootState: RootState;
  /** the reader's locked earlier read (unaided phase), shown beside each answer */
  previousGrades?: Grade[] | null;
  /** the level was picked (click on its name, or the selection moved there) */
  onLevel?: (level: string) => void;
  /** a measurement key and level was clicked in the missing list */
  describeKey?: (key: string) => string | null;
}

/**
 * The grading grid: one row per level, one column per condition (sides are
 * separate conditions) followed by its sub-questions, which are asked only
 * when the parent's grade is in their `when` list. Keyboard: arrows move,
 * a digit (0-based index) or a category code sets the grade and moves on,
 * Backspace clears. The category list of the selected cell is shown under the
 * grid with full labels, and clicking works as well as typing.
 */
export class GradingPanel {
  readonly element: HTMLElement;
  private readonly opts: GradingPanelOptions;
  private readonly store: ReadStore;
  private readonly columns: GridColumn[];
  private readonly levels: string[];
  private selected: Cell = { row: 0, column: 0 };
  private showMissing = false;
  private previous: GradeMap | null;
  private aiGrades: GradeMap | null = null;
  private levelNote: string | null = null;

  private readonly gridEl: HTMLTableElement;
  private readonly detailEl: HTMLElement;
  private readonly saveEl: HTMLElement;
  private readonly alertEl: HTMLElement;
  private readonly progressEl: HTMLElement;
  private readonly missingEl: HTMLElement;
  private readonly levelNoteEl: HTMLElement;
  private readonly submitButton: HTMLButtonElement;
  private readonly submittedEl: HTMLElement;
  private readonly versionEl: HTMLElement;
  readonly dialog: HTMLDialogElement;
  private readonly cells = new Map<string, HTMLTableCellElement>();

  constructor(opts: GradingPanelOptions) {
    this.opts = opts;
    this.store = opts.store;
    this.columns = gridColumns(opts.store.protocol);
    this.levels = opts.store.protocol.levels;
    this.previous = opts.previousGrades ? gradeMapFromGrades(opts.previousGrades) : null;

    this.gridEl = h('table', { class: 'sr-grid', id: 'grade-grid', tabindex: 0, 'aria-label': 'Grades by level' });
    this.gridEl.addEventListener('focus', () => this.refresh());
    this.gridEl.addEventListener('blur', () => this.refresh());
    this.detailEl = h('div', { class: 'sr-grade-detail', id: 'grade-detail' });
    this.versionEl = h('span', { class: 'sr-read-version', 'data-testid': 'read-version' });
    this.saveEl = h('span', { class: 'sr-save', id: 'save-status', role: 'status', 'aria-live': 'polite' });
    this.alertEl = h('div', { class: 'sr-alert', role: 'alert', hidden: true });
    this.progressEl = h('span', { class: 'sr-progress', id: 'grading-progress' });
    this.missingEl = h('div', { class: 'sr-missing-list', id: 'missing-list', hidden: true });
    this.levelNoteEl = h('p', { class: 'sr-hint sr-level-note', id: 'level-note' });
    this.submitButton = h('button', { id: 'submit-read', type: 'button', class: 'sr-btn sr-btn-primary' }, 'Submit read');
    this.submitButton.addEventListener('click', () => this.askSubmit());
    this.submittedEl = h('div', { class: 'sr-submitted', id: 'read-submitted', hidden: true }, 'Submitted');
    this.dialog = this.buildDialog();

    this.element = h(
      'section',
      { class: 'sr-card sr-grading', 'aria-label': 'Grading' },
      h('header', { class: 'sr-card-header' }, h('h2', {}, 'Grading'), this.versionEl),
      this.alertEl,
      h('div', { class: 'sr-grid-wrap' }, this.gridEl),
      this.levelNoteEl,
      this.detailEl,
      h(
        'footer',
        { class: 'sr-grading-footer' },
        h('div', { class: 'sr-grading-status' }, this.progressEl, this.saveEl),
        this.missingEl,
        this.submittedEl,
        this.submitButton,
      ),
      this.dialog,
    );
    this.renderGrid();
    this.store.onChange(() => this.refresh());
    this.refresh();
  }

  /** The level of the selected row. */
  get selectedLevel(): string | null {
    return this.levels[this.selected.row] ?? null;
  }

  /** Where level positions come from, or why there are none (shown under the grid). */
  setLevelNote(note: string | null): void {
    this.levelNote = note;
    this.refresh();
  }

  /** AI grades to show beside the reader's (compare); differing cells are highlighted. */
  setAiGrades(grades: Grade[] | null): void {
    this.aiGrades = grades ? gradeMapFromGrades(grades) : null;
    this.refresh();
  }

  setPreviousGrades(grades: Grade[] | null): void {
    this.previous = grades ? gradeMapFromGrades(grades) : null;
    this.refresh();
  }

  /** Selects a level's row (from the viewer) without moving the viewer back. */
  selectLevel(level: string): void {
    const row = this.levels.indexOf(level);
    if (row < 0 || row === this.selected.row) return;
    const column = this.columns[this.selected.column];
    const applicable = column && isApplicable(column, level, this.store.grades);
    this.selected = { row, column: applicable ? this.selected.column : 0 };
    this.refresh();
  }

  // ---- rendering -----------------------------------------------------------

  private renderGrid(): void {
    clear(this.gridEl);
    this.cells.clear();
    const head = h(
      'tr',
      {},
      h('th', { scope: 'col', class: 'sr-level-col' }, 'Level'),
      ...this.columns.map((c) =>
        h(
          'th',
          { scope: 'col', title: `${c.label} — ${c.scale.name}${c.required ? '' : ' (optional)'}`, class: c.parent ? 'sr-sub-col' : '' },
          c.short,
          c.required ? null : h('span', { class: 'sr-optional' }, ' (opt)'),
        ),
      ),
    );
    const body = h('tbody');
    this.levels.forEach((level, row) => {
      const levelButton = h('button', { type: 'button', class: 'sr-level-btn', 'data-level': level, title: `Show ${level} in the axial viewport` }, level);
      levelButton.addEventListener('click', () => {
        this.selected = { row, column: this.selected.column };
        if (!isApplicable(this.columns[this.selected.column]!, level, this.store.grades)) this.selected.column = 0;
        this.refresh();
        this.opts.onLevel?.(level);
      });
      const tr = h('tr', { 'data-level': level }, h('th', { scope: 'row' }, levelButton));
      this.columns.forEach((col, column) => {
        const td = h('td', { 'data-cell': gradeKey(level, col.key), class: col.parent ? 'sr-sub-col' : '' });
        td.addEventListener('mousedown', () => {
          if (!isApplicable(col, level, this.store.grades)) return;
          const rowChanged = row !== this.selected.row;
          this.selected = { row, column };
          this.refresh();
          if (rowChanged) this.opts.onLevel?.(level);
        });
        this.cells.set(gradeKey(level, col.key), td);
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
    this.gridEl.append(h('thead', {}, head), body);
  }

  private refresh(): void {
    const store = this.store;
    const missing = store.missing();
    const missingSet = new Set([...missing, ...store.serverMissing]);
    const focused = document.activeElement === this.gridEl;
    for (const [row, level] of this.levels.entries()) {
      for (const [column, col] of this.columns.entries()) {
        const key = gradeKey(level, col.key);
        const td = this.cells.get(key)!;
        const asked = isApplicable(col, level, store.grades);
        const value = asked ? store.grades.get(key) : undefined;
        clear(td);
        td.append(h('span', { class: 'sr-cell-value' }, asked ? (value ?? '·') : '–'));
        const prev = this.previous?.get(key);
        // The unaided answer, where the aided one differs from it.
        if (prev !== undefined && asked && prev !== value) td.append(h('span', { class: 'sr-cell-prev', title: 'Your unaided read' }, `was ${prev}`));
        const ai = this.aiGrades?.get(key);
        if (ai !== undefined) td.append(h('span', { class: 'sr-cell-ai', title: 'AI grade' }, `AI ${ai}`));
        td.dataset.value = value ?? '';
        td.classList.toggle('sr-na', !asked);
        td.classList.toggle('sr-selected', row === this.selected.row && column === this.selected.column && !store.readOnly);
        td.classList.toggle('sr-focus', focused);
        td.classList.toggle('sr-graded', value !== undefined);
        td.classList.toggle('sr-missing', asked && col.required && value === undefined && (this.showMissing || store.serverMissing.has(key)));
        td.classList.toggle('sr-differs', ai !== undefined && value !== undefined && ai !== value);
        td.classList.toggle('sr-changed', prev !== undefined && value !== undefined && prev !== value);
        td.title = `${level} · ${col.label}${value !== undefined ? `: ${labelOf(col, value)}` : asked ? ': not graded' : ' (not asked)'}`;
      }
    }
    this.renderDetail();

    const total = this.countAsked();
    const answered = total - missing.filter((k) => this.isGradeKey(k)).length;
    this.progressEl.textContent = `${answered} of ${total} answered`;
    this.versionEl.textContent = store.version > 0 ? `Read v${store.version}` : 'Read v0 (new)';
    this.opts.rootState.readVersion(store.version);
    this.opts.rootState.submitted(store.submitted);
    this.renderSave();

    this.levelNoteEl.textContent = this.levelNote ?? '';
    this.levelNoteEl.hidden = !this.levelNote;

    clear(this.missingEl);
    if (this.showMissing && missingSet.size > 0 && !store.submitted) {
      this.missingEl.append(h('strong', {}, `Missing (${missingSet.size}): `), [...missingSet].map((k) => this.describe(k)).join(', '));
      this.missingEl.hidden = false;
    } else {
      this.missingEl.hidden = true;
    }
    this.submittedEl.hidden = !store.submitted;
    this.submittedEl.textContent = store.phase === 'unaided' || !store.phase ? 'Submitted' : `Submitted (${store.phase === 'aided' ? 'AI-aided' : store.phase})`;
    this.submitButton.hidden = store.submitted;
    this.submitButton.disabled = store.submitting || store.save.kind === 'conflict';
    this.submitButton.title = missing.length > 0 ? `${missing.length} required answers missing` : 'Submit this read (Ctrl+Enter)';
    this.element.classList.toggle('sr-readonly', store.readOnly);
  }

  private isGradeKey(key: string): boolean {
    const slash = key.indexOf('/');
    const k = key.slice(slash + 1);
    return this.columns.some((c) => c.key === k);
  }

  private countAsked(): number {
    let n = 0;
    for (const level of this.levels) for (const col of this.columns) if (col.required && isApplicable(col, level, this.store.grades)) n++;
    return n;
  }

  /** "L4-L5 Central canal" for a missing key. */
  private describe(key: string): string {
    const slash = key.indexOf('/');
    const level = key.slice(0, slash);
    const k = key.slice(slash + 1);
    const col = this.columns.find((c) => c.key === k);
    if (col) return `${level} ${col.short}`;
    return `${level} ${this.opts.describeKey?.(k) ?? k}`;
  }

  private renderDetail(): void {
    clear(this.detailEl);
    const level = this.levels[this.selected.row];
    const col = this.columns[this.selected.column];
    if (!level || !col || this.store.readOnly) {
      this.detailEl.hidden = true;
      return;
    }
    this.detailEl.hidden = false;
    const key = gradeKey(level, col.key);
    const value = this.store.grades.get(key);
    const options = col.scale.categories.map((cat, i) => {
      const input = h('input', { type: 'radio', name: `grade-${level}-${col.key}`, value: cat.code, 'aria-label': `${level} ${col.label}: ${cat.label}` });
      input.checked = cat.code === value;
      input.disabled = this.store.submitting;
      input.addEventListener('change', () => {
        if (input.checked) this.setGrade(this.selected, cat.code, false);
      });
      return h(
        'label',
        { class: 'sr-cat-option' },
        input,
        h('kbd', {}, String(i)),
        h('span', { class: 'sr-cat-code' }, cat.code),
        h('span', { class: 'sr-cat-label' }, cat.label === cat.code ? '' : cat.label),
      );
    });
    this.detailEl.append(h('div', { class: 'sr-detail-title' }, h('strong', {}, level), ` · ${col.label}`, h('span', { class: 'sr-scale-name' }, col.scale.name)), h('div', { class: 'sr-cat-options' }, ...options));
  }

  private renderSave(): void {
    const { store } = this;
    this.saveEl.className = 'sr-save';
    switch (store.save.kind) {
      case 'idle':
        this.saveEl.textContent = store.submitted ? `Submitted v${store.version}` : store.version > 0 ? `Saved v${store.version}` : 'Nothing saved yet';
        break;
      case 'saving':
        this.saveEl.textContent = 'Saving…';
        this.saveEl.classList.add('sr-save-busy');
        break;
      case 'saved':
        this.saveEl.textContent = store.submitted ? `Submitted v${store.version}` : `Saved v${store.version}`;
        this.saveEl.classList.add('sr-save-ok');
        break;
      case 'error':
      case 'conflict':
        this.saveEl.textContent = 'Not saved';
        this.saveEl.classList.add('sr-save-error');
        break;
    }
    clear(this.alertEl);
    const save = store.save;
    if (save.kind === 'error') {
      this.alertEl.append(h('p', {}, save.message));
      if (save.retry) {
        const retry = h('button', { type: 'button', class: 'sr-btn' }, 'Retry save');
        retry.addEventListener('click', () => store.scheduleSave());
        this.alertEl.append(retry);
      }
      this.alertEl.hidden = false;
    } else if (save.kind === 'conflict') {
      const load = h('button', { type: 'button', class: 'sr-btn sr-btn-primary', id: 'load-latest' }, 'Load latest');
      load.addEventListener('click', () => store.applyRead(save.current));
      this.alertEl.append(h('p', {}, save.message), load);
      this.alertEl.hidden = false;
    } else {
      this.alertEl.hidden = true;
    }
  }

  // ---- interaction ---------------------------------------------------------

  private setGrade(cell: Cell, code: string | null, advance: boolean): void {
    const level = this.levels[cell.row];
    const col = this.columns[cell.column];
    if (!level || !col) return;
    if (!this.store.setGrade(level, col.key, code)) return;
    if (advance && code !== null) {
      const next = nextCell(this.columns, this.levels, this.store.grades, cell);
      const rowChanged = next.row !== this.selected.row;
      this.selected = next;
      if (rowChanged) this.opts.onLevel?.(this.levels[next.row]!);
    }
    this.refresh();
  }

  private move(dRow: number, dColumn: number): void {
    const next = moveCell(this.columns, this.levels, this.store.grades, this.selected, dRow, dColumn);
    const rowChanged = next.row !== this.selected.row;
    this.selected = next;
    this.refresh();
    this.cells.get(gradeKey(this.levels[next.row]!, this.columns[next.column]!.key))?.scrollIntoView({ block: 'nearest', inline: 'nearest' });
    if (rowChanged) this.opts.onLevel?.(this.levels[next.row]!);
  }

  /**
   * Grading keys. Digits always grade the selected cell; arrows move it; a
   * letter that is a category code grades only while the grid has focus (so
   * letters stay tool shortcuts elsewhere). true when the key was used.
   */
  handleKey(e: KeyboardEvent): boolean {
    if (this.dialog.open || this.store.readOnly) return false;
    const gridFocused = document.activeElement === this.gridEl;
    const col = this.columns[this.selected.column];
    if (!col) return false;
    switch (e.key) {
      case 'ArrowDown':
        this.move(1, 0);
        return true;
      case 'ArrowUp':
        this.move(-1, 0);
        return true;
      case 'ArrowRight':
        if (!gridFocused) return false;
        this.move(0, 1);
        return true;
      case 'ArrowLeft':
        if (!gridFocused) return false;
        this.move(0, -1);
        return true;
      case 'Enter':
        if (!gridFocused) return false;
        this.selected = nextCell(this.columns, this.levels, this.store.grades, this.selected);
        this.refresh();
        return true;
      case 'Backspace':
      case 'Delete':
        if (!gridFocused) return false;
        this.setGrade(this.selected, null, false);
        return true;
    }
    // Shift+digit is a window preset, not a grade.
    if (e.shiftKey && /^Digit[0-9]$/.test(e.code)) return false;
    const code = categoryForKey(col.scale, e.key, gridFocused);
    if (code === null) return false;
    this.setGrade(this.selected, code, true);
    return true;
  }

  focusGrid(): void {
    this.gridEl.focus();
  }

  // ---- submit --------------------------------------------------------------

  private buildDialog(): HTMLDialogElement {
    const cancel = h('button', { type: 'button', class: 'sr-btn', id: 'submit-cancel' }, 'Cancel');
    const confirm = h('button', { type: 'button', class: 'sr-btn sr-btn-primary', id: 'submit-confirm' }, 'Submit');
    const dialog = h(
      'dialog',
      { class: 'sr-dialog', id: 'submit-dialog', 'aria-labelledby': 'submit-dialog-title' },
      h('h3', { id: 'submit-dialog-title' }, 'Submit this read?'),
      h('p', { class: 'sr-dialog-text' }),
      h('div', { class: 'sr-dialog-actions' }, cancel, confirm),
    );
    cancel.addEventListener('click', () => dialog.close());
    confirm.addEventListener('click', () => {
      dialog.close();
      void this.store.submit().then(() => this.refresh());
    });
    return dialog;
  }

  /** Opens the confirm dialog, or lists what is missing instead. */
  askSubmit(): void {
    if (this.store.submitted || this.store.submitting || this.store.save.kind === 'conflict') return;
    const missing = this.store.missing();
    this.showMissing = true;
    if (missing.length > 0) {
      this.refresh();
      this.missingEl.scrollIntoView({ block: 'nearest' });
      return;
    }
    const text = this.dialog.querySelector('.sr-dialog-text');
    if (text) {
      const phase = this.store.phase;
      text.textContent =
        phase === 'unaided' && this.store.protocol.two_phase
          ? `You are submitting your unaided read of ${this.opts.caseLabel}. It is then locked, and the AI result is shown for an AI-aided read.`
          : `You are submitting your read of ${this.opts.caseLabel}. After submitting, it can no longer be changed.`;
    }
    this.refresh();
    this.dialog.showModal();
    (this.dialog.querySelector('#submit-confirm') as HTMLButtonElement | null)?.focus();
  }

  /** For a new read (after the unaided submit) the panel takes the new store state. */
  rerender(): void {
    this.renderGrid();
    this.refresh();
  }
}

function labelOf(col: GridColumn, code: string): string {
  return col.scale.categories.find((c) => c.code === code)?.label ?? code;
}

export type { Read };
