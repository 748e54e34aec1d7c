import { eventTarget, getEnabledElementByViewportId, type Types } from '@cornerstonejs/core';
import { Enums as ToolEnums } from '@cornerstonejs/tools';
import type { ApiClient } from '../api/client';
import type { History } from '../ui/history';
import { describeError } from '../ui/dom';
import type { LabelmapLayer } from './layer';
import { LabelsSaver } from './labelsSaver';
import { applyDiff, diffVolumes, interpolateLabel, removeIslands, type VolumeDiff } from './ops';

export interface ReaderSegmentationOptions {
  api: ApiClient;
  assignmentId: string;
  seriesUid: string;
  layer: LabelmapLayer;
  version: number;
  history: History;
  /** in-plane pixel spacing [row, column] mm, for interpolation */
  spacingMm: readonly [number, number];
  notify: (message: string) => void;
}

/**
 * The reader's own mask on one series: every edit (a brush stroke, an
 * eraser stroke, scissors, island removal, interpolation, "Start from AI")
 * becomes one undoable history entry holding only the voxels it changed, and
 * one new server version through the autosave.
 */
export class ReaderSegmentation {
  readonly saver: LabelsSaver;
  readonly layer: LabelmapLayer;
  private readonly opts: ReaderSegmentationOptions;
  private snapshot: Uint8Array;
  private commitTimer = 0;
  private pointerDown = false;
  activeLabel: number;
  readOnly = false;

  constructor(opts: ReaderSegmentationOptions) {
    this.opts = opts;
    this.layer = opts.layer;
    this.snapshot = opts.layer.read();
    this.activeLabel = opts.layer.opts.segments[0]?.value ?? 1;
    this.saver = new LabelsSaver(opts.api, opts.assignmentId, opts.seriesUid, opts.version, () => this.layer.read());
    eventTarget.addEventListener(ToolEnums.Events.SEGMENTATION_DATA_MODIFIED, ((evt: Event) => {
      const detail = (evt as CustomEvent<{ segmentationId?: string }>).detail;
      if (detail?.segmentationId === this.layer.segmentationId) this.scheduleCommit();
    }) as EventListener);
    const element = getEnabledElementByViewportId(opts.layer.opts.viewportId)?.viewport.element;
    element?.addEventListener('pointerdown', () => {
      this.pointerDown = true;
    });
    window.addEventListener('pointerup', () => {
      if (!this.pointerDown) return;
      this.pointerDown = false;
      this.scheduleCommit();
    });
  }

  setActiveLabel(value: number): void {
    this.activeLabel = value;
    this.layer.activate(value);
  }

  /** A stroke ends some time after the last data change, with the button up. */
  private scheduleCommit(): void {
    window.clearTimeout(this.commitTimer);
    this.commitTimer = window.setTimeout(() => {
      if (this.pointerDown) return; // pointerup schedules again
      this.commit('brush stroke');
    }, 200);
  }

  /** Records the difference since the last commit as one history entry and saves it. */
  commit(label: string): boolean {
    const current = this.layer.read();
    const diff = diffVolumes(this.snapshot, current);
    if (diff.indices.length === 0) return false;
    if (this.readOnly) {
      // A locked phase: put the voxels back and say why.
      this.layer.write(this.snapshot);
      this.opts.notify('This read is submitted: its mask can no longer change');
      return false;
    }
    this.snapshot = current;
    this.record(label, diff);
    this.saver.schedule();
    return true;
  }

  private record(label: string, diff: VolumeDiff): void {
    const apply = (direction: 'undo' | 'redo'): void => {
      const volume = this.layer.read();
      applyDiff(volume, diff, direction);
      this.layer.write(volume);
      this.snapshot = volume;
      this.saver.schedule();
    };
    this.opts.history.push({ label: `${label} (${diff.indices.length} voxels)`, undo: () => apply('undo'), redo: () => apply('redo') });
  }

  /** Runs a whole-volume operation as one undoable edit. */
  private operate(label: string, fn: (volume: Uint8Array) => Uint8Array): number {
    if (this.readOnly) {
      this.opts.notify('This read is submitted: its mask can no longer change');
      return 0;
    }
    const before = this.layer.read();
    const after = fn(before);
    const diff = diffVolumes(before, after);
    if (diff.indices.length === 0) return 0;
    this.layer.write(after);
    this.snapshot = after;
    this.record(label, diff);
    this.saver.schedule();
    return diff.indices.length;
  }

  private currentZ(): number {
    const viewport = getEnabledElementByViewportId(this.layer.opts.viewportId)?.viewport as Types.IStackViewport | undefined;
    const imageId = viewport?.getCurrentImageId();
    return imageId ? this.layer.zOfImage(imageId) : -1;
  }

  /** Keeps the largest piece of the active label on the current slice. */
  removeIslandsOnSlice(): number {
    const z = this.currentZ();
    if (z < 0) return 0;
    const [, ny, nx] = this.layer.shape;
    return this.operate('remove islands', (volume) => {
      const plane = ny * nx;
      const { slice } = removeIslands(volume.subarray(z * plane, (z + 1) * plane), ny, nx, this.activeLabel);
      const out = volume.slice();
      out.set(slice, z * plane);
      return out;
    });
  }

  /** Fills the slices between drawn slices of the active label. */
  interpolate(): { voxels: number; slices: number[] } {
    let slices: number[] = [];
    const voxels = this.operate('interpolate', (volume) => {
      const result = interpolateLabel(volume, this.layer.shape, this.activeLabel, this.opts.spacingMm);
      slices = result.filledSlices;
      return result.volume;
    });
    return { voxels, slices };
  }

  /** Replaces the mask by the AI's (a new server version), undoable. */
  async startFromAi(): Promise<void> {
    await this.saver.flush();
    const before = this.layer.read();
    try {
      const saved = await this.opts.api.labelsFromAi(this.opts.assignmentId, this.opts.seriesUid, this.saver.version);
      const got = await this.opts.api.getReaderLabels(this.opts.assignmentId, this.opts.seriesUid);
      if (!got) throw new Error('the copied mask could not be read back');
      this.layer.write(got.labels);
      this.snapshot = got.labels.slice();
      this.saver.reset(Math.max(saved.version, got.version));
      const diff = diffVolumes(before, got.labels);
      if (diff.indices.length > 0) this.record('start from AI', diff);
    } catch (err) {
      this.opts.notify(`Start from AI failed: ${describeError(err)}`);
    }
  }

  /** Loads the server's latest mask (after a stale-version conflict); local edits are dropped. */
  async loadLatest(): Promise<void> {
    try {
      const got = await this.opts.api.getReaderLabels(this.opts.assignmentId, this.opts.seriesUid);
      const volume = got ? got.labels : new Uint8Array(this.snapshot.length);
      this.layer.write(volume);
      this.snapshot = volume.slice();
      this.saver.reset(got ? got.version : 0);
      this.opts.history.clear();
    } catch (err) {
      this.opts.notify(`Could not load the latest mask: ${describeError(err)}`);
    }
  }

  /** The mask as it is now (z, y, x). */
  volume(): Uint8Array {
    return this.layer.read();
  }
}
