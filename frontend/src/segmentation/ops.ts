/**
 * Pure operations on label volumes: uint8 arrays in (z, y, x) C order, the
 * layout the labels endpoints use. No Cornerstone, no DOM.
 */

export type Shape3 = readonly [number, number, number];

export function checkVolume(labels: Uint8Array, shape: Shape3): void {
  const [nz, ny, nx] = shape;
  if (![nz, ny, nx].every((n) => Number.isInteger(n) && n > 0)) throw new RangeError(`shape must be 3 positive integers, got ${shape.join('x')}`);
  if (labels.length !== nz * ny * nx) throw new RangeError(`labels have ${labels.length} values; shape ${nz}x${ny}x${nx} needs ${nz * ny * nx}`);
}

/** A sparse record of one edit: the voxels that changed, with their values before and after. */
export interface VolumeDiff {
  indices: Uint32Array;
  before: Uint8Array;
  after: Uint8Array;
}

export function diffVolumes(before: Uint8Array, after: Uint8Array): VolumeDiff {
  if (before.length !== after.length) throw new RangeError(`cannot compare volumes of ${before.length} and ${after.length} voxels`);
  let n = 0;
  for (let i = 0; i < before.length; i++) if (before[i] !== after[i]) n++;
  const diff: VolumeDiff = { indices: new Uint32Array(n), before: new Uint8Array(n), after: new Uint8Array(n) };
  let k = 0;
  for (let i = 0; i < before.length; i++) {
    if (before[i] !== after[i]) {
      diff.indices[k] = i;
      diff.before[k] = before[i]!;
      diff.after[k] = after[i]!;
      k++;
    }
  }
  return diff;
}

/** Writes a diff's "before" (undo) or "after" (redo) values into `volume`, in place. */
export function applyDiff(volume: Uint8Array, diff: VolumeDiff, direction: 'undo' | 'redo'): void {
  const values = direction === 'undo' ? diff.before : diff.after;
  for (let k = 0; k < diff.indices.length; k++) volume[diff.indices[k]!] = values[k]!;
}

/**
 * Island removal on one slice (rows × columns): for each label present (or
 * only `label`), keeps its largest 8-connected component and clears the
 * others to 0. Returns a new slice and the number of voxels cleared.
 */
export function removeIslands(slice: Uint8Array, rows: number, columns: number, label: number | null = null): { slice: Uint8Array; removed: number } {
  if (slice.length !== rows * columns) throw new RangeError(`slice has ${slice.length} values; ${rows}x${columns} needs ${rows * columns}`);
  const out = slice.slice();
  const component = new Int32Array(slice.length).fill(-1);
  const sizes: number[] = [];
  const labelOf: number[] = [];
  const stack: number[] = [];
  for (let start = 0; start < slice.length; start++) {
    const v = slice[start]!;
    if (v === 0 || component[start] !== -1 || (label !== null && v !== label)) continue;
    const id = sizes.length;
    let size = 0;
    component[start] = id;
    stack.push(start);
    while (stack.length > 0) {
      const idx = stack.pop()!;
      size++;
      const y = Math.floor(idx / columns);
      const x = idx % columns;
      for (let dy = -1; dy <= 1; dy++) {
        for (let dx = -1; dx <= 1; dx++) {
          const yy = y + dy;
          const xx = x + dx;
          if ((dx === 0 && dy === 0) || yy < 0 || yy >= rows || xx < 0 || xx >= columns) continue;
          const n = yy * columns + xx;
          if (component[n] === -1 && slice[n] === v) {
            component[n] = id;
            stack.push(n);
          }
        }
      }
    }
    sizes.push(size);
    labelOf.push(v);
  }
  const largest = new Map<number, number>();
  sizes.forEach((size, id) => {
    const v = labelOf[id]!;
    const best = largest.get(v);
    if (best === undefined || size > sizes[best]!) largest.set(v, id);
  });
  let removed = 0;
  for (let i = 0; i < out.length; i++) {
    const id = component[i]!;
    if (id >= 0 && largest.get(labelOf[id]!) !== id) {
      out[i] = 0;
      removed++;
    }
  }
  return { slice: out, removed };
}

const INF = 1e20;

/** 1-D squared Euclidean distance transform (Felzenszwalb & Huttenlocher 2012), spacing `step`. */
function edt1d(f: Float64Array, n: number, step: number, out: Float64Array): void {
  const v = new Int32Array(n);
  const z = new Float64Array(n + 1);
  let k = 0;
  v[0] = 0;
  z[0] = -INF;
  z[1] = INF;
  const s2 = step * step;
  for (let q = 1; q < n; q++) {
    let s: number;
    for (;;) {
      const p = v[k]!;
      s = (f[q]! + s2 * q * q - (f[p]! + s2 * p * p)) / (2 * s2 * (q - p));
      if (s <= z[k]! && k > 0) k--;
      else break;
    }
    if (s <= z[k]!) {
      // only when k == 0 and the parabola dominates everywhere
      v[0] = q;
      z[0] = -INF;
      z[1] = INF;
      continue;
    }
    k++;
    v[k] = q;
    z[k] = s;
    z[k + 1] = INF;
  }
  k = 0;
  for (let q = 0; q < n; q++) {
    while (z[k + 1]! < q) k++;
    const p = v[k]!;
    out[q] = s2 * (q - p) * (q - p) + f[p]!;
  }
}

/**
 * Exact 2-D Euclidean distance (mm) from every pixel to the nearest pixel
 * where `inside` is true, with anisotropic spacing [row, column] in mm
 * (Felzenszwalb & Huttenlocher, "Distance transforms of sampled functions",
 * Theory of Computing 8, 2012). Pixels inside get 0.
 */
export function distanceTransform(inside: Uint8Array, rows: number, columns: number, spacingMm: readonly [number, number] = [1, 1]): Float64Array {
  const grid = new Float64Array(rows * columns);
  for (let i = 0; i < grid.length; i++) grid[i] = inside[i] ? 0 : INF;
  const colF = new Float64Array(rows);
  const colOut = new Float64Array(rows);
  for (let x = 0; x < columns; x++) {
    for (let y = 0; y < rows; y++) colF[y] = grid[y * columns + x]!;
    edt1d(colF, rows, spacingMm[0], colOut);
    for (let y = 0; y < rows; y++) grid[y * columns + x] = colOut[y]!;
  }
  const rowF = new Float64Array(columns);
  const rowOut = new Float64Array(columns);
  for (let y = 0; y < rows; y++) {
    for (let x = 0; x < columns; x++) rowF[x] = grid[y * columns + x]!;
    edt1d(rowF, columns, spacingMm[1], rowOut);
    for (let x = 0; x < columns; x++) grid[y * columns + x] = rowOut[x]!;
  }
  for (let i = 0; i < grid.length; i++) grid[i] = Math.sqrt(grid[i]!);
  return grid;
}

/**
 * Signed distance (mm) to the mask's outline, which runs half a pixel outside
 * its border pixels: negative inside, positive outside, ∓½ pixel next to it.
 */
function signedDistance(mask: Uint8Array, rows: number, columns: number, spacing: readonly [number, number]): Float64Array {
  const outside = new Uint8Array(mask.length);
  for (let i = 0; i < mask.length; i++) outside[i] = mask[i] ? 0 : 1;
  const toInside = distanceTransform(mask, rows, columns, spacing);
  const toOutside = distanceTransform(outside, rows, columns, spacing);
  const half = Math.min(spacing[0], spacing[1]) / 2;
  const out = new Float64Array(mask.length);
  for (let i = 0; i < mask.length; i++) out[i] = mask[i] ? -(toOutside[i]! - half) : toInside[i]! - half;
  return out;
}

/**
 * Shape-based interpolation (Raya & Udupa 1990; Herman et al. 1992) of one
 * label between the slices where the reader drew it: for every run of empty
 * slices between two drawn slices z₀ < z₁, slice z gets the label where
 * (1 − t)·d₀ + t·d₁ < 0 (a tie stays empty), with t = (z − z₀)/(z₁ − z₀) and dᵢ the signed distance
 * maps of the two drawn outlines. Voxels that already hold another label are
 * left alone. Returns the new volume and the slices it filled.
 */
export function interpolateLabel(
  volume: Uint8Array,
  shape: Shape3,
  label: number,
  spacingMm: readonly [number, number] = [1, 1],
): { volume: Uint8Array; filledSlices: number[] } {
  checkVolume(volume, shape);
  if (!Number.isInteger(label) || label < 1 || label > 255) throw new RangeError(`label must be an integer 1-255, got ${label}`);
  const [nz, ny, nx] = shape;
  const plane = ny * nx;
  const drawn: number[] = [];
  for (let z = 0; z < nz; z++) {
    const s = volume.subarray(z * plane, (z + 1) * plane);
    if (s.some((v) => v === label)) drawn.push(z);
  }
  const out = volume.slice();
  const filled: number[] = [];
  for (let k = 0; k + 1 < drawn.length; k++) {
    const z0 = drawn[k]!;
    const z1 = drawn[k + 1]!;
    if (z1 - z0 < 2) continue;
    const mask = (z: number): Uint8Array => {
      const m = new Uint8Array(plane);
      for (let i = 0; i < plane; i++) m[i] = volume[z * plane + i] === label ? 1 : 0;
      return m;
    };
    const d0 = signedDistance(mask(z0), ny, nx, spacingMm);
    const d1 = signedDistance(mask(z1), ny, nx, spacingMm);
    for (let z = z0 + 1; z < z1; z++) {
      const t = (z - z0) / (z1 - z0);
      let any = false;
      for (let i = 0; i < plane; i++) {
        if ((1 - t) * d0[i]! + t * d1[i]! < 0 && out[z * plane + i] === 0) {
          out[z * plane + i] = label;
          any = true;
        }
      }
      if (any) filled.push(z);
    }
  }
  return { volume: out, filledSlices: filled };
}

/** Codes of the difference view. */
export const DIFF = { BOTH: 1, AI_ONLY: 2, READER_ONLY: 3 } as const;

/**
 * Voxel-wise comparison of the reader's mask with the AI's, for one label or
 * (label null) for "any structure": 1 both, 2 AI only (false positive taking
 * the reader as reference), 3 reader only (false negative), 0 neither.
 */
export function compareMasks(reader: Uint8Array, ai: Uint8Array, label: number | null): Uint8Array {
  if (reader.length !== ai.length) throw new RangeError(`masks differ in size: reader ${reader.length}, AI ${ai.length}`);
  const out = new Uint8Array(reader.length);
  for (let i = 0; i < reader.length; i++) {
    const r = label === null ? reader[i]! > 0 : reader[i] === label;
    const a = label === null ? ai[i]! > 0 : ai[i] === label;
    out[i] = r && a ? DIFF.BOTH : a ? DIFF.AI_ONLY : r ? DIFF.READER_ONLY : 0;
  }
  return out;
}


/**
 * Re-stacks a (z, y, x) volume whose slices are `fromSops` into the order
 * `toSops` (slices missing from the source stay 0), e.g. the AI mask into the
 * reader mask's z order.
 */
export function reorderSlices(volume: Uint8Array, plane: number, fromSops: readonly string[], toSops: readonly string[]): Uint8Array {
  if (volume.length !== fromSops.length * plane) throw new RangeError(`the volume has ${volume.length} voxels; ${fromSops.length} slices of ${plane} need ${fromSops.length * plane}`);
  const index = new Map(fromSops.map((sop, z) => [sop, z]));
  const out = new Uint8Array(toSops.length * plane);
  toSops.forEach((sop, z) => {
    const from = index.get(sop);
    if (from !== undefined) out.set(volume.subarray(from * plane, (from + 1) * plane), z * plane);
  });
  return out;
}

/**
 * A lookup table from one label map to another by structure name: entry v
 * is the target value of the source label v, 0 for structures the target
 * does not have (e.g. the AI's labels onto the protocol's).
 */
export function labelLut(from: Readonly<Record<string, string>>, to: ReadonlyArray<{ value: number; name: string }>): Uint8Array {
  const lut = new Uint8Array(256);
  for (const [value, name] of Object.entries(from)) {
    const v = Number(value);
    const target = to.find((t) => t.name === name);
    if (Number.isInteger(v) && v > 0 && v < 256 && target) lut[v] = target.value;
  }
  return lut;
}

export function remapLabels(volume: Uint8Array, lut: Uint8Array): Uint8Array {
  const out = new Uint8Array(volume.length);
  for (let i = 0; i < volume.length; i++) out[i] = lut[volume[i]!]!;
  return out;
}
