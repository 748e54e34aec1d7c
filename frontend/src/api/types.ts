/**
 * REST API types for the reading viewer.
 *
 * `generated.ts` is produced from the backend's OpenAPI schema (`npm run
 * schema && npm run gen:api`); a unit test fails when it is stale. Where the
 * schema types a payload precisely, the names below are aliases of the
 * generated components. Where the schema still says "free-form object" (the
 * normalised protocol, measurements, segmentations, compare), the shapes
 * follow the REST contract for the reading workspace, and the compile-time
 * checks at the bottom keep the two in step: a field the backend renames or
 * retypes breaks the build here, not at run time.
 */
import type { components } from './generated';

type Schemas = components['schemas'];

export type AssignmentStatus = 'not_started' | 'in_progress' | 'submitted';
export type Phase = 'unaided' | 'aided' | 'done';
export type AssignmentKind = 'live' | 'washout' | 'calibration';

/** Series roles the viewer hangs; anything else is listed but not hung. */
export type SeriesRole = 'sagittal_t2' | 'sagittal_t1' | 'axial_t2' | (string & {});

export interface AiSegmentation {
  id: string;
  model_version: string;
  /** label value (as a decimal string) -> structure name */
  label_map: Record<string, string>;
  /** (z, y, x) of the raw uint8 labels buffer */
  shape: number[];
  /** SOPInstanceUID of each z slice, in z order */
  sop_instance_uids: string[];
  readonly labels_url: string;
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
  /** fixed, ordered: grades are ordinal */
  categories: Category[];
}

export interface SubQuestion {
  key: string;
  label: string;
  /** parent category codes for which this question is asked */
  when: string[];
  required: boolean;
  scale: Scale;
}

export interface Condition {
  key: string;
  label: string;
  side?: 'left' | 'right' | null;
  required?: boolean;
  scale: Scale;
  sub_questions?: SubQuestion[];
}

export type MeasurementKind = 'length' | 'area' | 'disc_height';

export interface MeasurementSpec {
  key: string;
  kind: MeasurementKind;
  label: string;
  unit: 'mm' | 'mm2';
  required: boolean;
  levels: string[];
}

export interface SegmentationLabel {
  value: number;
  name: string;
  label: string;
  color: [number, number, number];
}

export interface SegmentationSpec {
  series_role: SeriesRole;
  brush_radius_mm: number;
  labels: SegmentationLabel[];
}

export interface Protocol {
  levels: string[];
  conditions: Condition[];
  measurements?: MeasurementSpec[];
  segmentation?: SegmentationSpec | null;
  two_phase?: boolean;
  compare?: boolean;
}

export interface Grade {
  level: string;
  /** a condition key, or a sub-question key for sub-question answers */
  condition: string;
  value: string;
}

export type Point3 = [number, number, number];

export type MeasurementValues =
  | { length_mm: number }
  | { area_mm2: number }
  | { anterior_mm: number; middle_mm: number; posterior_mm: number };

export interface Measurement {
  /** uuid made by the client */
  id: string;
  key: string;
  kind: MeasurementKind;
  level: string;
  label: string;
  series_instance_uid: string;
  sop_instance_uid: string;
  /** patient coordinates (LPS, mm) */
  points_mm: Point3[];
  values: MeasurementValues;
}

export interface Read {
  version: number;
  phase?: Phase;
  submitted: boolean;
  elapsed_s?: number;
  grades: Grade[];
  measurements?: Measurement[];
}

export interface PreviousRead {
  phase: Phase;
  version: number;
  submitted: boolean;
  grades: Grade[];
  measurements: Measurement[];
}

export interface ReaderSegmentation {
  series_instance_uid: string;
  version: number;
  phase: Phase;
  labels_url: string;
  /** (z, y, x) */
  shape: number[];
  label_map: Record<string, string>;
}

export interface Assignment {
  id: string;
  reader: string;
  status: AssignmentStatus;
  kind?: AssignmentKind;
  phase?: Phase;
  case: Case;
  protocol: Protocol;
  read: Read;
  previous_reads?: PreviousRead[];
  segmentations?: ReaderSegmentation[];
}

export interface ReadUpdateRequest {
  base_version: number;
  grades: Grade[];
  measurements: Measurement[];
  elapsed_s: number;
}

export interface ReadSubmitRequest {
  base_version: number;
}

/** One missing required answer, as the submit endpoint reports it. */
export type MissingItem = { level: string; condition: string } | { level: string; measurement: string };

/** Body of 412 Precondition Failed on a stale base_version. */
export interface StaleVersionError {
  detail: string;
  current: Read;
}

/** Body of 400 on a submit with required answers missing. */
export interface MissingGradesError {
  detail: string;
  missing: Array<MissingItem | string>;
}

export interface LabelsSaveResponse extends ReaderSegmentation {}

export interface CompareValue {
  reader: number | null;
  ai: number | null;
  delta: number | null;
}

export interface CompareGrade {
  condition: string;
  reader: string | null;
  ai: string | null;
  differs: boolean;
}

export interface CompareLevel {
  level: string;
  dsca_mm2: CompareValue | null;
  ap_diameter_mm: CompareValue | null;
  disc_height_mm: CompareValue | null;
  grades: CompareGrade[];
}

export interface CompareStructure {
  label: number;
  name: string;
  dice: number | null;
  reader_voxels: number;
  ai_voxels: number;
}

export interface Comparison {
  model_version: string;
  structures: CompareStructure[];
  levels: CompareLevel[];
}

// ---- compile-time agreement with the generated schema ---------------------
type Assert<T extends true> = T;
type Extends<A, B> = [A] extends [B] ? true : false;
export type SchemaChecks = [
  Assert<Extends<Schemas['Grade'], Grade>>,
  Assert<Extends<Grade, Schemas['Grade']>>,
  Assert<Extends<Schemas['AISegmentation'], AiSegmentation>>,
  Assert<Extends<Omit<Schemas['Series'], 'ai_segmentation'>, Omit<Series, 'ai_segmentation'>>>,
  Assert<Extends<Schemas['Read']['version'], Read['version']>>,
  Assert<Extends<Schemas['Read']['grades'], Read['grades']>>,
];
