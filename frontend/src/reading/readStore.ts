/**
 * The reader's current read (grades, measurements, time spent) and its
 * autosave. Every save is a PUT of the whole read on top of the version it was
 * based on; one PUT at a time, later changes coalesce into the next one. A
 * stale version (412) stops autosaving and is shown, never merged.
 */
import { ApiError } from '../api/client';
import type { Measurement, Phase, Protocol, Read, ReadUpdateRequest } from '../api/types';
import { describeError } from '../ui/dom';
import { buildGradesPayload, findMissing, gradeKey, gradeMapFromGrades, type GradeMap } from './grades';

export type SaveState =
  | { kind: 'idle' }
  | { kind: 'saving' }
  | { kind: 'saved' }
  | { kind: 'error'; message: string; retry: boolean }
  | { kind: 'conflict'; message: string; current: Read };

export interface ReadApi {
  putRead(assignmentId: string, body: ReadUpdateRequest): Promise<Read>;
  submitRead(assignmentId: string, baseVersion: number): Promise<Read>;
}

export interface ReadStoreOptions {
  api: ReadApi;
  assignmentId: string;
  protocol: Protocol;
  read: Read;
  /** whole seconds spent so far, sent with every save */
  elapsedS: () => number;
  /** false for a read shown read-only (phase done) */
  editable: boolean;
}

export class ReadStore {
  readonly protocol: Protocol;
  private readonly opts: ReadStoreOptions;
  grades: GradeMap;
  measurements: Measurement[];
  version: number;
  submitted: boolean;
  phase: Phase | undefined;
  save: SaveState = { kind: 'idle' };
  submitting = false;
  /** "<level>/<key>" the server said were missing on the last refused submit */
  serverMissing = new Set<string>();
  private dirty = false;
  private inFlight: Promise<void> | null = null;
  private readonly listeners = new Set<() => void>();
  private readonly submittedListeners = new Set<(read: Read) => void>();

  constructor(opts: ReadStoreOptions) {
    this.opts = opts;
    this.protocol = opts.protocol;
    this.grades = gradeMapFromGrades(opts.read.grades);
    this.measurements = [...(opts.read.measurements ?? [])];
    this.version = opts.read.version;
    this.submitted = opts.read.submitted || !opts.editable;
    this.phase = opts.read.phase;
  }

  get readOnly(): boolean {
    return this.submitted || this.save.kind === 'conflict';
  }

  get hasUnsavedChanges(): boolean {
    return this.dirty || this.inFlight !== null;
  }

  /** Required answers still missing, "<level>/<key>". */
  missing(): string[] {
    return findMissing(this.protocol, this.grades, this.measurements);
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  onSubmitted(listener: (read: Read) => void): void {
    this.submittedListeners.add(listener);
  }

  private emit(): void {
    for (const l of this.listeners) l();
  }

  // ---- edits ---------------------------------------------------------------

  grade(level: string, key: string): string | undefined {
    return this.grades.get(gradeKey(level, key));
  }

  /** Sets (or with null clears) one answer; false when the read cannot change. */
  setGrade(level: string, key: string, value: string | null): boolean {
    if (this.readOnly || this.submitting) return false;
    const k = gradeKey(level, key);
    if ((value === null && !this.grades.has(k)) || this.grades.get(k) === value) return true;
    if (value === null) this.grades.delete(k);
    else this.grades.set(k, value);
    this.serverMissing.delete(k);
    this.changed();
    return true;
  }

  measurement(id: string): Measurement | undefined {
    return this.measurements.find((m) => m.id === id);
  }

  /** Adds or replaces a measurement (by id). */
  upsertMeasurement(m: Measurement): boolean {
    if (this.readOnly || this.submitting) return false;
    const i = this.measurements.findIndex((x) => x.id === m.id);
    if (i >= 0) this.measurements[i] = m;
    else this.measurements.push(m);
    this.serverMissing.delete(gradeKey(m.level, m.key));
    this.changed();
    return true;
  }

  removeMeasurement(id: string): Measurement | null {
    if (this.readOnly || this.submitting) return null;
    const i = this.measurements.findIndex((x) => x.id === id);
    if (i < 0) return null;
    const [removed] = this.measurements.splice(i, 1);
    this.changed();
    return removed ?? null;
  }

  private changed(): void {
    this.dirty = true;
    this.scheduleSave();
  }

  // ---- saving --------------------------------------------------------------

  /** Saves now, or right after the save in flight. */
  scheduleSave(): void {
    if (this.save.kind === 'error') this.save = { kind: 'idle' };
    this.emit();
    if (this.inFlight || this.save.kind === 'conflict' || this.submitted) return;
    this.inFlight = this.saveLoop().finally(() => {
      this.inFlight = null;
      this.emit();
    });
  }

  private body(): ReadUpdateRequest {
    return {
      base_version: this.version,
      grades: buildGradesPayload(this.protocol, this.grades),
      measurements: this.measurements,
      elapsed_s: this.opts.elapsedS(),
    };
  }

  private async saveLoop(): Promise<void> {
    while (this.dirty && !this.submitted) {
      this.dirty = false;
      this.save = { kind: 'saving' };
      this.emit();
      try {
        const read = await this.opts.api.putRead(this.opts.assignmentId, this.body());
        this.version = read.version;
        this.submitted = read.submitted;
        this.phase = read.phase ?? this.phase;
        // The server is the record (it recomputes measurement values); edits made meanwhile stay on top.
        if (!this.dirty) {
          this.grades = gradeMapFromGrades(read.grades);
          if (read.measurements) this.measurements = [...read.measurements];
        }
        this.save = { kind: 'saved' };
      } catch (err) {
        this.dirty = true;
        this.handleWriteError(err, 'save');
        return;
      }
    }
  }

  /** Waits for pending saves; false when they did not all succeed. */
  async flush(): Promise<boolean> {
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
            `${verb}: this read was changed in another window or session ` +
            `(the server has v${current.version}, this page has v${this.version}). ` +
            'Load the latest version to continue; the change made here will be discarded.',
        };
        return;
      }
      if (err.status === 409) {
        this.save = { kind: 'error', retry: false, message: `${verb}: this read has already been submitted and can no longer be changed.` };
        this.submitted = true;
        return;
      }
      if (err.status === 400) {
        const missing = err.missing;
        if (missing.length > 0) {
          this.serverMissing = new Set(missing);
          this.save = { kind: 'error', retry: false, message: `${verb}: still missing ${missing.join(', ')}.` };
          return;
        }
        this.save = { kind: 'error', retry: false, message: `${verb}: ${err.message}${fieldErrors(err.body)}` };
        return;
      }
      this.save = { kind: 'error', retry: action === 'save', message: `${verb}: ${err.message}` };
      return;
    }
    this.save = { kind: 'error', retry: action === 'save', message: `${verb}: ${describeError(err)}` };
  }

  /** Takes a read from the server as the new local state (after "Load latest"). */
  applyRead(read: Read): void {
    this.grades = gradeMapFromGrades(read.grades);
    this.measurements = [...(read.measurements ?? [])];
    this.version = read.version;
    this.submitted = read.submitted;
    this.phase = read.phase ?? this.phase;
    this.dirty = false;
    this.serverMissing.clear();
    this.save = { kind: 'idle' };
    this.emit();
  }

  /**
   * Submits: saves first (so the last answers and the time spent are in), then
   * POSTs submit on that version. Resolves to the submitted read, or null.
   */
  async submit(): Promise<Read | null> {
    if (this.submitting || this.submitted) return null;
    this.submitting = true;
    this.emit();
    try {
      this.dirty = true; // the time spent changed even when nothing else did
      if (!(await this.flush())) return null;
      const read = await this.opts.api.submitRead(this.opts.assignmentId, this.version);
      this.submitting = false;
      this.applyRead(read);
      this.save = { kind: 'saved' };
      for (const l of this.submittedListeners) l(read);
      return read;
    } catch (err) {
      this.handleWriteError(err, 'submit');
      return null;
    } finally {
      this.submitting = false;
      this.emit();
    }
  }
}

/** " — field: message; field: message" from a DRF-style errors object. */
function fieldErrors(body: unknown): string {
  if (typeof body !== 'object' || body === null) return '';
  const errors = (body as { errors?: unknown }).errors;
  if (typeof errors !== 'object' || errors === null) return '';
  const text = Object.entries(errors as Record<string, unknown>)
    .map(([field, msg]) => `${field}: ${Array.isArray(msg) ? msg.map(String).join(' ') : JSON.stringify(msg)}`)
    .join('; ');
  return text ? ` — ${text}` : '';
}
