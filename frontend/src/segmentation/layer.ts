import { cache, imageLoader, type Types } from '@cornerstonejs/core';
import { Enums as ToolEnums, segmentation } from '@cornerstonejs/tools';

const { SegmentationRepresentations } = ToolEnums;
const LABELMAP = SegmentationRepresentations.Labelmap;

export interface LayerSegment {
  value: number;
  label: string;
  color: readonly [number, number, number];
}

export interface LayerStyle {
  fill: boolean;
  outline: boolean;
  /** fill opacity 0-1 */
  alpha: number;
}

export interface LayerOptions {
  segmentationId: string;
  label: string;
  viewportId: string;
  /** the viewport stack's imageIds */
  imageIds: string[];
  sopByImageId: ReadonlyMap<string, string>;
  /** SOPInstanceUID of each z slice of the (z, y, x) volume */
  zSops: readonly string[];
  rows: number;
  columns: number;
  segments: LayerSegment[];
  locked: boolean;
  style: LayerStyle;
}

/**
 * One labelmap segmentation on a stack viewport, filled from and read back
 * into a uint8 (z, y, x) volume whose z order is given by SOPInstanceUIDs
 * (the server's order), whatever order the viewport scrolls in.
 */
export class LabelmapLayer {
  readonly opts: LayerOptions;
  readonly shape: [number, number, number];
  private readonly derivedIdByZ: Array<string | null>;
  private visible = true;
  style: LayerStyle;
  private readonly hidden = new Set<number>();

  constructor(opts: LayerOptions) {
    this.opts = opts;
    this.style = { ...opts.style };
    this.shape = [opts.zSops.length, opts.rows, opts.columns];
    const imageIdBySop = new Map<string, string>();
    for (const imageId of opts.imageIds) {
      const sop = opts.sopByImageId.get(imageId);
      if (sop) imageIdBySop.set(sop, imageId);
    }
    this.derivedIdByZ = opts.zSops.map((sop) => {
      const imageId = imageIdBySop.get(sop);
      return imageId ? this.derivedId(imageId) : null;
    });
    if (this.derivedIdByZ.every((x) => x === null)) {
      throw new Error('None of the mask slices matches an image of this series (by SOPInstanceUID)');
    }
  }

  get segmentationId(): string {
    return this.opts.segmentationId;
  }

  private derivedId(imageId: string): string {
    return `derived:${this.opts.segmentationId}:${imageId}`;
  }

  /** Creates the labelmap images, fills them from `volume` (or empty) and shows the layer. */
  async add(volume: Uint8Array | null): Promise<void> {
    const { opts } = this;
    const images = imageLoader.createAndCacheDerivedLabelmapImages(opts.imageIds, {
      getDerivedImageId: (referencedImageId: string) => this.derivedId(referencedImageId),
    } as Parameters<typeof imageLoader.createAndCacheDerivedLabelmapImages>[1]);
    if (volume) this.write(volume, false);
    const segments: Record<number, { label: string; locked: boolean }> = {};
    for (const s of opts.segments) segments[s.value] = { label: s.label, locked: opts.locked };
    segmentation.addSegmentations([
      {
        segmentationId: opts.segmentationId,
        representation: { type: LABELMAP, data: { imageIds: images.map((img) => img.imageId) } },
        config: { label: opts.label, segments },
      },
    ]);
    const maxValue = opts.segments.reduce((m, s) => Math.max(m, s.value), 1);
    const lut: Types.ColorLUT = [[0, 0, 0, 0]];
    for (let v = 1; v <= maxValue; v++) {
      const s = opts.segments.find((x) => x.value === v);
      lut.push(s ? [s.color[0], s.color[1], s.color[2], 255] : [0, 0, 0, 0]);
    }
    await segmentation.addLabelmapRepresentationToViewportMap({
      [opts.viewportId]: [{ segmentationId: opts.segmentationId, type: LABELMAP, config: { colorLUTOrIndex: lut } }],
    });
    if (opts.locked) {
      for (const s of opts.segments) segmentation.segmentLocking.setSegmentIndexLocked(opts.segmentationId, s.value, true);
    }
    this.applyStyle();
  }

  private pixelsOf(z: number): Types.PixelDataTypedArray | null {
    const id = this.derivedIdByZ[z];
    if (!id) return null;
    const image = cache.getImage(id);
    if (!image) return null;
    const manager = image.voxelManager as { getScalarData?: () => Types.PixelDataTypedArray } | undefined;
    return manager?.getScalarData ? manager.getScalarData() : (image.getPixelData() as Types.PixelDataTypedArray);
  }

  /** The labels as a (z, y, x) uint8 volume. */
  read(): Uint8Array {
    const [nz, ny, nx] = this.shape;
    const plane = ny * nx;
    const out = new Uint8Array(nz * plane);
    for (let z = 0; z < nz; z++) {
      const pixels = this.pixelsOf(z);
      if (pixels && pixels.length === plane) out.set(pixels as ArrayLike<number>, z * plane);
    }
    return out;
  }

  /** Replaces the labels with `volume` (z, y, x) and redraws. */
  write(volume: Uint8Array, notify = true): void {
    const [nz, ny, nx] = this.shape;
    const plane = ny * nx;
    if (volume.length !== nz * plane) throw new RangeError(`the mask has ${volume.length} voxels; this series needs ${nz}x${ny}x${nx}`);
    for (let z = 0; z < nz; z++) {
      const id = this.derivedIdByZ[z];
      const image = id ? cache.getImage(id) : undefined;
      if (!image) continue;
      const slice = volume.subarray(z * plane, (z + 1) * plane);
      const manager = image.voxelManager as { setFromScalarData?: (d: ArrayLike<number>) => void } | undefined;
      if (manager?.setFromScalarData) manager.setFromScalarData(slice);
      else (image.getPixelData() as Uint8Array).set(slice);
    }
    if (notify) segmentation.triggerSegmentationEvents.triggerSegmentationDataModified(this.opts.segmentationId);
  }

  setVisible(visible: boolean): void {
    this.visible = visible;
    segmentation.config.visibility.setSegmentationRepresentationVisibility(this.opts.viewportId, { segmentationId: this.opts.segmentationId, type: LABELMAP }, visible);
  }

  get isVisible(): boolean {
    return this.visible;
  }

  setSegmentVisible(value: number, visible: boolean): void {
    if (visible) this.hidden.delete(value);
    else this.hidden.add(value);
    segmentation.config.visibility.setSegmentIndexVisibility(this.opts.viewportId, { segmentationId: this.opts.segmentationId, type: LABELMAP }, value, visible);
  }

  isSegmentVisible(value: number): boolean {
    return !this.hidden.has(value);
  }

  setStyle(change: Partial<LayerStyle>): void {
    this.style = { ...this.style, ...change };
    this.applyStyle();
  }

  private applyStyle(): void {
    const { fill, outline, alpha } = this.style;
    segmentation.config.style.setStyle(
      { type: LABELMAP, viewportId: this.opts.viewportId, segmentationId: this.opts.segmentationId },
      {
        renderFill: fill,
        renderFillInactive: fill,
        fillAlpha: alpha,
        fillAlphaInactive: alpha,
        renderOutline: outline,
        renderOutlineInactive: outline,
        outlineWidth: 1.5,
        outlineWidthInactive: 1.5,
        outlineOpacity: 1,
        outlineOpacityInactive: 1,
      },
    );
  }

  /** Makes this the segmentation the brush paints into, with `value` as the label. */
  activate(value: number): void {
    segmentation.activeSegmentation.setActiveSegmentation(this.opts.viewportId, this.opts.segmentationId);
    segmentation.segmentIndex.setActiveSegmentIndex(this.opts.segmentationId, value);
  }

  /** The z index of a stack imageId in the volume, or -1. */
  zOfImage(imageId: string): number {
    const sop = this.opts.sopByImageId.get(imageId);
    return sop ? this.opts.zSops.indexOf(sop) : -1;
  }
}
