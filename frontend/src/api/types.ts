/**
 * REST API types for the reading viewer.
 *
 * Written by hand from the API contract until the OpenAPI-generated types
 * land; everything the app imports about the wire format comes from this one
 * file so it can be swapped wholesale.
 */

export type AssignmentStatus = 'not_started' | 'in_progress' | 'submitted';

export type SeriesRole = 'sagittal_t2' | 'axial_t2';

export interface AiSegmentation {
  id: string;
  model_version: string;
  /** label value (as a decimal string) -> structure name */
  label_map: Record<string, string>;
  /** (z, y, x) of the raw uint8 labels buffer */
  shape: [number, number, number];
  /** SOPInstanceUID of each z slice, in z order */
  sop_instance_uids: string[];
  labels_url: string;
}

export interface Series {
  series_instance_uid: string;
  role: SeriesRole;
  description: string;
  num_instances: number;
  /** null while the AI job runs, or when the protocol hides AI from this reader */
  ai_segmentation: AiSegmentation | null;
}

export interface Case {
  id: string;
  label: string;
  study_instance_uid: string;
  series: Series[];
}

export interface Category {
  code: string;
  label: string;
}

export interface Scale {
  name: string;
  categories: Category[];
}

export interface Condition {
  key: string;
  label: string;
  scale: Scale;
}

export interface Protocol {
  levels: string[];
  conditions: Condition[];
}

export interface Grade {
  level: string;
  condition: string;
  value: string;
}

export interface Read {
  version: number;
  submitted: boolean;
  grades: Grade[];
}

export interface Assignment {
  id: string;
  reader: string;
  status: AssignmentStatus;
  case: Case;
  protocol: Protocol;
  read: Read;
}

export interface ReadUpdateRequest {
  base_version: number;
  grades: Grade[];
}

export interface ReadSubmitRequest {
  base_version: number;
}

/** Body of 412 Precondition Failed on a stale base_version. */
export interface StaleVersionError {
  detail: string;
  current: Read;
}

/** Body of 400 on a save with invalid values. */
export interface ValidationError {
  detail: string;
  errors?: Record<string, unknown>;
}

/** Body of 400 on a submit with grades missing. */
export interface MissingGradesError {
  detail: string;
  /** "<level>/<condition>" keys */
  missing: string[];
}
