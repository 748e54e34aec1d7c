import { axialBlocks, componentCentroids, levelSlicesFromBlocks, levelSlicesFromDiscs, type LevelSlice } from '../measurements/math/levels';
import { signedDistanceToPlane, type ImagePlane } from '../measurements/math/plane';
import type { Vec3 } from '../measurements/math/vec';

export interface LevelMap {
  slices: LevelSlice[];
  /** axial stack index -> level, for images at a level */
  levelOfIndex: Map<number, string>;
  /** where the positions come from, in words */
  source: string;
}

/** Levels from the AI's sagittal disc labels: each axial image within 8 mm of a disc centre gets that level. */
export function levelMapFromDiscs(levels: string[], discCentres: Vec3[], axialPlanes: ImagePlane[]): LevelMap | null {
  const slices = levelSlicesFromDiscs(levels, discCentres, axialPlanes);
  if (slices.length === 0) return null;
  const inferiorFirst = [...discCentres].sort((a, b) => a[2] - b[2]);
  const levelOfIndex = new Map<number, string>();
  axialPlanes.forEach((plane, index) => {
    let best: { level: string; d: number } | null = null;
    inferiorFirst.slice(0, levels.length).forEach((centre, k) => {
      const d = Math.abs(signedDistanceToPlane(plane, centre));
      if (d <= 8 && (!best || d < best.d)) best = { level: levels[levels.length - 1 - k]!, d };
    });
    if (best) levelOfIndex.set(index, (best as { level: string }).level);
  });
  return { slices, levelOfIndex, source: 'Level positions from the AI disc labels on the sagittal series' };
}

export function levelMapFromBlocks(levels: string[], axialPlanes: ImagePlane[]): LevelMap | null {
  const slices = levelSlicesFromBlocks(levels, axialPlanes);
  if (!slices) return null;
  // every image of a block belongs to its level
  const levelOfIndex = new Map<number, string>();
  for (const block of axialBlocks(axialPlanes)) {
    const level = slices.find((s) => block.includes(s.sliceIndex))?.level;
    if (level) for (const index of block) levelOfIndex.set(index, level);
  }
  return { slices, levelOfIndex, source: 'Level positions from the axial slice blocks (one block per disc)' };
}

export { componentCentroids };
