import type { ViewportRole } from '../ui/rootState';

export interface HangingEntry {
  seriesRole: string;
  role: ViewportRole;
  heading: string;
  start: 'middle' | 'first';
  /** shown (with a message) even when the case lacks the series */
  always: boolean;
}

/** The hanging protocol: which series goes where, and which slice shows first. */
export const HANGING: readonly HangingEntry[] = [
  { seriesRole: 'sagittal_t2', role: 'sagittal', heading: 'Sagittal T2', start: 'middle', always: true },
  { seriesRole: 'sagittal_t1', role: 'sagittal-t1', heading: 'Sagittal T1', start: 'middle', always: false },
  { seriesRole: 'axial_t2', role: 'axial', heading: 'Axial T2', start: 'first', always: true },
];
