import { eventTarget, getEnabledElementByViewportId, metaData, type Types as CoreTypes } from '@cornerstonejs/core';
import { annotation as csAnnotation, Enums as ToolEnums, LengthTool, ToolGroupManager, type Types } from '@cornerstonejs/tools';
import type { Measurement, MeasurementSpec, Point3 } from '../api/types';
import type { ReadStore } from '../reading/readStore';
import type { History } from '../ui/history';
import { adapterForTool, type AnnotationLike, type MeasurementAdapter } from './adapters';

/** A hung series: where its images are shown. */
export interface HungSeries {
  seriesUid: string;
  viewportId: string;
  imageIds: string[];
  sopByImageId: ReadonlyMap<string, string>;
  toolGroupId: string;
}

export interface MeasurementControllerOptions {
  store: ReadStore;
  history: History;
  series: HungSeries[];
  /** the level an image lies at (axial slices), or null */
  levelForImage: (imageId: string) => string | null;
  /** the level selected in the grading grid */
  selectedLevel: () => string | null;
  /** says something to the reader (a measurement the protocol does not ask for…) */
  notify: (message: string) => void;
  /** after each sync: how many measurement annotations the viewports hold */
  onSynced?: (annotations: number) => void;
}

const TOOL_FOR_KIND: Record<Measurement['kind'], string> = { length: 'ApDiameter', area: 'DscaFreehand', disc_height: 'DiscHeight' };
const MEASUREMENT_TOOLS = ['ApDiameter', 'DscaFreehand', 'DscaSpline', 'DiscHeight'];

/** Equal within 0.02 mm: the server may round coordinates it returns. */
function samePoints(a: readonly Point3[], b: readonly Point3[]): boolean {
  return a.length === b.length && a.every((p, i) => p.every((x, k) => Math.abs(x - b[i]![k]!) < 0.02));
}

/**
 * Keeps the Cornerstone annotations and the read's measurements in step.
 * The read (ReadStore) is the record: a finished annotation becomes a
 * measurement tied to a level, a moved handle updates it, and `sync()` adds or
 * removes annotations so that they show exactly the read's measurements
 * (after an undo, a reload, or loading the latest version).
 */
export class MeasurementController {
  private readonly opts: MeasurementControllerOptions;
  private readonly specs: MeasurementSpec[];
  private readonly pendingModified = new Map<string, number>();
  private syncing = false;
  /** annotation UIDs that have been measurements of the read (others are still being drawn) */
  private readonly known = new Set<string>();
  private readonly listeners = new Set<() => void>();

  constructor(opts: MeasurementControllerOptions) {
    this.opts = opts;
    this.specs = opts.store.protocol.measurements ?? [];
    const { Events } = ToolEnums;
    eventTarget.addEventListener(Events.ANNOTATION_COMPLETED, ((e: Event) => this.onCompleted(e as Types.EventTypes.AnnotationCompletedEventType)) as EventListener);
    eventTarget.addEventListener(Events.ANNOTATION_MODIFIED, ((e: Event) => this.onModified(e as Types.EventTypes.AnnotationModifiedEventType)) as EventListener);
    eventTarget.addEventListener(Events.ANNOTATION_REMOVED, ((e: Event) => this.onRemoved(e as Types.EventTypes.AnnotationRemovedEventType)) as EventListener);
    opts.store.onChange(() => this.sync());
  }

  onChange(listener: () => void): void {
    this.listeners.add(listener);
  }

  specFor(kind: Measurement['kind']): MeasurementSpec | null {
    return this.specs.find((s) => s.kind === kind) ?? null;
  }

  specByKey(key: string): MeasurementSpec | null {
    return this.specs.find((s) => s.key === key) ?? null;
  }

  private seriesOfImage(imageId: string | undefined): HungSeries | null {
    if (!imageId) return null;
    return this.opts.series.find((s) => s.sopByImageId.has(imageId)) ?? null;
  }

  private toMeasurement(ann: AnnotationLike, adapter: MeasurementAdapter, base: Measurement | null): Measurement | null {
    let points: Point3[] | null;
    try {
      points = adapter.points(ann);
    } catch (err) {
      this.opts.notify(`Measurement not recorded: ${err instanceof Error ? err.message : String(err)}`);
      return null;
    }
    if (!points) return null;
    const imageId = ann.metadata?.referencedImageId;
    const series = this.seriesOfImage(imageId);
    if (!series || !imageId) {
      this.opts.notify('Measurement not recorded: it is not on an image of this case');
      return null;
    }
    const spec = base ? this.specByKey(base.key) : this.specFor(adapter.kind);
    if (!spec) return null;
    const level = base?.level ?? this.opts.levelForImage(imageId) ?? this.opts.selectedLevel() ?? this.opts.store.protocol.levels[0] ?? '';
    let values: Measurement['values'];
    try {
      values = adapter.values(points);
    } catch (err) {
      this.opts.notify(`Measurement not recorded: ${err instanceof Error ? err.message : String(err)}`);
      return null;
    }
    return {
      id: ann.annotationUID!,
      key: spec.key,
      kind: adapter.kind,
      level,
      label: base?.label ?? `${level} ${spec.label}`,
      series_instance_uid: series.seriesUid,
      sop_instance_uid: series.sopByImageId.get(imageId)!,
      points_mm: points,
      values,
    };
  }

  private onCompleted(evt: Types.EventTypes.AnnotationCompletedEventType): void {
    const ann = evt.detail.annotation as unknown as AnnotationLike & Types.Annotation;
    const adapter = adapterForTool(ann.metadata?.toolName);
    if (!adapter || this.syncing) return;
    if (adapter.points(ann) === null) return; // an unfinished disc height: more pairs to come
    const uid = ann.annotationUID!;
    if (this.opts.store.readOnly) {
      csAnnotation.state.removeAnnotation(uid);
      this.opts.notify('This read is locked: measurements cannot be added');
      return;
    }
    if (!this.specFor(adapter.kind)) {
      csAnnotation.state.removeAnnotation(uid);
      this.opts.notify(`This study's protocol asks for no ${adapter.kind.replace('_', ' ')} measurement`);
      return;
    }
    const m = this.toMeasurement(ann, adapter, null);
    if (!m) {
      csAnnotation.state.removeAnnotation(uid);
      return;
    }
    ann.data.label = m.label;
    this.known.add(uid);
    this.opts.store.upsertMeasurement(m);
    this.opts.history.push({
      label: `add ${m.label}`,
      undo: () => this.opts.store.removeMeasurement(m.id),
      redo: () => this.opts.store.upsertMeasurement(m),
    });
    this.emit();
  }

  private onModified(evt: Types.EventTypes.AnnotationModifiedEventType): void {
    const ann = evt.detail.annotation as unknown as AnnotationLike;
    const uid = ann.annotationUID;
    if (!uid || this.syncing || !adapterForTool(ann.metadata?.toolName)) return;
    if (!this.opts.store.measurement(uid)) return; // still being drawn
    // Handles move on every mouse event: record the end position.
    window.clearTimeout(this.pendingModified.get(uid));
    this.pendingModified.set(
      uid,
      window.setTimeout(() => {
        this.pendingModified.delete(uid);
        const base = this.opts.store.measurement(uid);
        const adapter = adapterForTool(ann.metadata?.toolName);
        if (!base || !adapter) return;
        const m = this.toMeasurement(ann, adapter, base);
        if (!m || samePoints(m.points_mm, base.points_mm)) return;
        this.opts.store.upsertMeasurement(m);
        this.opts.history.push({
          label: `move ${m.label}`,
          undo: () => this.opts.store.upsertMeasurement(base),
          redo: () => this.opts.store.upsertMeasurement(m),
        });
        this.emit();
      }, 250),
    );
  }

  private onRemoved(evt: Types.EventTypes.AnnotationRemovedEventType): void {
    const uid = evt.detail.annotation?.annotationUID;
    if (!uid || this.syncing) return;
    const m = this.opts.store.measurement(uid);
    if (m) this.remove(uid);
  }

  /** Deletes a measurement (undoable). */
  remove(id: string): void {
    const removed = this.opts.store.removeMeasurement(id);
    if (!removed) return;
    this.opts.history.push({
      label: `delete ${removed.label}`,
      undo: () => this.opts.store.upsertMeasurement(removed),
      redo: () => this.opts.store.removeMeasurement(removed.id),
    });
    this.emit();
  }

  /** Changes a measurement's level or label (undoable). */
  edit(id: string, change: { level?: string; label?: string }): void {
    const before = this.opts.store.measurement(id);
    if (!before) return;
    const after: Measurement = { ...before, ...change };
    if (change.level && !change.label && before.label === `${before.level} ${this.specByKey(before.key)?.label ?? ''}`) {
      after.label = `${change.level} ${this.specByKey(before.key)?.label ?? before.key}`;
    }
    if (!this.opts.store.upsertMeasurement(after)) return;
    this.opts.history.push({
      label: `edit ${after.label}`,
      undo: () => this.opts.store.upsertMeasurement(before),
      redo: () => this.opts.store.upsertMeasurement(after),
    });
    this.emit();
  }

  /** Shows a measurement's image in its viewport and highlights it. */
  show(id: string): void {
    const m = this.opts.store.measurement(id);
    if (!m) return;
    const series = this.opts.series.find((s) => s.seriesUid === m.series_instance_uid);
    if (!series) return;
    const index = series.imageIds.findIndex((imageId) => series.sopByImageId.get(imageId) === m.sop_instance_uid);
    const viewport = getEnabledElementByViewportId(series.viewportId)?.viewport as CoreTypes.IStackViewport | undefined;
    if (viewport && index >= 0) void viewport.setImageIdIndex(index);
    csAnnotation.selection.setAnnotationSelected(id, true, false);
  }

  /** Makes the annotations show exactly the read's measurements. */
  sync(): void {
    if (csAnnotation.state.getAnnotation === undefined) return;
    this.syncing = true;
    try {
      const wanted = new Map(this.opts.store.measurements.map((m) => [m.id, m]));
      const locked = this.opts.store.readOnly;
      const seen = new Set<string>();
      for (const series of this.opts.series) {
        const element = getEnabledElementByViewportId(series.viewportId)?.viewport.element;
        if (!element) continue;
        for (const toolName of MEASUREMENT_TOOLS) {
          // getAnnotations groups by frame of reference, and may hand other tools' annotations too.
          for (const ann of csAnnotation.state.getAnnotations(toolName, element) ?? []) {
            const uid = ann.annotationUID!;
            if (ann.metadata?.toolName !== toolName || seen.has(uid)) continue;
            seen.add(uid);
            const m = wanted.get(uid);
            const adapter = adapterForTool(toolName);
            let current: Point3[] | null = null;
            try {
              current = adapter?.points(ann as unknown as AnnotationLike) ?? null;
            } catch {
              current = null;
            }
            if (!m) {
              // Annotations being drawn are not the read's yet: only former measurements go.
              if (this.known.has(uid)) csAnnotation.state.removeAnnotation(uid);
              continue;
            }
            if (current && !samePoints(current, m.points_mm)) {
              csAnnotation.state.removeAnnotation(uid);
              continue;
            }
            (ann.data as { label?: string }).label = m.label;
            csAnnotation.locking.setAnnotationLocked(uid, locked);
            wanted.delete(uid);
          }
        }
      }
      for (const m of wanted.values()) this.hydrate(m, locked);
      for (const series of this.opts.series) {
        const viewport = getEnabledElementByViewportId(series.viewportId)?.viewport;
        if (!viewport) continue;
        viewport.render();
      }
      this.opts.onSynced?.(this.opts.store.measurements.filter((m) => csAnnotation.state.getAnnotation(m.id)).length);
    } finally {
      this.syncing = false;
    }
    this.emit();
  }

  private hydrate(m: Measurement, locked: boolean): void {
    this.known.add(m.id);
    const series = this.opts.series.find((s) => s.seriesUid === m.series_instance_uid);
    if (!series) return;
    const imageId = series.imageIds.find((id) => series.sopByImageId.get(id) === m.sop_instance_uid);
    const enabled = getEnabledElementByViewportId(series.viewportId);
    if (!imageId || !enabled) return;
    const toolName = TOOL_FOR_KIND[m.kind];
    const group = ToolGroupManager.getToolGroup(series.toolGroupId);
    const points = m.points_mm.map((p) => [...p] as CoreTypes.Point3);
    if (m.kind === 'area') {
      const plane = metaData.get('imagePlaneModule', imageId) as { rowCosines?: number[]; columnCosines?: number[] } | undefined;
      const r = plane?.rowCosines ?? [1, 0, 0];
      const c = plane?.columnCosines ?? [0, 1, 0];
      const normal: CoreTypes.Point3 = [r[1]! * c[2]! - r[2]! * c[1]!, r[2]! * c[0]! - r[0]! * c[2]!, r[0]! * c[1]! - r[1]! * c[0]!];
      const viewUp: CoreTypes.Point3 = [-c[0]!, -c[1]!, -c[2]!];
      const ann = {
        annotationUID: m.id,
        highlighted: false,
        invalidated: true,
        isLocked: locked,
        isVisible: true,
        autoGenerated: false,
        interpolationUID: '',
        metadata: {
          toolName,
          referencedImageId: imageId,
          FrameOfReferenceUID: enabled.viewport.getFrameOfReferenceUID(),
          viewPlaneNormal: normal,
          viewUp,
        },
        data: {
          contour: { polyline: points, closed: true },
          handles: { points: [], activeHandleIndex: null, textBox: { hasMoved: false, worldPosition: [0, 0, 0], worldBoundingBox: { topLeft: [0, 0, 0], topRight: [0, 0, 0], bottomLeft: [0, 0, 0], bottomRight: [0, 0, 0] } } },
          cachedStats: {},
          label: m.label,
        },
      };
      csAnnotation.state.addAnnotation(ann as unknown as Types.Annotation, enabled.viewport.element);
    } else {
      const instance = group?.getToolInstance(toolName) as LengthTool | undefined;
      LengthTool.hydrate(series.viewportId, points, { annotationUID: m.id, referencedImageId: imageId, ...(instance ? { toolInstance: instance } : {}) });
      const ann = csAnnotation.state.getAnnotation(m.id);
      if (ann) {
        // hydrate() leaves out what the tools' render expects.
        const data = ann.data as { label?: string; cachedStats?: Record<string, unknown>; handles: { activeHandleIndex?: number | null } };
        data.label = m.label;
        data.cachedStats ??= {};
        data.handles.activeHandleIndex ??= null;
        ann.invalidated = true;
      }
    }
    csAnnotation.locking.setAnnotationLocked(m.id, locked);
  }

  private emit(): void {
    for (const l of this.listeners) l();
  }
}
