import { getEnabledElement, type Types as CoreTypes } from '@cornerstonejs/core';
import { annotation as csAnnotation, drawing, LengthTool, utilities, type Types } from '@cornerstonejs/tools';
import { discHeightTextLines } from './textLines';

type Point3 = CoreTypes.Point3;
type Point2 = CoreTypes.Point2;

interface DiscHeightAnnotation extends Types.Annotation {
  data: Types.Annotation['data'] & {
    handles: { points: Point3[]; activeHandleIndex: number | null; textBox?: unknown };
    label?: string;
  };
}

const PAIR_COLOURS = ['rgb(255, 200, 80)', 'rgb(120, 220, 255)', 'rgb(255, 120, 200)'];

/**
 * Disc height on a sagittal slice: three superior/inferior endplate pairs
 * (anterior, middle, posterior), drawn as three drags on the same disc. The
 * annotation holds six points in that order; it counts as complete (and is
 * reported as a measurement) once the third pair is down.
 */
export class DiscHeightTool extends LengthTool {
  static override toolName = 'DiscHeight';
  /** the annotation still waiting for its next pair */
  private pendingUID: string | null = null;

  constructor(toolProps: Types.PublicToolProps = {}) {
    super(toolProps);
    this.configuration.actions = {};
    this.configuration.getTextLines = discHeightTextLines;

    const startNew = this.addNewAnnotation;
    this.addNewAnnotation = (evt: Types.EventTypes.InteractionEventType) => {
      const { element, currentPoints } = evt.detail;
      const pending = this.pending(element);
      if (!pending) {
        const created = startNew(evt) as unknown as DiscHeightAnnotation;
        this.pendingUID = created.annotationUID ?? null;
        return created as unknown as ReturnType<LengthTool['addNewAnnotation']>;
      }
      const world = currentPoints.world;
      pending.data.handles.points.push([...world] as Point3, [...world] as Point3);
      this.isDrawing = true;
      const viewportIdsToRender = utilities.viewportFilters.getViewportIdsWithToolToRender(element, this.getToolName());
      this.editData = {
        annotation: pending,
        viewportIdsToRender,
        handleIndex: pending.data.handles.points.length - 1,
        movingTextBox: false,
        newAnnotation: true,
        hasMoved: false,
      };
      this._activateDraw(element);
      evt.preventDefault();
      utilities.triggerAnnotationRenderForViewportIds(viewportIdsToRender);
      return pending as unknown as ReturnType<LengthTool['addNewAnnotation']>;
    };

    const endDrag = this._endCallback;
    this._endCallback = (evt: Types.EventTypes.InteractionEventType) => {
      const editing = this.editData?.annotation as DiscHeightAnnotation | undefined;
      endDrag(evt);
      if (editing && editing.data.handles.points.length >= 6 && editing.annotationUID === this.pendingUID) this.pendingUID = null;
    };

    this.isPointNearTool = (element, annotation, canvasCoords, proximity) => {
      const { viewport } = getEnabledElement(element)!;
      const points = (annotation as unknown as DiscHeightAnnotation).data.handles.points;
      if (points.length < 6) return false;
      for (let k = 0; k + 1 < points.length; k += 2) {
        const a = viewport.worldToCanvas(points[k]!);
        const b = viewport.worldToCanvas(points[k + 1]!);
        if (utilities.math.lineSegment.distanceToPoint(a, b, canvasCoords) <= proximity) return true;
      }
      return false;
    };

    this.renderAnnotation = (enabledElement, svgDrawingHelper) => {
      const { viewport } = enabledElement;
      const { element } = viewport;
      let annotations = csAnnotation.state.getAnnotations(this.getToolName(), element) as unknown as DiscHeightAnnotation[];
      if (!annotations?.length) return false;
      annotations = this.filterInteractableAnnotationsForElement(element, annotations as unknown as Types.Annotations) as unknown as DiscHeightAnnotation[];
      if (!annotations?.length) return false;
      let rendered = false;
      for (const ann of annotations) {
        const uid = ann.annotationUID!;
        if (!csAnnotation.visibility.isAnnotationVisible(uid)) continue;
        const styleSpecifier = { toolGroupId: this.toolGroupId, toolName: this.getToolName(), viewportId: viewport.id, annotationUID: uid };
        const { color, lineWidth, lineDash } = this.getAnnotationStyle({ annotation: ann, styleSpecifier });
        const points = ann.data.handles.points;
        const canvas = points.map((p) => viewport.worldToCanvas(p)) as Point2[];
        for (let k = 0; k + 1 < canvas.length; k += 2) {
          drawing.drawLine(svgDrawingHelper, uid, `pair-${k / 2}`, canvas[k]!, canvas[k + 1]!, {
            color: ann.highlighted ? color : (PAIR_COLOURS[k / 2] ?? color),
            width: lineWidth,
            lineDash,
          });
        }
        drawing.drawHandles(svgDrawingHelper, uid, '0', canvas, { color, lineWidth, handleRadius: 3 });
        const textLines = discHeightTextLines(ann.data as never);
        // No text box until the third pair is down: it would sit where the next pair goes and catch the click.
        if (points.length >= 6) {
          this.renderLinkedTextBoxAnnotation({
            enabledElement,
            svgDrawingHelper,
            annotation: ann,
            styleSpecifier,
            textLines,
            canvasCoordinates: canvas,
          } as Parameters<LengthTool['renderLinkedTextBoxAnnotation']>[0]);
        }
        rendered = true;
      }
      return rendered;
    };
  }

  /** The incomplete annotation on this element's current image, if any. */
  private pending(element: HTMLDivElement): DiscHeightAnnotation | null {
    if (!this.pendingUID) return null;
    const ann = csAnnotation.state.getAnnotation(this.pendingUID) as unknown as DiscHeightAnnotation | undefined;
    if (!ann || ann.data.handles.points.length >= 6) {
      this.pendingUID = null;
      return null;
    }
    const { viewport } = getEnabledElement(element)!;
    const current = (viewport as CoreTypes.IStackViewport).getCurrentImageId?.();
    if (current && ann.metadata?.referencedImageId !== current) return null;
    return ann;
  }

  /** Drops an unfinished annotation (Esc, or another tool picked). */
  abandonPending(): string | null {
    const uid = this.pendingUID;
    this.pendingUID = null;
    if (uid && csAnnotation.state.getAnnotation(uid)) {
      csAnnotation.state.removeAnnotation(uid);
      return uid;
    }
    return null;
  }
}
