import { ApiError, type ApiClient } from '../api/client';
import type { Protocol, Read } from '../api/types';
import { clear, describeError, h } from '../ui/dom';
import type { RootState } from '../ui/rootState';
import {
  buildGradesPayload,
  categoryForKey,
  findMissingGrades,
  gradeKey,
  gradeMapFromGrades,
  gradeRows,
  type GradeMap,
  type GradeRow,
} from './grades';

type SaveState =
  | { kind: 'idle' }
  | { kind: 'saving' }
  | { kind: 'saved' }
  | { kind: 'error'; message: string; retry: boolean }
  | { kind: 'conflict'; message: string; current: Read };

export interface GradingPanelOptions {
  api: ApiClient;
  assignmentId: string;
  caseLabel: string;
  protocol: Protocol;
  read: Read;
  rootState: RootState;
  /** Reloads the read from the server (used after a 409). */
  reload: () => Promise<Read>;
  /** Called whenever the panel takes a new read from the server. */
  onRead?: (read: Read) => void;
}

/**
 * The grading table (levels × categories per condition) with autosave,
 * keyboard grading and submit. Every save sends the full grade list with the
 * version it was based on; a stale save is shown, never merged.
 */
export class GradingPanel {
  readonly element: HTMLElement;
  private readonly opts: GradingPanelOptions;
  private readonly rows: GradeRow[];
  private grades: GradeMap;
  private version: number;
  private submitted: boolean;
  private save: SaveState = { kind: 'idle' };
  private inFlight: Promise<void> | null = null;
  private dirty = false;
  private selected = 0;
  private submitting = false;
  private missingHighlight = new Set<string>();

  private readonly versionEl: HTMLElement;
  private readonly saveEl: HTMLElement;
  private readonly alertEl: HTMLElement;
  private readonly tablesEl: HTMLElement;
  private readonly progressEl: HTMLElement;
  private readonly submitButton: HTMLButtonElement;
  private readonly submittedEl: HTMLElement;
  private readonly dialog: HTMLDialogElement;
  private readonly radios = new Map<string, HTMLInputElement[]>();
  private readonly rowEls: HTMLTableRowElement[] = [];

  constructor(opts: GradingPanelOptions) {
    this.opts = opts;
    this.rows = gradeRows(opts.protocol);
    this.grades = gradeMapFromGrades(opts.read.grades);
    this.version = opts.read.version;
    this.submitted = opts.read.submitted;

    this.versionEl = h('span', { class: 'sr-read-version', 'data-testid': 'read-version' });
    this.saveEl = h('span', { class: 'sr-save', id: 'save-status', role: 'status', 'aria-live': 'polite' });
    this.alertEl = h('div', { class: 'sr-alert', role: 'alert', hidden: true });
    this.tablesEl = h('div', { class: 'sr-grade-tables' });
    this.progressEl = h('span', { class: 'sr-progress' });
    this.submitButton = h('button', { id: 'submit-read', type: 'button', class: 'sr-btn sr-btn-primary' }, 'Submit read');
    this.submitButton.addEventListener('click', () => this.askSubmit());
    this.submittedEl = h('div', { class: 'sr-submitted', id: 'read-submitted', hidden: true }, 'Submitted');
    this.dialog = this.buildDialog();

    this.element = h(
      'section',
      { class: 'sr-card sr-grading', 'aria-label': 'Grading' },
      h('header', { class: 'sr-card-header' }, h('h2', {}, 'Grading'), this.versionEl),
      this.alertEl,
      this.tablesEl,
      h(
        'footer',
        { class: 'sr-grading-footer' },
        h('div', { class: 'sr-grading-status' }, this.progressEl, this.saveEl),
        this.submittedEl,
        this.submitButton,
        h(
          'p',
          { class: 'sr-hint', id: 'grading-hint' },
          h('kbd', {}, '↑'),
          ' ',
          h('kbd', {}, '↓'),
          ' select level · ',
          h('kbd', {}, this.keyHint()),
          ' set grade',
        ),
      ),
      this.dialog,
    );
    this.renderTables();
    this.refresh();
    document.addEventListener('keydown', (e) => this.onKey(e), true);
    window.addEventListener('beforeunload', (e) => {
      if (this.dirty || this.inFlight) {
        e.preventDefault();
      }
    });
  }

  private keyHint(): string {
    const counts = this.opts.protocol.conditions.map((c) => c.scale.categories.length);
    const max = Math.max(1, ...counts);
    return max <= 10 ? `0–${max - 1}` : '0–9';
  }

  private get readOnly(): boolean {
    return this.submitted || this.save.kind === 'conflict';
  }

  // ---- rendering -------------------------------------------------------

  private renderTables(): void {
    clear(this.tablesEl);
    this.radios.clear();
    this.rowEls.length = 0;
    const { protocol } = this.opts;
    let rowIndex = 0;
    for (const condition of protocol.conditions) {
      const head = h(
        'tr',
        {},
        h('th', { scope: 'col', class: 'sr-level-col' }, 'Level'),
        ...condition.scale.categories.map((cat, i) =>
          h(
            'th',
            { scope: 'col', title: cat.label },
            h('span', { class: 'sr-cat-code' }, cat.code),
            h('span', { class: 'sr-cat-label' }, cat.label),
            cat.code !== String(i) && i < 10 ? h('span', { class: 'sr-cat-key' }, `key ${i}`) : null,
          ),
        ),
      );
      const body = h('tbody');
      for (const level of protocol.levels) {
        const index = rowIndex++;
        const key = gradeKey(level, condition.key);
        const name = `grade-${level}-${condition.key}`;
        const inputs: HTMLInputElement[] = [];
        const cells = condition.scale.categories.map((cat) => {
          const input = h('input', {
            type: 'radio',
            name,
            value: cat.code,
            'aria-label': `${level} ${condition.label}: ${cat.label}`,
          });
          input.addEventListener('change', () => {
            if (input.checked) this.setGrade(index, cat.code);
          });
          inputs.push(input);
          return h('td', {}, h('label', { class: 'sr-radio' }, input, h('span', { class: 'sr-radio-dot' })));
        });
        this.radios.set(key, inputs);
        const tr = h(
          'tr',
          { 'data-level': level, 'data-condition': condition.key },
          h('th', { scope: 'row' }, level),
          ...cells,
        );
        tr.addEventListener('mousedown', () => this.select(index));
        this.rowEls.push(tr);
        body.appendChild(tr);
      }
      this.tablesEl.appendChild(
        h(
          'table',
          { class: 'sr-grade-table', 'data-condition': condition.key },
          h('caption', {}, condition.label, h('span', { class: 'sr-scale-name' }, condition.scale.name)),
          h('thead', {}, head),
          body,
        ),
      );
    }
  }

  /** Syncs every visible piece of state into the DOM. */
  private refresh(): void {
    const { protocol, rootState } = this.opts;
    for (const row of this.rows) {
      const key = gradeKey(row.level, row.condition);
      const value = this.grades.get(key);
      for (const input of this.radios.get(key) ?? []) {
        input.checked = input.value === value;
        input.disabled = this.readOnly || this.submitting;
      }
    }
    this.rowEls.forEach((tr, i) => {
      const row = this.rows[i];
      const key = row ? gradeKey(row.level, row.condition) : '';
      tr.classList.toggle('sr-selected', i === this.selected && !this.submitted);
      tr.classList.toggle('sr-graded', this.grades.has(key));
      tr.classList.toggle('sr-missing', this.missingHighlight.has(key) && !this.grades.has(key));
    });

    const missing = findMissingGrades(protocol, this.grades);
    const total = this.rows.length;
    this.progressEl.textContent = `${total - missing.length} of ${total} graded`;
    this.versionEl.textContent = this.version > 0 ? `Read v${this.version}` : 'Read v0 (new)';
    rootState.readVersion(this.version);
    rootState.submitted(this.submitted);

    this.saveEl.className = 'sr-save';
    switch (this.save.kind) {
      case 'idle':
        this.saveEl.textContent = this.submitted
          ? `Submitted v${this.version}`
          : this.version > 0
            ? `Saved v${this.version}`
            : 'No grades saved yet';
        break;
      case 'saving':
        this.saveEl.textContent = 'Saving…';
        this.saveEl.classList.add('sr-save-busy');
        break;
      case 'saved':
        this.saveEl.textContent = this.submitted ? `Submitted v${this.version}` : `Saved v${this.version}`;
        this.saveEl.classList.add('sr-save-ok');
        break;
      case 'error':
      case 'conflict':
        this.saveEl.textContent = 'Not saved';
        this.saveEl.classList.add('sr-save-error');
        break;
    }
    this.renderAlert();

    this.submittedEl.hidden = !this.submitted;
    this.submitButton.hidden = this.submitted;
    this.submitButton.disabled =
      this.submitted || this.submitting || missing.length > 0 || this.save.kind === 'conflict';
    this.submitButton.title =
      missing.length > 0 ? `Grade every level first (${missing.length} missing)` : 'Submit this read';
    this.element.classList.toggle('sr-readonly', this.submitted);
    const hint = this.element.querySelector<HTMLElement>('#grading-hint');
    if (hint) hint.hidden = this.submitted;
  }

  private renderAlert(): void {
    clear(this.alertEl);
    const save = this.save;
    if (save.kind === 'error') {
      this.alertEl.append(h('p', {}, save.message));
      if (save.retry) {
        const retry = h('button', { type: 'button', class: 'sr-btn' }, 'Retry save');
        retry.addEventListener('click', () => this.scheduleSave());
        this.alertEl.append(retry);
      }
      this.alertEl.hidden = false;
    } else if (save.kind === 'conflict') {
      const load = h('button', { type: 'button', class: 'sr-btn sr-btn-primary', id: 'load-latest' }, 'Load latest');
      load.addEventListener('click', () => this.loadLatest(save.current));
      this.alertEl.append(h('p', {}, save.message), load);
      this.alertEl.hidden = false;
    } else {
      this.alertEl.hidden = true;
    }
  }

  // ---- interaction -----------------------------------------------------

  private select(index: number): void {
    if (index < 0 || index >= this.rows.length) return;
    this.selected = index;
    this.refresh();
    this.rowEls[index]?.scrollIntoView({ block: 'nearest' });
  }

  private setGrade(index: number, code: string): void {
    const row = this.rows[index];
    if (!row || this.readOnly || this.submitting) return;
    this.selected = index;
    const key = gradeKey(row.level, row.condition);
    if (this.grades.get(key) === code) {
      this.refresh();
      return;
    }
    this.grades.set(key, code);
    this.dirty = true;
    this.scheduleSave();
  }

  private onKey(e: KeyboardEvent): void {
    if (e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey) return;
    if (this.dialog.open) return;
    const target = e.target;
    if (
      target instanceof HTMLElement &&
      (target.isContentEditable ||
        target instanceof HTMLTextAreaElement ||
        target instanceof HTMLSelectElement ||
        (target instanceof HTMLInputElement && target.type !== 'radio' && target.type !== 'checkbox'))
    ) {
      return;
    }
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      // Also stops the browser moving a focused radio to the next category.
      e.preventDefault();
      this.select(this.selected + (e.key === 'ArrowDown' ? 1 : -1));
      return;
    }
    const row = this.rows[this.selected];
    if (!row || this.readOnly) return;
    const code = categoryForKey(this.opts.protocol, row.condition, e.key);
    if (code !== null) {
      e.preventDefault();
      this.setGrade(this.selected, code);
    }
  }

  // ---- saving ----------------------------------------------------------

  /** Saves now, or right after the save in flight (one PUT at a time). */
  private scheduleSave(): void {
    if (this.save.kind === 'error') this.save = { kind: 'idle' };
    this.refresh();
    if (this.inFlight || this.save.kind === 'conflict' || this.submitted) return;
    this.inFlight = this.saveLoop().finally(() => {
      this.inFlight = null;
      this.refresh();
    });
  }

  private async saveLoop(): Promise<void> {
    while (this.dirty && !this.submitted) {
      this.dirty = false;
      this.save = { kind: 'saving' };
      this.refresh();
      const grades = buildGradesPayload(this.opts.protocol, this.grades);
      try {
        const read = await this.opts.api.putRead(this.opts.assignmentId, this.version, grades);
        this.opts.onRead?.(read);
        this.version = read.version;
        this.submitted = read.submitted;
        // The server is the record; local edits made meanwhile stay on top.
        if (!this.dirty) this.grades = gradeMapFromGrades(read.grades);
        this.save = { kind: 'saved' };
      } catch (err) {
        this.dirty = true;
        this.handleWriteError(err, 'save');
        return;
      }
    }
  }

  /** Waits for pending saves; false when they did not all succeed. */
  private async flush(): Promise<boolean> {
    if (this.dirty && !this.inFlight) this.scheduleSave();
    while (this.inFlight) await this.inFlight;
    return !this.dirty && this.save.kind !== 'error' && this.save.kind !== 'conflict';
  }

  private handleWriteError(err: unknown, action: 'save' | 'submit'): void {
    const verb = action === 'save' ? 'Not saved' : 'Not submitted';
    if (err instanceof ApiError) {
      const current = err.staleCurrent;
      if (err.status === 412 && current) {
        this.save = {
          kind: 'conflict',
          current,
          message:
            `${verb}: this read was changed in another window or by another session ` +
            `(server has v${current.version}, this page has v${this.version}). ` +
            'Load the latest version to continue; your unsaved change here will be discarded.',
        };
        return;
      }
      if (err.status === 409) {
        this.save = { kind: 'error', retry: false, message: `${verb}: this read has already been submitted and can no longer be changed.` };
        this.submitted = true;
        void this.opts
          .reload()
          .then((read) => this.applyRead(read, 'saved'))
          .catch(() => undefined);
        return;
      }
      if (err.status === 400) {
        const missing = err.missing;
        if (missing.length > 0) {
          this.missingHighlight = new Set(missing);
          this.save = { kind: 'error', retry: false, message: `${verb}: grades missing for ${missing.join(', ')}.` };
          return;
        }
        const details = fieldErrors(err.body);
        this.save = { kind: 'error', retry: false, message: `${verb}: ${err.message}${details ? ` — ${details}` : ''}` };
        return;
      }
      this.save = { kind: 'error', retry: action === 'save', message: `${verb}: ${err.message}` };
      return;
    }
    this.save = { kind: 'error', retry: action === 'save', message: `${verb}: ${describeError(err)}` };
  }

  private applyRead(read: Read, state: 'saved' | 'idle'): void {
    this.opts.onRead?.(read);
    this.grades = gradeMapFromGrades(read.grades);
    this.version = read.version;
    this.submitted = read.submitted;
    this.dirty = false;
    this.save = { kind: state };
    this.refresh();
  }

  private loadLatest(current: Read): void {
    this.missingHighlight.clear();
    this.applyRead(current, 'idle');
  }

  // ---- submit ----------------------------------------------------------

  private buildDialog(): HTMLDialogElement {
    const cancel = h('button', { type: 'button', class: 'sr-btn', id: 'submit-cancel' }, 'Cancel');
    const confirm = h('button', { type: 'button', class: 'sr-btn sr-btn-primary', id: 'submit-confirm' }, 'Submit');
    const dialog = h(
      'dialog',
      { class: 'sr-dialog', id: 'submit-dialog', 'aria-labelledby': 'submit-dialog-title' },
      h('h3', { id: 'submit-dialog-title' }, 'Submit this read?'),
      h(
        'p',
        {},
        `You are submitting your grades for ${this.opts.caseLabel}. After submitting, they can no longer be changed.`,
      ),
      h('div', { class: 'sr-dialog-actions' }, cancel, confirm),
    );
    cancel.addEventListener('click', () => dialog.close());
    confirm.addEventListener('click', () => {
      dialog.close();
      void this.submit();
    });
    return dialog;
  }

  private askSubmit(): void {
    if (this.submitButton.disabled) return;
    this.dialog.showModal();
    (this.dialog.querySelector('#submit-confirm') as HTMLButtonElement | null)?.focus();
  }

  private async submit(): Promise<void> {
    if (this.submitting || this.submitted) return;
    this.submitting = true;
    this.refresh();
    try {
      if (!(await this.flush())) return;
      this.saveEl.textContent = 'Submitting…';
      const read = await this.opts.api.submitRead(this.opts.assignmentId, this.version);
      this.missingHighlight.clear();
      this.submitting = false;
      this.applyRead(read, 'saved');
    } catch (err) {
      this.handleWriteError(err, 'submit');
    } finally {
      this.submitting = false;
      this.refresh();
    }
  }
}

/** "field: message; field: message" from a DRF-style errors object. */
function fieldErrors(body: unknown): string {
  if (typeof body !== 'object' || body === null) return '';
  const errors = (body as { errors?: unknown }).errors;
  if (typeof errors !== 'object' || errors === null) return '';
  return Object.entries(errors as Record<string, unknown>)
    .map(([field, msg]) => `${field}: ${Array.isArray(msg) ? msg.map(String).join(' ') : JSON.stringify(msg)}`)
    .join('; ');
}
