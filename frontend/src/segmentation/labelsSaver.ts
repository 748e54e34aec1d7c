import { ApiError } from '../api/client';
import type { LabelsSaveResponse } from '../api/types';
import { describeError } from '../ui/dom';

export interface LabelsApi {
  putReaderLabels(assignmentId: string, seriesUid: string, baseVersion: number, labels: Uint8Array): Promise<LabelsSaveResponse>;
}

export type MaskSaveState =
  | { kind: 'idle' }
  | { kind: 'saving' }
  | { kind: 'saved' }
  | { kind: 'error'; message: string }
  | { kind: 'conflict'; message: string; currentVersion: number | null };

/**
 * Autosave of the reader's mask: every change becomes a new server version
 * (PUT with If-Match on the version it was based on). One PUT at a time;
 * changes made meanwhile go in the next. A 412 stops saving and says so: the
 * page never overwrites a version it has not seen.
 */
export class LabelsSaver {
  version: number;
  state: MaskSaveState = { kind: 'idle' };
  private dirty = false;
  private inFlight: Promise<void> | null = null;
  private readonly listeners = new Set<() => void>();

  constructor(
    private readonly api: LabelsApi,
    private readonly assignmentId: string,
    private readonly seriesUid: string,
    version: number,
    private readonly snapshot: () => Uint8Array,
  ) {
    this.version = version;
  }

  onChange(listener: () => void): void {
    this.listeners.add(listener);
  }

  private emit(): void {
    for (const l of this.listeners) l();
  }

  get busy(): boolean {
    return this.dirty || this.inFlight !== null;
  }

  /** Saves the current mask now, or right after the save in flight. */
  schedule(): void {
    this.dirty = true;
    if (this.state.kind === 'conflict') {
      this.emit();
      return;
    }
    if (this.inFlight) return;
    this.inFlight = this.loop().finally(() => {
      this.inFlight = null;
      this.emit();
    });
  }

  private async loop(): Promise<void> {
    while (this.dirty) {
      this.dirty = false;
      this.state = { kind: 'saving' };
      this.emit();
      try {
        const saved = await this.api.putReaderLabels(this.assignmentId, this.seriesUid, this.version, this.snapshot());
        this.version = saved.version;
        this.state = { kind: 'saved' };
      } catch (err) {
        this.dirty = true;
        if (err instanceof ApiError && err.status === 412) {
          const current = err.currentLabelsVersion;
          this.state = {
            kind: 'conflict',
            currentVersion: current,
            message:
              `Mask not saved: a newer version${current !== null ? ` (v${current})` : ''} was saved from another window or session ` +
              `(this page has v${this.version}). Load the latest mask to continue; the change made here will be discarded.`,
          };
        } else if (err instanceof ApiError && err.status === 409) {
          this.state = { kind: 'error', message: 'Mask not saved: this phase has been submitted and its mask can no longer change.' };
        } else {
          this.state = { kind: 'error', message: `Mask not saved: ${describeError(err)}` };
        }
        return;
      }
    }
  }

  async flush(): Promise<boolean> {
    while (this.inFlight) await this.inFlight;
    return !this.dirty;
  }

  /** After loading another version from the server (it is saved: the server made it). */
  reset(version: number): void {
    this.version = version;
    this.dirty = false;
    this.state = version > 0 ? { kind: 'saved' } : { kind: 'idle' };
    this.emit();
  }

  /** Retries after an error (not after a conflict). */
  retry(): void {
    if (this.state.kind === 'error') {
      this.state = { kind: 'idle' };
      this.schedule();
    }
  }

  describe(): string {
    switch (this.state.kind) {
      case 'idle':
        return this.version > 0 ? `Mask saved v${this.version}` : 'No mask saved yet';
      case 'saving':
        return 'Saving mask…';
      case 'saved':
        return `Mask saved v${this.version}`;
      case 'error':
      case 'conflict':
        return 'Mask not saved';
    }
  }
}
