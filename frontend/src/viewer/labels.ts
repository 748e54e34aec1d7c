/**
 * Pure handling of the AI labels buffer: raw uint8, C-order (z, y, x).
 * z follows the SOPInstanceUIDs listed with the segmentation, so slices are
 * matched to images by SOPInstanceUID, never by position in the stack.
 */

export type Shape3 = readonly [number, number, number];

export class LabelsShapeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LabelsShapeError';
  }
}

/** Splits the buffer into one (y, x) slice per SOPInstanceUID (views, no copy). */
export function sliceLabelsBySop(
  labels: Uint8Array,
  shape: readonly number[],
  sopInstanceUids: readonly string[],
): Map<string, Uint8Array> {
  if (shape.length !== 3 || !shape.every((n) => Number.isInteger(n) && n > 0)) {
    throw new LabelsShapeError(`AI labels shape must be three positive integers (z, y, x), got [${shape.join(', ')}]`);
  }
  const [z, y, x] = shape as Shape3;
  const sliceSize = y * x;
  if (labels.length !== z * sliceSize) {
    throw new LabelsShapeError(
      `AI labels buffer has ${labels.length} bytes; shape (${z}, ${y}, ${x}) needs ${z * sliceSize}`,
    );
  }
  if (sopInstanceUids.length !== z) {
    throw new LabelsShapeError(
      `AI labels list ${sopInstanceUids.length} SOPInstanceUIDs for ${z} slices`,
    );
  }
  const out = new Map<string, Uint8Array>();
  sopInstanceUids.forEach((sop, k) => {
    if (out.has(sop)) throw new LabelsShapeError(`AI labels list SOPInstanceUID ${sop} twice`);
    out.set(sop, labels.subarray(k * sliceSize, (k + 1) * sliceSize));
  });
  return out;
}

export interface SliceMatch {
  /** labels slice for each image, in stack order; null where the AI has no slice */
  slices: (Uint8Array | null)[];
  matched: number;
  /** SOPInstanceUIDs in the labels that no image in the stack has */
  unmatchedLabelSops: string[];
}

/**
 * Matches labels slices to a stack's images by SOPInstanceUID and checks the
 * in-plane size against the images' Rows (y) and Columns (x).
 */
export function matchSlicesToImages(
  bySop: ReadonlyMap<string, Uint8Array>,
  shape: readonly number[],
  imageSops: readonly string[],
  rows: number,
  columns: number,
): SliceMatch {
  const [, y, x] = shape;
  if (y !== rows || x !== columns) {
    throw new LabelsShapeError(
      `AI labels are ${y}×${x} (rows×columns) but the images are ${rows}×${columns}`,
    );
  }
  const seen = new Set<string>();
  const slices = imageSops.map((sop) => {
    const slice = bySop.get(sop);
    if (slice === undefined) return null;
    seen.add(sop);
    return slice;
  });
  const unmatchedLabelSops = [...bySop.keys()].filter((sop) => !seen.has(sop));
  return { slices, matched: seen.size, unmatchedLabelSops };
}

/** Distinct label values present in a buffer (0 excluded), ascending. */
export function presentLabels(labels: Uint8Array): number[] {
  const seen = new Uint8Array(256);
  for (let i = 0; i < labels.length; i++) seen[labels[i]!] = 1;
  const out: number[] = [];
  for (let v = 1; v < 256; v++) if (seen[v]) out.push(v);
  return out;
}
