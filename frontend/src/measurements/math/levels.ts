/**
 * Which axial slice lies at which disc level. Two sources, best first:
 *  1. disc centroids of a sagittal labelmap (the AI's, or the reader's),
 *     named from the sacrum upwards (the lowest disc is the protocol's last
 *     level), each matched to the axial slice whose plane is nearest;
 *  2. the axial series' own blocks: a spine protocol images one block of
 *     slices per disc, so when the number of blocks equals the number of
 *     levels, block k (superior to inferior) is level k.
 */
import { dot, sub, type Vec3 } from './vec';
import { pixelToPatient, planeNormal, signedDistanceToPlane, type ImagePlane } from './plane';

export interface LevelSlice {
  level: string;
  /** index into the axial stack */
  sliceIndex: number;
  /** distance (mm) from the disc centre to that slice's plane; null when found from blocks */
  distanceMm: number | null;
  source: 'labels' | 'blocks';
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/**
 * Groups consecutive slices of a stack (in scroll order) into blocks: a new
 * block starts where the orientation turns by more than `maxAngleDeg`, or
 * where the step along the normal exceeds `gapFactor` × the median step.
 */
export function axialBlocks(planes: readonly ImagePlane[], maxAngleDeg = 2, gapFactor = 1.6): number[][] {
  if (planes.length === 0) return [];
  const normals = planes.map(planeNormal);
  const steps: number[] = [];
  for (let i = 1; i < planes.length; i++) steps.push(Math.abs(dot(sub(planes[i]!.position, planes[i - 1]!.position), normals[i - 1]!)));
  const typical = steps.length > 0 ? median(steps) : 0;
  const cosMax = Math.cos((maxAngleDeg * Math.PI) / 180);
  const blocks: number[][] = [[0]];
  for (let i = 1; i < planes.length; i++) {
    const turned = dot(normals[i]!, normals[i - 1]!) < cosMax;
    const gap = typical > 0 && steps[i - 1]! > gapFactor * typical;
    if (turned || gap) blocks.push([i]);
    else blocks[blocks.length - 1]!.push(i);
  }
  return blocks;
}

/** Mean patient z (LPS: +z is superior) of a slice's centre. */
function centreZ(plane: ImagePlane): number {
  return pixelToPatient(plane, (plane.columns - 1) / 2, (plane.rows - 1) / 2)[2];
}

/**
 * Levels from axial blocks; null when the block count differs from the number
 * of levels (then the blocks say nothing reliable about levels). Each level
 * maps to the middle slice of its block.
 */
export function levelSlicesFromBlocks(levels: readonly string[], planes: readonly ImagePlane[]): LevelSlice[] | null {
  const blocks = axialBlocks(planes);
  if (levels.length === 0 || blocks.length !== levels.length) return null;
  const byHeight = blocks
    .map((block) => ({ block, z: block.reduce((s, i) => s + centreZ(planes[i]!), 0) / block.length }))
    .sort((a, b) => b.z - a.z);
  return byHeight.map(({ block }, k) => ({
    level: levels[k]!,
    sliceIndex: block[Math.floor((block.length - 1) / 2)]!,
    distanceMm: null,
    source: 'blocks' as const,
  }));
}

/**
 * Centroids (patient coordinates) of the 6-connected components of `value`
 * in a labels volume (z, y, x), where slice z has geometry `planes[z]` (null
 * for a slice without geometry: its voxels are skipped). Components under
 * `minVoxels` are dropped as noise.
 */
export function componentCentroids(
  labels: Uint8Array,
  shape: readonly [number, number, number],
  value: number,
  planes: ReadonlyArray<ImagePlane | null>,
  minVoxels = 10,
): Vec3[] {
  const [nz, ny, nx] = shape;
  if (labels.length !== nz * ny * nx) throw new RangeError(`labels have ${labels.length} values, shape ${nz}x${ny}x${nx} needs ${nz * ny * nx}`);
  if (planes.length !== nz) throw new RangeError(`need one plane per slice (${nz}), got ${planes.length}`);
  const seen = new Uint8Array(labels.length);
  const out: Vec3[] = [];
  const stack: number[] = [];
  for (let start = 0; start < labels.length; start++) {
    if (labels[start] !== value || seen[start]) continue;
    seen[start] = 1;
    stack.push(start);
    let count = 0;
    let sx = 0;
    let sy = 0;
    let sz = 0;
    while (stack.length > 0) {
      const idx = stack.pop()!;
      const z = Math.floor(idx / (ny * nx));
      const y = Math.floor((idx % (ny * nx)) / nx);
      const x = idx % nx;
      const plane = planes[z];
      if (plane) {
        const p = pixelToPatient(plane, x, y);
        sx += p[0];
        sy += p[1];
        sz += p[2];
        count++;
      }
      const neighbours: Array<[number, boolean]> = [
        [idx - 1, x > 0],
        [idx + 1, x < nx - 1],
        [idx - nx, y > 0],
        [idx + nx, y < ny - 1],
        [idx - ny * nx, z > 0],
        [idx + ny * nx, z < nz - 1],
      ];
      for (const [n, ok] of neighbours) {
        if (ok && !seen[n] && labels[n] === value) {
          seen[n] = 1;
          stack.push(n);
        }
      }
    }
    if (count >= minVoxels) out.push([sx / count, sy / count, sz / count]);
  }
  return out;
}

/** The slice whose plane is nearest to `point`, with that distance (mm). */
export function nearestSlice(planes: readonly ImagePlane[], point: Vec3): { index: number; distanceMm: number } | null {
  let best: { index: number; distanceMm: number } | null = null;
  planes.forEach((plane, index) => {
    const d = Math.abs(signedDistanceToPlane(plane, point));
    if (best === null || d < best.distanceMm) best = { index, distanceMm: d };
  });
  return best;
}

/**
 * Levels from disc centres: the most inferior disc is the last level (L5-S1),
 * counting upwards; extra discs above the first level are ignored. Each level
 * maps to the nearest axial slice; a disc farther than `maxDistanceMm` from
 * every axial slice gets no slice.
 */
export function levelSlicesFromDiscs(
  levels: readonly string[],
  discCentres: readonly Vec3[],
  axialPlanes: readonly ImagePlane[],
  maxDistanceMm = 10,
): LevelSlice[] {
  const inferiorFirst = [...discCentres].sort((a, b) => a[2] - b[2]);
  const out: LevelSlice[] = [];
  for (let k = 0; k < Math.min(levels.length, inferiorFirst.length); k++) {
    const level = levels[levels.length - 1 - k]!;
    const near = nearestSlice(axialPlanes, inferiorFirst[k]!);
    if (near && near.distanceMm <= maxDistanceMm) {
      out.push({ level, sliceIndex: near.index, distanceMm: near.distanceMm, source: 'labels' });
    }
  }
  return out.sort((a, b) => levels.indexOf(a.level) - levels.indexOf(b.level));
}
